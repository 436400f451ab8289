"""Start geometries of any X-CH2-CH2-Y molecule: the ideal builder, reading and optimising start files
in their own atom order, naming conformers by their torsion, and sampling from them."""
import os

import numpy as np
import pytest
from ase.io import read, write

from nxplugin.errors import DataFileError, GeometryError
from nxplugin.reference import sampling
from nxplugin.reference.molecules import dce, xcch2ch2y
from nxplugin.reference.starts import read_starts

pytest.importorskip("tblite.interface")
CALCULATORS = os.path.join(os.path.dirname(__file__), os.pardir, "calculators")


@pytest.mark.parametrize("x, y", [("F", "F"), ("Cl", "Br"), ("I", "I")])
def test_ideal_geometry_is_tetrahedral_and_staggered(x, y):
    from ase.data import atomic_numbers, covalent_radii

    for conformer, torsion in (("trans", 180.0), ("gauche", 70.0)):
        atoms = xcch2ch2y(x, y, conformer)
        assert atoms.get_chemical_symbols() == ["C", "C", x, y, "H", "H", "H", "H"]
        assert abs(atoms.get_dihedral(2, 0, 1, 3)) == pytest.approx(torsion)
        for a, b, c in [(2, 0, 1), (4, 0, 5), (4, 0, 1), (0, 1, 3), (6, 1, 7), (0, 1, 7), (2, 0, 4)]:
            assert atoms.get_angle(a, b, c) == pytest.approx(109.4712, abs=1e-3)
        assert atoms.get_distance(1, 3) == pytest.approx(
            covalent_radii[6] + covalent_radii[atomic_numbers[y]])
        assert atoms.get_all_distances()[np.triu_indices(8, 1)].min() > 1.0  # no clash


def test_builder_rejects_bad_input():
    with pytest.raises(ValueError, match="conformer='cis'"):
        xcch2ch2y("F", "F", "cis")
    with pytest.raises(ValueError, match="'Xx'"):
        xcch2ch2y("Xx", "F")


def _shuffled(atoms, seed, path):
    order = np.random.default_rng(seed).permutation(len(atoms))
    atoms = atoms[order]
    atoms.rotate(37, (1, -2, 0.5))
    write(path, atoms)
    return order


def test_starts_keep_the_file_order_and_are_named_by_their_torsion(tmp_path):
    # Files as a stranger's: the same shuffled order in both, gauche first, another format.
    gauche, trans = tmp_path / "a.xyz", tmp_path / "b.extxyz"
    order = _shuffled(xcch2ch2y("F", "F", "gauche"), 5, gauche)
    assert (_shuffled(xcch2ch2y("F", "F", "trans"), 5, trans) == order).all()
    starts, torsion = read_starts([gauche, trans], fmax=1e-3)
    assert list(starts) == ["gauche", "trans"]
    inverse = np.argsort(order)
    assert sorted(torsion[1:3]) == sorted(inverse[[0, 1]])           # the two carbons, by the bonds
    assert sorted(torsion[::3]) == sorted(inverse[[2, 3]])           # and the two fluorines
    assert starts["trans"].get_chemical_symbols() == read(trans).get_chemical_symbols()
    # GFN2-xTB minima (the figures quoted in the DFE model card): trans 0.041 eV lower, gauche at 86 deg.
    gap = starts["gauche"].info["energy"] - starts["trans"].info["energy"]
    assert gap == pytest.approx(0.0409, abs=5e-4)
    assert abs(starts["gauche"].info["dihedral"]) == pytest.approx(86.3, abs=0.5)
    assert abs(starts["trans"].info["dihedral"]) == pytest.approx(180.0, abs=0.1)


def test_a_start_in_another_atom_order_is_mapped_onto_the_first(tmp_path):
    from nxplugin.model.descriptors import pair_distances

    write(tmp_path / "t.xyz", xcch2ch2y("F", "F", "trans"))
    gauche = xcch2ch2y("F", "F", "gauche")
    _shuffled(gauche, 1, tmp_path / "g.xyz")
    starts, torsion = read_starts([tmp_path / "t.xyz", tmp_path / "g.xyz"], optimise=False)
    assert list(starts) == ["trans", "gauche"] and torsion == (2, 0, 1, 3)
    assert starts["gauche"].get_chemical_symbols() == starts["trans"].get_chemical_symbols()
    d = pair_distances(starts["gauche"].positions)
    assert np.allclose(d, pair_distances(gauche.positions)) or np.allclose(    # up to H6 <-> H7 etc.
        np.sort(d), np.sort(pair_distances(gauche.positions)))
    assert abs(starts["gauche"].get_dihedral(2, 0, 1, 3)) == pytest.approx(70.0, abs=1e-6)


def test_same_torsion_twice_is_named_by_file_and_dce_matches_its_stored_minimum(tmp_path):
    write(tmp_path / "one.xyz", dce("trans"))
    write(tmp_path / "two.xyz", dce("trans"))
    starts, torsion = read_starts([tmp_path / "one.xyz", tmp_path / "two.xyz"])
    assert list(starts) == ["one", "two"] and torsion == (2, 0, 1, 3)
    np.testing.assert_allclose(starts["one"].positions, dce("trans").positions, atol=2e-3)


