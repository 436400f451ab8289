"""Posterior variance of the energy model against a brute-force GP, and diverse batch selection."""
import os

import numpy as np
import pytest

from nxplugin.learn.selection import posterior_covariance, select_batch
from nxplugin.learn.uncertainty import energy_uncertainty, posterior
from nxplugin.model.estimator import RPRModel
from nxplugin.reference.datasets import read_dataset, subset

DATA = os.path.join(os.path.dirname(__file__), "..", "calculators", "dfe-gfn2xtb", "data", "train.extxyz.gz")


@pytest.fixture(scope="module")
def dfe():
    data = read_dataset(DATA)
    order = np.random.default_rng(3).permutation(len(data["positions"]))
    train, other = subset(data, order[:40]), subset(data, order[40:70])
    model = RPRModel(sigma=0.5, lam=1e-5).fit(train["numbers"], train["positions"], energies=train["energies"],
                                      dipoles=train["dipoles"])
    return model, train, other


def _brute_kernel(model, a, b):
    """mean over images s of exp(-|a[perm_s] - b|^2 / 2 sigma^2), one pair at a time."""
    sigma = model.hyperparameters_["energy"]["sigma"]
    out = np.zeros((len(a), len(b)))
    for i, xa in enumerate(a):
        for j, xb in enumerate(b):
            out[i, j] = np.mean([np.exp(-np.sum((xa[p] - xb) ** 2) / (2 * sigma**2))
                                 for p in model.pair_permutations_])
    return out


