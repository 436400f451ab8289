"""Newton-X CS interface: the step program, run setup and trajectory reader.

Units: Newton-X's files are in atomic units (bohr, Hartree, Hartree/bohr, bohr per atomic time unit,
amu masses, fs times); nxplugin models work in Angstrom, eV, eV/Angstrom and e*Angstrom. This module
converts between them, once, with the constants of :mod:`nxplugin.newtonx.files` on the step path (no ASE
import there) and with ``ase.units`` names elsewhere. The file formats themselves live in
:mod:`nxplugin.newtonx.files`, whose readers and writers are re-exported here.
"""
import os
import shlex
import sys
import warnings

import numpy as np

from nxplugin.errors import DataFileError, GeometryError
from nxplugin.newtonx.files import (  # noqa: F401  (re-exported)
    BOHR, HARTREE, SIDE_FILE, append_side_file, read_control_d, read_control_dyn, read_geom, read_side_file,
    read_veloc, write_control_d, write_control_dyn, write_epot, write_geom, write_grad, write_veloc, atomic_write)
from nxplugin.newtonx.results import (  # noqa: F401  (re-exported)
    format_dyn_out, format_dyn_xyz, read_dyn_out, read_dyn_xyz, read_en_dat)


# ---------------------------------------------------------------- step program
def run_step(model, directory=".", *, results_dir=None):
    """Do one Newton-X step: read ``geom`` and ``control.d``, predict, write ``epot``, ``grad``, ``grad.all``.

    Parameters
    ----------
    model : nxplugin model
        Ground-state model with ``predict``, ``numbers`` and ``check_geometry`` (see :mod:`nxplugin.model.modelfile`).
    directory : str, default="."
        Newton-X's ``TEMP/`` folder of the trajectory.
    results_dir : str, optional
        Where the dipole side file :data:`SIDE_FILE` is appended; default ``<directory>/../RESULTS``.

    Returns
    -------
    dict
        ``energy`` (Hartree), ``gradient`` (nat, 3) Hartree/bohr, ``dipole`` (3,) e*bohr,
        ``polarizability`` (3, 3) bohr**3 or None, ``time`` (fs).

    Notes
    -----
    ``epot``, ``grad`` and ``grad.all`` left from the previous step are removed first, so a failed step
    never leaves an old answer behind; each is then written whole (temporary file and ``os.replace``).

    Raises
    ------
    DataFileError
        Missing or bad ``control.d`` or ``geom``, or a run with excited states (nstat > 1 or nstatdyn > 1).
    GeometryError
        A geometry the model cannot take (overlapping atoms, or :class:`ModelDomainError`: not the
        model's molecule); names ``geom``. Atoms may come in any order.
    """
    outputs = [os.path.join(directory, name) for name in ("epot", "grad", "grad.all")]
    for path in outputs:  # a failed step must not leave the previous step's answer for Newton-X to read
        if os.path.exists(path):
            os.remove(path)  # (also makes the os.replace below cheap: ext4 flushes on replacing a file)
    control_path = os.path.join(directory, "control.d")
    control = read_control_d(control_path)
    if control["nstat"] != 1 or control["nstatdyn"] != 1:
        raise DataFileError(
            f"{control_path}: nstat={control['nstat']}, nstatdyn={control['nstatdyn']}; nxplugin models "
            "give the ground state only: set nstat = 1 and nstatdyn = 1 in control.dyn")
    geom_path = os.path.join(directory, "geom")
    _, numbers, positions_bohr, _ = read_geom(geom_path, nat=control["nat"])
    positions = positions_bohr * BOHR
    try:  # geom in Newton-X's own atom order: mapped onto the model's; grad comes back in geom's order
        prediction = model.predict(positions[None], numbers=numbers)
    except GeometryError as err:
        raise type(err)(f"{geom_path}: {err}") from err
    energy = float(prediction["energy"][0]) / HARTREE
    gradient = -np.asarray(prediction["forces"][0]) * (BOHR / HARTREE)
    dipole = np.asarray(prediction["dipole"][0]) / BOHR
    alpha = prediction.get("polarizability")
    alpha = None if alpha is None else np.asarray(alpha[0]) / BOHR**3
    write_epot(outputs[0], [energy])
    write_grad(outputs[1], gradient)
    write_grad(outputs[2], gradient)
    results_dir = os.path.join(directory, os.pardir, "RESULTS") if results_dir is None else results_dir
    os.makedirs(results_dir, exist_ok=True)
    append_side_file(os.path.join(results_dir, SIDE_FILE), control["t"], dipole, alpha)
    return {"energy": energy, "gradient": gradient, "dipole": dipole, "polarizability": alpha,
            "time": control["t"]}


