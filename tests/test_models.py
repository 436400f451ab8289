import numpy as np
import pytest

from nxplugin.errors import GeometryError, NotFittedError
from nxplugin.model.estimator import RPRModel
from test_frames import random_orthogonal


def test_predictions_are_covariant_under_1e4_rotations_reflections_translations(dce_data, dce_model):
    rng = np.random.default_rng(0)
    rng_alpha = rng.normal(size=(250, 3, 3))
    d = dce_data
    model = RPRModel().fit(d["numbers"], d["positions"][:250], energies=d["energies"][:250],
                           dipoles=d["dipoles"][:250], polarizabilities=rng_alpha + np.swapaxes(rng_alpha, 1, 2),
                           reference=d["reference"])
    x = d["positions"][260]
    q = random_orthogonal(rng, 10_000)
    moved = np.einsum("nij,aj->nai", q, x) + rng.normal(scale=10, size=(10_000, 1, 3))
    p0 = model.predict(x)
    p = model.predict(moved)
    def rel(a, b):
        return np.abs(a - b).max() / np.abs(b).max()
    assert rel(p["dipole"], q @ p0["dipole"]) < 1e-10
    assert rel(p["polarizability"], q @ p0["polarizability"] @ np.swapaxes(q, 1, 2)) < 1e-10
    assert rel(p["forces"], np.einsum("nij,aj->nai", q, p0["forces"])) < 1e-10
    assert rel(p["energy"], np.full(10_000, p0["energy"])) < 1e-10


def _numerical_forces(model, x, h):
    num = np.zeros_like(x)
    for a in range(len(x)):
        for k in range(3):
            dx = np.zeros_like(x); dx[a, k] = h
            num[a, k] = -(model.predict(x + dx, forces=False)["energy"] -
                          model.predict(x - dx, forces=False)["energy"]) / (2 * h)
    return num


def test_forces_are_minus_energy_gradient(dce_data, dce_model):
    d = dce_data
    # a well-conditioned model checks the analytic gradient (symmetrised kernel included) tightly
    model = RPRModel(sigma=0.5, lam=1e-6).fit(d["numbers"], d["positions"][:250], energies=d["energies"][:250],
                                             dipoles=d["dipoles"][:250], reference=d["reference"])
    assert len(model.pair_permutations_) == 4                       # trans-DCE is C2h
    x = d["positions"][270]
    f = model.predict(x)["forces"]
    np.testing.assert_allclose(f, _numerical_forces(model, x, 1e-4), atol=2e-6)
    f = dce_model.predict(x)["forces"]                             # searched hyperparameters
    np.testing.assert_allclose(f, _numerical_forces(dce_model, x, 1e-3), atol=1e-4 * np.abs(f).max())


def test_energy_is_invariant_to_symmetry_relabellings(dce_data, dce_model):
    """Relabelling atoms by a point-group operation of trans-DCE leaves the energy unchanged."""
    from nxplugin.model.descriptors import pair_indices
    x = dce_data["positions"][280]
    i, j = pair_indices(8)
    e0 = dce_model.predict(x)["energy"]
    for perm in dce_model.pair_permutations_[1:]:
        # recover the atom relabelling from the pair permutation
        atoms = np.empty(8, dtype=int)
        for a in range(8):
            pairs_a = {p for p in range(28) if a in (i[p], j[p])}
            images = [{i[perm[p]], j[perm[p]]} for p in pairs_a]
            atoms[a] = set.intersection(*images).pop()
        assert dce_model.predict(x[atoms])["energy"] == pytest.approx(e0, abs=1e-8)
    assert RPRModel(symmetrize=False).fit(dce_data["numbers"], dce_data["positions"][:30],
                                          energies=dce_data["energies"][:30],
                                          dipoles=dce_data["dipoles"][:30]).pair_permutations_.shape == (1, 28)


def test_model_learns_gfn2_data(dce_data, dce_model):
    """Held-out errors on 50 geometries: RPR dipole far better than the direct lab-frame model."""
    d = dce_data
    p = dce_model.predict(d["positions"][250:])
    direct = RPRModel(frame="lab").fit(d["numbers"], d["positions"][:250], energies=d["energies"][:250],
                                       dipoles=d["dipoles"][:250], reference=d["reference"])
    pd = direct.predict(d["positions"][250:])
    rmse = lambda a, b: np.sqrt(np.mean((a - b) ** 2))
    assert rmse(p["energy"], d["energies"][250:]) < 0.05                 # eV
    assert rmse(p["dipole"], d["dipoles"][250:]) * 5 < rmse(pd["dipole"], d["dipoles"][250:])
    assert np.all(p["ood_score"] < 3)
    far = d["positions"][250] * 1.3
    assert dce_model.predict(far)["ood_score"] > 1


@pytest.mark.parametrize("chunk", [None, 2000])
def test_batched_prediction_equals_single(dce_data, dce_model, chunk, monkeypatch):
    if chunk is not None:              # numpy sums over 2 molecules at a time (4 images x 250 points)
        monkeypatch.setattr("nxplugin.model.kernelsums.NUMPY_CHUNK", chunk)
        monkeypatch.setattr(dce_model, "kernel", "numpy")
    xs = dce_data["positions"][250:260]
    batch = dce_model.predict(xs)
    for n, x in enumerate(xs):
        single = dce_model.predict(x)
        for key in single:
            np.testing.assert_allclose(batch[key][n], single[key], rtol=1e-9, atol=1e-10)


def test_geometry_validation_names_atoms(dce_data, dce_model):
    numbers, x = dce_data["numbers"], dce_data["positions"][0]
    with pytest.raises(GeometryError, match="atom 2 is H, expected Cl"):
        dce_model.check_geometry(numbers[[0, 1, 4, 3, 2, 5, 6, 7]], x)
    with pytest.raises(GeometryError, match="model is for 8 atoms"):
        dce_model.check_geometry(numbers[:7], x[:7])
    bad = x.copy(); bad[5, 1] = np.nan
    with pytest.raises(GeometryError, match=r"atoms \[5\]"):
        dce_model.check_geometry(numbers, bad)
    bad = x.copy(); bad[6] = bad[7] + 0.1
    with pytest.raises(GeometryError, match="atoms 6 and 7 .* overlapping"):
        dce_model.check_geometry(numbers, bad)


def test_fit_validates_and_fixed_hyperparameters_skip_search(dce_data):
    d = dce_data
    with pytest.raises(ValueError, match="frame="):
        RPRModel(frame="moon").fit(d["numbers"], d["positions"][:20], energies=d["energies"][:20],
                                   dipoles=d["dipoles"][:20])
    e = d["energies"][:20].copy(); e[3] = np.nan
    with pytest.raises(ValueError, match=r"energy is not finite for geometries \[3\]"):
        RPRModel().fit(d["numbers"], d["positions"][:20], energies=e, dipoles=d["dipoles"][:20])
    m = RPRModel(sigma=1.0, lam={"energy": 1e-8, "dipole": 1e-6}).fit(
        d["numbers"], d["positions"][:20], energies=d["energies"][:20], dipoles=d["dipoles"][:20])
    assert m.hyperparameters_ == {"energy": {"sigma": 1.0, "lam": 1e-8}, "dipole": {"sigma": 1.0, "lam": 1e-6}}
    with pytest.raises(NotFittedError, match="not fitted"):
        RPRModel().predict(d["positions"][0])
