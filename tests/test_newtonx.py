"""Newton-X CS files: readers, writers, the reference trajectory, and the step program in an emulated NX loop."""
import os
import warnings

import numpy as np
import pytest
from ase import Atoms, units

from nxplugin.newtonx import interface as newtonx
from nxplugin.newtonx import files as newtonx_io
from nxplugin.errors import DataFileError
from nxplugin.newtonx.interface import (read_control_d, read_control_dyn, read_dyn_out, read_dyn_xyz, read_geom,
                              read_trajectory, read_veloc, write_control_d, write_control_dyn, write_geom,
                              write_trajectory, write_veloc)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, os.pardir, "shared", "newtonx-samples", "cs-2.2-bagel-traj1")


def test_constants_equal_ase_units():
    assert newtonx_io.BOHR == units.Bohr
    assert newtonx_io.HARTREE == units.Hartree


def test_geom_veloc_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    positions = rng.normal(size=(3, 3))
    write_geom(tmp_path / "geom", ["O", "H", "H"], positions, [15.999, 1.008, 1.008])
    symbols, numbers, read_positions, masses = read_geom(tmp_path / "geom", nat=3)
    assert symbols == ["O", "H", "H"] and list(numbers) == [8, 1, 1]
    np.testing.assert_allclose(read_positions, positions, atol=5e-9)
    np.testing.assert_allclose(masses, [15.999, 1.008, 1.008])
    velocities = rng.normal(scale=1e-3, size=(3, 3))
    write_veloc(tmp_path / "veloc", velocities)
    np.testing.assert_allclose(read_veloc(tmp_path / "veloc", nat=3), velocities, atol=5e-10)


def test_geom_line_matches_newton_x_layout(tmp_path):
    write_geom(tmp_path / "geom", ["C"], [[0.64511543, 1.22774201, -2.17075632]], [12.0])
    assert (tmp_path / "geom").read_text() == " C     6.0    0.64511543    1.22774201   -2.17075632   12.00000000\n"


@pytest.mark.parametrize("text, match", [
    (" O  8.0 0 0 0 15.999\n H 1.0 0 0 1.8 1.008\n", "2 atoms, but control.d says nat=3"),
    (" O  8.0 0 0 nan 15.999\n H 1.0 0 0 1.8 1.008\n H 1.0 0 1.8 0 1.008\n", r"geom:1: non-finite"),
    (" O  8.0 0 0 0 15.999\n Qq 1.0 0 0 1.8 1.008\n H 1.0 0 1.8 0 1.008\n", r"geom:2: unknown element 'Qq'"),
    (" O  8.0 0 0 0 15.999\n H 1.0 0 0 1.8\n H 1.0 0 1.8 0 1.008\n", r"geom:2: expected"),
])
def test_bad_geom_names_file_and_line(tmp_path, text, match):
    (tmp_path / "geom").write_text(text)
    with pytest.raises(DataFileError, match=match):
        read_geom(tmp_path / "geom", nat=3)


def test_control_files(tmp_path):
    params = {"nat": 3, "nstat": 1, "nstatdyn": 1, "dt": 0.5, "tmax": 100.0, "prog": 0.0, "thres": 0}
    write_control_dyn(tmp_path / "control.dyn", params)
    assert read_control_dyn(tmp_path / "control.dyn") == params
    control = dict(zip(newtonx_io.CONTROL_D_FIELDS, [3, 7, 1, 1, 0, 1, 0.5, 3.5, 100.0, 0, 200, 0, 0.0,
                                                     1, 0.0, 0.0, 1, 0.5, 0.5]))
    write_control_d(tmp_path / "control.d", control)
    assert read_control_d(tmp_path / "control.d") == control
    (tmp_path / "bad.d").write_text("3,7,1\n")
    with pytest.raises(DataFileError, match=r"bad.d:1: 3 fields, expected 19"):
        read_control_d(tmp_path / "bad.d")
    with pytest.raises(DataFileError, match=r"missing.d: no such file"):
        read_control_d(tmp_path / "missing.d")


def test_control_dyn_fortran_values(tmp_path):
    (tmp_path / "control.dyn").write_text("&INPUT\r\n nat = 2, nstat=3\r\n dt = 5.0D-01 ! fs\r\n /\r\n")
    assert read_control_dyn(tmp_path / "control.dyn") == {"nat": 2, "nstat": 3, "dt": 0.5}


