"""The package's layers: the numpy core imports no ASE, shipped models are found by name."""
import os
import subprocess
import sys

import pytest

import nxplugin
from nxplugin import shipped


def test_model_core_imports_no_ase_and_no_scipy():
    code = ("import sys, nxplugin.model.estimator, nxplugin.model.modelfile, nxplugin.model.kernelsums, "
            "nxplugin.newtonx.files; print(sorted(m for m in ('ase', 'scipy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_shipped_model_by_name_loads():
    path = nxplugin.shipped_model("dce-gfn2xtb")
    assert os.path.isfile(path) and "dce-gfn2xtb" in nxplugin.shipped_models()
    assert nxplugin.load_model(path).numbers.tolist() == [6, 6, 17, 17, 1, 1, 1, 1]
    assert shipped.model_path(None) == path and shipped.model_path("dce-gfn2xtb") == path
    assert shipped.model_path("my.npz") == "my.npz"                 # a path stays a path
    with pytest.raises(FileNotFoundError, match="no shipped model named 'nope'; installed: .*dce-gfn2xtb"):
        nxplugin.shipped_model("nope")


def test_shipped_model_found_where_a_plain_install_puts_it(tmp_path, monkeypatch):
    folder = tmp_path / "share" / "nxplugin" / "calculators" / "xyz-test"
    folder.mkdir(parents=True)
    (folder / "model.npz").write_bytes(b"")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert nxplugin.shipped_model("xyz-test") == str(folder / "model.npz")
