"""Gaussian kernel and the linear algebra of kernel ridge regression, with a fast hyperparameter search.

The kernel between descriptors ``a`` and ``b`` is ``k(a, b) = exp(-|a - b|**2 / (2 sigma**2))``
(sigma is in descriptor units, dimensionless for inverse distances). Ridge regression solves
``(K + lam I) alpha = y``.

The search uses closed-form leave-one-out (LOO) errors: with ``K = V diag(w) V.T`` the LOO residual of
point ``i`` is ``alpha_i / [(K + lam I)^-1]_ii``, so one eigendecomposition per width gives the LOO
error of every regularisation strength and every output at once.
"""
import numpy as np
from scipy import linalg


def squared_distances(a, b, b_sq=None):
    """Squared Euclidean distances between rows, shape (len(a), len(b)), clipped at zero."""
    a_sq = np.einsum("ij,ij->i", a, a)
    if b_sq is None:
        b_sq = np.einsum("ij,ij->i", b, b)
    d2 = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0, out=d2)


def gaussian(d2, sigma):
    """Gaussian kernel from squared distances (a new array)."""
    return np.exp(d2 * (-0.5 / sigma**2))


def solve(kernel, targets, lam):
    """Coefficients ``(K + lam I)^-1 y`` by Cholesky; ``targets`` of shape (n,) or (n, m)."""
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


def search(descriptors, targets, groups, sigmas, lams, progress=None):
    """Pick the width and strength with the lowest LOO error for each group of output columns.

    Parameters
    ----------
    descriptors : ndarray of shape (n, n_features)
    targets : ndarray of shape (n, m)
        Standardised targets (columns of comparable scale within a group).
    groups : dict of str to list of int
        Output columns judged together, e.g. ``{"dipole": [1, 2, 3]}``.
    sigmas, lams : sequence of float
    progress : callable or None
        Called with no argument after each width.

    Returns
    -------
    best : dict of str to (sigma, lam, rmse)
    table : ndarray of shape (len(sigmas), len(lams), m)
        LOO mean squared errors.
    """
    d2 = squared_distances(descriptors, descriptors)
    table = np.empty((len(sigmas), len(lams), targets.shape[1]))
    for s, sigma in enumerate(sigmas):
        table[s] = loo_errors(gaussian(d2, sigma), targets, lams)
        if progress is not None:
            progress()
    best = {}
    for name, cols in groups.items():
        score = table[:, :, cols].mean(axis=-1)
        s, lam = np.unravel_index(np.argmin(score), score.shape)
        best[name] = (float(sigmas[s]), float(lams[lam]), float(np.sqrt(score[s, lam])))
    return best, table