# ---------------------------------------------------------------- reference trajectory (Newton-X CS 2.2)
@pytest.fixture(scope="module")
def sample_images():
    if not os.path.isdir(SAMPLE):
        pytest.skip(f"Newton-X sample not found at {SAMPLE}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_trajectory(SAMPLE)


def test_sample_trajectory_times_and_restart(sample_images):
    times = np.array([a.info["time"] for a in sample_images])
    assert len(sample_images) == 801
    np.testing.assert_allclose(times, np.arange(801) * 0.5)
    steps = [r["step"] for r in read_dyn_out(os.path.join(SAMPLE, "RESULTS", "dyn.out"))]
    assert steps.count(1) == 2 and steps[401] == 1  # STEP restarts at 200 fs; TIME does not


def test_sample_trajectory_matches_dyn_xyz_and_energies(sample_images):
    frames = read_dyn_xyz(os.path.join(SAMPLE, "RESULTS", "dyn.xyz"))
    assert [f[0] for f in frames] == [a.info["time"] for a in sample_images]
    for atoms, (_, symbols, positions) in zip(sample_images, frames):
        assert atoms.get_chemical_symbols() == symbols
        np.testing.assert_allclose(atoms.positions, positions, atol=2e-8)
    first = sample_images[0]
    assert first.info["state"] == 2 and sample_images[-1].info["state"] == 1
    # % line at 0 fs: Etot -232.354035, Ekin 0.051971, E2 -232.406006 Hartree
    assert first.info["etot"] == pytest.approx(-232.354035 * units.Hartree)
    assert first.get_potential_energy() == pytest.approx(-232.406006 * units.Hartree)
    assert first.info["etot"] - first.info["ekin"] == pytest.approx(first.get_potential_energy(), abs=2e-5)
    np.testing.assert_allclose(first.get_masses()[[0, 6]], [12.0, 1.00782504])
    ekin = 0.5 * np.sum(first.get_masses()[:, None] * first.get_velocities() ** 2)
    assert ekin == pytest.approx(0.051971 * units.Hartree, rel=1e-3)


# ---------------------------------------------------------------- fixtures in our own writer's layouts
def _images(times, *, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    images = []
    for time in times:
        atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]] + rng.normal(scale=0.02, size=(3, 3)))
        atoms.set_velocities(rng.normal(scale=0.01, size=(3, 3)))
        states = np.array([-2070.0, -2065.0]) + rng.normal(size=2) + shift
        atoms.info.update(time=time, state=1, etot=states[0] + 0.3, ekin=0.3, state_energies=states)
        from ase.calculators.singlepoint import SinglePointCalculator
        atoms.calc = SinglePointCalculator(atoms, energy=states[0], dipole=rng.normal(size=3))
        images.append(atoms)
    return images


@pytest.mark.parametrize("layout", ["2.2", "2.6"])
def test_fixture_round_trip(tmp_path, layout):
    images = _images([0.0, 0.5, 1.0])
    write_trajectory(tmp_path / "RESULTS", images, layout=layout)
    assert (b"\r\n" in (tmp_path / "RESULTS" / "dyn.out").read_bytes()) == (layout == "2.2")
    assert ("New acceleration" in (tmp_path / "RESULTS" / "dyn.out").read_text()) == (layout == "2.6")
    read = read_trajectory(tmp_path)
    assert [a.info["time"] for a in read] == [0.0, 0.5, 1.0]
    for new, old in zip(read, images):
        np.testing.assert_allclose(new.positions, old.positions, atol=1e-7)
        np.testing.assert_allclose(new.get_velocities(), old.get_velocities(), atol=1.2e-6)  # 8 decimals in bohr/au time
        np.testing.assert_allclose(new.info["state_energies"], old.info["state_energies"], atol=2e-5)  # 6 decimals in Hartree (2.2)
        np.testing.assert_allclose(new.get_dipole_moment(), old.get_dipole_moment(), rtol=1e-10)
        assert new.get_potential_energy() == pytest.approx(old.get_potential_energy(), abs=2e-5)


def test_restart_keeps_each_time_once_later_wins(tmp_path):
    write_trajectory(tmp_path / "a", _images([0.0, 0.5, 1.0, 1.5], seed=1))
    write_trajectory(tmp_path / "b", _images([1.0, 1.5, 2.0], seed=2, shift=100.0))
    results = tmp_path / "traj" / "RESULTS"
    results.mkdir(parents=True)
    (results / "dyn.out").write_text((tmp_path / "a" / "dyn.out").read_text() + (tmp_path / "b" / "dyn.out").read_text())
    images = read_trajectory(results)
    assert [a.info["time"] for a in images] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert images[2].info["state_energies"][0] > -2000  # from the restarted run


