"""Harmonic IR spectra: optimise a geometry with any ASE calculator, then ``ase.vibrations.Infrared``.

Units: wavenumbers cm^-1, intensities km/mol (ASE's (D/Angstrom)^2/amu converted with the one IR
constant of :mod:`nxplugin.analysis.spectra`, so sticks and MD bands share it), forces eV/Angstrom,
displacement Angstrom.
"""
import os
import tempfile

import numpy as np
from ase import units
from ase.optimize import BFGS
from ase.vibrations import Infrared

from nxplugin.analysis.spectra import IR_INTENSITY_KM_PER_MOL

#: km/mol per (D/Angstrom)^2/amu, ASE's intensity unit (42.256)
KM_MOL_PER_D2_A2_AMU = IR_INTENSITY_KM_PER_MOL * units.Debye**2


def optimise(atoms, calc, *, fmax=1e-4, steps=2000):
    """A copy of ``atoms`` relaxed with ``calc`` to a maximum force ``fmax`` (eV/Angstrom)."""
    atoms = atoms.copy()
    atoms.calc = calc
    if not BFGS(atoms, logfile=None).run(fmax=fmax, steps=steps):
        raise RuntimeError(f"geometry optimisation did not reach fmax={fmax} eV/Angstrom in {steps} steps")
    return atoms


def harmonic_ir(atoms, *, delta=0.01, nfree=2, return_modes=False):
    """Harmonic frequencies and IR intensities of ``atoms`` (with its calculator) at its geometry.

    Parameters
    ----------
    atoms : ase.Atoms
        Optimised geometry with a calculator providing forces and dipole.
    delta : float
        Finite-difference displacement, Angstrom.
    nfree : {2, 4}
        Displacements per coordinate (central differences of order 2 or 4).
    return_modes : bool
        Also return the mass-weighted normal modes, shape (n_modes, 3N), unit vectors.

    Returns
    -------
    wavenumbers : ndarray of shape (3N - 6,) (3N - 5 if linear), cm^-1, imaginary modes negative
    intensities : ndarray of the same shape, km/mol
    """
    with tempfile.TemporaryDirectory(prefix="nxplugin-ir-") as tmp:
        ir = Infrared(atoms, name=os.path.join(tmp, "ir"), delta=delta, nfree=nfree)
        ir.run()
        energies = ir.get_energies()
        intensities = ir.intensities * KM_MOL_PER_D2_A2_AMU
        modes = ir.modes
    from ase.units import invcm
    wavenumbers = np.where(energies.imag != 0, -energies.imag, energies.real) / invcm
    moments = atoms.get_moments_of_inertia()
    n_rigid = 5 if moments.min() < 1e-6 * moments.max() else 6
    keep = np.sort(np.argsort(np.abs(wavenumbers))[n_rigid:])   # drop translations and rotations
    if return_modes:
        return wavenumbers[keep], intensities[keep], modes[keep]
    return wavenumbers[keep], intensities[keep]


def match_modes(modes_a, modes_b):
    """Order of ``modes_b`` that best matches ``modes_a`` (largest total squared overlap).

    Pairing by eigenvector rather than by frequency order keeps near-degenerate modes that swap
    order (the C-H stretches of trans-DCE, 3 cm^-1 apart) paired with their own kind.
    """
    from scipy.optimize import linear_sum_assignment
    overlap = (np.asarray(modes_a) @ np.asarray(modes_b).T) ** 2
    return linear_sum_assignment(-overlap)[1]
