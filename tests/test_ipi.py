"""nxplugin as an i-PI client: the protocol, a real i-PI on a unix socket (classical and 4 beads),
the recorded dipoles, energy conservation against ASE, and reading i-PI's files back."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation

from nxplugin.analysis import ipi_files
from nxplugin.calculator import RPRCalculator
from nxplugin.cli import main
from nxplugin.errors import DataFileError, GeometryError, ModelDomainError
from nxplugin.ipi import IPIClient, inputs, protocol
from nxplugin.reference.molecules import dce

MODEL = os.path.join(os.path.dirname(__file__), "..", "calculators", "dce-gfn2xtb", "model.npz")


def _ipi_command():
    try:
        import ipi  # noqa: F401
    except ImportError as err:                       # not installed, or installed but broken
        pytest.skip(f"i-PI is not importable ({err}); pip install nxplugin[ipi]")
    script = shutil.which("i-pi") or os.path.join(os.path.dirname(sys.executable), "i-pi")
    if not os.path.exists(script):
        pytest.skip("ipi is importable but its i-pi script is not installed")
    return [sys.executable, script]


@pytest.fixture(scope="module")
def model():
    from nxplugin.model.modelfile import load_model
    return load_model(MODEL)


def start_atoms(conformer="gauche", seed=3):
    atoms = dce(conformer)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed), force_temp=True)
    Stationary(atoms)
    ZeroRotation(atoms)
    return atoms


def ipi_input(tmp_path, atoms, *, steps, beads=1, batch_size=1, thermostat="nve"):
    """Write init files and input.xml (every step saved); i-PI's socket goes in tmp_path."""
    inputs.write_xyz(tmp_path / "init.xyz", atoms)
    inputs.write_xyz(tmp_path / "vel.xyz", atoms, velocities=True)
    (tmp_path / "input.xml").write_text(inputs.simulation_xml(
        address="sock", steps=steps, beads=beads, batch_size=batch_size, thermostat=thermostat,
        velocities="vel.xyz" if beads == 1 else None, prefix="sim", stride=1, properties_stride=1,
        sockets_prefix=f"{tmp_path}/", verbosity="quiet"))


