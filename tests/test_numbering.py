"""Any atom numbering (issue 12): bond-graph symmetry, labelling classes, mapping onto the model's
labelling in every place a geometry enters, and refusal of what is not the model's molecule.

Inputs are made as a stranger would: random permutations of all atoms (not only automorphisms),
hydrogens first, and frames of the other labelling class (H6 and H7 swapped)."""
import os

import numpy as np
import pytest
from ase import Atoms

from nxplugin.calculator import DipoleCalculator, RPRCalculator
from nxplugin.errors import GeometryError, ModelDomainError
from nxplugin.model import symmetry
from nxplugin.model.atommap import AtomMapper
from nxplugin.model.descriptors import symmetry_pair_permutations
from nxplugin.model.modelfile import load_model
from nxplugin.reference.datasets import read_dataset
from nxplugin.reference.molecules import dce

HERE = os.path.dirname(__file__)
SHIPPED = os.path.join(HERE, "..", "calculators", "dce-gfn2xtb")
OTHER_CLASS = np.array([0, 1, 2, 3, 4, 5, 7, 6])            # H6 <-> H7: the other labelling class
HYDROGENS_FIRST = np.array([4, 5, 6, 7, 0, 1, 2, 3])


@pytest.fixture(scope="module")
def model():
    return load_model(os.path.join(SHIPPED, "model.npz"))


@pytest.fixture(scope="module")
def frames():
    return read_dataset(os.path.join(SHIPPED, "data", "test.extxyz.gz"), index=":40")


def issue_class(x):
    """The issue's handedness product for DCE atoms in the order C, C, Cl, Cl, H, H, H, H."""
    h0 = np.dot(x[2] - x[0], np.cross(x[4] - x[0], x[5] - x[0]))
    h1 = np.dot(x[3] - x[1], np.cross(x[6] - x[1], x[7] - x[1]))
    return np.sign(h0 * h1)


def random_order(rng, n=8):
    return rng.permutation(n)


def test_dce_bond_graph_automorphisms_and_classes(model):
    mapper = model.atom_mapper
    assert sorted(map(tuple, mapper.bonds.tolist())) == [(0, 1), (0, 2), (0, 4), (0, 5), (1, 3), (1, 6), (1, 7)]
    assert len(mapper.automorphisms) == 8
    assert len(mapper.class_preserving) == 4
    # the class-preserving ones are the trans minimum's symmetries, which the energy kernel averaged over
    trans = dce("trans").positions
    from nxplugin.model.descriptors import pair_distances
    expected = {tuple(p) for p in symmetry_pair_permutations(model.numbers, pair_distances(trans))}
    assert {tuple(symmetry.pair_permutation(a)) for a in mapper.class_preserving} == expected
    assert {tuple(p) for p in model.pair_permutations_} == expected
    # the class test agrees with the issue's formula on every automorphism of the reference
    for a in mapper.automorphisms:
        same = symmetry.same_class(symmetry.handedness(trans[a], mapper.centres, mapper.triples),
                                   mapper.reference_signs)
        assert same == (issue_class(trans[a]) == issue_class(trans))


def test_shipped_data_all_in_one_class(model, frames):
    assert len({issue_class(x) for x in frames["positions"]}) == 1
    assert {issue_class(x[OTHER_CLASS]) for x in frames["positions"]} == {-issue_class(frames["positions"][0])}


def test_any_permutation_gives_the_same_prediction(model, frames):
    rng = np.random.default_rng(12)
    ref = model.predict(frames["positions"])
    for k, x in enumerate(frames["positions"][:25]):
        for order in [random_order(rng), random_order(rng), HYDROGENS_FIRST, OTHER_CLASS]:
            atoms = Atoms(frames["numbers"][order], positions=x[order])
            atoms.calc = RPRCalculator(model)
            e, f, mu = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_dipole_moment()
            alpha = atoms.calc.results["polarizability"]
            assert abs(e - ref["energy"][k]) <= 1e-10 * abs(ref["energy"][k])
            np.testing.assert_allclose(mu, ref["dipole"][k], rtol=0, atol=1e-10 * np.linalg.norm(ref["dipole"][k]))
            np.testing.assert_allclose(alpha, ref["polarizability"][k], rtol=0, atol=1e-10 * np.abs(alpha).max())
            np.testing.assert_allclose(f, ref["forces"][k][order], rtol=0, atol=1e-8)


