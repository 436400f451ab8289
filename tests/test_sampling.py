"""Tests of the DCE builders, the reference engines and the resumable sampler (nxplugin.reference.sampling)."""
import os

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read

from nxplugin.reference import engines
from nxplugin.md.trajfile import TrajectoryFile, read_checkpoint
from nxplugin.reference import sampling
from nxplugin.errors import DataFileError
from nxplugin.reference.molecules import DCE_DIHEDRAL, dce

tblite = pytest.importorskip("tblite.interface")

TINY = dict(conformers=("gauche",), temperatures_K=(500.0,), n_traj=2, n_frames=4, stride=4,
            timestep_fs=0.5, equilibration_fs=5.0, seed=7)


def gfn2(atoms):
    from tblite.ase import TBLite

    atoms = atoms.copy()
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    return atoms


@pytest.mark.parametrize("conformer, dihedral", [("trans", 180.0), ("gauche", 68.1)])
def test_dce_is_a_gfn2_minimum_with_the_documented_atom_order(conformer, dihedral):
    atoms = gfn2(dce(conformer))
    assert atoms.get_chemical_symbols() == ["C", "C", "Cl", "Cl", "H", "H", "H", "H"]
    assert atoms.get_dihedral(*DCE_DIHEDRAL) == pytest.approx(dihedral, abs=0.1)
    for heavy, partner in [(0, 2), (1, 3), (0, 4), (0, 5), (1, 6), (1, 7)]:
        others = [i for i in range(2) if i != heavy]
        assert atoms.get_distance(heavy, partner) < atoms.get_distance(others[0], partner)
    assert np.abs(atoms.get_forces()).max() < 1e-3


def test_gauche_lies_above_trans_by_the_stored_gap():
    gap = gfn2(dce("gauche")).get_potential_energy() - gfn2(dce("trans")).get_potential_energy()
    assert gap == pytest.approx(0.0598, abs=5e-4)


def test_dce_rejects_unknown_conformer():
    with pytest.raises(ValueError, match="conformer='cis'"):
        dce("cis")


class Springs(Calculator):
    """Toy potential: every atom tied to its start position by a spring (eV/Angstrom**2)."""

    implemented_properties = ["energy", "forces"]
    default_parameters = {"k": 5.0}

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        if not hasattr(self, "origin"):
            self.origin = self.atoms.positions.copy()
        displacement = self.atoms.positions - self.origin
        self.results["energy"] = 0.5 * self.parameters.k * np.sum(displacement**2)
        self.results["forces"] = -self.parameters.k * displacement


@pytest.mark.slow
def test_langevin_with_fixcom_reaches_its_temperature():
    from ase import Atoms
    from ase.md.velocitydistribution import thermalize_momenta

    rng = np.random.default_rng(0)
    atoms = Atoms("C8Cl8H16", positions=rng.uniform(0, 6, (32, 3)))
    atoms.calc = Springs()
    dyn = sampling.langevin_dynamics(atoms, temperature_K=400.0, timestep_fs=2.0,
                                     friction_per_fs=0.05, rng=rng)
    thermalize_momenta(atoms, 400.0, rng=rng)
    dyn.run(100)
    temperatures = []
    for _ in range(1500):
        dyn.run(1)
        temperatures.append(atoms.get_temperature())  # 3N - 3 degrees of freedom with FixCom
    assert np.mean(temperatures) == pytest.approx(400.0, rel=0.03)
    assert np.linalg.norm(atoms.get_momenta().sum(axis=0)) < 1e-8


def test_tblite_polarizability_matches_energy_curvature_and_rotates():
    from ase.units import Bohr
    from scipy.spatial.transform import Rotation

    atoms = dce("gauche")
    alpha = engines.tblite_polarizability(atoms)
    assert np.abs(alpha - alpha.T).max() < 1e-3
    assert np.all(np.linalg.eigvalsh(alpha) > 0)
    assert np.trace(alpha) / 3 == pytest.approx(10.82, abs=0.05)  # GFN2-xTB, Angstrom**3
    # E(F) = E0 - mu.F - F.alpha.F / 2: second difference of the energy along z, in Bohr**3.
    energies = []
    for field in (1e-3, 0.0, -1e-3):
        calc = tblite.Calculator("GFN2-xTB", atoms.numbers, atoms.positions / Bohr)
        calc.set("verbosity", 0)
        calc.set("accuracy", 0.01)
        calc.add("electric-field", [0.0, 0.0, field])
        energies.append(calc.singlepoint().get("energy"))
    curvature = -(energies[0] - 2 * energies[1] + energies[2]) / 1e-3**2
    assert alpha[2, 2] == pytest.approx(curvature * Bohr**3, rel=2e-3)
    rotated = atoms.copy()
    rotated.rotate(50, (1, 2, 3))
    rotation = Rotation.from_rotvec(np.deg2rad(50) * np.array([1, 2, 3]) / np.sqrt(14)).as_matrix()
    assert np.allclose(rotated.positions, atoms.positions @ rotation.T)
    np.testing.assert_allclose(engines.tblite_polarizability(rotated),
                               rotation @ alpha @ rotation.T, atol=2e-3)


