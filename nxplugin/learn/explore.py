"""Exploration: many short Langevin trajectories with the current model, batched, and engine labels.

Units: positions Angstrom, momenta ASE units, energies eV, forces eV/Angstrom, dipoles e*Angstrom,
polarizabilities Angstrom**3, temperature K, time fs.

The MD of a young model can run into holes of its energy surface; a replica stops at the first
geometry whose bond graph differs from the reference's (the rule of the atom mapping,
:func:`nxplugin.model.symmetry.bond_graph`: distances below ``BOND_FACTOR`` times the sum of covalent
radii) or with overlapping atoms (closer than :data:`nxplugin.model.estimator.MIN_DISTANCE`); its
frames before that are kept as candidates (they are the geometries the model gets wrong), so every
candidate is a geometry of the model's molecule.
"""
import io

import numpy as np
from ase import units

from nxplugin.learn.uncertainty import energy_uncertainty
from nxplugin.model import descriptors
from nxplugin.model.estimator import MIN_DISTANCE

def bond_cutoffs(numbers):
    """Bond length limits (Angstrom) of the descriptor's pairs, as :func:`nxplugin.model.symmetry.bond_graph`."""
    from nxplugin.model.elements import COVALENT_RADII
    from nxplugin.model.symmetry import BOND_FACTOR
    radii = np.array([COVALENT_RADII[int(z)] for z in numbers])
    i, j = descriptors.pair_indices(len(numbers))
    return BOND_FACTOR * (radii[i] + radii[j])


def sane(positions, cutoffs, bonded):
    """Mask of geometries (n, n_atoms, 3): finite, no overlapping atoms, and the bond graph ``bonded``
    (boolean over the pairs, :func:`bond_cutoffs`)."""
    pos = np.asarray(positions, float).reshape(-1, *np.shape(positions)[-2:])
    finite = np.isfinite(pos).all(axis=(1, 2))
    r = descriptors.pair_distances(np.where(finite[:, None, None], pos, 0.0))
    ok = (r.min(axis=1) >= MIN_DISTANCE) & ((r < cutoffs) == bonded).all(axis=1)
    return finite & ok


