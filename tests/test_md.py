import os
import subprocess
import sys

import ase.io
import numpy as np
import pytest
from ase import units

from conftest import sigkill_and_resume
from nxplugin.cli import main
from nxplugin.md.dynamics import initial_conditions, run_trajectory
from nxplugin.md.settings import MDSettings
from nxplugin.model.modelfile import save_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, dce_model):
    path = tmp_path_factory.mktemp("model") / "dce.npz"
    save_model(dce_model, path)
    return path


def test_md_frames_have_fields_in_ase_units(tmp_path, model_file, dce_model):
    out = tmp_path / "md"
    assert main(["md", "--equilibration", "0", "--thermostat", "langevin", "--model", str(model_file), "--time", "0.05", "--timestep", "0.5", "--n-traj", "1",
                 "--thermostat", "nve", "--temperature", "200", "--out", str(out)]) == 0
    frames = ase.io.read(out / "traj_000.extxyz", ":")
    assert len(frames) == 51                                   # 100 steps, every 2nd step, with t = 0
    times = np.array([f.info["time"] for f in frames])
    np.testing.assert_allclose(times, np.arange(51) * 1.0)     # fs
    for f in frames[::10]:
        pred = dce_model.predict(f.positions)
        assert f.get_potential_energy() == pytest.approx(pred["energy"], abs=1e-6)   # eV
        np.testing.assert_allclose(f.get_dipole_moment(), pred["dipole"], atol=1e-6)  # e*Angstrom
        assert f.info["temperature_K"] == 200 and f.info["timestep_fs"] == 1.0
        assert "ood_score" in f.info and f.get_velocities().shape == (8, 3)
    etot = np.array([f.info["etot"] for f in frames])
    assert np.ptp(etot) < 2e-3                                  # NVE: eV
    ekin0 = frames[0].get_kinetic_energy()
    assert ekin0 / (1.5 * 7 * units.kB) == pytest.approx(200, rel=0.3)   # Maxwell-Boltzmann start, K


SHIPPED = os.path.join(os.path.dirname(__file__), "..", "calculators", "dce-gfn2xtb", "model.npz")


@pytest.mark.slow
def test_langevin_with_fixcom_reaches_its_temperature(tmp_path):
    """Shipped DCE model at 400 K (the small test model is only valid near trans)."""
    from nxplugin.model.modelfile import load_model
    model = load_model(SHIPPED)
    atoms = initial_conditions(model, 1, 400, seed=1)[0]
    info = run_trajectory(model, atoms, tmp_path / "t.extxyz", MDSettings(
        temperature_K=400, timestep_fs=0.5, n_steps=8000, interval=4, thermostat="langevin", friction_per_fs=0.05))
    frames = ase.io.read(tmp_path / "t.extxyz", "400:")         # after 0.8 ps
    # 8 atoms with the centre of mass fixed: 3N - 3 = 21 degrees of freedom
    temps = [2 * f.get_kinetic_energy() / (21 * units.kB) for f in frames]
    assert np.mean(temps) == pytest.approx(400, rel=0.05), np.mean(temps)
    assert info["finished"] and info["frames"] == 2001


def test_bussi_runs(tmp_path, dce_model):
    atoms = initial_conditions(dce_model, 1, 300, seed=2)[0]
    run_trajectory(dce_model, atoms, tmp_path / "b.extxyz", MDSettings(temperature_K=300, timestep_fs=0.5,
                                                                     n_steps=200, thermostat="bussi", taut_fs=20))
    assert len(ase.io.read(tmp_path / "b.extxyz", ":")) == 201


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path, model_file):
    cmd = [sys.executable, "-m", "nxplugin.cli", "md", "--equilibration", "0", "--thermostat", "langevin", "--model", str(model_file), "--time", "1.0",
           "--n-traj", "1", "--thermostat", "langevin", "--temperature", "300", "--interval", "2",
           "--checkpoint-every", "20", "--seed", "5"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(cmd + ["--out", str(ref)], check=True, capture_output=True)
    kills = sigkill_and_resume(cmd, killed, 1, np.random.default_rng(0), attempts=6, pause=(1.2, 2.5))
    assert kills >= 1
    a = ase.io.read(ref / "traj_000.extxyz", ":")
    b = ase.io.read(killed / "traj_000.extxyz", ":")
    assert len(a) == len(b) == 1001
    assert [f.info["time"] for f in b] == [f.info["time"] for f in a]     # nothing lost or duplicated
    for fa, fb in zip(a[::50], b[::50]):
        np.testing.assert_array_equal(fa.positions, fb.positions)
        np.testing.assert_array_equal(fa.get_dipole_moment(), fb.get_dipole_moment())


def test_md_rejects_bad_arguments(tmp_path, model_file, capsys):
    assert main(["md", "--equilibration", "0", "--thermostat", "langevin", "--model", str(model_file), "--timestep", "-1", "--out", str(tmp_path)]) == 2
    assert "--timestep" in capsys.readouterr().err
    assert main(["md", "--equilibration", "0", "--thermostat", "langevin", "--model", str(tmp_path / "none.npz"), "--out", str(tmp_path)]) == 2
    assert "no such model file" in capsys.readouterr().err
