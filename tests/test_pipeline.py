"""Sampling -> training -> MD on a tiny GFN2-xTB set: the DCE workflow end to end through the CLI."""
import ase.io
import numpy as np

from nxplugin.cli import main
from nxplugin.model.modelfile import load_model


def test_sample_train_md_pipeline(tmp_path, capsys):
    data, model, md = tmp_path / "d.extxyz", tmp_path / "m.npz", tmp_path / "md"
    assert main(["sample", "--out", str(data), "--conformers", "trans", "--temperatures", "300",
                 "--n-traj", "1", "--n-frames", "60", "--stride", "10", "--equilibration", "50",
                 "--polarizability", "--seed", "4", "--quiet"]) == 0
    frames = ase.io.read(data, ":")
    assert len(frames) == 60 and frames[0].info["polarizability"].size == 9
    assert main(["train", str(data), "-o", str(model), "--n-test", "10"]) == 0
    assert "held-out RMSE on 10 frames" in capsys.readouterr().out
    assert load_model(model).has_polarizability
    assert main(["md", "--equilibration", "0", "--thermostat", "langevin", "--model", str(model), "--n-traj", "1", "--time", "0.05", "--temperature", "100",
                 "--out", str(md)]) == 0
    traj = ase.io.read(md / "traj_000.extxyz", ":")
    assert len(traj) == 51
    assert np.reshape(traj[-1].info["polarizability"], (3, 3)).trace() / 3 > 5     # Angstrom^3, DCE ~11
