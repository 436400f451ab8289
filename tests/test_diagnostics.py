"""Jacobian diagnostics (descriptor, frames, dipole) and exact versus learned covariance."""
import numpy as np
import pytest
from ase.data import atomic_masses

from nxplugin.analysis import covariance, diagnostics
from nxplugin.model import descriptors, jacobians, molframe
from nxplugin.model.estimator import RPRModel
from nxplugin.reference.molecules import dce


def _central(function, x, step=1e-5):
    """Central differences of ``function`` (array-valued) over the flattened coordinates of ``x``."""
    out = []
    for k in range(x.size):
        plus, minus = x.copy().ravel(), x.copy().ravel()
        plus[k] += step
        minus[k] -= step
        out.append((function(plus.reshape(x.shape)) - function(minus.reshape(x.shape))) / (2 * step))
    return np.array(out)


@pytest.fixture
def generic():
    """A distorted gauche DCE in a shuffled atom order, with the matching masses and trans reference."""
    rng = np.random.default_rng(3)
    order = rng.permutation(8)
    atoms = dce("gauche")[order]
    x = atoms.positions + rng.normal(scale=0.05, size=(8, 3))
    masses = atomic_masses[atoms.numbers]
    reference = molframe.reference_coordinates(dce("trans").positions[order], masses)
    return x, masses, reference


def test_descriptor_jacobian_matches_finite_differences(generic):
    x, _, reference = generic
    distances = descriptors.pair_distances(reference)
    analytic = jacobians.descriptor_jacobian_matrix(x, distances)
    numeric = _central(lambda p: descriptors.inverse_distances(p, distances), x)
    assert analytic.shape == (24, 28)
    assert np.abs(analytic - numeric).max() < 1e-8 * np.abs(numeric).max()


@pytest.mark.parametrize("kind", ["eckart", "inertia"])
def test_frame_jacobians_match_finite_differences(generic, kind):
    x, masses, reference = generic
    function = jacobians.eckart_frame_jacobian if kind == "eckart" else jacobians.inertia_frame_jacobian
    analytic = function(x, masses, reference)
    numeric = _central(lambda p: molframe.compute_frames(p, masses, reference, kind)[0], x)
    assert np.allclose(analytic["frame"], molframe.compute_frames(x, masses, reference, kind)[0])
    assert np.abs(analytic["jacobian"] - numeric).max() < 1e-7 * np.abs(numeric).max()
    assert 0 < analytic["internal_sensitivity_rad_per_A"] <= analytic["sensitivity_rad_per_A"] + 1e-12


def test_rigid_rotation_turns_the_frame_at_the_rate_of_the_motion(generic):
    # an infinitesimal rotation about z by theta moves atom a by theta * z x x_a: the frame turns by theta
    x, masses, reference = generic
    out = jacobians.eckart_frame_jacobian(x, masses, reference)
    velocity = np.cross([0.0, 0.0, 1.0], x - x.mean(axis=0)).ravel()
    d_frame = np.einsum("n,nij->ij", velocity, out["jacobian"])
    angle = np.linalg.norm(out["frame"].T @ d_frame) / np.sqrt(2)
    assert angle == pytest.approx(1.0, rel=1e-9)


def test_descriptor_rank_is_3n_minus_6_at_generic_geometries(generic):
    x, _, reference = generic
    result = jacobians.descriptor_singular_values(x, descriptors.pair_distances(reference))
    assert result["rank"] == 3 * 8 - 6
    assert result["smallest"] > 1e-2
    from ase.build import molecule
    ethanol = molecule("CH3CH2OH")
    distances = descriptors.pair_distances(ethanol.positions)
    x = ethanol.positions + np.random.default_rng(0).normal(scale=0.02, size=ethanol.positions.shape)
    assert jacobians.descriptor_singular_values(x, distances)["rank"] == 3 * len(ethanol) - 6


