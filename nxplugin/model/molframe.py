"""Molecular frames for rotate-predict-rotate: axes, sign rule, conditioning, rank-1/rank-2 transforms.

Units: positions in any length unit (Angstrom throughout nxplugin), masses in amu. Every function
takes a single geometry of shape (n_atoms, 3) or a batch of shape (n_geometries, n_atoms, 3).

A frame is an orthogonal 3x3 matrix ``R`` whose *columns* are the frame axes in the laboratory
frame. Frame-resolved components of a lab vector ``v`` are ``v @ R``; back-rotation is
``v_frame @ R.T``; a rank-2 tensor transforms as ``R.T @ A @ R`` and back as ``R @ A_frame @ R.T``.

Two frames are offered, both exactly covariant under the full orthogonal group O(3):
rotating, reflecting or translating a geometry by ``x -> Q x + t`` turns its frame into ``Q R``,
so frame-resolved components of a polar vector or a rank-2 tensor are *identical* for a geometry and
any rotated, translated or mirrored copy. The inverse-distance descriptor cannot tell mirror images
apart (gauche+ / gauche- DCE), so this is what makes their labels agree. Frames may therefore be
improper (det R = -1).

``"eckart"`` (default)
    The orthogonal polar factor of ``H = sum_i m_i (x_i - c) y_i^T`` where ``y_i`` are the centred
    coordinates of a fixed reference geometry (the model's equilibrium geometry). This is the Eckart
    frame that best superimposes the molecule on the reference, allowing reflections. It is an
    analytic function of the coordinates wherever ``H`` is non-singular, however close the moments of
    inertia are, so near-prolate geometries (trans-DCE) do not make it swing. Its sensitivity to the
    coordinates goes as 1 / (s_i + s_j) over pairs of singular values of ``H``; conditioning is
    ``singular_ratio = (s_2 + s_3) / (s_1 + s_2)`` (descending order), 1 is ideal and 0 singular.
``"inertia"``
    The principal axes of inertia (Martinka et al., J. Chem. Phys. 161, 174104 (2024)), ascending
    moments. Each axis' sign is chosen so that the mass-weighted overlap of the geometry's
    coordinates along it with the reference's coordinates along the same axis is positive; this is
    defined for centrosymmetric geometries, which have no odd mass moments. Conditioning: the smallest
    relative gap of the moments, and the margin of the sign rule (a correlation in [0, 1]).
"""
import numpy as np

FRAME_KINDS = ("eckart", "inertia")


def _batched(positions):
    positions = np.asarray(positions, dtype=float)
    if positions.ndim == 2:
        return positions[None], True
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise ValueError(f"positions must have shape (n_atoms, 3) or (n, n_atoms, 3), got {positions.shape}")
    return positions, False


def centered(positions, masses):
    """Positions relative to the centre of mass, same shape as ``positions``."""
    masses = np.asarray(masses, dtype=float)
    com = np.einsum("...ij,i->...j", positions, masses) / masses.sum()
    return positions - com[..., None, :]


def principal_axes(positions, masses):
    """Principal moments (ascending, amu * length**2) and axes (columns) of the inertia tensor."""
    x = centered(np.asarray(positions, dtype=float), masses)
    second = np.einsum("i,...ij,...ik->...jk", np.asarray(masses, float), x, x)
    inertia = np.trace(second, axis1=-2, axis2=-1)[..., None, None] * np.eye(3) - second
    return np.linalg.eigh(inertia)


def reference_coordinates(reference, masses):
    """Centred reference geometry expressed in its own principal axes (stored with a model)."""
    x = centered(np.asarray(reference, dtype=float), masses)
    _, axes = principal_axes(x, masses)
    return x @ axes


