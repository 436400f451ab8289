"""Energy coefficients fitted to energies and forces together (the training points as basis centres).

Units: positions Angstrom; energies and forces enter in standardised units (eV / scale and
eV / Angstrom / scale), so the force weight ``rho`` is in Angstrom**2.

The model's energy stays ``E(x) = sum_j c_j kbar(x, t_j)`` with the symmetrised kernel
``kbar(x, t) = mean_s k(x[p_s], t)`` centred on the training descriptors, so prediction does not
change; only the coefficients differ. With ``K[a, j] = kbar(x_a, t_j)`` and ``G[a, :, j]`` its
Cartesian gradient at geometry ``a`` (3 * n_atoms rows per geometry), they minimise

    |K c - y|**2 + rho |G c + f|**2 + lam c.T K c

(``f`` the forces, ``-G c`` the predicted ones): the projected-process (sparse GP) fit with the
training points as inducing points, as Gaussian approximation potentials fit forces. One engine call
gives 3 * n_atoms force components beside one energy, so forces carry most of a label's information.
"""
import numpy as np

from nxplugin.model import descriptors, kernels

CHUNK = 64   # geometries per pass of the gradient design (arrays of CHUNK * n_images * n_train * n_pairs)


def _inverse(perms):
    inv = np.empty_like(perms)
    for s, perm in enumerate(perms):
        inv[s, perm] = np.arange(perm.size)
    return inv


def design(positions, reference_distances, train, perms, sigma):
    """Kernel values and their Cartesian gradients at ``positions`` for every training centre.

    Parameters
    ----------
    positions : ndarray of shape (n, n_atoms, 3), Angstrom
    reference_distances : ndarray of shape (n_pairs,), Angstrom
    train : ndarray of shape (n_train, n_pairs)
        Training descriptors minus 1 (the model's ``train_descriptors_``).
    perms : ndarray of int of shape (n_images, n_pairs)
        The model's ``pair_permutations_``.
    sigma : float
        Kernel width (descriptor units).

    Returns
    -------
    k : ndarray of shape (n, n_train)
        ``kbar(x_a, t_j)``.
    g : ndarray of shape (n, 3 * n_atoms, n_train)
        ``d kbar(x_a, t_j) / d R_a``, per Angstrom.
    """
    positions = np.asarray(positions, dtype=float)
    n, n_atoms = positions.shape[:2]
    inv = _inverse(perms)
    # kbar's descriptor gradient: -(1 / (S sigma^2)) sum_s k_asj (x_a - t_j[inv_s])
    train_images = train[:, inv]                                       # (n_train, S, n_pairs)
    k_out = np.empty((n, len(train)))
    g_out = np.empty((n, 3 * n_atoms, len(train)))
    for lo in range(0, n, CHUNK):
        pos = positions[lo:lo + CHUNK]
        d = descriptors.inverse_distances(pos, reference_distances)
        x = d - 1.0
        jac = descriptors.descriptor_jacobian(pos, d).reshape(len(pos), d.shape[1], 3 * n_atoms)
        d2 = kernels.invariant_squared_distances(x, train, perms)      # (m, S, n_train)
        k = kernels.gaussian(d2, sigma)
        w = k.sum(axis=1)                                              # (m, n_train)
        k_out[lo:lo + CHUNK] = w / len(perms)
        u = w[:, :, None] * x[:, None, :]                              # (m, n_train, n_pairs)
        for s in range(len(perms)):                                    # minus sum_s k_asj t_j[inv_s]
            u -= k[:, s, :, None] * train_images[None, :, s, :]
        grad = u @ jac                                                 # J_a^T per centre (batched BLAS)
        g_out[lo:lo + CHUNK] = np.swapaxes(grad, 1, 2) * (-1.0 / (len(perms) * sigma**2))
    return k_out, g_out