def test_sample_labels_are_gfn2_results_at_the_stored_geometry(tmp_path):
    table = sampling.sample(tmp_path / "d.extxyz.gz", polarizability=True, **TINY)
    assert [row["n_frames"] for row in table] == [4, 4]
    assert not os.path.exists(tmp_path / "d.extxyz")
    frames = read(tmp_path / "d.extxyz.gz", index=":")
    assert len(frames) == 8
    assert [f.info["traj_id"] for f in frames] == [0] * 4 + [1] * 4
    frame = frames[5]
    assert frame.info["temperature_K"] == 500.0
    assert frame.info["time"] == pytest.approx(5.0 + 2 * 4 * 0.5)
    assert frame.info["dihedral"] % 360 == pytest.approx(frame.get_dihedral(*DCE_DIHEDRAL), abs=1e-4)
    reference = gfn2(frame)
    assert frame.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-5)
    # tblite's default SCF accuracy leaves ~2e-4 eV/Angstrom between restarted and fresh SCF.
    np.testing.assert_allclose(frame.get_forces(), reference.get_forces(), atol=1e-3)
    np.testing.assert_allclose(frame.get_dipole_moment(), reference.get_dipole_moment(), atol=1e-4)
    np.testing.assert_allclose(frame.info["polarizability"],
                               engines.tblite_polarizability(frame), atol=1e-6)
    assert not np.allclose(frames[0].positions, frames[4].positions, atol=0.01)  # independent


class Killed(Exception):
    pass


def _kill_after(monkeypatch, name, calls):
    original = getattr(TrajectoryFile, name)
    count = {"n": 0}

    def dying(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(TrajectoryFile, name, dying)


@pytest.mark.parametrize("where", ["write", "checkpoint"])
def test_killed_run_resumes_to_the_same_frames(tmp_path, monkeypatch, where):
    reference = tmp_path / "ref.extxyz"
    sampling.sample(reference, **TINY)
    out = tmp_path / "run.extxyz"
    with monkeypatch.context() as patch:
        _kill_after(patch, where, 5)  # dies inside trajectory 1, frame 1 (written or not)
        with pytest.raises(Killed):
            sampling.sample(out, **TINY)
    assert not os.path.exists(out)                  # nothing half-done where the output goes
    with open(tmp_path / "run.extxyz.work" / "traj_0001.extxyz", "a") as handle:   # a record cut in half
        handle.write("8\nProperties=species:S:1:pos:R:3 traj_id=1 frame=3\nC 0.0 0.0")
    with pytest.raises(FileExistsError, match="resume"):
        sampling.sample(out, **TINY)
    with pytest.raises(DataFileError, match="n_frames"):
        sampling.sample(out, resume=True, **{**TINY, "n_frames": 5})
    sampling.sample(out, resume=True, **TINY)
    expected, resumed = read(reference, index=":"), read(out, index=":")
    assert [(f.info["traj_id"], f.info["frame"]) for f in resumed] == \
        [(f.info["traj_id"], f.info["frame"]) for f in expected]
    for a, b in zip(expected, resumed):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-5)
    assert not os.path.exists(f"{out}.work")


def test_checkpoint_has_no_pickled_content(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _kill_after(patch, "write", 2)
        with pytest.raises(Killed):
            sampling.sample(tmp_path / "c", **TINY)
    state = read_checkpoint(tmp_path / "c" / "frames.extxyz.work" / "traj_0000.extxyz")
    assert state["meta"]["frames"] == 2 and state["positions"].shape == (8, 3)
    assert state["meta"]["rng"]["bit_generator"] == "PCG64"


def test_sample_validates_before_running(tmp_path):
    with pytest.raises(ValueError, match="temperatures_K"):
        sampling.sample(tmp_path / "x.extxyz", **{**TINY, "temperatures_K": (0.0,)})
    with pytest.raises(ValueError, match="engine='orca'"):
        sampling.sample(tmp_path / "x.extxyz", engine="orca", **TINY)
    assert not os.path.exists(tmp_path / "x.extxyz")


def test_pyscf_labels_a_few_frames(tmp_path):
    pytest.importorskip("pyscf")
    table = sampling.sample(tmp_path / "p.extxyz", engine="pyscf", method="hf/sto-3g",
                            **{**TINY, "n_traj": 1, "n_frames": 2})
    assert table[0]["n_frames"] == 2
    frame = read(tmp_path / "p.extxyz", index=-1)
    calc = engines.PySCFCalculator(method="hf/sto-3g")
    # Force on Cl2 along x against a central difference of the energy (eV/Angstrom).
    energies = []
    for shift in (1e-3, -1e-3):
        moved = frame.copy()
        moved.positions[2, 0] += shift
        moved.calc = calc
        energies.append(moved.get_potential_energy())
    assert frame.get_forces()[2, 0] == pytest.approx(-(energies[0] - energies[1]) / 2e-3, abs=2e-3)
    # Same dipole direction as GFN2-xTB (sign convention: e*Angstrom, nuclei positive).
    xtb = gfn2(frame).get_dipole_moment()
    cosine = frame.get_dipole_moment() @ xtb / np.linalg.norm(xtb) / np.linalg.norm(frame.get_dipole_moment())
    assert cosine > 0.9


def test_command_line_writes_a_file(tmp_path, capsys):
    from nxplugin.cli import main

    out = tmp_path / "cli.extxyz"
    argv = ["sample", "--out", str(out), "--conformers", "trans", "--temperatures", "300",
            "--n-traj", "1", "--n-frames", "2", "--stride", "2", "--equilibration", "2", "--quiet"]
    assert main(argv) == 0
    assert "2 frames" in capsys.readouterr().out
    assert len(read(out, index=":")) == 2
    assert main(argv) == 2  # exists: refuses without --resume
    assert "resume" in capsys.readouterr().err