def test_truncated_and_garbled_dyn_out_warn_with_file_and_line(tmp_path):
    write_trajectory(tmp_path / "RESULTS", _images([0.0, 0.5, 1.0, 1.5]))
    path = tmp_path / "RESULTS" / "dyn.out"
    lines = path.read_text().splitlines()
    percent = [i for i, line in enumerate(lines) if line.startswith("%")]
    lines[percent[1]] = "%       0.50   -2069.9****"
    path.write_text("\n".join(lines[: percent[3] - 3]) + "\n")
    with pytest.warns(UserWarning) as record:
        images = read_trajectory(tmp_path)
    assert [a.info["time"] for a in images] == [0.0, 1.0]
    messages = [str(w.message) for w in record]
    assert any(f"{path}:{percent[1] + 1}: garbled energy line" in m for m in messages)
    assert any("truncated" in m and str(path) in m for m in messages)


def test_unreadable_results_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataFileError, match="not a Newton-X RESULTS folder"):
        read_trajectory(tmp_path)
    (tmp_path / "dyn.out").write_text("garbage\n")
    with pytest.raises(DataFileError, match=r"dyn.out: no complete"):
        read_trajectory(tmp_path)


def test_dyn_xyz_and_en_dat_without_dyn_out(tmp_path):
    images = _images([0.0, 0.5])
    write_trajectory(tmp_path, images, layout="2.2")
    os.remove(tmp_path / "dyn.out")
    read = read_trajectory(tmp_path)
    assert len(read) == 2 and read[1].info["time"] == 0.5
    np.testing.assert_allclose(read[1].positions, images[1].positions, atol=1e-8)
    assert read[1].get_potential_energy() == pytest.approx(images[1].get_potential_energy(), abs=1e-4)


def test_newtonx_module_imports_no_ase():
    import subprocess
    import sys
    code = "import sys, nxplugin.newtonx.interface, nxplugin.commands.newtonx; print('ase' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    assert newtonx.SIDE_FILE == "nxplugin-dipoles.dat"


