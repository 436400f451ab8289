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
            model.kernel = "numpy"
            want = model.predict(pos)
            model.kernel = "compiled"
            got = model.predict(pos)
            model.kernel = "auto"
            for key in want:
                scale = np.max(np.abs(want[key])) + 1.0
                np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-10 * scale, err_msg=key)


def test_unusable_numba_falls_back_to_numpy_with_a_warning(dce_data, dce_model, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "nxplugin.model.compiled", None)      # import fails, as a broken numba would
    monkeypatch.setattr(dce_model, "kernel", "auto")
    monkeypatch.delitem(dce_model.__dict__, "_evaluator", raising=False)
    with pytest.warns(UserWarning, match="numba is installed but cannot be used"):
        got = dce_model.predict(dce_data["positions"][0])
    assert dce_model.kernel_backend == "numpy"
    monkeypatch.setenv("NXPLUGIN_NUMBA", "0")
    monkeypatch.delitem(dce_model.__dict__, "_evaluator")
    np.testing.assert_array_equal(dce_model.predict(dce_data["positions"][0])["forces"], got["forces"])
    assert dce_model.kernel_backend == "numpy"


def test_pickled_model_leaves_derived_arrays_and_chooses_its_kernel_again(dce_data, dce_model, monkeypatch):
    import pickle
    monkeypatch.setattr(dce_model, "kernel", "compiled")
    dce_model.predict(dce_data["positions"][0])
    assert "_evaluator" in dce_model.__dict__
    monkeypatch.setattr(dce_model, "kernel", "auto")
    copy = pickle.loads(pickle.dumps(dce_model))
    assert "_evaluator" not in copy.__dict__ and copy.kernel == "auto"
    np.testing.assert_allclose(copy.predict(dce_data["positions"][0])["forces"],
                               dce_model.predict(dce_data["positions"][0])["forces"], rtol=0, atol=1e-12)
    monkeypatch.setattr(dce_model, "kernel", "numpy")          # an explicit choice travels
    assert pickle.loads(pickle.dumps(dce_model)).kernel_backend == "numpy"


def test_prediction_runs_blas_single_threaded_whatever_the_environment(dce_data, dce_model):
    from threadpoolctl import ThreadpoolController, threadpool_info

    from nxplugin.model import kernelsums
    seen = []
    original = kernelsums.KernelSums._sums

    def spy(self, images, grad):
        seen.append({lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
        return original(self, images, grad)

    controller = ThreadpoolController()
    with controller.limit(limits=2, user_api="blas"), pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernelsums.KernelSums, "_sums", spy)
        dce_model.__dict__.pop("_evaluator", None)
        dce_model.predict(dce_data["positions"][:3])
        after = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
        dce_model.blas_threads = None                          # the user's choice: leave the environment
        dce_model.predict(dce_data["positions"][:3])
        dce_model.blas_threads = 1
    assert seen[0] and set(seen[0].values()) == {1}           # inside the hot path: one thread
    assert set(after.values()) == {2}                          # restored outside it
    assert set(seen[1].values()) == {2}


@pytest.mark.parametrize("frame", ["eckart", "lab", "inertia"])
def test_one_geometry_compiled_path_equals_the_batched_one(dce_data, models, frame, monkeypatch):
    """A single geometry goes through compiled geometry + kernel + assembly calls (Eckart and lab
    frames, tensor outputs averaged over the symmetry images); the same geometry as a batch of one
    through the array code: equal to round-off."""
    for model, x in [(m, x) for m in models for x in (dce_data["positions"][260], dce_data["positions"][261] * 1.1)]:
        monkeypatch.setattr(model, "frame", frame)
        monkeypatch.setattr(model, "kernel", "compiled")
        one = model.predict(x)
        batch = {key: value[0] for key, value in model.predict(x[None]).items()}
        assert set(one) == set(batch) and {"energy", "forces", "dipole", "ood_score"} <= set(one)
        for key in batch:
            scale = np.max(np.abs(batch[key])) + 1.0
            np.testing.assert_allclose(one[key], batch[key], rtol=0, atol=1e-13 * scale, err_msg=key)
        without = model.predict(x, forces=False)
        assert "forces" not in without and without["energy"] == pytest.approx(one["energy"], abs=1e-13)
