import numpy as np
import pytest

from nxplugin.errors import GeometryError
from nxplugin.models import RPRModel
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


def test_forces_are_minus_energy_gradient(dce_data, dce_model):
    x = dce_data["positions"][270]
    f = dce_model.predict(x)["forces"]
    h = 1e-4
    num = np.zeros_like(x)
    for a in range(8):
        for k in range(3):
            dx = np.zeros_like(x); dx[a, k] = h
            num[a, k] = -(dce_model.predict(x + dx, forces=False)["energy"] -
                          dce_model.predict(x - dx, forces=False)["energy"]) / (2 * h)
    np.testing.assert_allclose(f, num, atol=1e-5 * np.abs(f).max())


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


def test_batched_prediction_equals_single(dce_data, dce_model):
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
    with pytest.raises(RuntimeError, match="not fitted"):
        RPRModel().predict(d["positions"][0])
