"""`nxplugin learn` end to end on 1,2-difluoroethane (GFN2-xTB): a tiny run, and a run killed with
SIGKILL in the middle of labelling a batch and resumed, which loses no label and repeats none."""
import csv
import gzip
import os
import signal
import subprocess
import sys
import time

import ase.io
import numpy as np
import pytest

from nxplugin.cli import main
from nxplugin.md.trajfile import read_checkpoint
from nxplugin.model.modelfile import load_model, read_metadata
from nxplugin.reference.datasets import read_dataset
from nxplugin.reference.molecules import xcch2ch2y

pytest.importorskip("tblite.interface")

TINY = ["--temperatures", "300", "--n-seed", "16", "--n-validation", "8", "--replicas", "4", "--md-steps", "40",
        "--md-interval", "4", "--stride", "10", "--equilibration", "20", "--seed", "3"]


def _starts(tmp_path):
    rng = np.random.default_rng(5)
    trans, gauche = xcch2ch2y("F", "F", "trans"), xcch2ch2y("F", "F", "gauche")
    ase.io.write(tmp_path / "trans.xyz", trans)
    gauche = gauche[rng.permutation(8)]                   # another atom order: mapped onto the first file's
    gauche.rotate(40, (1, 2, 3))
    ase.io.write(tmp_path / "gauche.xyz", gauche)
    return [str(tmp_path / "trans.xyz"), str(tmp_path / "gauche.xyz")]


def _learned(path):
    """(round, pick) of every learned record in a labels file."""
    return [(int(a.info["round"]), int(a.info["pick"])) for a in ase.io.read(path, ":")]


