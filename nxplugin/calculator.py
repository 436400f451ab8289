"""ASE calculators: a full RPR model calculator, and RPR dipoles on top of any other calculator.

Results are in ASE units: energy eV, forces eV/Angstrom, dipole e*Angstrom, polarizability
Angstrom**3 (``results["polarizability"]``, 3x3), plus ``results["ood_score"]`` (dimensionless, above
1 means the geometry lies beyond the training data) and, with ``uncertainty=True``,
``results["energy_uncertainty"]`` (eV, the Gaussian-process posterior standard deviation of the energy,
:mod:`nxplugin.learn.uncertainty`).
"""
import warnings

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from nxplugin.errors import GeometryError


def _as_model(model_or_path):
    if isinstance(model_or_path, (str, bytes)) or hasattr(model_or_path, "__fspath__"):
        from nxplugin.model.modelfile import load_model
        return load_model(model_or_path)
    return model_or_path


class _ModelUser:
    """Validation, atom mapping and out-of-domain bookkeeping shared by both calculators.

    Atoms may come in any numbering: each geometry is mapped onto the model's labelling
    (:mod:`nxplugin.model.atommap`, cached per atom order) and forces go back in the input's order.
    Atoms that are not the model's molecule raise :class:`nxplugin.errors.ModelDomainError`.
    """

    default_parameters = {"ood_threshold": 1.0}

    def _init_model(self, model_or_path):
        self.model = _as_model(model_or_path)
        self.n_out_of_domain = 0
        self.max_ood_score = 0.0

    @property
    def ood_threshold(self):
        """Out-of-domain score above which a geometry is counted (``parameters["ood_threshold"]``)."""
        return self.parameters["ood_threshold"]

    @ood_threshold.setter
    def ood_threshold(self, value):
        self.set(ood_threshold=value)

    def _predict(self, atoms, forces):
        if atoms.pbc.any():
            raise GeometryError(f"periodic cell (pbc={atoms.pbc.tolist()}): nxplugin models are for "
                                "isolated molecules; set atoms.pbc = False")
        pred = self.model.predict(atoms.positions, numbers=atoms.numbers, forces=forces)
        self._record_ood(pred["ood_score"])
        return pred

    def _record_ood(self, score):
        score = float(score)
        self.max_ood_score = max(self.max_ood_score, score)
        if score > self.ood_threshold:
            self.n_out_of_domain += 1
            if self.n_out_of_domain == 1:
                warnings.warn(f"geometry beyond the training data (ood_score={score:.2f} > "
                              f"{self.ood_threshold}); predictions may be unreliable. The count is "
                              "kept in calc.n_out_of_domain", stacklevel=5)


