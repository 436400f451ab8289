"""Diverse batches of the most uncertain geometries: greedy selection on the GP posterior covariance.

Units: positions Angstrom; variances in kernel units (dimensionless, see :mod:`nxplugin.learn.uncertainty`).

Picking the ``k`` candidates of largest variance would pick ``k`` near-copies of the one worst
region (consecutive MD frames are correlated). Instead each pick is treated as labelled before the
next one: with the posterior covariance ``S`` of the candidates given the training set,

    i = argmax_j S_jj,    S <- S - S[:, i] S[i, :] / (S_ii + lam)

which is the exact GP update for a new noisy observation at candidate ``i`` (it needs no label).
The variance of ``i`` and of everything close to it collapses, so the next pick lies elsewhere: the
batch is spread over the uncertain regions in proportion to how much each one is uncertain
(greedy maximum-variance / uncertainty sampling with batch conditioning). A candidate is never
picked twice.

``criterion="integrated"`` picks instead the candidate whose label would lower the summed variance
of all candidates most, ``sum_j S_ij**2 / (S_ii + lam)`` (Cohn's active learning criterion): the
candidates are samples of the model's own MD, so this favours uncertain geometries that the MD
visits often over rare outliers at the edge, which is what lowers the error on thermal MD frames.
"""
import numpy as np

from nxplugin.learn.uncertainty import posterior


def posterior_covariance(model, positions):
    """Posterior covariance of the energy GP between geometries, kernel units.

    Parameters
    ----------
    model : RPRModel
    positions : array-like of shape (m, n_atoms, 3), Angstrom, the model's atom order

    Returns
    -------
    ndarray of shape (m, m)
        ``k(X, X) - k_X^T (K + lam I)^-1 k_X`` with the symmetrised kernel.
    """
    post = posterior(model)
    x = post.descriptors(positions)
    v = post.whitened(x)
    prior = post.kernel(x, x)
    return 0.5 * (prior + prior.T) - v.T @ v


CRITERIA = ("variance", "integrated")


def select_batch(model, positions, size, *, criterion="variance", preselect=1000):
    """Indices of a diverse batch of the most uncertain geometries.

    Parameters
    ----------
    model : RPRModel
        The current (fitted) model.
    positions : array-like of shape (m, n_atoms, 3), Angstrom
        Candidate geometries in the model's atom order.
    size : int
        Batch size (at most ``m``).
    criterion : {"variance", "integrated"}, default="variance"
        Largest posterior variance, or largest reduction of the candidates' summed variance
        (module docstring).
    preselect : int, default=1000
        Only the ``preselect`` candidates of largest variance enter the greedy step (its cost is
        ``preselect**2`` per pick).

    Returns
    -------
    picks : ndarray of int of shape (size,)
        Distinct candidate indices, in the order picked.
    variances : ndarray of shape (size,)
        Each pick's variance (kernel units) at the moment it was picked, given the training set
        and the earlier picks (non-increasing).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"{criterion=} is not one of {CRITERIA}")
    positions = np.asarray(positions, dtype=float)
    m = len(positions)
    if int(size) != size or not 0 <= size <= m:
        raise ValueError(f"batch size={size!r} must be an integer between 0 and the {m} candidates")
    post = posterior(model)
    prior_var = post.variance(post.descriptors(positions))
    keep = max(int(preselect), int(size))
    pool = np.argsort(-prior_var, kind="stable")[:keep] if criterion == "variance" \
        else np.sort(np.random.default_rng(0).permutation(m)[:keep])   # a fair sample of the MD
    cov = posterior_covariance(model, positions[pool])
    lam = post.lam
    picks, values = [], []
    diag = np.diag(cov).copy()
    taken = np.zeros(len(pool), bool)
    for _ in range(int(size)):
        gain = diag if criterion == "variance" else np.einsum("ij,ij->j", cov, cov) / (np.maximum(diag, 0) + lam)
        scores = np.where(taken, -np.inf, gain)
        i = int(np.argmax(scores))
        picks.append(int(pool[i]))
        values.append(float(max(diag[i], 0.0)))
        taken[i] = True
        column = cov[:, i].copy()
        cov -= np.outer(column, column) / (column[i] + lam)
        diag = np.diag(cov).copy()
    return np.array(picks, dtype=int), np.array(values)
