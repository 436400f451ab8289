import io
import json
import os
import signal
import subprocess
import sys
import time

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from nxplugin.md import ensemble
from conftest import sigkill_and_resume
from nxplugin.cli import main
from nxplugin.md.dynamics import initial_conditions, run_trajectory
from nxplugin.md.settings import MDSettings
from nxplugin.md.trajfile import TrajectoryFile, read_checkpoint, trajectory_path
from nxplugin.model.modelfile import save_model
from nxplugin.model.estimator import RPRModel


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, dce_model):
    path = tmp_path_factory.mktemp("model") / "dce.npz"
    save_model(dce_model, path)
    return path


def _read_all(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder)) if name.endswith(".extxyz")}


@pytest.mark.parametrize("polarizability", [False, True])
def test_format_frame_is_byte_identical_to_ase_write(polarizability):
    rng = np.random.default_rng(3)
    symbols = ["C", "C", "Cl", "Cl", "H", "H", "H", "H"]
    pos, mom, forces = rng.normal(scale=[[1.0], [30.0], [1e-9]][rng.integers(3)], size=(3, 8, 3))
    pos[0, 0] = -0.0
    masses = np.array([12.011, 12.011, 35.45, 35.45, 1.008, 1.008, 1.008, 1.008])
    info = dict(time=np.int64(7) * 0.5, timestep_fs=1.0, temperature_K=300.0, ood_score=1.2345678901234e-7,
                traj_id=12, ekin=np.float64(0.1) + 0.2, etot=-123456.789)
    if polarizability:
        info["polarizability"] = rng.normal(size=9)
    energy, dipole = -1.0e-20, rng.normal(size=3)
    frame = Atoms(symbols, positions=pos, momenta=mom, masses=masses)
    frame.calc = SinglePointCalculator(frame, energy=energy, forces=forces, dipole=dipole)
    frame.info.update(info)
    expected = io.StringIO()
    ase.io.write(expected, frame, format="extxyz")
    assert ensemble.format_frame(symbols, pos, masses, mom, forces, info, energy, dipole) == expected.getvalue()


@pytest.mark.parametrize("thermostat", ["nve", "langevin", "bussi"])
def test_batched_replicas_equal_the_ase_path(tmp_path, dce_model, thermostat, monkeypatch):
    # the ASE path maps its input onto the model's labelling; start from a fresh map (not one cached by
    # an earlier test's geometry), as a new process does
    monkeypatch.delitem(dce_model.__dict__, "_symmetry_cache", raising=False)
    ids = [0, 2, 4]                                                  # even indices start from trans
    starts = initial_conditions(dce_model, 5, 300, seed=11)
    settings = MDSettings(temperature_K=300, timestep_fs=0.5, n_steps=300, interval=3, thermostat=thermostat,
                          friction_per_fs=0.02, taut_fs=20.0, seed=11, checkpoint_every=10)
    summaries = ensemble.run_chunk(dce_model, [starts[k] for k in ids], ids, tmp_path / "batched", settings)
    for k, summary in zip(ids, summaries):
        ref = tmp_path / f"ase_{k}.extxyz"
        info = run_trajectory(dce_model, starts[k], ref, settings, traj_id=k)
        a, b = ase.io.read(ref, ":"), ase.io.read(summary["path"], ":")
        assert len(a) == len(b) == 101 and summary["frames"] == info["frames"] == 101
        assert [f.info["time"] for f in a] == [f.info["time"] for f in b]
        assert summary["rng"] == info["rng"]                         # the same random draws, in the same order
        drift = max(np.abs(fa.positions - fb.positions).max() for fa, fb in zip(a, b))
        # the ASE path maps each geometry onto a canonical relabelling (symmetry-averaged sums in another
        # order): round-off, grown over 300 steps
        assert drift < 1e-8, drift                                   # Angstrom, after 300 steps
        np.testing.assert_allclose(b[-1].get_momenta(), a[-1].get_momenta(), atol=1e-8)
        np.testing.assert_allclose(b[-1].get_dipole_moment(), a[-1].get_dipole_moment(), atol=1e-8)
        # a batch of 3 and a batch of 1 sum the kernel products in different orders: ~1e-11 relative
        assert b[-1].info["etot"] == pytest.approx(a[-1].info["etot"], rel=1e-9, abs=0)    # eV, of -419 eV


def test_a_chunk_killed_between_checkpoints_resumes_exactly(tmp_path, dce_model, monkeypatch):
    ids = [0, 2, 4, 6]
    starts = [initial_conditions(dce_model, 7, 300, seed=2)[k] for k in ids]
    settings = MDSettings(temperature_K=300, timestep_fs=0.5, n_steps=120, interval=2, thermostat="langevin", seed=2,
                          checkpoint_every=7)
    ensemble.run_chunk(dce_model, starts, ids, tmp_path / "ref", settings)
    calls = {"n": 0}
    original = TrajectoryFile.checkpoint

    def dies_at_the_15th(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 15:                                         # mid-way through one round of checkpoints
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TrajectoryFile, "checkpoint", dies_at_the_15th)
    with pytest.raises(KeyboardInterrupt):
        ensemble.run_chunk(dce_model, starts, ids, tmp_path / "run", settings)
    monkeypatch.setattr(TrajectoryFile, "checkpoint", original)
    steps = [read_checkpoint(trajectory_path(tmp_path / "run", k))["meta"]["step"] for k in ids]
    assert len(set(steps)) == 2                                      # some replicas behind the others
    ensemble.run_chunk(dce_model, starts, ids, tmp_path / "run", settings)
    assert _read_all(tmp_path / "run") == _read_all(tmp_path / "ref")