class RPRCalculator(_ModelUser, Calculator):
    """Energy, forces, dipole (and polarizability) from an nxplugin model.

    Parameters
    ----------
    model_or_path : RPRModel or str or path-like
        A fitted model or a model file (:func:`nxplugin.load_model`).
    ood_threshold : float, default=1.0
        Out-of-domain score above which a warning is given (once) and counted; an ASE parameter
        (``calc.parameters``, ``calc.set(ood_threshold=...)``, ``calc.todict()``).
    uncertainty : bool, default=False
        Also compute ``results["energy_uncertainty"]`` (eV) at every geometry; costs one
        ``n_train**2`` triangular solve per call (a Cholesky factor is made at the first call).

    Atoms may be numbered in any order (see :class:`_ModelUser`).
    """

    implemented_properties = ["energy", "free_energy", "forces", "dipole", "polarizability"]
    default_parameters = {"ood_threshold": 1.0, "uncertainty": False}

    def __init__(self, model_or_path, *, ood_threshold=1.0, uncertainty=False, **kwargs):
        Calculator.__init__(self, ood_threshold=ood_threshold, uncertainty=bool(uncertainty), **kwargs)
        self._init_model(model_or_path)
        if not self.model.has_polarizability:
            self.implemented_properties = ["energy", "free_energy", "forces", "dipole"]

    def check_state(self, atoms, tol=1e-15):
        # ASE's generic comparison costs ~0.3 ms per MD step; compare only what the model reads,
        # bytewise (exact, and a few times cheaper than numpy.array_equal on 24 numbers)
        old = self.atoms
        if old is None:
            return list(all_changes)
        changes = []
        if atoms.numbers.tobytes() != old.numbers.tobytes():
            changes.append("numbers")
        if atoms.positions.tobytes() != old.positions.tobytes():
            changes.append("positions")
        if atoms.pbc.tobytes() != old.pbc.tobytes() or atoms.cell.array.tobytes() != old.cell.array.tobytes():
            changes += ["cell", "pbc"]
        return changes

    def get_property(self, name, atoms=None, allow_calculation=True):
        # as ASE's, but a new geometry updates the stored copy's positions instead of copying the
        # whole Atoms object (~0.1 ms per MD step)
        if atoms is None or name not in self.implemented_properties:
            return Calculator.get_property(self, name, atoms, allow_calculation)
        changes = self.check_state(atoms)
        if changes:
            self.results = {}
            self._store(atoms, changes)
        if name not in self.results:
            if not allow_calculation:
                return None
            self.calculate(None, [name], changes)
        result = self.results[name]
        return result.copy() if isinstance(result, np.ndarray) else result

    def _store(self, atoms, changes):
        if self.atoms is None or set(changes) != {"positions"}:
            self.atoms = atoms.copy()
        else:
            self.atoms.positions[:] = atoms.positions

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if atoms is not None:
            self._store(atoms, system_changes)
        pred = self._predict(self.atoms, forces=True)
        self.results = {"energy": float(pred["energy"]), "free_energy": float(pred["energy"]),
                        "forces": pred["forces"], "dipole": pred["dipole"],
                        "ood_score": float(pred["ood_score"])}
        if "polarizability" in pred:
            self.results["polarizability"] = pred["polarizability"]
        if self.parameters.get("uncertainty"):
            from nxplugin.learn.uncertainty import energy_uncertainty
            order = self.model.atom_mapper.find(self.atoms.numbers, self.atoms.positions)
            self.results["energy_uncertainty"] = energy_uncertainty(self.model, self.atoms.positions[order])


class DipoleCalculator(_ModelUser, Calculator):
    """Energy and forces from any ASE calculator, dipole (and polarizability) from an RPR model.

    Parameters
    ----------
    model_or_path : RPRModel or str or path-like
    base : ase.calculators.calculator.Calculator
        Supplies every property except ``dipole`` and ``polarizability``.
    ood_threshold : float, default=1.0
    """

    def __init__(self, model_or_path, base, *, ood_threshold=1.0, **kwargs):
        if not (hasattr(base, "get_property") and hasattr(base, "implemented_properties")):
            raise TypeError(f"DipoleCalculator(base=...) needs an ASE calculator for the energy and forces "
                            f"(e.g. tblite.ase.TBLite()); got {type(base).__name__}. For energies, forces "
                            f"and dipoles all from the model use nxplugin.RPRCalculator")
        Calculator.__init__(self, ood_threshold=ood_threshold, **kwargs)
        self._init_model(model_or_path)
        self.calc = base
        self._own = ["dipole"] + (["polarizability"] if self.model.has_polarizability else [])
        self.implemented_properties = [p for p in base.implemented_properties if p not in self._own] + self._own

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        # ASE clears self.results when the geometry changes, so the model predicts once per geometry
        # however many properties are asked for, one by one
        Calculator.calculate(self, atoms, properties, system_changes)
        if "dipole" not in self.results:
            pred = self._predict(self.atoms, forces=False)
            self.results["dipole"] = pred["dipole"]
            self.results["ood_score"] = float(pred["ood_score"])
            if "polarizability" in pred:
                self.results["polarizability"] = pred["polarizability"]
        for name in properties:
            if name not in self._own:
                self.results[name] = self.calc.get_property(name, self.atoms)
