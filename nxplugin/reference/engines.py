"""Reference labelling engines: GFN2-xTB polarizabilities through tblite, and PySCF as an ASE calculator.

Units: energies eV, lengths Angstrom, forces eV/Angstrom, dipoles e*Angstrom, polarizabilities
Angstrom**3 (alpha / (4 pi eps0)). Atomic units appear only inside and are converted with
``ase.units`` names at the boundary.
"""
import numpy as np
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
from ase.units import Bohr, Hartree

LABEL_ENGINES = ("tblite", "pyscf")
DEFAULT_METHODS = {"tblite": "GFN2-xTB", "pyscf": "b3lyp/6-31g*"}


def tblite_polarizability(atoms, *, method="GFN2-xTB", field_step_au=1e-3, accuracy=0.01):
    """Static electronic polarizability from central differences of the dipole in a uniform field.

    Parameters
    ----------
    atoms : ase.Atoms
        Geometry in Angstrom (gas phase, neutral, closed shell).
    method : str, default="GFN2-xTB"
        tblite method.
    field_step_au : float, default=1e-3
        Field step h in atomic units (Hartree / (e Bohr) = 51.42 V/Angstrom per unit).
    accuracy : float, default=0.01
        tblite SCF accuracy. The default 1.0 leaves ~1e-2 Angstrom**3 noise in the differences.

    Returns
    -------
    alpha : ndarray of shape (3, 3), Angstrom**3
        ``alpha[i, j] = (mu_i(+h e_j) - mu_i(-h e_j)) / (2 h)``, converted from Bohr**3 with
        ``ase.units.Bohr**3``. With tblite's sign convention ``E(F) = E0 - mu.F - F.alpha.F / 2``.
    """
    from tblite.interface import Calculator as TBLiteAPI

    alpha = np.empty((3, 3))
    for j in range(3):
        dipoles = []
        for sign in (1.0, -1.0):
            field = [0.0, 0.0, 0.0]
            field[j] = sign * field_step_au
            calc = TBLiteAPI(method, atoms.numbers, atoms.positions / Bohr)
            calc.set("verbosity", 0)
            calc.set("accuracy", accuracy)
            calc.add("electric-field", field)  # a list: tblite 0.8 rejects numpy arrays here
            try:
                dipoles.append(calc.singlepoint().get("dipole"))  # e*Bohr
            except RuntimeError as e:
                raise CalculationFailed(str(e)) from e
        alpha[:, j] = (dipoles[0] - dipoles[1]) / (2 * field_step_au)
    return alpha * Bohr**3


class PySCFCalculator(Calculator):
    """Restricted HF or Kohn-Sham (PySCF) energy, forces, dipole and polarizability.

    Parameters
    ----------
    method : str, default="b3lyp/6-31g*"
        ``"xc/basis"``; ``xc`` "hf" selects restricted Hartree-Fock.
    field_step_au : float, default=1e-3
        Field step (atomic units) of the finite-field polarizability.
    conv_tol : float, default=1e-10
        SCF energy convergence, Hartree.

    Notes
    -----
    Results: energy eV, forces eV/Angstrom, dipole e*Angstrom (nuclear minus electronic, origin
    independent for neutral molecules), polarizability Angstrom**3 from central differences of the
    dipole with ``+F.r`` (the energy of an electron in a uniform field F) added to the core
    Hamiltonian. Gas phase, neutral, closed shell only.
    """

    implemented_properties = ["energy", "forces", "dipole", "polarizability"]
    default_parameters = {"method": "b3lyp/6-31g*", "field_step_au": 1e-3, "conv_tol": 1e-10}

    def _scf(self, mol, field_au=None):
        from pyscf import dft, scf

        xc = self.parameters.method.split("/")[0].lower()
        mf = scf.RHF(mol) if xc in ("hf", "rhf") else dft.RKS(mol, xc=xc)
        mf.conv_tol = self.parameters.conv_tol
        if field_au is not None:
            hcore = mf.get_hcore() + np.einsum("x,xij->ij", field_au, mol.intor("int1e_r"))
            mf.get_hcore = lambda *args: hcore
        mf.kernel()
        if not mf.converged:
            raise CalculationFailed(f"PySCF SCF ({self.parameters.method}) did not converge")
        return mf

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from pyscf import gto

        Calculator.calculate(self, atoms, properties, system_changes)
        basis = self.parameters.method.split("/", 1)[1]
        mol = gto.M(atom=list(zip(self.atoms.get_chemical_symbols(), self.atoms.positions)),
                    unit="Angstrom", basis=basis, charge=0, spin=0, verbose=0)
        mf = self._scf(mol)
        self.results["energy"] = mf.e_tot * Hartree
        self.results["free_energy"] = self.results["energy"]
        self.results["forces"] = -mf.nuc_grad_method().kernel() * Hartree / Bohr
        self.results["dipole"] = mf.dip_moment(unit="AU", verbose=0) * Bohr
        if "polarizability" in properties:
            step = self.parameters.field_step_au
            alpha = np.empty((3, 3))
            for j in range(3):
                field = np.zeros(3)
                field[j] = step
                plus = self._scf(mol, field).dip_moment(unit="AU", verbose=0)
                minus = self._scf(mol, -field).dip_moment(unit="AU", verbose=0)
                alpha[:, j] = (plus - minus) / (2 * step)
            self.results["polarizability"] = alpha * Bohr**3


def check_engine(engine, method=None):
    """Validate an engine/method pair and return the method, before any dynamics is run.

    Raises
    ------
    ValueError
        If the engine is unknown or a PySCF method is not ``"xc/basis"``.
    ImportError
        If the engine's package is not installed.
    """
    if engine not in LABEL_ENGINES:
        raise ValueError(f"{engine=} is not one of {LABEL_ENGINES}")
    method = method or DEFAULT_METHODS[engine]
    if engine == "pyscf":
        if "/" not in method:
            raise ValueError(f"{method=} for PySCF must read 'xc/basis', e.g. 'b3lyp/6-31g*'")
        import pyscf  # noqa: F401  (fail now, not after the first trajectory)
    else:
        import tblite.interface  # noqa: F401
    return method
