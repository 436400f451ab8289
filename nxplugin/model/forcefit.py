"""Energy coefficients fitted to energies and forces, centred on the training geometries and displaced copies.

Units: positions Angstrom; energies and forces enter in standardised units (eV / scale and
eV / Angstrom / scale), so the force weight ``rho`` is in Angstrom**2.

The model's energy stays ``E(x) = sum_j c_j kbar(x, t_j)`` with the symmetrised kernel
``kbar(x, t) = mean_s k(x[p_s], t)`` on centres ``t_j``, so prediction does not change; only the
coefficients (and centres) differ. With ``K[a, j] = kbar(x_a, t_j)`` and ``G[a, :, j]`` its
Cartesian gradient at geometry ``a`` (3 * n_atoms rows per geometry), they minimise

    |K c - y|**2 + rho |G c + f|**2 + lam c.T K_mm c

(``f`` the forces, ``-G c`` the predicted ones, ``K_mm`` the centres' kernel with themselves): the
projected-process (sparse GP) fit, as Gaussian approximation potentials fit forces. One engine call
gives 3 * n_atoms force components beside one energy, so forces carry most of a label's information,
and they pin down more coefficients than there are labels: besides the training geometries,
displaced copies of them (:func:`perturbed`) serve as centres. On DCE (540 random GFN2-xTB frames,
errors on 1000 independent 500 K frames) energy-only fitting gives 0.110 kcal/mol / 0.76
kcal/mol/Angstrom, this fit 0.036 / 0.24 (README, "Active learning").
"""
import numpy as np

from nxplugin.model import descriptors, kernels

CHUNK = 64   # geometries per pass of the gradient design (arrays of CHUNK * n_images * n_centres * n_pairs)


def _inverse(perms):
    inv = np.empty_like(perms)
    for s, perm in enumerate(perms):
        inv[s, perm] = np.arange(perm.size)
    return inv


def design(positions, reference_distances, centres, perms, sigma):
    """Kernel values and their Cartesian gradients at ``positions`` for every centre.

    Parameters
    ----------
    positions : ndarray of shape (n, n_atoms, 3), Angstrom
    reference_distances : ndarray of shape (n_pairs,), Angstrom
    centres : ndarray of shape (n_centres, n_pairs)
        Kernel centres: descriptors minus 1 (the model's ``train_descriptors_``).
    perms : ndarray of int of shape (n_images, n_pairs)
        The model's ``pair_permutations_``.
    sigma : float
        Kernel width (descriptor units).

    Returns
    -------
    k : ndarray of shape (n, n_centres)
        ``kbar(x_a, t_j)``.
    g : ndarray of shape (n, 3 * n_atoms, n_centres)
        ``d kbar(x_a, t_j) / d R_a``, per Angstrom.
    """
    positions = np.asarray(positions, dtype=float)
    n, n_atoms = positions.shape[:2]
    inv = _inverse(perms)
    # kbar's descriptor gradient: -(1 / (S sigma^2)) sum_s k_asj (x_a - t_j[inv_s])
    centre_images = centres[:, inv]                                       # (n_centres, S, n_pairs)
    k_out = np.empty((n, len(centres)))
    g_out = np.empty((n, 3 * n_atoms, len(centres)))
    for lo in range(0, n, CHUNK):
        pos = positions[lo:lo + CHUNK]
        d = descriptors.inverse_distances(pos, reference_distances)
        x = d - 1.0
        jac = descriptors.descriptor_jacobian(pos, d).reshape(len(pos), d.shape[1], 3 * n_atoms)
        d2 = kernels.invariant_squared_distances(x, centres, perms)      # (m, S, n_centres)
        k = kernels.gaussian(d2, sigma)
        w = k.sum(axis=1)                                              # (m, n_centres)
        k_out[lo:lo + CHUNK] = w / len(perms)
        u = w[:, :, None] * x[:, None, :]                              # (m, n_centres, n_pairs)
        for s in range(len(perms)):                                    # minus sum_s k_asj t_j[inv_s]
            u -= k[:, s, :, None] * centre_images[None, :, s, :]
        grad = u @ jac                                                 # J_a^T per centre (batched BLAS)
        g_out[lo:lo + CHUNK] = np.swapaxes(grad, 1, 2) * (-1.0 / (len(perms) * sigma**2))
    return k_out, g_out


def perturbed(positions, copies, rng, noise=0.05):
    """``copies`` displaced versions of every geometry (normal displacements of ``noise`` Angstrom per
    Cartesian component), shape (n, copies, n_atoms, 3): extra kernel centres for a force fit."""
    positions = np.asarray(positions, dtype=float)
    return positions[:, None] + rng.normal(scale=noise, size=(len(positions), copies) + positions.shape[1:])


def centre_kernel(centres, perms, sigma):
    """Symmetric kernel matrix ``kbar(t_i, t_j)`` of the centres (descriptors minus 1) with themselves."""
    k = kernels.gaussian(kernels.invariant_squared_distances(centres, centres, perms), sigma).mean(axis=1)
    return 0.5 * (k + k.T)


