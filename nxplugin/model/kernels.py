"""Gaussian kernel and the linear algebra of kernel ridge regression, with a fast hyperparameter search.

The kernel between descriptors ``a`` and ``b`` is ``k(a, b) = exp(-|a - b|**2 / (2 sigma**2))``
(sigma is in descriptor units, dimensionless for inverse distances). Ridge regression solves
``(K + lam I) alpha = y``.

The search uses closed-form leave-one-out (LOO) errors: with ``K = V diag(w) V.T`` the LOO residual of
point ``i`` is ``alpha_i / [(K + lam I)^-1]_ii``, so one eigendecomposition per width gives the LOO
error of every regularisation strength and every output at once.
"""
import numpy as np


def squared_distances(a, b, b_sq=None, b_t=None):
    """Squared Euclidean distances between rows, shape (len(a), len(b)), clipped at zero.

    ``b_sq`` (row norms squared) and ``b_t`` (``b.T`` as a contiguous array) may be given when
    ``b`` is reused, as the training set is at every prediction.
    """
    a_sq = np.einsum("ij,ij->i", a, a)
    if b_sq is None:
        b_sq = np.einsum("ij,ij->i", b, b)
    d2 = a @ (b.T if b_t is None else b_t)
    d2 *= -2.0
    d2 += a_sq[:, None]
    d2 += b_sq[None, :]
    return np.maximum(d2, 0.0, out=d2)


def gaussian(d2, sigma):
    """Gaussian kernel from squared distances (a new array)."""
    return np.exp(d2 * (-0.5 / sigma**2))


def solve(kernel, targets, lam):
    """Coefficients ``(K + lam I)^-1 y`` by Cholesky; ``targets`` of shape (n,) or (n, m)."""
    from scipy import linalg     # imported here: prediction (the Newton-X step path) never needs it
    k = kernel.copy()
    k.flat[:: len(k) + 1] += lam
    try:
        return linalg.cho_solve(linalg.cho_factor(k, lower=True, check_finite=False), targets,
                                check_finite=False)
    except linalg.LinAlgError:
        return linalg.lstsq(k, targets, check_finite=False)[0]


def loo_errors(kernel, targets, lams):
    """Leave-one-out mean squared errors.

    Parameters
    ----------
    kernel : ndarray of shape (n, n)
    targets : ndarray of shape (n, m)
    lams : sequence of float
        Regularisation strengths.

    Returns
    -------
    ndarray of shape (len(lams), m): LOO mean squared error per strength and output column.
    """
    from scipy import linalg
    w, v = linalg.eigh(kernel, check_finite=False)
    w = np.maximum(w, 0.0)
    vty = v.T @ targets
    v2 = v**2
    out = np.empty((len(lams), targets.shape[1]))
    for n, lam in enumerate(lams):
        inv = 1.0 / (w + lam)
        alpha = v @ (inv[:, None] * vty)
        diag = v2 @ inv
        out[n] = np.mean((alpha / diag[:, None]) ** 2, axis=0)
    return out


def invariant_squared_distances(a, b, pair_permutations, b_sq=None, b_t=None):
    """Squared distances between the symmetry images of ``a`` and the rows of ``b``.

    Returns an array of shape (len(a), n_symmetries, len(b)); image 0 is ``a`` itself.
    """
    images = a[:, pair_permutations]                              # (n_a, n_sym, n_features)
    d2 = squared_distances(images.reshape(-1, a.shape[1]), b, b_sq, b_t)
    return d2.reshape(len(a), len(pair_permutations), len(b))


def search(d2, targets, groups, sigmas, lams, progress=None):
    """Pick the width and strength with the lowest LOO error for each group of output columns.

    Parameters
    ----------
    d2 : ndarray of shape (n, n_symmetries, n)
        :func:`invariant_squared_distances` of the points with themselves.
    targets : ndarray of shape (n, m)
        Standardised targets (columns of comparable scale within a group).
    groups : dict of str to (list of int, bool)
        Output columns judged together, e.g. ``{"dipole": ([1, 2, 3], False)}``, and whether that
        group uses the kernel averaged over symmetry images.
    sigmas, lams : sequence of float
    progress : callable or None
        Called with no argument after each width.

    Returns
    -------
    best : dict of str to (sigma, lam, rmse)
        Per group, the pair with the lowest LOO RMSE (``lams`` starts at a floor that keeps the
        coefficients small enough for round-off to stay far below the model error).
    """
    table = np.empty((len(sigmas), len(lams), targets.shape[1]))
    for s, sigma in enumerate(sigmas):
        for invariant in {inv for _, inv in groups.values()}:
            cols = [c for cols, inv in groups.values() if inv == invariant for c in cols]
            kernel = gaussian(d2, sigma).mean(axis=1) if invariant else gaussian(d2[:, 0], sigma)
            table[s][:, cols] = loo_errors(0.5 * (kernel + kernel.T), targets[:, cols], lams)
        if progress is not None:
            progress()
    best = {}
    for name, (cols, _) in groups.items():
        rmse = np.sqrt(table[:, :, cols].mean(axis=-1))
        s, lam = np.unravel_index(np.argmin(rmse), rmse.shape)
        best[name] = (float(sigmas[s]), float(lams[lam]), float(rmse[s, lam]))
    return best


def refine_width(x, y, pair_permutations, best, factors, rng):
    """Narrow a width found on a subset for the full training set (the subset's LOO favours wide kernels).

    Fits the symmetrised kernel on 90 % of the points ``x`` with ``best["sigma"]`` times each of
    ``factors`` (ridge ``best["lam"]``) and keeps the one with the lowest error on the other 10 %.

    Returns
    -------
    dict with ``sigma``, ``holdout_rmse_standardised`` and ``n_holdout``.
    """
    order = rng.permutation(len(x))
    hold, rest = order[: max(len(x) // 10, 1)], order[max(len(x) // 10, 1):]
    d2_fit = invariant_squared_distances(x[rest], x[rest], pair_permutations)
    d2_val = invariant_squared_distances(x[hold], x[rest], pair_permutations)
    errors = []
    for factor in factors:
        sigma = best["sigma"] * factor
        k = gaussian(d2_fit, sigma).mean(axis=1)
        alpha = solve(0.5 * (k + k.T), y[rest], best["lam"])
        errors.append(np.sqrt(np.mean((gaussian(d2_val, sigma).mean(axis=1) @ alpha - y[hold]) ** 2)))
    k = int(np.argmin(errors))
    return {"sigma": best["sigma"] * factors[k], "holdout_rmse_standardised": float(errors[k]),
            "n_holdout": int(len(hold))}
