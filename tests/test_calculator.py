import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.lj import LennardJones
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet

from nxplugin import DipoleCalculator, RPRCalculator
from nxplugin.errors import GeometryError, ModelDomainError


def atoms_at(dce_data, n):
    return Atoms(dce_data["numbers"], positions=dce_data["positions"][n])


def test_results_in_ase_units_and_model_values(dce_data, dce_model):
    atoms = atoms_at(dce_data, 255)
    atoms.calc = RPRCalculator(dce_model)
    pred = dce_model.predict(atoms.positions)
    assert atoms.get_potential_energy() == pytest.approx(pred["energy"])
    assert atoms.get_potential_energy(force_consistent=True) == pytest.approx(pred["energy"])
    # the calculator maps the atoms onto one of the symmetry-equivalent labellings: round-off only
    np.testing.assert_allclose(atoms.get_forces(), pred["forces"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(atoms.get_dipole_moment(), pred["dipole"], rtol=0, atol=1e-13)
    assert "ood_score" in atoms.calc.results
    # GFN2-xTB labels are eV and e*Angstrom: the prediction matches the reference to ML accuracy
    assert atoms.get_potential_energy() == pytest.approx(dce_data["energies"][255], abs=0.02)
    np.testing.assert_allclose(atoms.get_dipole_moment(), dce_data["dipoles"][255], atol=0.02)
    atoms.positions[0, 0] += 0.01                      # a move is noticed by the light check_state
    assert atoms.get_potential_energy() != pytest.approx(pred["energy"], abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), dce_model.predict(atoms.positions)["forces"], rtol=0, atol=1e-9)
    atoms.get_forces()[:] = 0.0                          # callers get copies
    assert np.abs(atoms.get_forces()).max() > 0
    other = atoms_at(dce_data, 256)                      # another Atoms object on the same calculator
    other.calc = atoms.calc
    np.testing.assert_allclose(other.get_dipole_moment(), dce_model.predict(other.positions)["dipole"], atol=1e-13)
    np.testing.assert_allclose(atoms.get_dipole_moment(), dce_model.predict(atoms.positions)["dipole"], atol=1e-13)
    assert atoms.calc.atoms.positions is not atoms.positions        # the calculator keeps its own copy
    ethane = Atoms("C2H6", positions=np.random.default_rng(0).normal(scale=2.0, size=(8, 3)))
    ethane.calc = atoms.calc
    with pytest.raises(ModelDomainError, match=r"the model is for C2Cl2H4 \(8 atoms\), got C2H6"):
        ethane.get_potential_energy()


def test_bad_atoms_raise(dce_data, dce_model):
    calc = RPRCalculator(dce_model)
    atoms = atoms_at(dce_data, 0)
    atoms.pbc = True; atoms.cell = [20, 20, 20]
    atoms.calc = calc
    with pytest.raises(GeometryError, match="periodic cell"):
        atoms.get_potential_energy()
    swapped = atoms_at(dce_data, 0)[[0, 1, 4, 3, 2, 5, 6, 7]]     # atoms renumbered: mapped (issue 12)
    swapped.calc = RPRCalculator(dce_model)
    np.testing.assert_allclose(swapped.get_forces(), dce_model.predict(dce_data["positions"][0])["forces"][
        [0, 1, 4, 3, 2, 5, 6, 7]], atol=1e-9)
    wrong = atoms_at(dce_data, 0)                                  # a Cl and an H trade places
    wrong.positions = wrong.positions[[0, 1, 4, 3, 2, 5, 6, 7]]
    wrong.calc = RPRCalculator(dce_model)
    with pytest.raises(ModelDomainError, match="other bonds"):
        wrong.get_forces()


def test_ood_warning_once(dce_data, dce_model):
    atoms = atoms_at(dce_data, 0)
    atoms.calc = RPRCalculator(dce_model)
    atoms.get_potential_energy()
    atoms.positions *= 1.15                   # bonds stretched but not broken: the OOD score's job
    with pytest.warns(UserWarning, match="beyond the training data"):
        atoms.get_potential_energy()
    assert atoms.calc.n_out_of_domain == 1
    atoms.positions *= 1.4 / 1.15             # every bond broken: not the model's molecule any more
    with pytest.raises(ModelDomainError, match="0 C-C bonds where the model has 1"):
        atoms.get_potential_energy()


@pytest.mark.slow
def test_nve_conserves_energy(dce_data, dce_model):
    """Velocity Verlet, 0.5 fs, 2 ps at ~300 K: total energy drift and fluctuation stay tiny."""
    atoms = Atoms(dce_data["numbers"], positions=dce_data["reference"])
    atoms.calc = RPRCalculator(dce_model)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0), force_temp=True)
    Stationary(atoms); ZeroRotation(atoms)
    etot = []
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dyn.attach(lambda: etot.append(atoms.get_total_energy()), interval=10)
    dyn.run(4000)
    etot = np.array(etot)
    drift = np.polyfit(np.arange(len(etot)) * 5e-3, etot, 1)[0]        # eV per ps
    assert abs(drift) < 1e-4 and np.ptp(etot) < 5e-3, (drift, np.ptp(etot))


def test_infrared_runs_on_rpr_calculator(tmp_path, dce_data, dce_model, monkeypatch):
    from ase.optimize import BFGS
    from ase.vibrations import Infrared
    monkeypatch.chdir(tmp_path)
    atoms = Atoms(dce_data["numbers"], positions=dce_data["reference"])
    atoms.calc = RPRCalculator(dce_model)
    BFGS(atoms, logfile=None).run(fmax=1e-4)
    ir = Infrared(atoms, name="ir", delta=0.005)
    ir.run()
    freqs = ir.get_frequencies()
    intens = ir.intensities * 42.255                    # (D/Angstrom)^2/amu to km/mol (ASE)
    assert np.all(np.abs(freqs[:6]) < 50)               # translations and rotations
    assert 2900 < freqs[-1].real < 3300                   # C-H stretches
    assert intens[6:].max() > 1.0


def test_dipole_calculator_delegates(dce_data, dce_model):
    atoms = atoms_at(dce_data, 260)
    base = LennardJones()
    atoms.calc = DipoleCalculator(dce_model, base)
    e = atoms.get_potential_energy()
    ref = atoms.copy(); ref.calc = LennardJones()
    assert e == pytest.approx(ref.get_potential_energy())
    np.testing.assert_allclose(atoms.get_forces(), ref.get_forces())
    np.testing.assert_allclose(atoms.get_dipole_moment(), dce_model.predict(atoms.positions)["dipole"])