def test_planar_geometry_is_a_symmetry_induced_singular_point():
    # a planar geometry is its own mirror image; the descriptor cannot tell out-of-plane displacements
    # from their mirror images, so it is even in them: N - 3 extra zero singular values
    start = dce("trans").positions
    distances = descriptors.pair_distances(start)
    flat = start.copy()
    flat[:, 0] = 0.0                               # squash onto the plane x = 0
    result = jacobians.descriptor_singular_values(flat, distances)
    assert result["rank"] == 3 * 8 - 6 - (8 - 3)
    smallest = []
    for t in (1e-2, 1e-3):                         # on the way there the 5 singular values vanish as t
        y = start.copy()
        y[:, 0] *= t
        smallest.append(np.linalg.svd(jacobians.descriptor_jacobian_matrix(y, distances), compute_uv=False)[17])
    assert smallest[0] / smallest[1] == pytest.approx(10, rel=0.05)


def test_dipole_sensitivity_of_model(dce_model, dce_data):
    x = dce_data["positions"][260]
    jac = jacobians.dipole_jacobian(dce_model, x)
    assert jac.shape == (24, 3)
    # covariance of the derivative: d mu(Qx) / d(Qx) = Q (d mu / dx) Q^T per atom
    q = covariance.random_orthogonal(1, seed=4)[0]
    turned = jacobians.dipole_jacobian(dce_model, x @ q.T).reshape(8, 3, 3)
    expected = np.einsum("ij,ajk,lk->ail", q, jac.reshape(8, 3, 3), q)
    assert np.abs(turned - expected).max() < 1e-6
    batch = jacobians.dipole_jacobian(dce_model, dce_data["positions"][260:263])
    assert np.allclose(batch[0], jac)
    row = diagnostics.diagnose_geometry(dce_model, x)
    assert row["descriptor_rank"] == 18
    assert 0 < row["dipole_frame_part_e"] < row["dipole_sensitivity_e"]


@pytest.fixture(scope="module")
def lab_model(dce_data):
    d = dce_data
    return RPRModel(frame="lab", lam=1e-8).fit(d["numbers"], d["positions"][:250], energies=d["energies"][:250],
                                               dipoles=d["dipoles"][:250], reference=d["reference"])


def _dipoles(model):
    return lambda x: model.predict(x, forces=False)["dipole"]


def test_covariance_error_rpr_round_off_direct_not(dce_model, lab_model, dce_data):
    from ase.units import Debye
    ops = covariance.random_orthogonal(8, seed=1)
    assert np.any(np.linalg.det(ops) < 0) and np.any(np.linalg.det(ops) > 0)
    frames = dce_data["positions"][250:270]
    rpr = covariance.covariance_error(_dipoles(dce_model), frames, ops) / Debye
    direct = covariance.covariance_error(_dipoles(lab_model), frames, ops) / Debye
    assert rpr < 1e-10
    assert direct > 1e-2
    print(f"covariance error: RPR {rpr:.2e} D, direct {direct:.3f} D")


def test_augmentation_lowers_the_direct_models_covariance_error(lab_model, dce_data):
    d = dce_data
    ops = covariance.random_orthogonal(8, seed=1)
    frames = d["positions"][250:270]
    errors = [covariance.covariance_error(_dipoles(lab_model), frames, ops)]
    for k in (4, 16):
        model = covariance.fit_augmented(lab_model, d["numbers"], d["positions"][:250], d["energies"][:250],
                                         d["dipoles"][:250], k, reference=d["reference"])
        errors.append(covariance.covariance_error(_dipoles(model), frames, ops))
    print("covariance error (e*Angstrom) K = 0, 4, 16:", errors)
    assert errors[1] < 0.7 * errors[0] and errors[2] < 0.7 * errors[1]


def test_augmented_fit_equals_training_on_explicit_copies(dce_data):
    d = dce_data
    n, k, seed = 40, 3, 5
    x, e, mu = d["positions"][:n], d["energies"][:n], d["dipoles"][:n]
    options = dict(sigma={"energy": 1.0, "dipole": 0.8}, lam={"energy": 1e-4, "dipole": 1e-4})
    lab = RPRModel(frame="lab", **options).fit(d["numbers"], x, energies=e, dipoles=mu, reference=d["reference"])
    cheap = covariance.fit_augmented(lab, d["numbers"], x, e, mu, k, seed=seed, reference=d["reference"])
    ops = covariance.random_orthogonal(n * k, seed=seed).reshape(n, k, 3, 3)
    copies = np.einsum("nkij,naj->nkai", ops, x).reshape(n * k, 8, 3)
    labels = np.einsum("nkij,nj->nki", ops, mu).reshape(n * k, 3)
    explicit = RPRModel(frame="lab", **options).fit(d["numbers"], copies, energies=np.repeat(e, k),
                                                     dipoles=labels, reference=d["reference"])
    assert np.allclose(explicit.charges_, cheap.charges_, atol=1e-10)
    test = d["positions"][250:260]
    assert np.abs(_dipoles(explicit)(test) - _dipoles(cheap)(test)).max() < 1e-7