def explore(model, starts, *, temperatures_K, n_replicas, n_steps, interval, timestep_fs=0.5,
            friction_per_fs=0.02, max_uncertainty=None, energy_window=None, seed=0):
    """Run batched Langevin replicas with ``model`` and return the geometries they visit.

    Parameters
    ----------
    model : RPRModel
    starts : ndarray of shape (n_starts, n_atoms, 3), Angstrom
        Start geometries (model atom order); replica ``k`` starts from a random one.
    temperatures_K : sequence of float, K
        ``n_replicas`` replicas at each.
    n_replicas, n_steps, interval : int
        Replicas per temperature, steps per replica, steps between kept frames.
    timestep_fs : float, fs, default=0.5
    friction_per_fs : float, 1/fs, default=0.02
    max_uncertainty : float, eV, optional
        A replica stops at its first step whose energy uncertainty
        (:func:`nxplugin.learn.uncertainty.energy_uncertainty`) exceeds this: that frame is the edge of
        what the model knows and is kept; what a young model's MD does beyond it (running into holes
        of its surface, hundreds of kcal/mol up) is not worth a label.
    energy_window : (float, float), eV, optional
        A replica also stops at its first step whose model energy leaves this range: a young model
        has holes (energies far below the minimum, where the engine says hundreds of kcal/mol up) that
        its uncertainty alone, saturating at the prior's amplitude, flags too late.
    seed : int or sequence of int
        Seeds ``numpy.random.default_rng([*seed, ...])``; the run is reproducible.

    Returns
    -------
    positions : ndarray of shape (n_frames, n_atoms, 3), Angstrom
    temperature_K : ndarray of shape (n_frames,), K
        Thermostat temperature of each frame's replica.
    stopped : int
        Replicas stopped at a broken bond, overlapping atoms or ``max_uncertainty``.
    """
    from nxplugin.md.batched import BatchedDynamics
    from nxplugin.md.settings import MDSettings

    seed = list(np.atleast_1d(seed).astype(int))
    masses = model.masses_
    cutoffs = bond_cutoffs(model.numbers_)
    bonded = descriptors.pair_distances(model.reference_) < cutoffs
    rng = np.random.default_rng(seed + [0])
    frames, temps, stopped = [], [], 0
    for t_index, temperature in enumerate(temperatures_K):
        pick = rng.integers(len(starts), size=n_replicas)
        positions = np.array(starts, float)[pick]
        rngs = [np.random.default_rng(seed + [1, t_index, k]) for k in range(n_replicas)]
        momenta = np.stack([r.normal(size=(len(masses), 3)) for r in rngs]) \
            * np.sqrt(masses * units.kB * temperature)[None, :, None]
        momenta -= masses[None, :, None] * (momenta.sum(axis=1) / masses.sum())[:, None, :]
        settings = MDSettings(temperature_K=float(temperature), timestep_fs=timestep_fs, thermostat="langevin",
                              friction_per_fs=friction_per_fs, n_steps=n_steps, interval=interval)
        dyn = BatchedDynamics(model, positions, momenta, masses, rngs, settings)
        alive = np.arange(n_replicas)
        for step in range(1, n_steps + 1):
            dyn.step(alive)
            ok = sane(dyn.positions[alive], cutoffs, bonded) & np.isfinite(dyn.results["energy"][alive])
            stopped += int((~ok).sum())
            alive = alive[ok]
            if not len(alive):
                break
            keep = np.full(len(alive), step % interval == 0)
            beyond = np.zeros(len(alive), bool)
            if max_uncertainty is not None:        # checked every step: a young model's MD runs off fast
                beyond |= energy_uncertainty(model, dyn.positions[alive]) > max_uncertainty
            if energy_window is not None:
                energy = dyn.results["energy"][alive]
                beyond |= (energy < energy_window[0]) | (energy > energy_window[1])
            keep |= beyond
            if keep.any():
                frames.append(dyn.positions[alive[keep]].copy())
                temps.append(np.full(int(keep.sum()), float(temperature)))
            stopped += int(beyond.sum())
            alive = alive[~beyond]
            if not len(alive):
                break
    if not frames:
        return np.zeros((0, len(masses), 3)), np.zeros(0), stopped
    return np.concatenate(frames), np.concatenate(temps), stopped


class Labeller:
    """Engine labels of single geometries, as extxyz records (ASE's standard keys).

    Parameters
    ----------
    numbers : array-like of shape (n_atoms,)
    engine : {"tblite", "pyscf"}
    method : str
        tblite method or PySCF ``"xc/basis"`` (:func:`nxplugin.reference.engines.check_engine`).
    polarizability : bool
        Also store ``info['polarizability']`` (Angstrom**3, finite field).
    """

    def __init__(self, numbers, *, engine="tblite", method=None, polarizability=False):
        from nxplugin.reference.engines import PySCFCalculator, check_engine, tblite_polarizability
        self.numbers = np.asarray(numbers, dtype=int)
        self.method = check_engine(engine, method)
        if engine == "pyscf":
            self.calc = PySCFCalculator(method=self.method)
            self.alpha = (lambda a: self.calc.get_property("polarizability", a)) if polarizability else None
        else:
            from tblite.ase import TBLite
            self.calc = TBLite(method=self.method, verbosity=0)
            self.alpha = (lambda a: tblite_polarizability(a, method=self.method)) if polarizability else None

    def __call__(self, positions, info):
        """Label one geometry (Angstrom); return its extxyz record with ``info`` added.

        Raises
        ------
        ase.calculators.calculator.CalculationFailed
            When the engine fails (for example an SCF that does not converge).
        """
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.io import write

        atoms = Atoms(numbers=self.numbers, positions=positions)
        frame = Atoms(numbers=self.numbers, positions=positions)
        if self.alpha is not None:
            frame.info["polarizability"] = self.alpha(atoms)
        self.calc.reset()
        results = {name: self.calc.get_property(name, atoms) for name in ("energy", "forces", "dipole")}
        frame.info.update(info)
        frame.calc = SinglePointCalculator(frame, **results)
        text = io.StringIO()
        write(text, frame, format="extxyz")
        return text.getvalue()