def solve(k_train, g, y, f, rhos, lams):
    """Coefficients for each force weight in ``rhos`` (Angstrom**2) and ridge strength in ``lams``.

    Parameters
    ----------
    k_train : ndarray of shape (n, n)
        Symmetric kernel matrix of the training centres with themselves (``K`` above).
    g : ndarray of shape (n, 3 * n_atoms, n)
        :func:`design`'s gradients at the training geometries.
    y : ndarray of shape (n,)
        Standardised energies minus their offset.
    f : ndarray of shape (n, n_atoms, 3)
        Standardised forces.
    rhos, lams : sequences of float

    Returns
    -------
    ndarray of shape (len(rhos), len(lams), n)

    Notes
    -----
    Solved in the kernel's eigenbasis (``K = V W V.T``, ``c = V W^-1/2 b``), where the problem is
    ridge regression on the features ``W^-1/2 V.T k(x)`` with the well-conditioned matrix
    ``W + rho B.T B + lam I``: the normal equations in ``c`` would square the kernel's condition number.
    With ``rho = 0`` this is exactly kernel ridge regression, ``(K + lam I)^-1 y``.
    """
    from scipy import linalg
    w, v = linalg.eigh(k_train, check_finite=False)
    keep = w > 1e-13 * w.max()
    p = v[:, keep] / np.sqrt(w[keep])
    b = g.reshape(-1, len(k_train)) @ p                             # gradients in feature space
    btb, btf = b.T @ b, b.T @ f.reshape(-1)
    energy_rhs = np.sqrt(w[keep]) * (v[:, keep].T @ y)
    out = np.empty((len(rhos), len(lams), len(k_train)))
    for r, rho in enumerate(rhos):
        a = rho * btb
        a.flat[:: len(a) + 1] += w[keep]
        s_vec, u = linalg.eigh(a, check_finite=False)
        urhs = u.T @ (energy_rhs - rho * btf)
        out[r] = (p @ (u @ (urhs[:, None] / (s_vec[:, None] + np.asarray(lams)[None, :])))).T
    return out


def search(positions, x, y, f, perms, reference_distances, sigmas, rhos, lams, rng, holdout=0.1):
    """Width, force weight and ridge with the lowest hold-out error of energies and forces together.

    Fits on a random ``1 - holdout`` of the geometries (also the centres) and scores the rest by
    ``mse(E) / var(E) + mse(F) / var(F)`` (standardised units).

    Parameters
    ----------
    positions : ndarray of shape (n, n_atoms, 3), Angstrom
    x : ndarray of shape (n, n_pairs)
        Descriptors minus 1.
    y, f : standardised energies (n,) and forces (n, n_atoms, 3)
    perms, reference_distances : the model's pair permutations and reference distances
    sigmas, rhos, lams : sequences of float
        Candidate widths, force weights (Angstrom**2) and ridge strengths.
    rng : numpy.random.Generator

    Returns
    -------
    dict with ``sigma``, ``force_weight``, ``lam``, ``holdout_energy_rmse_standardised``,
    ``holdout_forces_rmse_standardised`` and ``n_holdout``.
    """
    order = rng.permutation(len(x))
    n_hold = max(len(x) // int(round(1 / holdout)), 1)
    hold, rest = order[:n_hold], order[n_hold:]
    var_e, var_f = max(np.var(y[hold]), 1e-12), max(np.var(f[hold]), 1e-12)
    best = None
    for sigma in sigmas:
        k_rest, g_rest = design(positions[rest], reference_distances, x[rest], perms, sigma)
        k_hold, g_hold = design(positions[hold], reference_distances, x[rest], perms, sigma)
        g_hold = g_hold.reshape(-1, len(rest))
        coefs = solve(0.5 * (k_rest + k_rest.T), g_rest, y[rest], f[rest], rhos, lams)
        for rho, per_lam in zip(rhos, coefs):
            for lam, c in zip(lams, per_lam):
                mse_e = np.mean((k_hold @ c - y[hold]) ** 2)
                mse_f = np.mean((g_hold @ c + f[hold].reshape(-1)) ** 2)
                score = mse_e / var_e + mse_f / var_f
                if np.isfinite(score) and (best is None or score < best[0]):
                    best = (score, {"sigma": float(sigma), "force_weight": float(rho), "lam": float(lam),
                                    "holdout_energy_rmse_standardised": float(np.sqrt(mse_e)),
                                    "holdout_forces_rmse_standardised": float(np.sqrt(mse_f)),
                                    "n_holdout": int(len(hold))})
    return best[1]