def test_bad_start_files_are_named(tmp_path):
    write(tmp_path / "t.xyz", xcch2ch2y("F", "F", "trans"))
    write(tmp_path / "c.xyz", xcch2ch2y("F", "Cl", "gauche"))
    with pytest.raises(GeometryError, match="c.xyz"):
        read_starts([tmp_path / "t.xyz", tmp_path / "c.xyz"], optimise=False)
    (tmp_path / "bad.xyz").write_text("3\n\nC 0 0\n")
    with pytest.raises(GeometryError, match="bad.xyz"):
        read_starts([tmp_path / "bad.xyz"])
    write(tmp_path / "ethane.xyz", xcch2ch2y("H", "H", "trans"))
    with pytest.raises(GeometryError, match="--dihedral"):
        read_starts([tmp_path / "ethane.xyz"], optimise=False)
    with pytest.raises(GeometryError, match="out of range"):
        read_starts([tmp_path / "ethane.xyz"], dihedral=(2, 0, 1, 9), optimise=False)
    starts, torsion = read_starts([tmp_path / "ethane.xyz"], dihedral=(2, 0, 1, 3), optimise=False)
    assert list(starts) == ["trans"] and torsion == (2, 0, 1, 3)


TINY = dict(temperatures_K=(400.0,), n_traj=1, n_frames=3, stride=3, timestep_fs=0.5,
            equilibration_fs=2.0, seed=3)


def test_sampling_from_start_files_labels_frames_in_their_order(tmp_path):
    from tblite.ase import TBLite

    paths = [os.path.join(CALCULATORS, "dbe-gfn2xtb", f"start-{c}.xyz") for c in ("trans", "gauche")]
    starts, torsion = read_starts(paths, optimise=False)   # optimisation: tested above
    out = tmp_path / "dbe.extxyz"
    table = sampling.sample(out, starts=starts, **TINY)
    assert [row["conformer"] for row in table] == ["trans", "gauche"]
    frames = read(out, ":")
    symbols = read(paths[0]).get_chemical_symbols()
    assert symbols != ["C", "C", "Br", "Br", "H", "H", "H", "H"]     # the shipped file is shuffled
    for frame in frames:
        assert frame.get_chemical_symbols() == symbols
        assert frame.info["dihedral"] == pytest.approx(frame.get_dihedral(*torsion) - 360 * (
            frame.get_dihedral(*torsion) > 180))
        assert (abs(frame.info["dihedral"]) > 120) == (frame.info["conformer"] == "trans")
    check = frames[-1].copy()
    check.calc = TBLite(method="GFN2-xTB", verbosity=0)
    np.testing.assert_allclose(check.get_forces(), frames[-1].get_forces(), atol=1e-3)
    # A resumed run must start from the same geometries.
    moved = {name: atoms.copy() for name, atoms in starts.items()}
    moved["gauche"].positions[0] += 0.01
    with pytest.raises(_Killed):
        sampling.sample(tmp_path / "k.extxyz", starts=starts, progress=_die_at_first_frame, **TINY)
    with pytest.raises(DataFileError, match="starts"):
        sampling.sample(tmp_path / "k.extxyz", starts=moved, resume=True, **TINY)
    sampling.sample(tmp_path / "k.extxyz", starts=starts, resume=True, **TINY)
    resumed = read(tmp_path / "k.extxyz", ":")
    for a, b in zip(frames, resumed):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-5)


class _Killed(Exception):
    pass


def _die_at_first_frame(done, total):
    if done == 1:
        raise _Killed


def test_command_line_start_and_dihedral(tmp_path, capsys):
    from nxplugin.cli import main

    write(tmp_path / "t.xyz", xcch2ch2y("F", "Cl", "trans"))
    out = tmp_path / "fc.extxyz"
    argv = ["sample", "--out", str(out), "--start", str(tmp_path / "t.xyz"), "--temperatures", "300",
            "--n-traj", "1", "--n-frames", "2", "--stride", "2", "--equilibration", "2", "--quiet"]
    assert main(argv) == 0
    assert "start trans: C2H4ClF" in capsys.readouterr().out
    assert [f.info["conformer"] for f in read(out, ":")] == ["trans", "trans"]
    assert main(argv[:-1] + ["--dihedral", "2", "0", "1", "3", "--out", str(tmp_path / "x.extxyz")]
                + argv[-1:]) == 0
    write(tmp_path / "e.xyz", xcch2ch2y("H", "H", "trans"))
    argv[4] = str(tmp_path / "e.xyz")
    assert main(argv[:2] + [str(tmp_path / "e2.extxyz")] + argv[3:]) == 2
    assert "--dihedral" in capsys.readouterr().err


def test_symmetrize_finds_the_point_group_of_a_distorted_geometry():
    from nxplugin.analysis.minima import symmetrize
    from nxplugin.model.descriptors import pair_distances, symmetry_pair_permutations

    rng = np.random.default_rng(0)
    for atoms, n_ops in [(dce("trans"), 4), (dce("gauche"), 2), (xcch2ch2y("F", "Br", "trans"), 2),
                         (xcch2ch2y("F", "Br", "gauche"), 1)]:
        order = rng.permutation(8)
        atoms = atoms[order]
        noisy = atoms.positions + rng.normal(scale=0.01, size=(8, 3))
        assert len(symmetry_pair_permutations(atoms.numbers, pair_distances(noisy))) == 1
        x, found = symmetrize(atoms.numbers, noisy)
        assert found == n_ops
        assert len(symmetry_pair_permutations(atoms.numbers, pair_distances(x))) == n_ops
        assert np.abs(pair_distances(x) - pair_distances(atoms.positions)).max() < 0.05


def test_symmetric_reference_relaxes_to_the_trans_minimum(dce_data):
    from nxplugin.analysis.minima import symmetric_reference
    from nxplugin.model.descriptors import pair_distances

    d = dce_data
    order = np.random.default_rng(3).permutation(8)
    x, n_ops = symmetric_reference(d["numbers"][order], d["positions"][:, order], d["energies"],
                                   d["dipoles"], n_fit=250)
    assert n_ops == 4                                            # C2h, in a shuffled atom order
    assert np.abs(pair_distances(x) - pair_distances(dce("trans").positions[order])).max() < 0.02