@pytest.mark.slow
def test_tiny_learning_run(tmp_path, capsys):
    out = tmp_path / "al"
    assert main(["learn", "--start", *_starts(tmp_path), "--out", str(out), "--budget", "40", "--batch", "6",
                 "--compare-random", "md", "--quiet", *TINY]) == 0
    text = capsys.readouterr().out
    assert "round 1: 24 labels (16 trained on)" in text
    rows = list(csv.DictReader(open(out / "learning.csv")))
    assert [int(r["n_labels"]) for r in rows] == [24, 30, 36, 40]          # budget: the last batch is 4
    assert [int(r["n_train"]) for r in rows] == [16, 22, 28, 32]           # the 8 validation labels apart
    assert all(r["valmax_energy_kcal_mol"] == r["val_energy_kcal_mol"] for r in rows)   # one temperature
    assert all(float(r["val_energy_kcal_mol"]) > 0 for r in rows)
    data = read_dataset(out / "data.extxyz.gz")
    sets = [i["set"] for i in data["info"]]
    assert sets.count("seed") == 16 and sets.count("validation") == 8 and sets.count("learned") == 16
    assert [i["round"] for i in data["info"] if i["set"] == "learned"] == [1] * 6 + [2] * 6 + [3] * 4
    # the learned frames are new geometries, not copies of the seed frames or of each other
    x = data["positions"].reshape(len(sets), -1)
    d = np.linalg.norm(x[:, None] - x[None], axis=-1) + np.eye(len(x)) * 1e9
    assert d.min() > 1e-3
    meta, _ = read_metadata(out / "model.npz")
    assert meta["training"]["n_labels"] == 40 and meta["training"]["n_train"] == 32
    from nxplugin.reference.datasets import file_digest
    assert meta["training"]["data_sha256"] == file_digest(out / "data.extxyz.gz")
    assert set(meta["training"]["validation_errors"]) >= {"energy_kcal_mol", "forces_kcal_mol_A", "dipole_D"}
    model = load_model(out / "model.npz")
    assert model.n_train == 32 and len(model.coef_) == 64       # trained on forces: a displaced copy each
    random_rows = list(csv.DictReader(open(out / "learning_random.csv")))
    assert [int(r["n_labels"]) for r in random_rows] == [24, 30, 36, 40]
    assert (out / "learning.png").stat().st_size > 1000
    # a second run into the same folder is refused; --resume of a finished run labels nothing new
    assert main(["learn", "--start", *_starts(tmp_path), "--out", str(out), "--budget", "40", "--batch", "6",
                 "--quiet", *TINY]) == 2
    assert "add --resume" in capsys.readouterr().err
    before = (out / "labels.extxyz").read_bytes()
    assert main(["learn", "--start", *_starts(tmp_path), "--out", str(out), "--budget", "40", "--batch", "6",
                 "--quiet", "--resume", *TINY]) == 0
    assert (out / "labels.extxyz").read_bytes() == before
    # other settings are refused on resume
    assert main(["learn", "--start", *_starts(tmp_path), "--out", str(out), "--budget", "40", "--batch", "7",
                 "--quiet", "--resume", *TINY]) == 2
    assert "settings differ" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_sigkill_mid_round_loses_no_label(tmp_path):
    out = tmp_path / "al"
    args = [sys.executable, "-m", "nxplugin.cli", "learn", "--start", *_starts(tmp_path), "--out", str(out),
            "--budget", "84", "--batch", "30", "--quiet", *TINY]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    labels = out / "labels.extxyz"
    killed_at = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        state = read_checkpoint(labels) if labels.exists() else None
        if state is not None and state["meta"]["round"] == 1 and 3 <= state["meta"]["batch_done"] < 25:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_at = state["meta"]["batch_done"]
            break
        time.sleep(0.005)
    assert killed_at is not None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    kept = read_checkpoint(labels)
    confirmed = labels.read_bytes()[: kept["meta"]["bytes"]]           # labels the checkpoint vouches for
    assert confirmed.count(b"set=learned") == kept["meta"]["batch_done"] >= killed_at

    done = subprocess.run(args + ["--resume"], env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    final = labels.read_bytes()
    assert final.startswith(confirmed)                                  # nothing labelled before the kill is lost
    picks = _learned(labels)
    assert len(picks) == len(set(picks)) == 60                          # none twice
    for r in {r for r, _ in picks}:                                     # each batch labelled in full, once
        assert sorted(k for q, k in picks if q == r) == list(range(sum(q == r for q, _ in picks)))
    data = read_dataset(out / "data.extxyz.gz")
    assert len(data["positions"]) == 84
    rows = list(csv.DictReader(open(out / "learning.csv")))
    assert int(rows[-1]["n_labels"]) == 84 and [int(r["round"]) for r in rows] == list(range(1, len(rows) + 1))
    with gzip.open(out / "data.extxyz.gz", "rt") as handle:
        assert handle.read().count("set=learned") == 60


def test_targets_are_checked_at_the_worst_temperature(dce_data, dce_model):
    from nxplugin.learn.loop import met, worst_temperature_errors
    from nxplugin.reference.datasets import model_errors, subset
    d = dce_data
    validation = {"numbers": d["numbers"], "positions": d["positions"][250:], "forces": d["forces"][250:],
                  "dipoles": d["dipoles"][250:], "polarizabilities": None,
                  "energies": d["energies"][250:] + np.r_[np.zeros(25), np.full(25, 0.01)] * (-1) ** np.arange(50),
                  "info": [{"temperature_K": 300.0}] * 25 + [{"temperature_K": 500.0}] * 25}
    worst = worst_temperature_errors(dce_model, validation)
    hot = model_errors(dce_model, subset(validation, np.arange(25, 50)))
    overall = model_errors(dce_model, validation)
    assert worst["energy_kcal_mol"] == hot["energy_kcal_mol"] > 1.2 * overall["energy_kcal_mol"]
    bound = 0.5 * (worst["energy_kcal_mol"] + overall["energy_kcal_mol"])
    assert met(overall, {"energy": bound}) and not met(worst, {"energy": bound})
    del validation["info"][0]["temperature_K"]           # frames without temperatures: all together
    assert worst_temperature_errors(dce_model, validation)["energy_kcal_mol"] == overall["energy_kcal_mol"]
