"""Energy coefficients fitted to energies and forces (nxplugin.model.forcefit) against references:
finite differences, kernel ridge regression, a brute-force least-squares solve, and held-out GFN2-xTB frames."""
import numpy as np
import pytest

from nxplugin.model import forcefit, kernels
from nxplugin.model.estimator import RPRModel
from nxplugin.model.modelfile import load_model, save_model


@pytest.fixture(scope="module")
def force_model(dce_data):
    d = dce_data
    return RPRModel().fit(d["numbers"], d["positions"][:150], energies=d["energies"][:150],
                          dipoles=d["dipoles"][:150], forces=d["forces"][:150], reference=d["reference"])


def _design(model, positions, sigma=None):
    sigma = model.hyperparameters_["energy"]["sigma"] if sigma is None else sigma
    return forcefit.design(positions, model.reference_distances_, model.train_descriptors_,
                           model.pair_permutations_, sigma)


def test_design_gradient_is_the_derivative_of_the_kernel_values(dce_data, dce_model):
    pos = dce_data["positions"][260:262]
    _, g = _design(dce_model, pos, sigma=1.3)
    h = 1e-5
    for atom, axis in [(0, 0), (2, 1), (7, 2)]:
        step = np.zeros_like(pos)
        step[:, atom, axis] = h
        numeric = (_design(dce_model, pos + step, 1.3)[0] - _design(dce_model, pos - step, 1.3)[0]) / (2 * h)
        np.testing.assert_allclose(g[:, 3 * atom + axis], numeric, atol=1e-8 * np.abs(g).max())


def test_design_reproduces_the_models_energy_and_forces(dce_data, force_model):
    pos = dce_data["positions"][260:270]
    k, g = _design(force_model, pos)
    pred = force_model.predict(pos)
    coef = force_model.coef_[:, 0]
    np.testing.assert_allclose(k @ coef + force_model.offset_[0], pred["energy"], atol=1e-8)
    np.testing.assert_allclose(-(g @ coef).reshape(pos.shape), pred["forces"], atol=1e-8)


@pytest.fixture
def toy(dce_data, dce_model):
    from nxplugin.model import descriptors
    pos = dce_data["positions"][:30]
    centres = descriptors.inverse_distances(pos, dce_model.reference_distances_) - 1.0
    k, g = forcefit.design(pos, dce_model.reference_distances_, centres, dce_model.pair_permutations_, 2.0)
    rng = np.random.default_rng(0)
    return 0.5 * (k + k.T), g, rng.normal(size=30), rng.normal(size=(30, 8, 3))


def test_without_force_weight_it_is_kernel_ridge_regression(toy):
    k, g, y, f = toy
    for lam in (1e-6, 1e-3):
        np.testing.assert_allclose(forcefit.solve(k, k, g, y, f, [0.0], [lam])[0, 0], kernels.solve(k, y, lam),
                                   rtol=1e-6, atol=1e-8 * np.abs(kernels.solve(k, y, lam)).max())


def test_solve_minimises_the_objective_with_extra_centres(dce_data, dce_model):
    from nxplugin.model import descriptors
    pos = dce_data["positions"][:20]
    extra = forcefit.perturbed(pos[:10], 2, np.random.default_rng(1)).reshape(-1, 8, 3)
    centres = descriptors.inverse_distances(np.vstack([pos, extra]), dce_model.reference_distances_) - 1.0
    perms = dce_model.pair_permutations_
    k, g = forcefit.design(pos, dce_model.reference_distances_, centres, perms, 2.0)
    k_mm = forcefit.centre_kernel(centres, perms, 2.0)
    rng = np.random.default_rng(0)
    y, f = rng.normal(size=20), rng.normal(size=(20, 8, 3))
    rho, lam = 0.3, 1e-3
    c = forcefit.solve(k_mm, k, g, y, f, [0.01, rho], [0.1, lam])[1, 1]
    # brute force: least squares on the stacked residuals, the prior term as sqrt(lam) R c with K_mm = R.T R
    w, v = np.linalg.eigh(k_mm)
    root = (v * np.sqrt(np.maximum(w, 0))) @ v.T
    gf = g.reshape(-1, len(centres))
    design = np.vstack([k, np.sqrt(rho) * gf, np.sqrt(lam) * root])
    target = np.concatenate([y, -np.sqrt(rho) * f.reshape(-1), np.zeros(len(centres))])
    brute = np.linalg.lstsq(design, target, rcond=None)[0]

    def objective(c):
        return np.sum((k @ c - y) ** 2) + rho * np.sum((gf @ c + f.reshape(-1)) ** 2) + lam * c @ k_mm @ c
    assert objective(c) <= objective(brute) * (1 + 1e-6)
    np.testing.assert_allclose(design @ c, design @ brute, atol=1e-5 * np.abs(target).max())


def test_forces_in_the_fit_lower_the_held_out_force_error(dce_data, force_model):
    d = dce_data
    plain = RPRModel().fit(d["numbers"], d["positions"][:150], energies=d["energies"][:150],
                           dipoles=d["dipoles"][:150], reference=d["reference"])
    test = slice(200, 300)

    def rmse(model):
        p = model.predict(d["positions"][test])
        return (np.sqrt(np.mean((p["energy"] - d["energies"][test]) ** 2)),
                np.sqrt(np.mean((p["forces"] - d["forces"][test]) ** 2)))
    (e_plain, f_plain), (e_forces, f_forces) = rmse(plain), rmse(force_model)
    assert f_forces < 0.7 * f_plain, (f_forces, f_plain)
    assert e_forces < 1.2 * e_plain, (e_forces, e_plain)
    h = force_model.hyperparameters_["energy"]
    assert h["force_weight"] > 0 and h["n_holdout"] == 15 and h["extra_centres"] == 150
    assert force_model.train_descriptors_.shape == force_model.coef_.shape[:1] + (28,) == (300, 28)
    assert not force_model.coef_[150:, 1:].any() and force_model.n_train == 150


def test_force_fitted_model_keeps_its_predictions_through_a_file(tmp_path, dce_data, force_model):
    save_model(force_model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    pos = dce_data["positions"][250:260]
    for key, value in force_model.predict(pos).items():
        assert np.array_equal(value, loaded.predict(pos)[key]), key
    assert loaded.hyperparameters_["energy"]["force_weight"] == force_model.hyperparameters_["energy"]["force_weight"]


def test_forces_are_checked(dce_data):
    d = dce_data
    forces = d["forces"][:20].copy()
    forces[3, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"forces is not finite for geometries \[3\]"):
        RPRModel().fit(d["numbers"], d["positions"][:20], energies=d["energies"][:20], dipoles=d["dipoles"][:20],
                       forces=forces)
    many = np.repeat(d["positions"][:1], 2001, axis=0)
    with pytest.raises(ValueError, match="at most 2000 frames"):
        RPRModel().fit(d["numbers"], many, energies=np.zeros(2001), dipoles=np.zeros((2001, 3)),
                       forces=np.zeros_like(many))