def compute_frames(positions, masses, reference, kind="eckart"):
    """Frames of one geometry or a batch.

    Parameters
    ----------
    positions : ndarray of shape (n_atoms, 3) or (n, n_atoms, 3), Angstrom
    masses : ndarray of shape (n_atoms,), amu
    reference : ndarray of shape (n_atoms, 3), Angstrom
        Output of :func:`reference_coordinates` for the model's equilibrium geometry.
    kind : {"eckart", "inertia"}

    Returns
    -------
    frames : ndarray of shape (3, 3) or (n, 3, 3)
        Axes as columns.
    conditioning : dict of ndarray of shape () or (n,)
        ``"eckart"``: ``singular_ratio``. ``"inertia"``: ``moment_gap`` (smallest relative gap of the
        moments) and ``sign_margin`` (smallest correlation that fixed an axis' sign).
    """
    x, single = _batched(positions)
    masses = np.asarray(masses, dtype=float)
    x = centered(x, masses)
    if kind == "eckart":
        h = np.einsum("i,nij,ik->njk", masses, x, reference)
        u, s, vt = np.linalg.svd(h)
        frames = u @ vt
        cond = {"singular_ratio": (s[:, 1] + s[:, 2]) / (s[:, 0] + s[:, 1])}
    elif kind == "inertia":
        moments, axes = principal_axes(x, masses)
        h = np.einsum("i,nij,ik->njk", masses, x, reference)      # (n, 3, 3)
        overlap = np.einsum("njk,njl->nkl", axes, h)                # axis k against reference axis l
        pick = np.abs(overlap).argmax(-1)
        best = np.take_along_axis(overlap, pick[..., None], -1)[..., 0]
        signs = np.where(best < 0, -1.0, 1.0)
        frames = axes * signs[:, None, :]
        spread = np.einsum("i,nik->nk", masses, (x @ axes) ** 2) * (masses @ reference**2)[pick]
        margin = np.abs(best) / np.sqrt(spread)
        gaps = np.diff(moments, axis=-1) / moments[:, -1:]
        cond = {"moment_gap": gaps.min(axis=-1), "sign_margin": margin.min(axis=-1)}
    else:
        raise ValueError(f"kind={kind!r} is not one of {FRAME_KINDS}")
    if single:
        return frames[0], {k: v[0] for k, v in cond.items()}
    return frames, cond


def vector_to_frame(vectors, frames):
    """Frame-resolved components ``v @ R`` of lab vectors, shape (..., 3)."""
    return np.einsum("...j,...jk->...k", vectors, frames)


def vector_from_frame(components, frames):
    """Lab vectors ``v_frame @ R.T`` from frame-resolved components, shape (..., 3)."""
    return np.einsum("...k,...jk->...j", components, frames)


def tensor_to_frame(tensors, frames):
    """Frame-resolved rank-2 tensors ``R.T @ A @ R``, shape (..., 3, 3)."""
    return np.einsum("...ji,...jk,...kl->...il", frames, tensors, frames)


def tensor_from_frame(tensors, frames):
    """Lab rank-2 tensors ``R @ A_frame @ R.T``, shape (..., 3, 3)."""
    return np.einsum("...ij,...jk,...lk->...il", frames, tensors, frames)


_SYM = (np.array([0, 1, 2, 0, 0, 1]), np.array([0, 1, 2, 1, 2, 2]))


def symmetric_to_six(tensors):
    """Six independent components (xx, yy, zz, xy, xz, yz) of symmetric tensors (..., 3, 3)."""
    t = np.asarray(tensors, dtype=float)
    return 0.5 * (t + np.swapaxes(t, -1, -2))[..., _SYM[0], _SYM[1]]


def six_to_symmetric(six):
    """Symmetric tensors (..., 3, 3) from (xx, yy, zz, xy, xz, yz) components (..., 6)."""
    six = np.asarray(six, dtype=float)
    out = np.empty(six.shape[:-1] + (3, 3))
    out[..., _SYM[0], _SYM[1]] = six
    out[..., _SYM[1], _SYM[0]] = six
    return out
