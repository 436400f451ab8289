"""The compiled kernel sums (numba) against numpy: same predictions to round-off."""
import numpy as np
import pytest

from nxplugin.model.estimator import RPRModel

pytest.importorskip("numba")
from nxplugin.model import compiled as fastkernel  # noqa: E402  (needs numba)


def test_exp_neg_is_within_2_ulp_of_numpy():
    rng = np.random.default_rng(0)
    a = np.concatenate([[0.0, 1e-300, 1e-17, 0.5 * np.log(2), np.log(2), 1.0, 700.0],
                        rng.uniform(0, 1, 10_000), rng.uniform(0, 700, 10_000)])
    got, want = fastkernel.exp_neg(a), np.exp(-a)
    assert np.max(np.abs(got - want) / want) <= 2 * np.finfo(float).eps
    huge = fastkernel.exp_neg(np.array([701.0, 745.0, 1e6, 1e300]))       # clamped, never inf or NaN
    assert np.all((huge >= 0) & (huge < 1e-300))


@pytest.fixture(scope="module")
def models(dce_data, dce_model):
    """The shared model (energy, dipole; 4 symmetry images) and one with a polarizability, no
    symmetrisation and three different widths."""
    d = dce_data
    alpha = np.einsum("ni,nj->nij", d["dipoles"], d["dipoles"]) + np.eye(3) * d["energies"][:, None, None] * 1e-3
    plain = RPRModel(symmetrize=False, sigma={"energy": 0.8, "dipole": 0.5, "polarizability": 1.3}, lam=1e-7).fit(
        d["numbers"], d["positions"][:250], energies=d["energies"][:250], dipoles=d["dipoles"][:250],
        polarizabilities=alpha[:250], reference=d["reference"])
    return [dce_model, plain]


@pytest.mark.parametrize("block", [None, 7])
def test_compiled_predictions_equal_numpy(dce_data, models, block, monkeypatch):
    if block is not None:        # odd blocks: the last one is partial
        kernel_sums = fastkernel.kernel_sums
        monkeypatch.setattr(fastkernel, "kernel_sums", lambda *a, **k: kernel_sums(*a, **k, block=block))
    x = dce_data["positions"][250:]
    far = x[:3] * 1.4                                        # out of domain: large kernel exponents
    for model in models:
        assert model.pair_permutations_.shape[0] in (1, 4)
        for pos in (x[0], x, far):
            model.compiled = False
            want = model.predict(pos)
            model.compiled = True
            got = model.predict(pos)
            model.compiled = None
            for key in want:
                scale = np.max(np.abs(want[key])) + 1.0
                np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-10 * scale, err_msg=key)


def test_unusable_numba_falls_back_to_numpy_with_a_warning(dce_data, dce_model, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "nxplugin.model.compiled", None)      # import fails, as a broken numba would
    monkeypatch.setattr(dce_model, "compiled", None)
    with pytest.warns(UserWarning, match="numba is installed but cannot be used"):
        got = dce_model.predict(dce_data["positions"][0])
    assert dce_model.compiled is False
    monkeypatch.setenv("NXPLUGIN_NUMBA", "0")
    monkeypatch.setattr(dce_model, "compiled", None)
    np.testing.assert_array_equal(dce_model.predict(dce_data["positions"][0])["forces"], got["forces"])
    assert dce_model.compiled is False


def test_pickled_model_leaves_derived_arrays_and_chooses_its_kernel_again(dce_data, dce_model, monkeypatch):
    import pickle
    monkeypatch.setattr(dce_model, "compiled", True)
    dce_model.predict(dce_data["positions"][0])
    assert dce_model._cache
    copy = pickle.loads(pickle.dumps(dce_model))
    assert "_cache" not in copy.__dict__ and copy.compiled is None
    np.testing.assert_allclose(copy.predict(dce_data["positions"][0])["forces"],
                               dce_model.predict(dce_data["positions"][0])["forces"], rtol=0, atol=1e-12)
    monkeypatch.setattr(dce_model, "compiled", False)          # an explicit opt-out travels
    assert pickle.loads(pickle.dumps(dce_model)).compiled is False
