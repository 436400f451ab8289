"""Minima of a model's molecule: a symmetric reference geometry and the conformer minima.

Units: positions Angstrom, energies eV, forces eV/Angstrom, dihedrals degrees.

``nxplugin train`` without ``--reference`` takes its reference geometry from here: the lowest-energy
frame of the data relaxed with a provisional energy model, then symmetrised (averaged over the
point-group operations it nearly has, written as relabellings of like atoms), so that the energy
kernel finds those relabellings exactly. After training, :func:`conformer_minima` relaxes the
lowest-energy frame of each conformer (trans/gauche by the X-C-C-Y torsion) with the model; the model
file stores them as the default starts of ``md`` and ``harmonic``.
"""
from itertools import permutations, product
from math import factorial, prod

import numpy as np

from nxplugin.analysis.conformers import CONFORMERS, classify, dihedral_series, find_dihedral


def symmetry_operations(numbers, positions, *, tol=0.1, max_candidates=100_000):
    """Point-group operations of a geometry as (relabelling, orthogonal matrix) pairs.

    Parameters
    ----------
    numbers : array-like of shape (n_atoms,)
    positions : array-like of shape (n_atoms, 3), Angstrom
    tol : float, Angstrom, default=0.1
        Largest atom displacement for an operation to count (a wrong relabelling moves atoms by
        about a bond length).
    max_candidates : int
        Above this many relabellings of like atoms only the identity is returned.

    Returns
    -------
    list of (ndarray of int of shape (n_atoms,), ndarray of shape (3, 3))
        ``(perm, q)`` with ``q @ (x[i] - c) ~ x[perm[i]] - c`` (c: the centroid); the identity first.
    """
    numbers = np.asarray(numbers)
    x = np.asarray(positions, dtype=float)
    x = x - x.mean(axis=0)
    classes = [np.flatnonzero(numbers == z) for z in np.unique(numbers)]
    identity = (np.arange(len(x)), np.eye(3))
    if prod(factorial(len(c)) for c in classes) > max_candidates:
        return [identity]
    distances = np.linalg.norm(x[:, None] - x[None], axis=-1)
    ops = [identity]
    for choice in product(*(permutations(c) for c in classes)):
        perm = np.empty(len(x), dtype=int)
        for members, image in zip(classes, choice):
            perm[members] = image
        if np.array_equal(perm, identity[0]) or \
                np.abs(distances[np.ix_(perm, perm)] - distances).max() > 2 * tol:
            continue
        u, _, vt = np.linalg.svd(x[perm].T @ x)       # q minimising |x q^T - x[perm]|, reflections allowed
        q = u @ vt
        if np.abs(x @ q.T - x[perm]).max() < tol:
            ops.append((perm, q))
    return ops


def symmetrize(numbers, positions, *, tol=0.1):
    """The geometry averaged over its :func:`symmetry_operations`: exactly symmetric, centroid at 0.

    Returns
    -------
    positions : ndarray of shape (n_atoms, 3), Angstrom
    n_operations : int
    """
    x = np.asarray(positions, dtype=float)
    x = x - x.mean(axis=0)
    ops = symmetry_operations(numbers, x, tol=tol)
    # x_i' = mean over g of q_g^T x[perm_g(i)]: the images of every atom, brought back and averaged
    return np.mean([x[perm] @ q for (perm, q) in ops], axis=0), len(ops)


