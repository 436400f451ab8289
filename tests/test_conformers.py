"""Dihedrals, trans/gauche labels and populations of X-CH2-CH2-X molecules."""
import numpy as np
import pytest
from ase import Atoms

from nxplugin.analysis import conformers

# trans-1,2-dichloroethane (C, C, Cl, Cl, H, H, H, H), Angstrom
DCE = np.array([[0.000, 0.000, 0.766], [0.000, 0.000, -0.756], [0.000, 1.650, 1.370],
                [0.000, -1.655, -1.381], [0.891, -0.515, 1.148], [-0.891, -0.510, 1.142],
                [0.896, 0.507, -1.144], [-0.895, 0.510, -1.146]])


def test_find_dihedral_in_dichloroethane():
    atoms = Atoms("C2Cl2H4", positions=DCE)
    assert conformers.find_dihedral(atoms.numbers, atoms.positions) in [(2, 0, 1, 3), (3, 1, 0, 2)]
    with pytest.raises(ValueError, match="give the four atom indices"):
        conformers.find_dihedral(Atoms("H2O").numbers, np.eye(3))


def test_dihedral_series_matches_ase():
    atoms = Atoms("C2Cl2H4", positions=DCE)
    frames = []
    for angle in (180.0, 65.0, -70.0, 10.0):
        copy = atoms.copy()
        copy.set_dihedral(2, 0, 1, 3, angle, mask=[0, 1, 0, 1, 0, 0, 1, 1])
        copy.rotate(37 * angle, (1, 2, 3))
        frames.append(copy)
    got = conformers.dihedral_series([a.positions for a in frames], (2, 0, 1, 3))
    expected = [a.get_dihedral(2, 0, 1, 3) for a in frames]
    np.testing.assert_allclose(np.mod(got, 360), np.mod(expected, 360), atol=1e-8)
    wrapped = np.mod(got - [180.0, 65.0, -70.0, 10.0] + 180, 360) - 180
    np.testing.assert_allclose(wrapped, 0, atol=1e-6)
    assert np.all((got > -180) & (got <= 180))
    with pytest.raises(ValueError, match="four different atoms"):
        conformers.dihedral_series([DCE], (0, 0, 1, 2))


def test_classify_with_hysteresis_and_transitions():
    phi = np.array([100, 170, -130, 115, 125, -175, 95, 60, 100, 130, 140, -160, 180])
    labels = conformers.classify(phi)
    T, G = conformers.TRANS, conformers.GAUCHE
    # 100 deg before any core: plain cut (gauche); 115/125/95 after trans core: stay trans
    np.testing.assert_array_equal(labels, [G, T, T, T, T, T, T, G, G, G, G, T, T])
    assert conformers.count_transitions(labels) == 3
    plain = conformers.classify(phi, margin_deg=0.0)
    np.testing.assert_array_equal(plain, np.where(np.abs(phi) > 120, T, G))


def test_populations_with_error_between_trajectories():
    T, G = conformers.TRANS, conformers.GAUCHE
    runs = [[T] * 6 + [G] * 4, [T] * 8 + [G] * 2]
    result = conformers.populations(runs)
    assert result["trans"][0] == pytest.approx(0.7)
    assert result["gauche"][0] == pytest.approx(0.3)
    assert result["trans"][1] == pytest.approx(np.std([0.6, 0.8], ddof=1) / np.sqrt(2))
    blocks = conformers.populations(runs[:1], n_blocks=2)
    assert blocks["trans"] == pytest.approx((0.6, 0.4))
    assert np.isnan(conformers.populations(runs[:1])["trans"][1])


def test_transitions_count_core_changes_not_barrier_recrossings_in_any_angle_range():
    def transitions(phi):
        return conformers.count_transitions(conformers.classify(phi))
    path = [180, 175, 100, 70, 65, 130, 185, 300, 290, 181]          # degrees in [0, 360)
    assert transitions(path) == 4
    assert transitions([(p + 180) % 360 - 180 for p in path]) == 4    # the same path in (-180, 180]
    assert transitions([180, 120, 178, 121, 180, 239, 182]) == 0       # recrossings of the band only
    assert transitions([290, 68, 70]) == 0                             # gauche- to gauche+: one conformer