def test_averaging_over_the_cube_group(lab_model, dce_data):
    # exactly covariant under O_h; with an invariant descriptor the learned lab-frame part averages
    # to zero (sum of the group's matrices vanishes), leaving the point-charge dipole
    frames = dce_data["positions"][250:255]
    averaged = covariance.RotationAveraged(lab_model)
    ops = covariance.cube_group()
    assert covariance.covariance_error(averaged.predict_dipole, frames, ops[[5, 30, 47]]) < 1e-12
    # the point charges the model uses: averaged over its symmetry relabellings (issue 12)
    charges = np.einsum("i,nij->nj", lab_model._symmetric("charges_"), molframe.centered(frames, lab_model.masses_))
    assert np.allclose(averaged.predict_dipole(frames), charges, atol=1e-12)


def _write_trajectory(path, positions, numbers, times=None):
    import ase.io
    from ase import Atoms
    frames = []
    for k, x in enumerate(positions):
        atoms = Atoms(numbers, positions=x)
        if times is not None:
            atoms.info["time"] = times[k]
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


def test_diagnose_cli(tmp_path, dce_model, dce_data):
    import csv
    import json

    from nxplugin.cli import main
    from nxplugin.model.modelfile import save_model

    model = tmp_path / "m.npz"
    save_model(dce_model, model)
    traj = tmp_path / "t.extxyz"
    _write_trajectory(traj, dce_data["positions"][:6], dce_data["numbers"], times=np.arange(6) * 5.0)
    assert main(["diagnose", str(model), str(traj), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "diagnostics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and set(diagnostics.COLUMNS) == set(rows[0])
    assert all(int(r["descriptor_rank"]) == 18 and r["conformer"] == "trans" for r in rows)
    assert float(rows[1]["time_fs"]) == 5.0
    assert (tmp_path / "out" / "diagnostics.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_frames"] == 6 and summary["fractions"]["descriptor_rank_below_3N-6"] == 0.0
    # wrong atom order: a named error and exit code 2, no output
    _write_trajectory(tmp_path / "bad.extxyz", dce_data["positions"][:2, ::-1], dce_data["numbers"][::-1])
    assert main(["diagnose", str(model), str(tmp_path / "bad.extxyz"), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad" / "diagnostics.csv").exists()


def test_symmetry_cli_small(tmp_path, dce_data):
    import csv

    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from nxplugin.cli import main

    d = dce_data
    frames = []
    for x, e, mu in zip(d["positions"], d["energies"], d["dipoles"]):
        atoms = Atoms(d["numbers"], positions=x)
        atoms.calc = SinglePointCalculator(atoms, energy=e, dipole=mu)
        frames.append(atoms)
    ase.io.write(tmp_path / "train.extxyz", frames[:200])
    ase.io.write(tmp_path / "test.extxyz", frames[200:])
    out = tmp_path / "sym"
    assert main(["symmetry", str(tmp_path / "train.extxyz"), "--test", str(tmp_path / "test.extxyz"),
                 "--out", str(out), "--n-train", "60", "--augment", "1", "4", "--n-covariance-frames", "10",
                 "--no-harmonic"]) == 0
    with open(out / "symmetry.csv") as handle:
        rows = {r["model"]: r for r in csv.DictReader(handle)}
    assert len(rows) == 6
    assert float(rows["RPR Eckart"]["covariance_error_D"]) < 1e-10
    assert float(rows["direct (lab frame)"]["covariance_error_D"]) > 1e-3
    assert (out / "symmetry.md").read_text().count("\n") == 8
    assert main(["symmetry", str(tmp_path / "train.extxyz"), "--test", str(tmp_path / "test.extxyz"),
                 "--out", str(out), "--augment", "0"]) == 2