def start_ipi(tmp_path):
    log = open(tmp_path / "ipi.log", "w")
    process = subprocess.Popen(_ipi_command() + ["input.xml"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return process


def serve(tmp_path, model, **kwargs):
    """Run i-PI on tmp_path/input.xml against an IPIClient; (client summary, i-PI's exit code)."""
    process = start_ipi(tmp_path)
    try:
        with IPIClient(model, unix="sock", sockets_prefix=f"{tmp_path}/", **kwargs) as client:
            try:
                client.connect(timeout=60)
            except TimeoutError as err:
                raise AssertionError(f"i-PI did not open its socket; its log:\n{(tmp_path / 'ipi.log').read_text()}") from err
            summary = client.serve()
        return summary, process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def check_recorded_dipoles(tmp_path, model):
    """Dipoles and polarizabilities i-PI recorded equal the model's at the positions it recorded."""
    data = ipi_files.read_beads(sorted(glob.glob(str(tmp_path / "sim.*_*"))))
    beads, positions = data["positions"]
    assert data["dipole"][0] == beads
    pred = model.predict(positions.reshape(-1, len(model.numbers), 3))
    # positions are written with 6 significant digits (%12.5e): 1e-5 Angstrom -> ~1e-5 e*Angstrom
    np.testing.assert_allclose(data["dipole"][1].reshape(-1, 3), pred["dipole"], atol=2e-4)
    np.testing.assert_allclose(data["polarizability"][1].reshape(-1, 3, 3), pred["polarizability"], atol=2e-3)
    return data


def test_parse_init():
    assert protocol.parse_init("") == ("", 1)
    assert protocol.parse_init(" ") == (" ", 1)
    assert protocol.parse_init(" batch_size:8") == ("", 8)
    assert protocol.parse_init(" a : 1 , b : x , , batch_size:4") == ("a : 1 , b : x ,", 4)
    with pytest.raises(protocol.IPIProtocolError, match="batch size 'x'"):
        protocol.parse_init(" batch_size:x")
    with pytest.raises(protocol.IPIProtocolError, match="at least 1"):
        protocol.parse_init(" batch_size:0")


def test_compute_matches_calculator_in_atomic_units(model):
    atoms = start_atoms()
    calc = RPRCalculator(model)
    atoms.calc = calc
    other = atoms.positions + np.random.default_rng(1).normal(scale=0.02, size=atoms.positions.shape)
    client = IPIClient(model, unix="unused")
    batch = np.array([atoms.positions, other, other]) / units.Bohr       # i-PI pads by repeating
    energies, forces, virials, extras = client.compute(batch)
    assert client.n_predicted == 2
    import json
    for k, positions in enumerate([atoms.positions, other, other]):
        atoms.positions = positions
        assert energies[k] == pytest.approx(atoms.get_potential_energy() / units.Hartree, rel=1e-10)
        np.testing.assert_allclose(forces[k], atoms.get_forces() * units.Bohr / units.Hartree, atol=1e-9)
        extra = json.loads(extras[k])
        np.testing.assert_allclose(extra["dipole"], atoms.get_dipole_moment() / units.Bohr, atol=1e-9)
        np.testing.assert_allclose(extra["polarizability"], calc.results["polarizability"] / units.Bohr**3,
                                   atol=1e-8)
        assert extra["ood_score"] == pytest.approx(calc.results["ood_score"], rel=1e-9)
    assert not virials.any()


def test_client_rejects_bad_input(model):
    with pytest.raises(ValueError, match="either unix"):
        IPIClient(model)
    with pytest.raises(ValueError, match="port=0"):
        IPIClient(model, host="127.0.0.1", port=0)
    bromo = dce("gauche")
    bromo.numbers[2] = 35
    with pytest.raises(ModelDomainError, match="Br"):
        IPIClient(model, unix="x", numbers=bromo.numbers)
    client = IPIClient(model, unix="x")
    with pytest.raises(GeometryError, match="non-finite"):
        client.compute(np.full((1, 8, 3), np.nan))
    with pytest.raises(TimeoutError, match="no i-PI listening"):
        IPIClient(model, unix="nothing-here", sockets_prefix="/nonexistent/").connect(timeout=0.3)


def test_atoms_in_any_order_are_mapped_and_forces_come_back_in_ipi_order(model):
    order = np.array([7, 2, 5, 0, 4, 1, 6, 3])                  # hydrogens and chlorines first
    atoms = start_atoms()
    reference = IPIClient(model, unix="x").compute(atoms.positions[None] / units.Bohr)
    shuffled = IPIClient(model, unix="x", numbers=atoms.numbers[order])
    energies, forces, _, extras = shuffled.compute(atoms.positions[order][None] / units.Bohr)
    assert energies[0] == pytest.approx(reference[0][0], rel=1e-10)
    np.testing.assert_allclose(forces[0], reference[1][0][order], atol=1e-10)
    import json
    np.testing.assert_allclose(json.loads(extras[0])["dipole"], json.loads(reference[3][0])["dipole"], atol=1e-10)


def test_cli_checks_the_structure_before_waiting(tmp_path, capsys):
    bromo = dce("gauche")
    bromo.numbers[2] = 35
    inputs.write_xyz(tmp_path / "start.xyz", bromo)
    assert main(["ipi", "--unix", "none", "--sockets-prefix", f"{tmp_path}/", "--structure",
                 str(tmp_path / "start.xyz"), "--wait", "30"]) == 2
    assert "Br" in capsys.readouterr().err
    inputs.write_xyz(tmp_path / "start.xyz", dce("gauche")[[2, 0, 1, 3, 4, 5, 6, 7]])   # any order is fine
    assert main(["ipi", "--unix", "none", "--sockets-prefix", f"{tmp_path}/", "--structure",
                 str(tmp_path / "start.xyz"), "--wait", "0.2"]) == 2
    assert "no i-PI listening on unix socket" in capsys.readouterr().err


def test_classical_run_records_the_model_dipoles(tmp_path, model):
    ipi_input(tmp_path, start_atoms(), steps=30)
    summary, code = serve(tmp_path, model)
    assert code == 0
    assert summary["ended"] == "exit" and summary["batch_size"] == 1
    assert summary["requests"] == summary["structures"] == 31                  # step 0 and 30 steps
    data = check_recorded_dipoles(tmp_path, model)
    assert data["steps"].tolist() == list(range(31))
    assert np.abs(data["dipole"][1]).max() > 0.1                                # gauche: a real dipole


def test_four_beads_are_one_batched_prediction(tmp_path, model, capsys):
    ipi_input(tmp_path, start_atoms(), steps=20, beads=4, batch_size=4, thermostat="pile_l")
    summary, code = serve(tmp_path, model)
    assert code == 0 and summary["ended"] == "exit"
    assert summary["batch_size"] == 4 and summary["requests"] == 21 and summary["structures"] == 84
    data = check_recorded_dipoles(tmp_path, model)
    assert data["dipole"][1].shape == (4, 21, 3)
    assert np.ptp(data["positions"][1][:, -1], axis=0).max() > 1e-3            # the beads spread out
    trajectory = ipi_files.read_run(sorted(glob.glob(str(tmp_path / "sim.*_*"))), timestep_fs=0.5)
    np.testing.assert_allclose(trajectory.dipoles, data["dipole"][1].mean(axis=0))
    np.testing.assert_allclose(trajectory.positions, data["positions"][1].mean(axis=0))
    # the spectrum command reads the run (all beads, extras and xyz) as one centroid trajectory
    files = sorted(glob.glob(str(tmp_path / "sim.dip_*"))) + sorted(glob.glob(str(tmp_path / "sim.pos_*")))
    assert main(["spectrum", *files, "--depth", "4", "--out", str(tmp_path / "s.csv"), "--quiet"]) == 2
    assert main(["spectrum", *files, "--timestep", "0.5", "--temperature", "300", "--depth", "4",
                 "--out", str(tmp_path / "s.csv"), "--quiet"]) == 0
    assert "1 trajectories, 21 frames of 0.5 fs" in capsys.readouterr().out
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)[:, 1].max() > 0


def test_unbatched_beads_and_the_cli_client_exit_with_ipi(tmp_path):
    ipi_input(tmp_path, start_atoms(), steps=10, beads=4, thermostat="pile_l")
    process = start_ipi(tmp_path)
    try:
        result = subprocess.run([sys.executable, "-m", "nxplugin.cli", "ipi", "--unix", "sock",
                                 "--sockets-prefix", f"{tmp_path}/", "--wait", "60"],
                                capture_output=True, text=True, timeout=120)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert result.returncode == 0, result.stderr
    assert "ended the run: 44 requests, 44 structures (batch size 1" in result.stdout


def test_client_exits_when_ipi_is_killed(tmp_path, model):
    ipi_input(tmp_path, start_atoms(), steps=100000)
    process = start_ipi(tmp_path)
    client = IPIClient(model, unix="sock", sockets_prefix=f"{tmp_path}/")
    result = {}
    thread = threading.Thread(target=lambda: result.update(client.connect(timeout=60).serve()))
    thread.start()
    try:
        for _ in range(600):                      # until a few steps are done
            thread.join(0.1)
            if client.n_requests > 5:
                break
        process.send_signal(signal.SIGKILL)
        thread.join(30)
        assert not thread.is_alive()
        assert result["ended"] == "closed" and result["requests"] > 5
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_nve_conserves_energy_as_well_as_ase(tmp_path, model):
    from ase.md.verlet import VelocityVerlet

    atoms = start_atoms(seed=11)
    n_steps = 400
    ipi_input(tmp_path, atoms, steps=n_steps)
    summary, code = serve(tmp_path, model)
    assert code == 0
    table = np.loadtxt(tmp_path / "sim.out")
    ipi_total = table[:, 2]                          # step, time, conserved, temperature, kinetic_cv, potential
    assert len(ipi_total) == n_steps + 1
    atoms.set_masses(model.masses)
    atoms.calc = RPRCalculator(model)
    ase_total, ase_potential = [], []

    def record():
        ase_total.append(atoms.get_total_energy())
        ase_potential.append(atoms.get_potential_energy())

    dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dynamics.attach(record, interval=1)
    dynamics.run(n_steps)
    ase_fluctuation, ipi_fluctuation = np.std(ase_total), np.std(ipi_total)
    assert ase_fluctuation > 0
    print(f"energy fluctuation (std) over {n_steps} steps: i-PI {ipi_fluctuation:.3g} eV, ASE {ase_fluctuation:.3g} eV")
    assert ipi_fluctuation < 1.5 * ase_fluctuation, (ipi_fluctuation, ase_fluctuation)
    # the same start and integrator: the same potential energy, step by step, until the trajectories
    # drift apart (i-PI's masses differ from ASE's in the last digits)
    np.testing.assert_allclose(table[:100, 5], ase_potential[:100], atol=1e-3)


def test_reader_errors(tmp_path):
    (tmp_path / "sim.raw_0").write_text(" #EXTRAS(raw)# Step:           0 \n{'dipole': [0, 0, 0]}\n")
    with pytest.raises(DataFileError, match="extra_type='dipole'"):
        ipi_files.read_extras(tmp_path / "sim.raw_0")
    (tmp_path / "sim.dip_0").write_text(" #EXTRAS(dipole)# Step: 0 \n 1 2 3\n #EXTRAS(dipole)# Step: 2 \n 1 2\n")
    with pytest.warns(UserWarning, match="incomplete"):
        steps, values = ipi_files.read_extras(tmp_path / "sim.dip_0")
    assert steps.tolist() == [0] and values["dipole"][0] == pytest.approx(np.array([1, 2, 3]) * units.Bohr)
    (tmp_path / "sim.dip_0").write_text("".join(f" #EXTRAS(dipole)# Step: {s} \n 1 2 3\n" for s in (0, 2, 3)))
    with pytest.raises(DataFileError, match="evenly spaced"):
        ipi_files.read_run([tmp_path / "sim.dip_0"], timestep_fs=1.0)
    (tmp_path / "sim.dip_0").write_text("".join(f" #EXTRAS(dipole)# Step: {s} \n 1 2 3\n" for s in (0, 2, 4)))
    with pytest.raises(DataFileError, match="--timestep"):
        ipi_files.read_run([tmp_path / "sim.dip_0"])
    assert ipi_files.read_run([tmp_path / "sim.dip_0"], timestep_fs=1.0).n_frames == 3


def test_xyz_round_trip_in_units(tmp_path):
    atoms = start_atoms(seed=5)
    inputs.write_xyz(tmp_path / "p.xyz", atoms)
    inputs.write_xyz(tmp_path / "v.xyz", atoms, velocities=True)
    steps, numbers, quantity, positions = ipi_files.read_xyz(tmp_path / "p.xyz")
    assert quantity == "positions" and numbers.tolist() == atoms.numbers.tolist()
    np.testing.assert_allclose(positions[0], atoms.positions, rtol=1e-14)
    _, _, quantity, velocities = ipi_files.read_xyz(tmp_path / "v.xyz")
    assert quantity == "velocities"
    np.testing.assert_allclose(velocities[0], atoms.get_velocities() * units.fs, rtol=1e-12)   # Angstrom/fs
    (tmp_path / "x.xyz").write_text((tmp_path / "p.xyz").read_text().replace("{angstrom}", "{furlong}", 1))
    with pytest.raises(DataFileError, match="'furlong'"):
        ipi_files.read_xyz(tmp_path / "x.xyz")
    assert not ipi_files.is_ipi_file(tmp_path) and not ipi_files.is_ipi_file(tmp_path / "missing")