def relax(model, numbers, positions, *, fmax=1e-3, steps=2000, max_change=0.3, keep=True):
    """Positions (Angstrom) of the minimum of ``model`` reached from ``positions`` by ASE's BFGS.

    A model fitted to few data can lead the optimiser out of its domain: if the optimisation fails
    or changes an interatomic distance by more than ``max_change`` (Angstrom), a warning is given
    and ``positions`` are returned unchanged (``keep=True``) or None.
    """
    import warnings

    from ase import Atoms
    from ase.optimize import BFGS

    from nxplugin.calculator import RPRCalculator
    from nxplugin.errors import NxPluginError

    atoms = Atoms(numbers=numbers, positions=positions)
    atoms.calc = RPRCalculator(model, ood_threshold=np.inf)
    start = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    try:
        converged = BFGS(atoms, logfile=None, maxstep=0.05).run(fmax=fmax, steps=steps)
    except (NxPluginError, ValueError) as err:
        converged, reason = False, str(err)
    else:
        reason = f"not converged to fmax={fmax} eV/Angstrom in {steps} steps"
    change = np.abs(np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1) - start).max()
    if converged and change <= max_change:
        return atoms.positions.copy()
    what = "kept the data's lowest-energy geometry" if keep else "no minimum stored"
    warnings.warn(f"relaxation with the model failed ({reason if not converged else f'a distance changed by {change:.2f} Angstrom'}); "
                  f"{what} (more data give a better model)")
    return np.array(positions, dtype=float) if keep else None


def symmetric_reference(numbers, positions, energies, dipoles, *, n_fit=1000, seed=0, tol=0.1):
    """A symmetric minimum of the data's molecule for the model's reference geometry.

    The lowest-energy frame, :func:`symmetrize`-d, relaxed with a provisional model (``n_fit``
    frames, that geometry as its reference, so its energy kernel has the symmetry), symmetrised again.

    Parameters
    ----------
    numbers : array-like of shape (n_atoms,)
    positions : array-like of shape (n_frames, n_atoms, 3), Angstrom
    energies : array-like of shape (n_frames,), eV
    dipoles : array-like of shape (n_frames, 3), e*Angstrom
        Needed by the fit; the provisional dipole model is not used.
    n_fit : int, default=1000
    seed : int, default=0
    tol : float, Angstrom, default=0.1

    Returns
    -------
    positions : ndarray of shape (n_atoms, 3), Angstrom
    n_operations : int
        Point-group operations found (1: no symmetry).
    """
    from nxplugin.model.estimator import RPRModel

    positions = np.asarray(positions, dtype=float)
    energies = np.asarray(energies, dtype=float)
    pick = np.random.default_rng(seed).permutation(len(positions))[:n_fit]
    start, _ = symmetrize(numbers, positions[np.argmin(energies)], tol=tol)
    provisional = RPRModel(charges=False, random_state=seed).fit(
        numbers, positions[pick], energies=energies[pick], dipoles=np.asarray(dipoles)[pick], reference=start)
    return symmetrize(numbers, relax(provisional, numbers, start), tol=tol)


def conformer_minima(model, numbers, positions, energies, *, dihedral=None):
    """Minima of ``model`` reached from the lowest-energy frame of each conformer in the data.

    Parameters
    ----------
    model : RPRModel
    numbers : array-like of shape (n_atoms,)
    positions : array-like of shape (n_frames, n_atoms, 3), Angstrom
    energies : array-like of shape (n_frames,), eV
    dihedral : sequence of 4 int, optional
        Torsion separating the conformers; the X-C-C-Y dihedral found from the bonds by default.
        Molecules without one get a single ``"minimum"``.

    Returns
    -------
    dict of str to ndarray of shape (n_atoms, 3), Angstrom
        ``trans`` and/or ``gauche`` (``|dihedral| > 120`` degrees is trans) for those present in the
        data, trans first; a minimum that relaxes to the other conformer, or that the model cannot
        relax (:func:`relax`), is left out.
    """
    positions = np.asarray(positions, dtype=float)
    energies = np.asarray(energies, dtype=float)
    if dihedral is None:
        try:
            dihedral = find_dihedral(numbers, positions[np.argmin(energies)])
        except ValueError:
            x = relax(model, numbers, positions[np.argmin(energies)], fmax=1e-4, keep=False)
            return {} if x is None else {"minimum": x}
    labels = classify(dihedral_series(positions, dihedral), margin_deg=0.0)
    minima = {}
    for code, name in enumerate(CONFORMERS):
        members = np.flatnonzero(labels == code)
        if len(members):
            x = relax(model, numbers, positions[members[np.argmin(energies[members])]], fmax=1e-4, keep=False)
            if x is not None and classify(dihedral_series(x[None], dihedral), margin_deg=0.0)[0] == code:
                minima[name] = x
    return minima