def test_posterior_variance_matches_brute_force(dfe):
    model, train, other = dfe
    from nxplugin.model import descriptors
    feats = lambda pos: descriptors.inverse_distances(pos, model.reference_distances_) - 1.0
    xt, xo = feats(train["positions"]), feats(other["positions"])
    lam = model.hyperparameters_["energy"]["lam"]
    a = np.linalg.inv(_brute_kernel(model, xt, xt) + lam * np.eye(len(xt)))
    kx = _brute_kernel(model, xo, xt)
    var = np.array([_brute_kernel(model, r[None], r[None])[0, 0] for r in xo]) - np.einsum("ij,jk,ik->i", kx, a, kx)
    y = train["energies"] - train["energies"].mean()
    amplitude2 = y @ a @ y / len(y)                                     # eV^2, from the labels themselves
    expected = np.sqrt(amplitude2 * var)
    got = energy_uncertainty(model, other["positions"])
    assert got.shape == (30,) and np.all(got > 0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert energy_uncertainty(model, other["positions"][0]) == pytest.approx(got[0])
    # the covariance's diagonal is the same variance; a training point is pinned down
    cov = posterior_covariance(model, other["positions"][:5])
    np.testing.assert_allclose(np.sqrt(amplitude2 * np.diag(cov)), expected[:5], rtol=1e-5, atol=1e-7)
    assert energy_uncertainty(model, train["positions"][:5]).max() < 0.2 * got.mean()


def test_posterior_is_not_saved_and_follows_refits(dfe, tmp_path):
    model, train, other = dfe
    energy_uncertainty(model, other["positions"][:2])
    first = posterior(model)
    from nxplugin.model.modelfile import load_model, save_model
    save_model(model, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        assert not any("posterior" in k for k in f.files)
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_allclose(energy_uncertainty(loaded, other["positions"]),
                               energy_uncertainty(model, other["positions"]), rtol=1e-8)
    refit = RPRModel(n_search=20).fit(train["numbers"], train["positions"][:20], energies=train["energies"][:20],
                                      dipoles=train["dipoles"][:20])
    assert posterior(refit) is not first


def test_selection_is_diverse(dfe):
    model, train, other = dfe
    # the candidate pool: 10 exact copies of the most uncertain geometry, plus the other frames
    sd = energy_uncertainty(model, other["positions"])
    worst = other["positions"][np.argmax(sd)]
    pool = np.concatenate([np.repeat(worst[None], 10, axis=0), other["positions"]])
    picks, values = select_batch(model, pool, 6)
    assert len(set(picks.tolist())) == 6                                  # no candidate twice
    assert sum(int(p) < 10 or int(p) == 10 + int(np.argmax(sd)) for p in picks) == 1   # one copy of the worst
    assert np.all(np.diff(values) <= 1e-12)                              # conditioning only lowers variance
    # spread: the picks are further apart than the plain top-6 by variance
    def min_gap(idx):
        x = pool[idx].reshape(len(idx), -1)
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return d[np.triu_indices(len(idx), 1)].min()
    top = np.argsort(-energy_uncertainty(model, pool))[:6]
    assert min_gap(top) == 0.0 and min_gap(picks) > 0.05
    with pytest.raises(ValueError, match="batch size"):
        select_batch(model, pool, len(pool) + 1)
    # the integrated criterion: distinct picks, at most one copy of the repeated geometry
    picks, _ = select_batch(model, pool, 6, criterion="integrated")
    assert len(set(picks.tolist())) == 6 and sum(int(p) < 10 for p in picks) <= 1 and min_gap(picks) > 0.05
    with pytest.raises(ValueError, match="criterion"):
        select_batch(model, pool, 2, criterion="largest")


def test_calculator_and_md_report_the_uncertainty(dfe, tmp_path):
    import csv

    from ase import Atoms

    from nxplugin.calculator import RPRCalculator
    from nxplugin.cli import main
    from nxplugin.model.modelfile import save_model
    model, train, other = dfe
    order = np.random.default_rng(1).permutation(8)                       # the user's atom order
    atoms = Atoms(numbers=train["numbers"][order], positions=other["positions"][4][order])
    atoms.calc = RPRCalculator(model, uncertainty=True)
    atoms.get_potential_energy()
    assert atoms.calc.results["energy_uncertainty"] == pytest.approx(
        energy_uncertainty(model, other["positions"][4]), rel=1e-10)
    plain = Atoms(numbers=train["numbers"], positions=other["positions"][4], calculator=RPRCalculator(model))
    plain.get_potential_energy()
    assert "energy_uncertainty" not in plain.calc.results
    save_model(model, tmp_path / "m.npz")
    out = tmp_path / "md"
    assert main(["md", "--model", str(tmp_path / "m.npz"), "--n-traj", "2", "--time", "0.01", "--interval", "5",
                 "--temperature", "200", "--equilibration", "0", "--out", str(out), "--uncertainty"]) == 0
    rows = list(csv.DictReader(open(out / "uncertainty.csv")))
    assert len(rows) == 2 * 5 and all(float(r["energy_uncertainty_eV"]) >= 0 for r in rows)
    # the CLI's comparison of the two error predictors, and its refusal without --start/--out
    import gzip
    import io
    import ase.io
    with gzip.open(DATA, "rt") as handle:
        frames = ase.io.read(io.StringIO(handle.read()), "100:160", format="extxyz")
    ase.io.write(tmp_path / "frames.extxyz", frames)
    assert main(["learn", "--evaluate-uncertainty", str(tmp_path / "m.npz"), str(tmp_path / "frames.extxyz")]) == 0
    assert main(["learn", "--out", str(tmp_path / "x")]) == 2
    first = ase_read(rows[0]["path"])
    assert float(rows[0]["energy_uncertainty_eV"]) == pytest.approx(
        energy_uncertainty(model, first.positions[model.atom_mapper.find(first.numbers, first.positions)]), rel=1e-5)


def ase_read(path):
    import ase.io
    return ase.io.read(path, 0)


def test_error_predictors_rank_errors_in_any_atom_order(dfe):
    from nxplugin.learn.uncertainty import error_predictors
    model, train, _ = dfe
    data = read_dataset(DATA)
    frames = subset(data, np.random.default_rng(3).permutation(len(data["positions"]))[40:240])
    result = error_predictors(model, frames)
    assert result["n"] == 200
    assert result["spearman_forces_uncertainty"] > 0.3 and result["spearman_energy_uncertainty"] > 0.2
    shuffled = dict(frames)
    order = np.random.default_rng(8).permutation(8)
    shuffled.update(numbers=frames["numbers"][order], positions=frames["positions"][:, order],
                    forces=frames["forces"][:, order])
    again = error_predictors(model, shuffled)
    for key, value in result.items():
        assert again[key] == pytest.approx(value, abs=1e-9), key


def test_explorer_keeps_only_the_molecule():
    from nxplugin.learn.explore import bond_cutoffs, sane
    from nxplugin.model import descriptors
    from nxplugin.reference.molecules import xcch2ch2y
    atoms = xcch2ch2y("F", "F", "trans")
    cutoffs = bond_cutoffs(atoms.numbers)
    bonded = descriptors.pair_distances(atoms.positions) < cutoffs
    h = int(np.flatnonzero(atoms.numbers == 1)[0])
    carbon = int(np.argmin(np.linalg.norm(atoms.positions[:2] - atoms.positions[h], axis=1)))
    stretched = atoms.positions.copy()
    stretched[h] += 0.8 * (stretched[h] - stretched[carbon])              # a C-H bond 1.8x its length
    crushed = atoms.positions.copy()
    crushed[h] = crushed[carbon] + 0.3 * (crushed[h] - crushed[carbon])   # 0.33 Angstrom from its carbon
    nan = atoms.positions.copy()
    nan[3, 1] = np.nan
    assert sane(np.stack([atoms.positions, stretched, crushed, nan]), cutoffs, bonded).tolist() == \
        [True, False, False, False]
