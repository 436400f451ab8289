"""The ``nxplugin newtonx`` command: bad input names the file, setup writes a runnable folder."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms, units
from ase.io import write

from nxplugin.newtonx import files as newtonx_io
from nxplugin.cli import main
from nxplugin.newtonx.interface import read_control_dyn, read_geom, read_veloc, write_control_d, write_geom

from test_newtonx import WATER, make_water_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return str(make_water_model(tmp_path_factory.mktemp("model") / "water.npz"))


def _temp(tmp_path, *, geom=None, nat=3, nstat=1, control=True):
    temp = tmp_path / "TEMP"
    temp.mkdir()
    if geom is None:
        write_geom(temp / "geom", ["O", "H", "H"], WATER / units.Bohr, [15.999, 1.008, 1.008])
    else:
        (temp / "geom").write_text(geom)
    if control:
        values = [nat, 0, nstat, 1, 0, 1, 0.5, 0.0, 10.0, 0, 200, 0, 0.0, 1, 0.0, 0.0, 1, 0.5, 0.5]
        write_control_d(temp / "control.d", dict(zip(newtonx_io.CONTROL_D_FIELDS, values)))
    return temp


def _step(temp, model_path, capsys):
    code = main(["newtonx", "step", "--model", model_path, "--directory", str(temp)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("geom, nat, match", [
    (" O 8.0 0 0 0 15.999\n H 1.0 0 0 1.8 1.008\n", 3, r"geom: 2 atoms, but control.d says nat=3"),
    (" O 8.0 0 0 nan 15.999\n H 1.0 0 0 1.8 1.008\n H 1.0 0 1.8 0 1.008\n", 3, r"geom:1: non-finite"),
    (" O 8.0 0 0 0 15.999\n Xx 1.0 0 0 1.8 1.008\n H 1.0 0 1.8 0 1.008\n", 3, r"geom:2: unknown element 'Xx'"),
    (" N 7.0 0 0 0 14.0\n H 1.0 0 0 1.9 1.008\n H 1.0 0 1.9 0 1.008\n H 1.0 1.9 0 0 1.008\n", 4, r"geom: "),
])      # atoms in another order are mapped, not refused (tests/test_numbering.py)
def test_step_bad_geom_names_the_file(tmp_path, model_path, capsys, geom, nat, match):
    temp = _temp(tmp_path, geom=geom, nat=nat)
    code, err = _step(temp, model_path, capsys)
    assert code == 2
    assert str(temp / "geom") in err
    import re
    assert re.search(match, err), err
    assert not (temp / "epot").exists()


def test_step_missing_control_d_and_excited_states(tmp_path, model_path, capsys):
    temp = _temp(tmp_path, control=False)
    code, err = _step(temp, model_path, capsys)
    assert code == 2 and f"{temp / 'control.d'}: no such file" in err
    write_control_d(temp / "control.d", dict(zip(newtonx_io.CONTROL_D_FIELDS,
                                                [3, 0, 3, 2, 0, 1, 0.5, 0.0, 10.0, 0, 200, 0, 100.0, 1, 0.0, 0.0, 1, 0.5, 0.5])))
    code, err = _step(temp, model_path, capsys)
    assert code == 2 and "control.d: nstat=3, nstatdyn=2" in err


def test_step_subprocess_imports_no_ase_and_writes_outputs(tmp_path, model_path):
    temp = _temp(tmp_path)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "nxplugin.cli", "newtonx", "step",
                           "--model", model_path], cwd=temp, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    modules = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "nxplugin.model.modelfile" in modules
    assert not {m for m in modules if m.split(".")[0] in ("ase", "matplotlib")}
    assert newtonx_io.read_numbers(temp / "epot").shape == (1, 1)
    assert newtonx_io.read_numbers(temp / "grad", columns=3).shape == (3, 3)
    assert (tmp_path / "RESULTS" / "nxplugin-dipoles.dat").read_text().startswith("# nxplugin dipole side file")


def test_step_subprocess_bad_model_for_molecule_exits_nonzero(tmp_path, model_path):
    temp = _temp(tmp_path, geom=" N 7.0 0 0 0 14.0\n H 1.0 0 0 1.9 1.008\n H 1.0 0 1.9 0 1.008\n H 1.0 1.9 0 0 1.008\n",
                 nat=4)
    done = subprocess.run([sys.executable, "-m", "nxplugin.cli", "newtonx", "step", "--model", model_path],
                          cwd=temp, capture_output=True, text=True)
    assert done.returncode == 2 and "geom" in done.stderr and "Traceback" not in done.stderr


def test_help_states_units(capsys):
    assert main(["newtonx", "setup", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "time step, fs > 0" in text and "velocities, K >= 0" in text and "[--dt FS]" in text


def test_setup_writes_a_runnable_trajectory_folder(tmp_path, model_path, capsys):
    frames = [Atoms("OH2", positions=WATER + 0.01 * i) for i in range(3)]
    write(tmp_path / "md.traj", frames)
    out = tmp_path / "traj"
    code = main(["newtonx", "setup", str(tmp_path / "md.traj"), "--frame", "1", "--model", model_path,
                 "-o", str(out), "--temperature", "500", "--dt", "0.25", "--tmax", "50", "--seed", "1"])
    assert code == 0, capsys.readouterr().err
    symbols, numbers, positions, masses = read_geom(out / "geom", nat=3)
    np.testing.assert_allclose(positions * units.Bohr, frames[1].positions, atol=1e-8)
    velocities = read_veloc(out / "veloc", nat=3)
    np.testing.assert_allclose(masses @ velocities, 0, atol=1e-7)      # no net momentum (amu*bohr/au time)
    assert np.abs(velocities).max() > 1e-5
    control = read_control_dyn(out / "control.dyn")
    assert control == {"nat": 3, "nstat": 1, "nstatdyn": 1, "dt": 0.25, "tmax": 50.0, "prog": 0.0, "thres": 0,
                       "killstat": 1, "timekill": 0, "ndamp": 0, "lvprt": 1, "kt": 1, "nxrestart": 0}
    analyt = (out / "JOB_AD" / "analyt.par").read_text()
    assert "anmod" in analyt and str(out / "JOB_AD" / "nxplugin-step.sh") in analyt
    perl = (out / "run-nxplugin.pl").read_text()
    assert os.path.abspath(model_path) in perl and os.access(out / "run-nxplugin.pl", os.X_OK)
    assert "colib_perl.pm" in (out / "colib_perl-entry.txt").read_text()
    if shutil.which("perl"):
        assert subprocess.run(["perl", "-c", str(out / "run-nxplugin.pl")], capture_output=True).returncode == 0

    # what moldyn.pl does for step 0: copy the job folder and geom into TEMP/, write control.d, run
    temp = out / "TEMP"
    shutil.copytree(out / "JOB_AD", temp)
    shutil.copy(out / "geom", temp / "geom")
    values = [3, 0, 1, 1, 0, 1, 0.25, 0.0, 50.0, 0, 200, 0, 0.0, 1, 0.0, 0.0, 1, 0.5, 0.5]
    write_control_d(temp / "control.d", dict(zip(newtonx_io.CONTROL_D_FIELDS, values)))
    done = subprocess.run(["sh", str(temp / "nxplugin-step.sh")], cwd=temp, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (temp / "epot").exists() and (out / "RESULTS" / "nxplugin-dipoles.dat").exists()

    code = main(["newtonx", "setup", str(tmp_path / "md.traj"), "--model", model_path, "-o", str(out)])
    assert code == 2 and "already holds a geom" in capsys.readouterr().err


def test_persistent_mode_serves_steps_and_errors(tmp_path, model_path, capsys):
    import threading

    from nxplugin.commands.newtonx import step_through_server
    from nxplugin.model.modelfile import load_model
    from nxplugin.newtonx.interface import serve

    socket_path = str(tmp_path / "nx.sock")
    assert step_through_server(socket_path, tmp_path) is None                 # no server: caller falls back
    server = threading.Thread(target=serve, args=(load_model(model_path), socket_path), kwargs={"max_requests": 3})
    server.start()
    for _ in range(100):
        if os.path.exists(socket_path):
            break
        threading.Event().wait(0.02)
    temp = _temp(tmp_path)
    assert step_through_server(socket_path, temp) == (0, "")
    first = (temp / "epot").read_text()
    status, error = step_through_server(socket_path, tmp_path / "nowhere")
    assert status == 2 and "control.d: no such file" in error
    code = main(["newtonx", "step", "--model", model_path, "--directory", str(temp), "--socket", socket_path])
    assert code == 0 and (temp / "epot").read_text() == first
    server.join(timeout=10)
    assert not server.is_alive() and not os.path.exists(socket_path)
    assert len((tmp_path / "RESULTS" / "nxplugin-dipoles.dat").read_text().splitlines()) == 4 + 2


def test_serve_command_exits_cleanly_on_sigterm_and_removes_its_socket(tmp_path, model_path):
    import signal
    import time
    socket_path = tmp_path / "s.sock"
    server = subprocess.Popen([sys.executable, "-m", "nxplugin.cli", "newtonx", "serve", "--model", model_path,
                               "--socket", str(socket_path)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not socket_path.exists() and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.05)
    assert socket_path.exists()
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0, server.stderr.read()
    assert not socket_path.exists()
