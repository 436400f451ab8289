"""Shipped models by name: `nxplugin models`, names wherever a model path goes, and conformer minima
stored in model files (old files without them still load)."""
import json
import os

import numpy as np
import pytest

from nxplugin.cli import main
from nxplugin.errors import ModelFileError
from nxplugin.model.modelfile import load_model, read_metadata, save_model
from nxplugin.shipped import model_path, shipped_model, shipped_models


def test_models_lists_every_shipped_model_with_its_accuracy(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in shipped_models():
        line = next(l for l in out.splitlines() if l.startswith(name))
        meta, _ = read_metadata(shipped_model(name))
        errors = meta["training"]["test_errors"]
        assert f"E {errors['energy_kcal_mol']:.3f} kcal/mol" in line and str(meta["n_train"]) in line
    assert "1,2-dichloroethane" in out and "GFN2-xTB" in out


def test_a_shipped_name_works_where_a_path_does(tmp_path, capsys):
    assert main(["info", "dce-gfn2xtb"]) == 0
    assert "species (atom order): C C Cl Cl H H H H" in capsys.readouterr().out
    assert model_path("dce-gfn2xtb") == shipped_model("dce-gfn2xtb")
    assert main(["info", "no-such-model"]) == 2
    assert "no shipped model named 'no-such-model'" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.npz")]) == 2         # a path stays a path
    assert "no such model file" in capsys.readouterr().err


def test_conformers_round_trip_and_old_files_load(tmp_path, dce_model, dce_data):
    path = tmp_path / "m.npz"
    save_model(dce_model, path)
    assert load_model(path).conformers_ == {}                          # files without conformers
    minima = {"trans": dce_data["reference"], "gauche": dce_data["positions"][3]}
    dce_model.conformers_ = minima
    try:
        save_model(dce_model, path)
    finally:
        del dce_model.conformers_
    loaded = load_model(path)
    assert list(loaded.conformers_) == ["trans", "gauche"]
    for name, x in minima.items():
        np.testing.assert_allclose(loaded.conformers_[name], x, atol=1e-10)
    # A conformer of the wrong shape is a specific error, not a crash later.
    meta, arrays = read_metadata(path)
    meta["conformers"]["gauche"] = meta["conformers"]["gauche"][:5]
    np.savez(path, metadata=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ModelFileError, match="conformer 'gauche'"):
        load_model(path)


def test_installed_models_are_found_under_setuptools_folder_names(tmp_path, monkeypatch):
    # setup.cfg data_files keys lose their dashes: share/nxplugin/calculators/dce_gfn2xtb
    from setuptools.config.setupcfg import read_configuration

    import nxplugin.shipped as shipped

    setup_cfg = os.path.join(os.path.dirname(__file__), os.pardir, "setup.cfg")
    targets = [target for target, _ in read_configuration(setup_cfg)["options"]["data_files"]]
    assert "share/nxplugin/calculators/dce_gfn2xtb" in targets
    folder = tmp_path / "share" / "nxplugin" / "calculators" / "dce_gfn2xtb"
    folder.mkdir(parents=True)
    (folder / "model.npz").write_bytes(open(shipped_model("dce-gfn2xtb"), "rb").read())
    monkeypatch.setattr(shipped, "_roots", lambda: [str(tmp_path / "share" / "nxplugin" / "calculators")])
    assert shipped.shipped_models() == ["dce-gfn2xtb"]
    assert shipped.shipped_model("dce-gfn2xtb") == str(folder / "model.npz")
