"""Inverse-distance descriptor relative to an equilibrium geometry (the KREG descriptor) and its derivative.

Units: positions and distances in Angstrom; the descriptor is dimensionless.

For atoms ``i < j`` (pairs in ``numpy.triu_indices`` order) the descriptor is
``d_ij = r_ij(eq) / r_ij``. It is invariant under rotations, reflections and translations, but not
under permutations of atoms: a model built on it expects the atom order it was trained with.
"""
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def pair_indices(n_atoms):
    """Index arrays ``(i, j)`` of the ``n_atoms * (n_atoms - 1) / 2`` pairs with ``i < j`` (cached)."""
    i, j = np.triu_indices(n_atoms, 1)
    i.flags.writeable = j.flags.writeable = False
    return i, j


@lru_cache(maxsize=16)
def _incidence(n_atoms):
    """(n_atoms, n_pairs) matrix: +1 where the atom is the pair's i, -1 where it is its j."""
    i, j = pair_indices(n_atoms)
    out = np.zeros((n_atoms, len(i)))
    out[i, np.arange(len(i))] = 1.0
    out[j, np.arange(len(i))] = -1.0
    out.flags.writeable = False
    return out


def pair_distances(positions):
    """Interatomic distances, shape (..., n_pairs), same unit as ``positions`` (..., n_atoms, 3)."""
    positions = np.asarray(positions, dtype=float)
    i, j = pair_indices(positions.shape[-2])
    return np.linalg.norm(positions[..., i, :] - positions[..., j, :], axis=-1)


def inverse_distances(positions, reference_distances):
    """Descriptor ``r_ij(eq) / r_ij``.

    Parameters
    ----------
    positions : ndarray of shape (..., n_atoms, 3), Angstrom
    reference_distances : ndarray of shape (n_pairs,), Angstrom
        Pair distances of the equilibrium geometry (:func:`pair_distances`).

    Returns
    -------
    ndarray of shape (..., n_pairs)
    """
    return reference_distances / pair_distances(positions)


def descriptor_gradient(positions, descriptor, grad_descriptor):
    """Chain rule: Cartesian gradient from a gradient with respect to the descriptor.

    Uses ``d d_ij / d x_i = -d_ij (x_i - x_j) / r_ij**2`` (and the opposite for ``x_j``) without
    forming the full Jacobian.

    Parameters
    ----------
    positions : ndarray of shape (..., n_atoms, 3), Angstrom
    descriptor : ndarray of shape (..., n_pairs)
        :func:`inverse_distances` of ``positions``.
    grad_descriptor : ndarray of shape (..., n_pairs)
        Derivative of a scalar with respect to each descriptor element.

    Returns
    -------
    ndarray of shape (..., n_atoms, 3): derivative of the scalar per Angstrom.
    """
    positions = np.asarray(positions, dtype=float)
    n_atoms = positions.shape[-2]
    i, j = pair_indices(n_atoms)
    diff = positions[..., i, :] - positions[..., j, :]
    r2 = np.einsum("...k,...k->...", diff, diff)
    pair_grad = (-grad_descriptor * descriptor / r2)[..., None] * diff      # d/dx_i of each pair
    return np.einsum("ap,...pk->...ak", _incidence(n_atoms), pair_grad)   # scatter onto atoms


def descriptor_jacobian(positions, descriptor):
    """Full Jacobian ``d d_p / d x_ak``, shape (..., n_pairs, n_atoms, 3); for tests and analysis."""
    positions = np.asarray(positions, dtype=float)
    n_pairs = descriptor.shape[-1]
    eye = np.broadcast_to(np.eye(n_pairs), descriptor.shape[:-1] + (n_pairs, n_pairs))
    return descriptor_gradient(positions[..., None, :, :], descriptor[..., None, :], eye)


def symmetry_pair_permutations(numbers, reference_distances, *, tol=1e-3, max_candidates=100_000):
    """Permutations of like atoms that leave the reference geometry's distances unchanged.

    These are the point-group operations of the equilibrium geometry written as atom relabellings
    (trans-DCE, C2h: 4). Applied to the descriptor they act as permutations of its pairs, and a kernel
    averaged over them makes a model exactly invariant to them, so that symmetry-distinct normal
    modes cannot mix.

    Parameters
    ----------
    numbers : array-like of shape (n_atoms,)
    reference_distances : ndarray of shape (n_pairs,), Angstrom
    tol : float
        Largest distance change, Angstrom, for a relabelling to count as a symmetry.
    max_candidates : int
        Above this many candidate relabellings only the identity is returned.

    Returns
    -------
    ndarray of int of shape (n_symmetries, n_pairs)
        Row ``s`` lists, for each pair, the index of the pair it is mapped to; row 0 is the identity.
    """
    from itertools import permutations, product
    from math import factorial, prod

    numbers = np.asarray(numbers)
    n_atoms = len(numbers)
    i, j = pair_indices(n_atoms)
    index = np.full((n_atoms, n_atoms), -1)
    index[i, j] = index[j, i] = np.arange(len(i))
    identity = np.arange(len(i))
    classes = [np.flatnonzero(numbers == z) for z in np.unique(numbers)]
    if prod(factorial(len(c)) for c in classes) > max_candidates:
        return identity[None]
    found = [identity]
    for choice in product(*(permutations(c) for c in classes)):
        perm = np.empty(n_atoms, dtype=int)
        for members, image in zip(classes, choice):
            perm[members] = image
        pairs = index[perm[i], perm[j]]
        if np.array_equal(pairs, identity):
            continue
        if np.abs(reference_distances[pairs] - reference_distances).max() < tol:
            found.append(pairs)
    return np.array(found)
