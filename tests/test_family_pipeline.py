"""A molecule that is not DCE (1,2-difluoroethane) through sample -> train -> md -> harmonic -> spectrum
on a tiny GFN2-xTB set, with the atoms in a new shuffled order at every step the user gives files."""
import csv
import json
import warnings

import ase.io
import numpy as np
import pytest

from nxplugin.analysis.conformers import dihedral_series
from nxplugin.cli import main
from nxplugin.model.modelfile import load_model
from nxplugin.reference.molecules import xcch2ch2y

pytest.importorskip("tblite.interface")


def _write(atoms, order, path):
    atoms = atoms[order]
    atoms.rotate(73, (0.3, 1, -2))
    ase.io.write(path, atoms)


@pytest.mark.slow
def test_dfe_from_start_files_to_spectrum(tmp_path, capsys):
    rng = np.random.default_rng(11)
    order = rng.permutation(8)                    # the user's atom order (the data keep the first file's)
    _write(xcch2ch2y("F", "F", "gauche"), order, tmp_path / "gauche-in.xyz")
    _write(xcch2ch2y("F", "F", "trans"), rng.permutation(8), tmp_path / "trans-in.xyz")   # another order
    data, model_file = tmp_path / "dfe.extxyz", tmp_path / "dfe.npz"
    assert main(["sample", "--start", str(tmp_path / "gauche-in.xyz"), str(tmp_path / "trans-in.xyz"),
                 "--out", str(data), "--temperatures", "100", "--n-traj", "2", "--n-frames", "50",
                 "--stride", "10", "--timestep", "1.0", "--equilibration", "20", "--seed", "2",
                 "--quiet"]) == 0
    frames = ase.io.read(data, ":")
    assert {f.info["conformer"] for f in frames} == {"trans", "gauche"}
    assert frames[0].get_chemical_symbols() == ase.io.read(tmp_path / "gauche-in.xyz").get_chemical_symbols()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", str(data), "-o", str(model_file), "--n-test", "12"]) == 0
    assert not [w for w in caught if "relaxation" in str(w.message)]     # the model's own minima
    out = capsys.readouterr().out
    assert "symmetrised (4 point-group operation(s))" in out            # C2h trans-DFE, found by itself
    assert "conformer minima (stored for md and harmonic): trans, gauche" in out
    model = load_model(model_file)
    assert list(model.conformers_) == ["trans", "gauche"]
    torsion = [int(np.flatnonzero(order == k)[0]) for k in (2, 0, 1, 3)]   # F-C-C-F in the user's order
    phi = {c: abs(dihedral_series(x[None], torsion)[0]) for c, x in model.conformers_.items()}
    assert phi["trans"] > 150 and 50 < phi["gauche"] < 110

    # md from the stored minima, and from a start file in the model's order.
    md = tmp_path / "md"
    assert main(["md", "--model", str(model_file), "--n-traj", "2", "--time", "0.1", "--temperature", "100",
                 "--interval", "1", "--equilibration", "0", "--out", str(md)]) == 0
    summary = json.loads((md / "summary.json").read_text())
    assert [t["conformer"] for t in summary["trajectories"]] == ["trans", "gauche"]
    assert main(["md", "--model", str(model_file), "--n-traj", "1", "--time", "0.02", "--temperature", "100",
                 "--start", str(tmp_path / "trans-in.xyz"), "--equilibration", "0",   # in another order
                 "--out", str(tmp_path / "md2")]) == 0
    summary = json.loads((tmp_path / "md2" / "summary.json").read_text())
    assert summary["trajectories"][0]["conformer"] == "trans"

    assert main(["harmonic", str(model_file), "--out", str(tmp_path / "h.csv")]) == 0
    with open(tmp_path / "h.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["conformer"] for r in rows} == {"trans", "gauche"} and len(rows) == 2 * 18

    assert main(["spectrum", *(str(md / f"traj_00{k}.extxyz") for k in range(2)), "--conformers",
                 "--depth", "40", "--out", str(tmp_path / "s.csv"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "trans" in out and "gauche" in out


@pytest.mark.parametrize("halogen", ["F", "Cl", "Br"])
def test_spectrum_conformers_on_every_family_member_in_any_atom_order(halogen, tmp_path, capsys):
    from ase.calculators.singlepoint import SinglePointCalculator

    # Two trajectories of X-CH2-CH2-X turning its torsion: the first trans for 3/4 of its frames, the
    # second gauche for all; atoms shuffled, each file in its own order; dipole along a cosine.
    rng = np.random.default_rng(len(halogen))
    paths, n = [], 400
    for k, schedule in enumerate([np.where(np.arange(n) < 3 * n // 4, 180.0, 65.0), np.full(n, -70.0)]):
        order = rng.permutation(8)
        frames = []
        for i, phi in enumerate(schedule + rng.normal(scale=5.0, size=n)):
            atoms = xcch2ch2y(halogen, halogen, dihedral_deg=phi)[order]
            atoms.info.update(time=0.5 * i, temperature_K=300.0)
            atoms.calc = SinglePointCalculator(atoms, energy=0.0,
                                               dipole=[0.1 * np.cos(0.2 * i), 0.0, 0.0])
            frames.append(atoms)
        paths.append(str(tmp_path / f"traj{k}.extxyz"))
        ase.io.write(paths[-1], frames)
    assert main(["spectrum", *paths, "--conformers", "--depth", "50", "--out", str(tmp_path / "s.csv"),
                 "--quiet"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("dihedral atoms"))
    fractions = dict((name, float(value)) for name, value in
                     (part.split()[:2] for part in line.split(": ", 1)[1].split(";")[0].split(", ")))
    assert fractions["trans"] == pytest.approx(0.375, abs=0.01)      # (3/4 + 0) / 2, equal weights
    assert fractions["gauche"] == pytest.approx(0.625, abs=0.01)
