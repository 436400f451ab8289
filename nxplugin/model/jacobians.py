"""Jacobians of the rotate-predict-rotate inputs: descriptor, Eckart frame, inertia frame, model dipole.

Units: positions Angstrom, masses amu, descriptor dimensionless, angles rad, dipoles e*Angstrom.
Numpy only. One geometry of shape (n_atoms, 3) at a time; Jacobians are flattened over the 3N
Cartesian coordinates in atom-major order (``x_00, x_01, x_02, x_10, ...``).

Following Pozdnyakov et al. (Open Res. Eur. 1, 126 (2021)), a representation is judged by the
singular values of its Jacobian with respect to the atomic displacements: an invariant descriptor
has six zero singular values (rigid translations and rotations); further zero or tiny ones mark
geometries where the descriptor loses first-order information (singular points).

Frame derivatives are analytic:

- Eckart frame ``R = U V^T`` from ``H = U S V^T``: ``dR = U A V^T`` with the antisymmetric
  ``A_ij = (G_ij - G_ji) / (s_i + s_j)``, ``G = U^T dH V`` (derivative of the polar factor), so the
  frame's sensitivity grows as ``1 / (s_2 + s_3)`` when ``H`` approaches rank one.
- Inertia frame (eigenvectors ``v_k`` of ``I``): ``dv_k = sum_{j != k} v_j (v_j^T dI v_k) / (I_k - I_j)``,
  so it diverges as two moments meet (near-prolate trans-DCE).

The frame sensitivity is reported as the largest rotation of the frame (rad) per Angstrom of
displacement: ``dR = R W`` with ``W`` antisymmetric, and the rotation angle is ``|W|_F / sqrt(2)``.
"""
import numpy as np

from nxplugin.model import descriptors, molframe

#: Relative tolerance below which a singular value counts as zero (relative to the largest one).
RANK_RTOL = 1e-8


def descriptor_jacobian_matrix(positions, reference_distances):
    """Jacobian of the descriptor ``r_eq / r``, shape (3N, n_pairs) (per Angstrom).

    Parameters
    ----------
    positions : ndarray of shape (n_atoms, 3), Angstrom
    reference_distances : ndarray of shape (n_pairs,), Angstrom
    """
    positions = np.asarray(positions, dtype=float)
    d = descriptors.inverse_distances(positions, reference_distances)
    jac = descriptors.descriptor_jacobian(positions, d)           # (n_pairs, n_atoms, 3)
    return jac.reshape(len(d), -1).T


def descriptor_singular_values(positions, reference_distances, *, rtol=RANK_RTOL):
    """Singular values of the descriptor Jacobian and its rank beyond rigid motions.

    Returns
    -------
    dict
        ``singular_values`` (descending, 1/Angstrom), ``rank`` (number above ``rtol`` times the
        largest; 3N - 6 at a generic non-linear geometry, since the six rigid motions are always in
        the null space) and ``smallest`` (the smallest of those counted, 1/Angstrom; the one that goes
        to zero at a singular point).
    """
    s = np.linalg.svd(descriptor_jacobian_matrix(positions, reference_distances), compute_uv=False)
    n_atoms = len(positions)
    n_internal = max(3 * n_atoms - 6, 1)
    rank = int(np.count_nonzero(s > rtol * s[0]))
    return {"singular_values": s, "rank": rank, "smallest": float(s[min(n_internal, len(s)) - 1])}


def rigid_motion_basis(positions):
    """Orthonormal basis (3N, k) of the rigid translations and infinitesimal rotations (k = 6 or 5)."""
    x = np.asarray(positions, dtype=float)
    x = x - x.mean(axis=0)
    columns = []
    for axis in np.eye(3):
        columns.append(np.tile(axis, len(x)))
        columns.append(np.cross(axis, x).ravel())
    u, s, _ = np.linalg.svd(np.array(columns).T, full_matrices=False)
    return u[:, s > 1e-8 * s[0]]


def _sensitivity(jacobian, frames, positions):
    """Largest frame rotation (rad/Angstrom) over all displacements and over internal ones only."""
    flat = np.einsum("ji,njk->nik", frames, jacobian).reshape(len(jacobian), 9) / np.sqrt(2.0)
    total = np.linalg.norm(flat, 2)
    basis = rigid_motion_basis(positions)
    internal = flat - basis @ (basis.T @ flat)
    return float(total), float(np.linalg.norm(internal, 2))