def serve(model, socket_path, *, max_requests=None):
    """Keep ``model`` loaded and do Newton-X steps for clients of a Unix socket (persistent mode).

    Each request is one JSON line ``{"directory": TEMP, "results": RESULTS or null}`` (or
    ``{"shutdown": true}``); the answer is one JSON line ``{"status": 0 or 2, "error": message}``.
    Requests are served one at a time, as Newton-X's steps come. The socket file is removed on exit.
    Clients: ``nxplugin newtonx step --socket PATH`` (see :mod:`nxplugin.commands.newtonx`, which
    also turns SIGTERM into a clean exit). The socket file is removed however the loop ends.
    """
    import json
    import socket

    from nxplugin.errors import NxPluginError

    if os.path.exists(socket_path):
        os.remove(socket_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(8)
    served = 0
    try:
        while max_requests is None or served < max_requests:
            connection, _ = server.accept()
            with connection, connection.makefile("rw") as stream:
                request = json.loads(stream.readline() or "{}")
                if request.get("shutdown"):
                    stream.write(json.dumps({"status": 0, "error": ""}) + "\n")
                    break
                try:
                    run_step(model, request["directory"], results_dir=request.get("results"))
                    answer = {"status": 0, "error": ""}
                except (NxPluginError, OSError) as err:
                    answer = {"status": 2, "error": str(err)}
                except Exception as err:  # report to the client, keep serving
                    answer = {"status": 2, "error": f"{type(err).__name__}: {err}"}
                stream.write(json.dumps(answer) + "\n")
            served += 1
    finally:
        server.close()
        if os.path.exists(socket_path):
            os.remove(socket_path)


# ---------------------------------------------------------------- trajectory reader
def _results_dir(path):
    path = os.fspath(path)
    return os.path.join(path, "RESULTS") if os.path.isdir(os.path.join(path, "RESULTS")) else path


def _records_from_xyz(results):
    """Steps from ``dyn.xyz`` + ``en.dat`` when there is no ``dyn.out`` (no velocities then)."""
    frames = read_dyn_xyz(os.path.join(results, "dyn.xyz"))
    table = read_en_dat(os.path.join(results, "en.dat"))
    energies = {round(row[0], 6): row for row in table}
    records = []
    for time, symbols, positions in frames:
        row = energies.get(round(time, 6))
        if row is None:
            continue
        states = row[1:-2]
        records.append({"time": time, "symbols": symbols, "positions": positions / BOHR, "masses": None,
                        "velocities": None, "state": int(np.argmin(abs(states - row[-2]))) + 1,
                        "etot": row[-1], "ekin": row[-1] - row[-2], "state_energies": states})
    return records


def read_trajectory(path):
    """Read a Newton-X CS 2.x trajectory folder (or its ``RESULTS/``) as a list of ``ase.Atoms``.

    Parameters
    ----------
    path : str or path-like
        Trajectory folder holding ``RESULTS/``, or the ``RESULTS/`` folder itself. ``dyn.out`` is read;
        without it, ``dyn.xyz`` and ``en.dat``. The nxplugin side file, when present, adds dipoles.

    Returns
    -------
    list of ase.Atoms
        One per printed step, ordered by time, each time once (after a restart the later print wins).
        Positions in Angstrom; velocities (Angstrom per ASE time unit) and masses (amu) when printed;
        ``info['time']`` fs, ``info['state']`` (1-based), ``info['etot']``, ``info['ekin']`` eV,
        ``info['state_energies']`` (nstat,) eV, ``info['populations']`` when printed; a
        SinglePointCalculator with the current state's energy (eV) and, from the side file, the dipole
        (e*Angstrom) and ``info['polarizability']`` (3, 3) Angstrom**3.

    Raises
    ------
    DataFileError
        Neither ``dyn.out`` nor ``dyn.xyz`` + ``en.dat``, or no complete step. Truncated or garbled steps
        are left out with a warning naming file and line.
    """
    from ase import Atoms, units
    from ase.calculators.singlepoint import SinglePointCalculator

    results = _results_dir(path)
    if os.path.exists(os.path.join(results, "dyn.out")):
        records = read_dyn_out(os.path.join(results, "dyn.out"))
    elif os.path.exists(os.path.join(results, "dyn.xyz")) and os.path.exists(os.path.join(results, "en.dat")):
        records = _records_from_xyz(results)
    else:
        raise DataFileError(f"{results}: no dyn.out, nor dyn.xyz with en.dat: not a Newton-X RESULTS folder")
    by_time = {round(rec["time"], 6): rec for rec in records}
    side_path = os.path.join(results, SIDE_FILE)
    side = read_side_file(side_path) if os.path.exists(side_path) else {}
    images = []
    for key in sorted(by_time):
        rec = by_time[key]
        atoms = Atoms(rec["symbols"], positions=rec["positions"] * units.Bohr, masses=rec["masses"])
        if rec["velocities"] is not None:
            atoms.set_velocities(rec["velocities"] * units.Bohr / units.AUT)
        energies = np.asarray(rec["state_energies"]) * units.Hartree
        atoms.info.update(time=rec["time"], state=rec["state"], etot=rec["etot"] * units.Hartree,
                          ekin=rec["ekin"] * units.Hartree, state_energies=energies)
        if "populations" in rec:
            atoms.info["populations"] = rec["populations"]
        results_here = {"energy": energies[rec["state"] - 1]}
        if key in side:
            dipole, alpha = side[key]
            results_here["dipole"] = dipole * units.Bohr
            if alpha is not None:
                atoms.info["polarizability"] = alpha * units.Bohr**3
        atoms.calc = SinglePointCalculator(atoms, **results_here)
        images.append(atoms)
    if side and len(side) < len(images):
        warnings.warn(f"{side_path}: dipoles for {len(set(side) & set(by_time))} of {len(images)} steps",
                      stacklevel=2)
    return images


def write_trajectory(path, images, *, layout="2.6"):
    """Write ``RESULTS/`` files (dyn.out, en.dat, dyn.xyz, side file) as Newton-X CS would, for tests.

    ``images`` are ``ase.Atoms`` with ``info['time']`` (fs), ``info['state']``, ``info['etot']``,
    ``info['ekin']`` and ``info['state_energies']`` in eV, as :func:`read_trajectory` returns them;
    ``layout`` is ``"2.2"`` or ``"2.6"`` (see :func:`nxplugin.newtonx.results.format_dyn_out`).
    """
    from ase import units

    os.makedirs(path, exist_ok=True)
    records, table, frames = [], [], []
    for step, atoms in enumerate(images):
        info = atoms.info
        states = np.asarray(info["state_energies"]) / units.Hartree
        velocities = atoms.get_velocities()
        records.append({"step": step, "time": info["time"], "state": info["state"],
                        "symbols": atoms.get_chemical_symbols(), "numbers": atoms.numbers,
                        "positions": atoms.positions / units.Bohr, "masses": atoms.get_masses(),
                        "velocities": None if velocities is None else velocities * units.AUT / units.Bohr,
                        "etot": info["etot"] / units.Hartree, "ekin": info["ekin"] / units.Hartree,
                        "state_energies": states})
        table.append([info["time"], *states, states[info["state"] - 1], info["etot"] / units.Hartree])
        frames.append((info["time"], atoms.get_chemical_symbols(), atoms.positions))
        if atoms.calc is not None and "dipole" in atoms.calc.results:
            append_side_file(os.path.join(path, SIDE_FILE), info["time"],
                             atoms.calc.results["dipole"] / units.Bohr)
    newline = "\r\n" if layout == "2.2" else "\n"
    with open(os.path.join(path, "dyn.out"), "w", newline="") as handle:
        handle.write(format_dyn_out(records, layout=layout))
    en_text = "".join("".join(f"{v:14.6f}" for v in row) + "\n" for row in table)
    with open(os.path.join(path, "en.dat"), "w", newline="") as handle:
        handle.write(en_text.replace("\n", newline))
    with open(os.path.join(path, "dyn.xyz"), "w", newline="") as handle:
        handle.write(format_dyn_xyz(frames).replace("\n", newline))


# ---------------------------------------------------------------- run setup
_PERL = """#!/usr/bin/env perl
# run-nxplugin.pl: Newton-X CS interface to an nxplugin machine-learned ground-state model.
# Newton-X's moldyn.pl runs it in the trajectory's TEMP/ folder after writing geom and control.d;
# it writes epot, grad and grad.all there (Hartree, Hartree/bohr) and appends the dipole to
# ../RESULTS/{side}. Written by 'nxplugin newtonx setup'.
use strict;
use warnings;
my $model = $ENV{{NXPLUGIN_MODEL}} || '{model}';
my @command = ({python}, '-m', 'nxplugin.cli', 'newtonx', 'step', '--model', $model);
# with NXPLUGIN_SOCKET set, a running 'nxplugin newtonx serve' does the step (model kept loaded)
push @command, '--socket', $ENV{{NXPLUGIN_SOCKET}} if $ENV{{NXPLUGIN_SOCKET}};
system(@command) == 0 or die "run-nxplugin.pl: '@command' failed in TEMP/ (exit status $?)\\n";
exit 0;
"""

_COLIB = """# Newton-X CS: register nxplugin in $NX/colib_perl.pm the way the Q-Chem and TeraChem interfaces are
# registered: give it a free program number and, where colib_perl.pm maps program numbers to
# run-<name>.pl scripts, map that number to "nxplugin", e.g.
#     nxplugin => {prog_number}, # machine-learned ground-state PES (nxplugin)
# then copy run-nxplugin.pl next to the other run-*.pl scripts in $NX/ and set prog = {prog_number}
# in control.dyn. Compare with the Q-Chem or TeraChem entry of your Newton-X version.
"""


def setup_trajectory(directory, atoms, *, model_path, temperature_K=300.0, dt_fs=0.5, tmax_fs=100.0,
                     seed=None, route="analytical", prog_number=30.0, python=None):
    """Write a ready Newton-X CS trajectory folder for a ground-state nxplugin run.

    Parameters
    ----------
    directory : str
        Folder to create (must not hold a ``geom`` yet).
    atoms : ase.Atoms
        Initial geometry (Angstrom), in the model's atom order; masses from ``atoms``.
    model_path : str
        nxplugin model file; its absolute path goes into the scripts.
    temperature_K : float, default=300.0
        Temperature of the Maxwell-Boltzmann velocities (K); net momentum is removed.
    dt_fs, tmax_fs : float, default=0.5, 100.0
        Time step and length of the run in fs.
    seed : int, optional
        Seed of the velocity draw.
    route : {"analytical", "perl"}, default="analytical"
        Which ``prog`` goes into control.dyn: 0 (analytical-model program, ``JOB_AD/analyt.par``) or
        ``prog_number`` (``run-nxplugin.pl`` registered in colib_perl.pm). Both routes are written.
    python : str, optional
        Python interpreter the scripts call; default the running one.

    Returns
    -------
    list of str
        Paths written.
    """
    from ase import units
    from ase.md import velocitydistribution

    from nxplugin.model.modelfile import load_model

    if os.path.exists(os.path.join(directory, "geom")):
        raise FileExistsError(f"{directory}: already holds a geom; choose a new folder")
    model_path = os.path.abspath(model_path)
    model = load_model(model_path)
    model.check_geometry(atoms.numbers, atoms.positions)
    atoms = atoms.copy()
    thermalize = getattr(velocitydistribution, "thermalize_momenta", None)  # ASE >= 3.28
    thermalize = thermalize or velocitydistribution.MaxwellBoltzmannDistribution
    thermalize(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    velocitydistribution.Stationary(atoms)
    job = os.path.join(directory, "JOB_AD")
    os.makedirs(job, exist_ok=True)
    python = shlex.quote(python or sys.executable)
    step_script = os.path.join(job, "nxplugin-step.sh")
    files = {
        os.path.join(directory, "geom"): None, os.path.join(directory, "veloc"): None,
        step_script: f"#!/bin/sh\n# Run in TEMP/ by Newton-X: one nxplugin step (writes epot, grad, grad.all).\n"
                     f"# With NXPLUGIN_SOCKET set, a running 'nxplugin newtonx serve' does the step.\n"
                     f"exec {python} -m nxplugin.cli newtonx step --model {shlex.quote(model_path)}"
                     ' ${NXPLUGIN_SOCKET:+--socket "$NXPLUGIN_SOCKET"}\n',
        os.path.join(job, "analyt.par"): f" &analyt\n  anmod = 'nxplugin'\n  path = '{os.path.abspath(step_script)}'\n /\n",
        os.path.join(directory, "run-nxplugin.pl"): _PERL.format(
            model=model_path, python="'" + python.strip("'") + "'", side=SIDE_FILE),
        os.path.join(directory, "colib_perl-entry.txt"): _COLIB.format(prog_number=prog_number),
    }
    write_geom(os.path.join(directory, "geom"), atoms.get_chemical_symbols(), atoms.positions / units.Bohr,
               atoms.get_masses())
    write_veloc(os.path.join(directory, "veloc"), atoms.get_velocities() * units.AUT / units.Bohr)
    for path, text in files.items():
        if text is not None:
            atomic_write(path, text)
    for script in (step_script, os.path.join(directory, "run-nxplugin.pl")):
        os.chmod(script, 0o755)
    prog = 0.0 if route == "analytical" else float(prog_number)
    control = {"nat": len(atoms), "nstat": 1, "nstatdyn": 1, "dt": dt_fs, "tmax": tmax_fs, "prog": prog,
               "thres": 0, "killstat": 1, "timekill": 0, "ndamp": 0, "lvprt": 1, "kt": 1, "nxrestart": 0}
    write_control_dyn(os.path.join(directory, "control.dyn"), control)
    return sorted([*files, os.path.join(directory, "control.dyn")])
