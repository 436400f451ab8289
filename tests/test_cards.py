"""The shared card script (calculators/make_card.py): the DCE card re-rendered from its measurements is
the committed one, and a new molecule's folder goes through the whole script on a tiny set."""
import json
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
SCRIPT = os.path.join(REPO, "calculators", "make_card.py")


def _run(*args):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=600)


def test_dce_card_is_reproduced_from_its_measurements(tmp_path):
    folder = tmp_path / "dce-gfn2xtb"
    source = os.path.join(REPO, "calculators", "dce-gfn2xtb")
    folder.mkdir()
    for name in ("card.json", "card_config.json", "model.npz"):
        shutil.copy(os.path.join(source, name), folder)
    result = _run(folder, "--replot")
    assert result.returncode == 0, result.stderr
    with open(os.path.join(source, "MODEL_CARD.md")) as a, open(folder / "MODEL_CARD.md") as b:
        assert a.read() == b.read()


@pytest.mark.slow
def test_a_new_molecule_goes_through_the_card_script(tmp_path):
    pytest.importorskip("tblite.interface")
    from nxplugin.cli import main
    from nxplugin.model.modelfile import load_model

    folder = tmp_path / "dfe-gfn2xtb"
    source = os.path.join(REPO, "calculators", "dfe-gfn2xtb")
    (folder / "data").mkdir(parents=True)
    for name in ("card_config.json", "start-trans.xyz", "start-gauche.xyz"):
        shutil.copy(os.path.join(source, name), folder)
    config = json.loads((folder / "card_config.json").read_text())
    config.pop("dft", None)                                   # no DFT file in this test
    (folder / "card_config.json").write_text(json.dumps(config))
    for name, seed in (("train", 1), ("test", 2), ("test300", 3)):
        assert main(["sample", "--start", str(folder / "start-trans.xyz"), str(folder / "start-gauche.xyz"),
                     "--out", str(folder / "data" / f"{name}.extxyz.gz"), "--temperatures", "150",
                     "--n-traj", "1", "--n-frames", "40", "--stride", "10", "--timestep", "1.0",
                     "--equilibration", "20", "--seed", str(seed), "--polarizability", "--quiet"]) == 0
    result = _run(folder, "--sizes", "40", "70", "--n-train", "70", "--skip-harmonic")
    assert result.returncode == 0, result.stderr
    card = (folder / "MODEL_CARD.md").read_text()
    assert "# Model card: `dfe-gfn2xtb`" in card and "|F–C–C–F| ≥ 120°" in card
    assert "gauche effect of 1,2-difluoroethane wrong" in card
    measured = json.loads((folder / "card.json").read_text())
    assert measured["data"]["train"]["frames"] == 80 and measured["reference"]["symmetry_images"] == 4
    model = load_model(folder / "model.npz")
    assert list(model.conformers_) == ["trans", "gauche"]
    assert model.training_["molecule"] == "1,2-difluoroethane"