def solve(k_centres, k, g, y, f, rhos, lams):
    """Coefficients for each force weight in ``rhos`` (Angstrom**2) and ridge strength in ``lams``.

    Parameters
    ----------
    k_centres : ndarray of shape (m, m)
        :func:`centre_kernel` (``K_mm``).
    k : ndarray of shape (n, m)
        :func:`design`'s kernel values at the observed geometries (``K`` above).
    g : ndarray of shape (n, 3 * n_atoms, m)
        :func:`design`'s gradients there.
    y : ndarray of shape (n,)
        Standardised energies minus their offset.
    f : ndarray of shape (n, n_atoms, 3)
        Standardised forces.
    rhos, lams : sequences of float

    Returns
    -------
    ndarray of shape (len(rhos), len(lams), m)

    Notes
    -----
    The prior term is ``lam c.T K_mm c``. Solved in the centre kernel's eigenbasis (``K_mm = V W V.T``,
    ``c = V W^-1/2 b``), where the problem is ridge regression on the features ``W^-1/2 V.T k(x)``
    with the well-conditioned matrix ``A.T A + rho B.T B + lam I``: the normal equations in ``c``
    would square the kernel's condition number. When the centres are the observed geometries and
    ``rho = 0`` this is exactly kernel ridge regression, ``(K + lam I)^-1 y``.
    """
    from scipy import linalg
    w, v = linalg.eigh(k_centres, check_finite=False)
    keep = w > 1e-13 * w.max()
    p = v[:, keep] / np.sqrt(w[keep])
    a = k @ p                                                       # energies in feature space
    b = g.reshape(-1, k.shape[1]) @ p                               # gradients in feature space
    ata, btb, aty, btf = a.T @ a, b.T @ b, a.T @ y, b.T @ f.reshape(-1)
    out = np.empty((len(rhos), len(lams), k.shape[1]))
    for r, rho in enumerate(rhos):
        s_vec, u = linalg.eigh(ata + rho * btb, check_finite=False)
        urhs = u.T @ (aty - rho * btf)
        out[r] = (p @ (u @ (urhs[:, None] / (s_vec[:, None] + np.asarray(lams)[None, :])))).T
    return out


def search(positions, x, y, f, perms, reference_distances, sigmas, rhos, lams, rng, extra=None, holdout=0.1):
    """Width, force weight and ridge with the lowest hold-out error of energies and forces together.

    Fits on a random ``1 - holdout`` of the geometries (at least 10 or a third held out; they and
    their ``extra`` centres are the centres) and scores the rest by
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
    extra : ndarray of shape (n, copies, n_pairs), optional
        Descriptors (minus 1) of each geometry's extra centres (:func:`perturbed`).

    Returns
    -------
    dict with ``sigma``, ``force_weight``, ``lam``, ``holdout_energy_rmse_standardised``,
    ``holdout_forces_rmse_standardised`` and ``n_holdout``.
    """
    order = rng.permutation(len(x))
    n_hold = max(int(len(x) * holdout), min(len(x) // 3, 10))       # at least 10 (a third of a small set)
    hold, rest = order[:n_hold], order[n_hold:]
    centres = x[rest] if extra is None else np.vstack([x[rest], extra[rest].reshape(-1, x.shape[1])])
    var_e, var_f = max(np.var(y[hold]), 1e-12), max(np.var(f[hold]), 1e-12)
    best = None
    for sigma in sigmas:
        k_rest, g_rest = design(positions[rest], reference_distances, centres, perms, sigma)
        k_hold, g_hold = design(positions[hold], reference_distances, centres, perms, sigma)
        g_hold = g_hold.reshape(-1, len(centres))
        coefs = solve(centre_kernel(centres, perms, sigma), k_rest, g_rest, y[rest], f[rest], rhos, lams)
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


def fit(positions, x, y, f, perms, reference_distances, *, sigmas, rhos, lams, copies, rng):
    """Centres and energy coefficients for energies and forces, the hyperparameters searched
    (:func:`search`) unless each grid has one value.

    Parameters are those of :func:`search`; ``copies`` displaced copies of each geometry join the
    centres (:func:`perturbed`).

    Returns
    -------
    coef : ndarray of shape (n_centres,)
        Standardised coefficients.
    centres : ndarray of shape (n_centres, n_pairs)
        The geometries' descriptors (minus 1), then their copies'.
    used : dict
        ``sigma``, ``force_weight``, ``lam``, ``extra_centres`` and the search's diagnostics.
    """
    extra = descriptors.inverse_distances(perturbed(positions, copies, rng), reference_distances) - 1.0
    if len(sigmas) * len(rhos) * len(lams) > 1:
        used = search(positions, x, y, f, perms, reference_distances, sigmas, rhos, lams, rng, extra=extra)
    else:
        used = {"sigma": float(sigmas[0]), "force_weight": float(rhos[0]), "lam": float(lams[0])}
    centres = np.vstack([x, extra.reshape(-1, x.shape[1])])
    used["extra_centres"] = len(centres) - len(x)
    k, g = design(positions, reference_distances, centres, perms, used["sigma"])
    coef = solve(centre_kernel(centres, perms, used["sigma"]), k, g, y, f, [used["force_weight"]], [used["lam"]])
    return coef[0, 0], centres, used
