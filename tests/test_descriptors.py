import numpy as np

from nxplugin.model import descriptors
from conftest import TRANS_DCE


def test_descriptor_is_one_at_reference_and_invariant():
    ref = descriptors.pair_distances(TRANS_DCE)
    np.testing.assert_allclose(descriptors.inverse_distances(TRANS_DCE, ref), 1.0)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    moved = TRANS_DCE @ q.T + 3.0
    np.testing.assert_allclose(descriptors.inverse_distances(moved, ref), 1.0, atol=1e-13)
    assert descriptors.inverse_distances(TRANS_DCE, ref).shape == (28,)


def test_jacobian_matches_central_differences():
    rng = np.random.default_rng(1)
    ref = descriptors.pair_distances(TRANS_DCE)
    x = TRANS_DCE + rng.normal(scale=0.05, size=TRANS_DCE.shape)
    d = descriptors.inverse_distances(x, ref)
    jac = descriptors.descriptor_jacobian(x, d)
    h = 1e-6
    num = np.empty_like(jac)
    for a in range(8):
        for k in range(3):
            dx = np.zeros_like(x); dx[a, k] = h
            num[:, a, k] = (descriptors.inverse_distances(x + dx, ref) -
                            descriptors.inverse_distances(x - dx, ref)) / (2 * h)
    np.testing.assert_allclose(jac, num, atol=1e-8)
    g = rng.normal(size=28)
    np.testing.assert_allclose(descriptors.descriptor_gradient(x, d, g), np.einsum("p,pak->ak", g, jac), atol=1e-12)