def test_model_invariant_under_its_class_preserving_relabellings(model, frames):
    """Exact invariance (averaging over the class-preserving automorphisms), whichever is picked."""
    x = frames["positions"][:20]
    ref = model.predict(x)
    for a in model.atom_mapper.class_preserving:
        p = model.predict(x[:, a])
        np.testing.assert_allclose(p["energy"], ref["energy"], rtol=1e-10, atol=0)
        np.testing.assert_allclose(p["dipole"], ref["dipole"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(p["polarizability"], ref["polarizability"], rtol=0, atol=1e-11)
        np.testing.assert_allclose(p["forces"], ref["forces"][:, a], rtol=0, atol=1e-8)


def test_both_classes_same_accuracy_and_unmapped_would_fail(model, frames):
    from ase.units import kcal, mol
    x, energies = frames["positions"], frames["energies"]
    mapped = model.predict(x[:, OTHER_CLASS], numbers=frames["numbers"])
    raw = model.predict(x[:, OTHER_CLASS])
    rmse = lambda p: np.sqrt(np.mean((p["energy"] - energies) ** 2)) / (kcal / mol)
    assert rmse(mapped) == pytest.approx(rmse(model.predict(x)), rel=1e-9) and rmse(mapped) < 0.1
    assert rmse(raw) > 10            # the issue's failure, which the mapping removes


def test_cached_map_follows_a_changed_numbering(model, frames):
    """One calculator, same element sequence, atoms swapped between calls: the cheap check notices."""
    x, numbers = frames["positions"][:3], frames["numbers"]
    ref = model.predict(x)
    atoms = Atoms(numbers, positions=x[0])
    atoms.calc = RPRCalculator(model)
    for k, order in enumerate([np.arange(8), OTHER_CLASS, np.array([0, 1, 2, 3, 6, 5, 4, 7])]):
        atoms.positions = x[k][order]
        assert atoms.get_potential_energy() == pytest.approx(ref["energy"][k], rel=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), ref["forces"][k][order], atol=1e-8)


def _tetrahedral(centre, axis, lengths, phase=0.0):
    """Three substituent positions (Angstrom) around ``centre``, opposite ``axis`` (unit vector)."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    u = np.cross(axis, [0.0, 0.0, 1.0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    out = []
    for k, r in enumerate(lengths):
        phi = phase + 2 * np.pi * k / 3
        d = -axis / 3 + np.sqrt(8) / 3 * (np.cos(phi) * u + np.sin(phi) * v)
        out.append(centre + r * d)
    return out


def test_not_the_model_molecule_is_refused(model):
    c0, c1 = np.zeros(3), np.array([1.52, 0.0, 0.0])
    sub0 = _tetrahedral(c0, [1.0, 0, 0], [1.78, 1.78, 1.09])              # Cl, Cl, H on C0
    sub1 = _tetrahedral(c1, [-1.0, 0, 0], [1.09, 1.09, 1.09], 0.5)        # H, H, H on C1
    dichloro11 = np.array([c0, c1, sub0[0], sub0[1], sub0[2], *sub1])
    trans = dce("trans")
    with pytest.raises(ModelDomainError, match=r"other bonds: .*C\(C,Cl,Cl,H\) \(atom 0\)"):
        model.predict(dichloro11, numbers=trans.numbers)
    broken = trans.positions.copy()
    broken[3] += 1.5 * (broken[3] - broken[1]) / np.linalg.norm(broken[3] - broken[1])
    atoms = Atoms(trans.numbers, positions=broken, calculator=RPRCalculator(model))
    with pytest.raises(ModelDomainError, match=r"1 C-Cl bonds where the model has 2"):
        atoms.get_potential_energy()
    with pytest.raises(ModelDomainError, match=r"the model is for C2Cl2H4 \(8 atoms\), got C2Cl2H3"):
        model.predict(trans.positions[:7], numbers=trans.numbers[:7])
    extra = Atoms(list(trans.symbols) + ["H"], positions=np.vstack([trans.positions, [[5.0, 5.0, 5.0]]]))
    with pytest.raises(ModelDomainError, match="got C2Cl2H5"):
        model.predict(extra.positions, numbers=extra.numbers)
    assert issubclass(ModelDomainError, GeometryError) and issubclass(ModelDomainError, ValueError)


def test_dipole_smooth_through_the_symmetric_minimum(model):
    """Finite differences along straight paths through the trans minimum, atoms shuffled, a fresh map
    at every point: no jump and no kink where the class-preserving maps tie."""
    rng = np.random.default_rng(3)
    trans = dce("trans")
    order = rng.permutation(8)
    h = 1e-4
    t = np.arange(-10, 11) * h
    for _ in range(3):
        v = rng.normal(size=(8, 3))
        v /= np.linalg.norm(v)
        path = trans.positions[None] + t[:, None, None] * v
        mu = np.array([model.predict(x[order], numbers=trans.numbers[order])["dipole"] for x in path])
        for x, m in zip(path[:3], mu[:3]):     # the mapper is found afresh: same as a new process
            model.atom_mapper._key = None
            np.testing.assert_allclose(model.predict(x[order], numbers=trans.numbers[order])["dipole"], m, atol=1e-14)
        slope = np.diff(mu, axis=0) / h
        # smooth: neighbouring finite-difference slopes differ by O(h), a kink or jump by O(1)
        assert np.abs(np.diff(slope, axis=0)).max() < 1e-3 * np.abs(slope).max() + 1e-6


def test_newtonx_step_with_permuted_geom(tmp_path, model, frames):
    from nxplugin.newtonx import files, interface
    from ase import units
    x = frames["positions"][0]
    order = HYDROGENS_FIRST[[0, 2, 1, 3, 5, 4, 7, 6]]
    symbols = [Atoms(frames["numbers"]).get_chemical_symbols()[i] for i in order]
    files.write_geom(tmp_path / "geom", symbols, x[order] / units.Bohr, model.masses[order])
    control = dict(zip(files.CONTROL_D_FIELDS, [8, 0, 1, 1, 0, 1, 0.5, 0.0, 10.0, 0, 200, 0, 100.0,
                                                1, 0.0, 0.0, 1, 0.5, 0.5]))
    files.write_control_d(tmp_path / "control.d", control)
    out = interface.run_step(model, str(tmp_path), results_dir=str(tmp_path / "RESULTS"))
    ref = model.predict(x)
    assert out["energy"] * units.Hartree == pytest.approx(ref["energy"], rel=1e-10)
    grad = files.read_numbers(tmp_path / "grad", columns=3) * units.Hartree / units.Bohr
    np.testing.assert_allclose(grad, -ref["forces"][order], atol=1e-7)


def test_calculators_as_ase_expects(model, frames):
    calc = RPRCalculator(model, ood_threshold=2.5)
    assert calc.todict() == {"ood_threshold": 2.5} and calc.ood_threshold == 2.5
    calc.set(ood_threshold=1.0)
    assert calc.todict() == {} and calc.parameters["ood_threshold"] == 1.0

    class Counting:
        def __init__(self):
            self.calls = 0

        def __call__(self, *args, **kwargs):
            self.calls += kwargs.get("numbers") is not None     # the mapped call (it calls predict again)
            return type(model).predict(model, *args, **kwargs)

    from ase.calculators.lj import LennardJones   # any base calculator: energy and forces come from it
    counting = Counting()
    model.predict = counting
    try:
        dip = DipoleCalculator(model, LennardJones())
        x = frames["positions"][:2]
        atoms = Atoms(frames["numbers"][HYDROGENS_FIRST], positions=x[0][HYDROGENS_FIRST], calculator=dip)
        for k in range(2):
            atoms.positions = x[k][HYDROGENS_FIRST]
            atoms.get_potential_energy(), atoms.get_forces(), atoms.get_dipole_moment()
        assert counting.calls == 2                          # one prediction per geometry
        np.testing.assert_allclose(atoms.get_dipole_moment(), type(model).predict(model, x[1])["dipole"], atol=1e-11)
    finally:
        del model.predict


def test_mapper_on_a_molecule_without_stereo_centres():
    """Water: two automorphisms, one class (no stereo centre); any order maps."""
    numbers = np.array([8, 1, 1])
    water = np.array([[0.0, 0.0, 0.117], [0.0, 0.757, -0.467], [0.0, -0.757, -0.467]])
    mapper = AtomMapper(numbers, water, np.array([16.0, 1.0, 1.0]))
    assert len(mapper.automorphisms) == 2 and len(mapper.class_preserving) == 2
    order = mapper.order(numbers[[1, 0, 2]], water[[1, 0, 2]])
    np.testing.assert_array_equal(numbers[[1, 0, 2]][order], numbers)


def _write_frames(path, data, orders):
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator
    frames = []
    for k, order in enumerate(orders):
        atoms = Atoms(data["numbers"][order], positions=data["positions"][k][order])
        atoms.calc = SinglePointCalculator(atoms, energy=data["energies"][k], forces=data["forces"][k][order],
                                           dipole=data["dipoles"][k])
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


@pytest.mark.slow
def test_train_on_other_class_or_shuffled_atoms_gives_the_same_model(tmp_path, dce_data):
    import json
    import subprocess
    import sys
    n = 160
    rng = np.random.default_rng(5)
    shuffled = HYDROGENS_FIRST[rng.permutation(4).tolist() + (4 + rng.permutation(4)).tolist()]
    variants = {"original": [np.arange(8)] * n,
                "mixed_classes": [OTHER_CLASS if k % 2 else np.arange(8) for k in range(n)],
                "shuffled_other_class": [OTHER_CLASS[shuffled]] * n}
    errors = {}
    for name, orders in variants.items():
        _write_frames(tmp_path / f"{name}.extxyz", {k: v[:n] if k != "numbers" else v for k, v in dce_data.items()},
                      orders)
        done = subprocess.run([sys.executable, "-m", "nxplugin.cli", "train", str(tmp_path / f"{name}.extxyz"),
                               "-o", str(tmp_path / f"{name}.npz"), "--n-train", "120", "--n-test", "40"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        model = load_model(tmp_path / f"{name}.npz")
        errors[name] = model.training_["test_errors"]
        np.testing.assert_array_equal(model.numbers, dce("trans").numbers)     # the reference's labelling
    for name in variants:
        for key in ("energy_kcal_mol", "forces_kcal_mol_A", "dipole_D"):
            assert errors[name][key] == pytest.approx(errors["original"][key], rel=1e-6), (name, key)
    assert errors["original"]["energy_kcal_mol"] < 0.5
