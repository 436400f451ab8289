from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
import ase.io
import numpy as np
import pytest

from nxplugin.cli import main
from nxplugin.model.modelfile import load_model


def write_data(path, d, n, drop=None):
    frames = []
    for k in range(n):
        a = Atoms(d["numbers"], positions=d["positions"][k])
        results = {"energy": d["energies"][k], "forces": d["forces"][k], "dipole": d["dipoles"][k]}
        if drop == k:
            results.pop("dipole")
        a.calc = SinglePointCalculator(a, **results)
        frames.append(a)
    ase.io.write(path, frames)


def test_train_and_info(tmp_path, dce_data, capsys):
    data = tmp_path / "dce.extxyz"
    write_data(data, dce_data, 200)
    model = tmp_path / "m.npz"
    assert main(["train", str(data), "-o", str(model), "--n-train", "150", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "held-out RMSE on 20 frames" in out and "kcal/mol" in out and " D" in out
    m = load_model(model)
    assert m.training_["n_train"] == 150 and m.training_["test_errors"]["dipole_D"] < 0.1
    assert main(["info", str(model)]) == 0
    assert "C C Cl Cl H H H H" in capsys.readouterr().out
    assert main(["train", str(data), "-o", str(tmp_path / "d.npz"), "--direct", "--n-train", "50"]) == 0
    assert load_model(tmp_path / "d.npz").frame == "lab"


def test_train_with_forces_lowers_the_force_error(tmp_path, dce_data, capsys):
    data = tmp_path / "dce.extxyz"
    write_data(data, dce_data, 200)
    errors = {}
    for flag in ([], ["--forces"]):
        model = tmp_path / f"m{len(flag)}.npz"
        assert main(["train", str(data), "-o", str(model), "--n-train", "150", "--n-test", "50"] + flag) == 0
        errors[bool(flag)] = load_model(model).training_["test_errors"]["forces_kcal_mol_A"]
    assert "force weight=" in capsys.readouterr().out
    assert errors[True] < 0.7 * errors[False], errors
    # a stranger's file: another atom order (C H Cl H H C Cl H, every atom moved, hydrogens swapped
    # within and across carbons), forces permuted with their atoms: mapped back, the same errors
    order = np.array([1, 5, 3, 4, 7, 0, 2, 6])
    frames = []
    for k in range(200):
        a = Atoms(dce_data["numbers"][order], positions=dce_data["positions"][k][order])
        a.calc = SinglePointCalculator(a, energy=dce_data["energies"][k], forces=dce_data["forces"][k][order],
                                       dipole=dce_data["dipoles"][k])
        frames.append(a)
    ase.io.write(tmp_path / "shuffled.extxyz", frames)
    assert main(["train", str(tmp_path / "shuffled.extxyz"), "-o", str(tmp_path / "s.npz"), "--n-train", "150",
                 "--n-test", "50", "--forces"]) == 0
    assert load_model(tmp_path / "s.npz").training_["test_errors"]["forces_kcal_mol_A"] == \
        pytest.approx(errors[True], rel=1e-6)
    frames = ase.io.read(data, ":20")
    for a in frames:
        a.calc = SinglePointCalculator(a, energy=a.get_potential_energy(), dipole=a.get_dipole_moment())
    ase.io.write(tmp_path / "noforces.extxyz", frames)
    assert main(["train", str(tmp_path / "noforces.extxyz"), "-o", str(tmp_path / "x.npz"), "--forces"]) == 2
    assert "--forces needs forces in" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()


def test_train_rejects_missing_labels(tmp_path, dce_data, capsys):
    data = tmp_path / "bad.extxyz"
    write_data(data, dce_data, 10, drop=4)
    assert main(["train", str(data), "-o", str(tmp_path / "m.npz")]) == 2
    assert "frame 4 has no dipole" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()
    assert main(["info", str(data)]) == 2