def test_sequential_joblib_and_dask_runs_write_identical_files(tmp_path, model_file):
    from distributed import LocalCluster

    args = ["md", "--equilibration", "0", "--thermostat", "langevin", "--model", str(model_file), "--time", "0.05", "--n-traj", "5", "--chunk-size", "2",
            "--temperature", "300", "--seed", "4", "--checkpoint-every", "10"]
    walls = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for name, extra in [("seq", []), ("joblib", ["--jobs", "2"]),
                            ("dask", ["--scheduler", cluster.scheduler_address])]:
            start = time.perf_counter()
            assert main(args + extra + ["--out", str(tmp_path / name)]) == 0
            walls[name] = time.perf_counter() - start
    seq = _read_all(tmp_path / "seq")
    assert len(seq) == 5 and all(len(text) > 0 for text in seq.values())
    assert _read_all(tmp_path / "joblib") == seq
    assert _read_all(tmp_path / "dask") == seq
    summary = json.loads((tmp_path / "dask" / "summary.json").read_text())
    assert summary["kernel"] == RPRModel().kernel_backend          # what this environment provides
    assert [t["traj_id"] for t in summary["trajectories"]] == list(range(5))
    print("wall times, s:", walls)


@pytest.mark.slow
def test_ensemble_sigkill_then_resume_equals_uninterrupted_run(tmp_path, model_file):
    cmd = [sys.executable, "-m", "nxplugin.cli", "md", "--equilibration", "0", "--thermostat", "langevin", "--model", str(model_file), "--time", "1.0",
           "--n-traj", "4", "--chunk-size", "2", "--thermostat", "langevin", "--temperature", "300",
           "--interval", "2", "--checkpoint-every", "15", "--seed", "9"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(cmd + ["--out", str(ref)], check=True, capture_output=True)
    kills = sigkill_and_resume(cmd, killed, 4, np.random.default_rng(1), attempts=8, pause=(0.8, 2.0))
    assert kills >= 1
    for k in range(4):
        a = ase.io.read(trajectory_path(ref, k), ":")
        b = ase.io.read(trajectory_path(killed, k), ":")
        assert [f.info["time"] for f in b] == [f.info["time"] for f in a] == list(np.arange(1001) * 1.0)
    assert _read_all(killed) == _read_all(ref)                       # byte-identical: nothing lost or duplicated
    print(f"{kills} kills; 4 x 1001 frames identical")


def test_out_of_domain_trajectories_are_reported_and_stopped(tmp_path, model_file, capsys):
    # the test model knows trans only: trajectory 1 starts from gauche, beyond its training data
    out = tmp_path / "md"
    with pytest.warns(UserWarning, match=r"trajectory 1, frame 0 \(t = 0.0 fs\) is beyond the training data"):
        assert main(["md", "--equilibration", "0", "--thermostat", "langevin", "--model", str(model_file), "--time", "0.05", "--n-traj", "2", "--stop-on-ood",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_out_of_domain"] == 1 and "1 stopped out of domain" in printed
    trans, gauche = summary["trajectories"]
    assert trans["frames"] == 51 and not trans["stopped"]
    assert gauche["frames"] == 1 and gauche["stopped"].startswith("out of domain: ood_score")
    assert read_checkpoint(out / "traj_001.extxyz")["meta"]["finished"]


def test_ensemble_cli_resume_skips_finished_and_rejects_bad_flags(tmp_path, model_file, capsys):
    args = ["md", "--equilibration", "0", "--thermostat", "langevin", "--model", str(model_file), "--time", "0.02", "--n-traj", "3", "--out", str(tmp_path)]
    assert main(args + ["--engine", "ase", "--jobs", "2"]) == 0
    before = _read_all(tmp_path)
    assert main(args + ["--resume"]) == 0
    assert _read_all(tmp_path) == before
    assert all(t.get("skipped") for t in json.loads((tmp_path / "summary.json").read_text())["trajectories"])
    assert main(args + ["--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err


@pytest.mark.slow
def test_a_lost_dask_worker_loses_no_trajectory(tmp_path, dce_model):
    import threading

    from distributed import Client, LocalCluster

    starts = initial_conditions(dce_model, 4, 300, seed=3)
    settings = MDSettings(n_steps=600, timestep_fs=0.5, temperature_K=300, interval=2, seed=3, checkpoint_every=10)
    ensemble.run_ensemble(dce_model, starts, tmp_path / "ref", settings, chunk_size=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        run = threading.Thread(target=ensemble.run_ensemble, args=(dce_model, starts, tmp_path / "dask", settings),
                               kwargs=dict(chunk_size=2, scheduler=cluster.scheduler_address))
        run.start()
        first = tmp_path / "dask" / "traj_000.extxyz.ckpt.npz"
        while not (first.exists() and read_checkpoint(first.with_name("traj_000.extxyz"))["meta"]["step"] > 60):
            time.sleep(0.05)
        os.kill(pids[0], signal.SIGKILL)                             # a worker dies mid-chunk
        run.join(timeout=120)
    assert not run.is_alive()
    assert _read_all(tmp_path / "dask") == _read_all(tmp_path / "ref")
