"""The closed-form leave-one-out search (nxplugin.model.kernels) against brute-force refits."""
import numpy as np
import pytest

from nxplugin.model import kernels


@pytest.fixture
def problem():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 5))
    y = np.column_stack([np.sin(x @ rng.normal(size=5)), x[:, 0] * x[:, 1]]) + 0.05 * rng.normal(size=(40, 2))
    return x, y


def brute_force_loo(kernel, y, lam):
    """Refit without each point in turn (scipy's solver on the n-1 others) and predict it."""
    errors = np.empty_like(y)
    for i in range(len(y)):
        rest = np.delete(np.arange(len(y)), i)
        alpha = kernels.solve(kernel[np.ix_(rest, rest)], y[rest], lam)
        errors[i] = kernel[i, rest] @ alpha - y[i]
    return np.mean(errors**2, axis=0)


@pytest.mark.parametrize("sigma", [0.7, 2.0, 6.0])
def test_closed_form_loo_equals_brute_force_refits(problem, sigma):
    x, y = problem
    kernel = kernels.gaussian(kernels.squared_distances(x, x), sigma)
    lams = [1e-6, 1e-4, 1e-2, 1e-1, 1.0]
    closed = kernels.loo_errors(kernel, y, lams)
    brute = np.array([brute_force_loo(kernel, y, lam) for lam in lams])
    np.testing.assert_allclose(closed, brute, rtol=1e-6)


def test_search_picks_the_brute_force_best(problem):
    x, y = problem
    d2 = kernels.squared_distances(x, x)[:, None, :]           # one symmetry image
    sigmas, lams = [0.7, 2.0, 6.0], [1e-6, 1e-4, 1e-2, 1e-1, 1.0]
    best = kernels.search(d2, y, {"a": ([0], False), "b": ([1], False)}, sigmas, lams)
    for name, column in (("a", 0), ("b", 1)):
        scores = {(s, lam): brute_force_loo(kernels.gaussian(d2[:, 0], s), y[:, [column]], lam)[0]
                  for s in sigmas for lam in lams}
        s, lam = min(scores, key=scores.get)
        assert best[name][:2] == pytest.approx((s, lam))
        assert best[name][2] == pytest.approx(np.sqrt(scores[s, lam]), rel=1e-6)