# ---------------------------------------------------------------- step program in an emulated Newton-X loop
WATER = np.array([[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])


def make_water_model(path, *, n=40, seed=0):
    """A small RPR model of water (fixed hyperparameters, fast to fit), saved to ``path``."""
    from nxplugin.model.modelfile import save_model
    from nxplugin.model.estimator import RPRModel

    rng = np.random.default_rng(seed)
    positions = WATER + rng.normal(scale=0.04, size=(n, 3, 3))
    bonds = np.linalg.norm(positions[:, 1:] - positions[:, :1], axis=2)
    energies = 20.0 * ((bonds - 0.9572) ** 2).sum(axis=1)          # eV
    charges = np.array([-0.8, 0.4, 0.4])
    dipoles = np.einsum("i,nij->nj", charges, positions)             # e*Angstrom
    model = RPRModel(sigma=1.0, lam=1e-6).fit([8, 1, 1], positions, energies=energies, dipoles=dipoles,
                                                reference=WATER)
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def water_model_path(tmp_path_factory):
    return str(make_water_model(tmp_path_factory.mktemp("model") / "water.npz"))


def emulate_newtonx(model_path, trajectory, positions_bohr, velocities_au, masses_amu, *, dt_fs, n_steps,
                    cli_steps=()):
    """Newton-X CS's step loop: per step a fresh TEMP/ with geom and control.d, then the interface.

    Velocity Verlet in atomic units as Newton-X does it: a = -g/M with M in electron masses,
    x += v dt + a dt**2/2, then v += (a + a_new) dt/2. Returns positions (n_steps + 1, nat, 3) in bohr
    and the energies read back from epot (Hartree).
    """
    import shutil
    import subprocess
    import sys

    from nxplugin.model.modelfile import load_model

    model = load_model(model_path)
    masses = np.asarray(masses_amu) * (units._amu / units._me)
    dt = dt_fs * units.fs / units.AUT
    temp = os.path.join(trajectory, "TEMP")
    nat = len(masses)

    def interface(istep, x):
        shutil.rmtree(temp, ignore_errors=True)
        os.makedirs(temp)
        # full precision here: real Newton-X rounds geom to 1e-8 bohr, which a 1e-8 Angstrom comparison can't take
        write_geom(os.path.join(temp, "geom"), ["O", "H", "H"], x, masses_amu, decimals=16)
        control = dict(zip(newtonx_io.CONTROL_D_FIELDS, [nat, istep, 1, 1, 0, 1, dt_fs, istep * dt_fs,
                                                         n_steps * dt_fs, 0, 200, 0, 0.0, 1, 0.0, 0.0, 1, 0.5, 0.5]))
        write_control_d(os.path.join(temp, "control.d"), control)
        for name in ("which_run_is_that", "sh.inp"):
            open(os.path.join(temp, name), "w").close()
        if istep in cli_steps:
            done = subprocess.run([sys.executable, "-m", "nxplugin.cli", "newtonx", "step", "--model", model_path],
                                  cwd=temp, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        else:
            newtonx.run_step(model, temp)
        energy = newtonx_io.read_numbers(os.path.join(temp, "epot"))[0, 0]
        gradient = newtonx_io.read_numbers(os.path.join(temp, "grad"), columns=3)
        np.testing.assert_array_equal(newtonx_io.read_numbers(os.path.join(temp, "grad.all")), gradient)
        return energy, gradient

    x, v = np.array(positions_bohr, float), np.array(velocities_au, float)
    energy, gradient = interface(0, x)
    a = -gradient / masses[:, None]
    path, energies = [x], [energy]
    for istep in range(1, n_steps + 1):
        x = x + v * dt + 0.5 * a * dt**2
        energy, gradient = interface(istep, x)
        a_new = -gradient / masses[:, None]
        v = v + 0.5 * (a + a_new) * dt
        a = a_new
        path.append(x)
        energies.append(energy)
    return np.array(path), np.array(energies)


def test_emulated_newtonx_loop_equals_ase_velocity_verlet(tmp_path, water_model_path):
    from ase.md.verlet import VelocityVerlet

    from nxplugin import RPRCalculator

    atoms = Atoms("OH2", positions=WATER + [[0.01, 0, 0], [0, 0.02, -0.01], [0, 0.01, 0.02]])
    masses = atoms.get_masses()
    rng = np.random.default_rng(3)
    atoms.set_velocities(rng.normal(scale=0.02, size=(3, 3)))
    x0, v0 = atoms.positions / units.Bohr, atoms.get_velocities() * units.AUT / units.Bohr
    n_steps, dt_fs = 100, 0.5
    path, energies = emulate_newtonx(water_model_path, str(tmp_path), x0, v0, masses, dt_fs=dt_fs,
                                     n_steps=n_steps, cli_steps=(50,))

    atoms.calc = RPRCalculator(water_model_path, ood_threshold=np.inf)
    reference, reference_energies, reference_dipoles = [], [], []

    def record():
        reference.append(atoms.positions.copy())
        reference_energies.append(atoms.get_potential_energy())
        reference_dipoles.append(atoms.get_dipole_moment())

    dynamics = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    dynamics.attach(record, interval=1)
    dynamics.run(n_steps)  # observers also see step 0
    reference = np.array(reference[:n_steps + 1])
    assert np.abs(reference[-1] - reference[0]).max() > 0.05          # the molecule did move
    np.testing.assert_allclose(path * units.Bohr, reference, rtol=0, atol=1e-8)
    np.testing.assert_allclose(energies * units.Hartree, reference_energies[:n_steps + 1], rtol=0, atol=1e-8)

    side = newtonx_io.read_side_file(os.path.join(tmp_path, "RESULTS", newtonx.SIDE_FILE))
    assert sorted(side) == [round(i * dt_fs, 6) for i in range(n_steps + 1)]
    dipoles = np.array([side[round(i * dt_fs, 6)][0] for i in range(n_steps + 1)]) * units.Bohr
    np.testing.assert_allclose(dipoles, reference_dipoles[:n_steps + 1], rtol=0, atol=1e-10)


def test_step_rejects_excited_states(tmp_path, water_model_path):
    from nxplugin.model.modelfile import load_model

    write_geom(tmp_path / "geom", ["O", "H", "H"], WATER / units.Bohr, [16.0, 1.0, 1.0])
    control = dict(zip(newtonx_io.CONTROL_D_FIELDS, [3, 0, 2, 2, 0, 1, 0.5, 0.0, 10.0, 0, 200, 0, 100.0,
                                                     1, 0.0, 0.0, 1, 0.5, 0.5]))
    write_control_d(tmp_path / "control.d", control)
    (tmp_path / "epot").write_text("-76.0\n")                          # left from a previous step
    with pytest.raises(DataFileError, match=r"control.d: nstat=2, nstatdyn=2; nxplugin models give the ground state"):
        newtonx.run_step(load_model(water_model_path), tmp_path)
    assert not (tmp_path / "epot").exists()
