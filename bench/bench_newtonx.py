"""Cost of the Newton-X step program against one GFN2-xTB call on the same molecule.

    python bench/bench_newtonx.py [--molecule CH3CH2OH] [--steps 1000]

Prints wall times (not a test): one ``nxplugin newtonx step`` call as Newton-X makes it (a new process,
start included), the same through a running ``nxplugin newtonx serve``, the step done in-process, 1000
emulated Newton-X steps (files in TEMP/ each step, velocity Verlet in atomic units), and one GFN2-xTB
energy + gradient (tblite.ase.TBLite). The model is a small RPR model fitted to GFN2-xTB labels.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

import numpy as np
from ase import units
from ase.build import molecule

from nxplugin.newtonx import interface as newtonx
from nxplugin.newtonx import files as newtonx_io
from nxplugin.model.modelfile import load_model, save_model
from nxplugin.model.estimator import RPRModel


def _median_time(function, repeats):
    return statistics.median(timeit.repeat(function, number=1, repeat=repeats))


def _control(nat, istep, dt_fs):
    values = [nat, istep, 1, 1, 0, 1, dt_fs, istep * dt_fs, 1e6, 0, 200, 0, 0.0, 1, 0.0, 0.0, 1, 0.5, 0.5]
    return dict(zip(newtonx_io.CONTROL_D_FIELDS, values))


def emulate(model, trajectory, atoms, *, n_steps, dt_fs=0.5):
    """Newton-X's loop: geom and control.d in TEMP/, the step program, grad back; velocity Verlet (a.u.)."""
    temp = os.path.join(trajectory, "TEMP")
    os.makedirs(temp, exist_ok=True)
    symbols, masses_amu = atoms.get_chemical_symbols(), atoms.get_masses()
    masses = masses_amu[:, None] * (units._amu / units._me)
    dt = dt_fs * units.fs / units.AUT
    x, v = atoms.positions / units.Bohr, np.zeros((len(atoms), 3))

    def acceleration(istep, x):
        newtonx_io.write_geom(os.path.join(temp, "geom"), symbols, x, masses_amu, decimals=16)
        newtonx_io.write_control_d(os.path.join(temp, "control.d"), _control(len(atoms), istep, dt_fs))
        newtonx.run_step(model, temp)
        return -newtonx_io.read_numbers(os.path.join(temp, "grad"), columns=3) / masses

    a = acceleration(0, x)
    for istep in range(1, n_steps + 1):
        x = x + v * dt + 0.5 * a * dt**2
        a_new = acceleration(istep, x)
        v = v + 0.5 * (a + a_new) * dt
        a = a_new


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--molecule", default="CH3CH2OH", help="ase.build.molecule name (default CH3CH2OH)")
    parser.add_argument("--steps", type=int, default=1000, help="emulated Newton-X steps (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the per-call timings (default 5)")
    args = parser.parse_args()

    from tblite.ase import TBLite

    atoms = molecule(args.molecule)
    rng = np.random.default_rng(0)
    xtb = TBLite(method="GFN2-xTB", verbosity=0)
    positions, energies, dipoles = [], [], []
    for _ in range(60):
        sample = atoms.copy()
        sample.positions += rng.normal(scale=0.03, size=sample.positions.shape)
        sample.calc = xtb
        energies.append(sample.get_potential_energy())
        dipoles.append(sample.get_dipole_moment())
        positions.append(sample.positions.copy())

    def one_xtb_call():
        sample = atoms.copy()
        sample.positions += rng.normal(scale=0.01, size=sample.positions.shape)
        sample.calc = TBLite(method="GFN2-xTB", verbosity=0)
        sample.get_forces()

    xtb_time = _median_time(one_xtb_call, args.repeats)

    with tempfile.TemporaryDirectory() as work:
        model_path = os.path.join(work, "model.npz")
        model = RPRModel(sigma=1.0, lam=1e-6).fit(atoms.numbers, positions, energies=energies, dipoles=dipoles,
                                                  masses=atoms.get_masses(), reference=atoms.positions)
        save_model(model, model_path)
        model = load_model(model_path)
        temp = os.path.join(work, "traj", "TEMP")
        os.makedirs(temp)
        newtonx_io.write_geom(os.path.join(temp, "geom"), atoms.get_chemical_symbols(),
                              atoms.positions / units.Bohr, atoms.get_masses())
        newtonx_io.write_control_d(os.path.join(temp, "control.d"), _control(len(atoms), 0, 0.5))
        command = [sys.executable, "-m", "nxplugin.cli", "newtonx", "step", "--model", model_path]
        subprocess_time = _median_time(lambda: subprocess.run(command, cwd=temp, check=True), args.repeats)
        python_start = _median_time(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.repeats)

        socket_path = os.path.join(work, "nx.sock")
        server = subprocess.Popen([*command[:4], "serve", "--model", model_path, "--socket", socket_path])
        try:
            while not os.path.exists(socket_path):
                if server.poll() is not None:
                    raise RuntimeError("nxplugin newtonx serve did not start")
                time.sleep(0.05)
            served_time = _median_time(lambda: subprocess.run([*command, "--socket", socket_path], cwd=temp,
                                                              check=True), args.repeats)
        finally:
            server.terminate()
            server.wait()
        in_process = _median_time(lambda: newtonx.run_step(model, temp), 20)
        start = time.perf_counter()
        emulate(model, os.path.join(work, "emulated"), atoms, n_steps=args.steps)
        emulated = time.perf_counter() - start

    print(f"molecule {args.molecule} ({len(atoms)} atoms), median of {args.repeats} calls; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'what':58s} {'wall time':>12s}")
    rows = [("python start alone (python -c pass)", python_start),
            ("step program, new process (nxplugin newtonx step)", subprocess_time),
            ("step program, new process via 'serve' (--socket)", served_time),
            ("step in-process (run_step: files + model)", in_process),
            (f"{args.steps} emulated Newton-X steps, in-process, total", emulated),
            ("  per emulated step", emulated / args.steps),
            ("one GFN2-xTB energy + gradient (tblite.ase.TBLite)", xtb_time)]
    for label, seconds in rows:
        print(f"{label:58s} {seconds * 1e3:10.1f} ms")
    print(f"step program (new process) / GFN2-xTB call: {subprocess_time / xtb_time:.2f}; "
          f"via serve: {served_time / xtb_time:.2f}; in-process step: {in_process / xtb_time:.3f}")


if __name__ == "__main__":
    main()