def eckart_frame_jacobian(positions, masses, reference):
    """Eckart frame, its analytic derivative and conditioning.

    Parameters
    ----------
    positions : ndarray of shape (n_atoms, 3), Angstrom
    masses : ndarray of shape (n_atoms,), amu
    reference : ndarray of shape (n_atoms, 3), Angstrom
        :func:`nxplugin.model.molframe.reference_coordinates` of the model (centred).

    Returns
    -------
    dict
        ``frame`` (3, 3); ``jacobian`` (3N, 3, 3), dR/dx per Angstrom; ``singular_values`` of ``H``
        (descending, amu*Angstrom**2); ``singular_ratio`` as in molframe; ``sensitivity_rad_per_A``
        (largest frame rotation per Angstrom of any displacement) and ``internal_sensitivity_rad_per_A``
        (the same over displacements orthogonal to rigid motions).
    """
    masses = np.asarray(masses, dtype=float)
    x = molframe.centered(np.asarray(positions, dtype=float), masses)
    h = np.einsum("i,ij,ik->jk", masses, x, reference)
    u, s, vt = np.linalg.svd(h)
    frame = u @ vt
    # dH/dx_{a,l} = e_l (m_a y_a)^T (the reference is centred, so centring x adds nothing)
    y_v = (masses[:, None] * reference) @ vt.T                   # (n_atoms, 3): m_a V^T y_a
    g = np.einsum("lp,aq->alpq", u, y_v)                          # U^T dH V for each (a, l)
    denom = s[:, None] + s[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (g - np.swapaxes(g, -1, -2)) / denom
    a[..., np.arange(3), np.arange(3)] = 0.0
    jac = np.einsum("ip,alpq,qj->alij", u, a, vt).reshape(-1, 3, 3)
    total, internal = _sensitivity(jac, frame, positions)
    return {"frame": frame, "jacobian": jac, "singular_values": s,
            "singular_ratio": float((s[1] + s[2]) / (s[0] + s[1])),
            "sensitivity_rad_per_A": total, "internal_sensitivity_rad_per_A": internal}


def inertia_frame_jacobian(positions, masses, reference):
    """Principal-axes frame (as in molframe, with its sign rule), analytic derivative, moment gaps.

    Returns
    -------
    dict
        ``frame`` (3, 3); ``jacobian`` (3N, 3, 3) per Angstrom (the sign rule is locally constant);
        ``moments`` (ascending, amu*Angstrom**2); ``relative_gaps`` ((I2-I1)/I3, (I3-I2)/I3);
        ``sensitivity_rad_per_A`` and ``internal_sensitivity_rad_per_A`` as for the Eckart frame.
    """
    masses = np.asarray(masses, dtype=float)
    positions = np.asarray(positions, dtype=float)
    x = molframe.centered(positions, masses)
    frame, _ = molframe.compute_frames(positions, masses, reference, "inertia")
    moments, _ = molframe.principal_axes(x, masses)
    n = len(masses)
    # dS/dx_{a,l} = m_a (e_l x_a^T + x_a e_l^T), dI = tr(dS) 1 - dS
    eye = np.eye(3)
    ds = masses[:, None, None, None] * (eye[None, :, :, None] * x[:, None, None, :]
                                        + x[:, None, :, None] * eye[None, :, None, :])
    ds = ds.reshape(3 * n, 3, 3)
    di = np.trace(ds, axis1=1, axis2=2)[:, None, None] * eye - ds
    proj = np.einsum("ji,njk,kl->nil", frame, di, frame)           # v_j^T dI v_k
    gap = moments[None, :] - moments[:, None]                      # [j, k] = I_k - I_j
    with np.errstate(divide="ignore", invalid="ignore"):
        coef = np.where(np.eye(3, dtype=bool), 0.0, proj / gap)
    jac = np.einsum("ij,njk->nik", frame, coef)
    total, internal = _sensitivity(jac, frame, positions)
    return {"frame": frame, "jacobian": jac, "moments": moments,
            "relative_gaps": np.diff(moments) / moments[-1],
            "sensitivity_rad_per_A": total, "internal_sensitivity_rad_per_A": internal}


def dipole_jacobian(model, positions, *, step=1e-4):
    """Derivative of the model's dipole by central differences (e*Angstrom/Angstrom = e).

    Parameters
    ----------
    model : nxplugin.model.estimator.RPRModel (fitted)
    positions : ndarray of shape (n_atoms, 3) or (n_frames, n_atoms, 3), Angstrom
        Several frames go through one prediction call.
    step : float, default=1e-4
        Displacement, Angstrom (error O(step**2); the model is smooth where its frame is).

    Returns
    -------
    ndarray of shape (3N, 3) or (n_frames, 3N, 3)
    """
    positions = np.asarray(positions, dtype=float)
    single = positions.ndim == 2
    x = positions.reshape(-1, positions.shape[-2] * 3)
    n_frames, n = x.shape
    shift = np.concatenate([np.eye(n), -np.eye(n)]) * step                 # (2n, n)
    displaced = (x[:, None, :] + shift[None]).reshape(-1, *positions.shape[-2:])
    mu = model.predict(displaced, forces=False)["dipole"].reshape(n_frames, 2 * n, 3)
    jac = (mu[:, :n] - mu[:, n:]) / (2 * step)
    return jac[0] if single else jac


def dipole_sensitivity(model, positions, *, step=1e-4, jacobian=None):
    """The model's dipole sensitivity and the part of it that comes from the frame's rotation.

    Parameters
    ----------
    model : RPRModel
    positions : ndarray of shape (n_atoms, 3), Angstrom
    step : float, Angstrom
        Finite-difference step of :func:`dipole_jacobian`.
    jacobian : ndarray of shape (3N, 3), optional
        :func:`dipole_jacobian` of this geometry, when already computed.

    Returns
    -------
    dict
        ``dipole_sensitivity_e``: spectral norm of d(mu)/dx (e); ``frame_part_e``: spectral norm of
        ``dR/dx @ mu_frame`` (the rotation of the learned frame components; 0 for the lab frame),
        with ``mu_frame`` the kernel part of the dipole in the model's frame (analytic dR/dx).
    """
    positions = np.asarray(positions, dtype=float)
    jac = dipole_jacobian(model, positions, step=step) if jacobian is None else jacobian
    out = {"dipole_sensitivity_e": float(np.linalg.norm(jac, 2)), "frame_part_e": 0.0}
    if model.frame in ("eckart", "inertia"):
        frame_info = (eckart_frame_jacobian if model.frame == "eckart" else inertia_frame_jacobian)(
            positions, model.masses_, model.reference_)
        mu = model.predict(positions, forces=False)["dipole"]
        charge = model.charges_ @ molframe.centered(positions, model.masses_)
        mu_frame = (mu - charge) @ frame_info["frame"]
        out["frame_part_e"] = float(np.linalg.norm(frame_info["jacobian"] @ mu_frame, 2))
    return out
