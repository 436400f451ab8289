"""Benchmark: wall time per MD step through i-PI (``nxplugin.ipi.IPIClient``) vs ASE in-process.

Usage::

    python bench/bench_ipi.py [--steps 2000] [--pimd-steps 300]

In one run, with the shipped DCE model and BLAS on one thread everywhere:

1. classical NVE (0.5 fs) of gauche-DCE with ASE's VelocityVerlet and ``RPRCalculator`` in this process;
2. the same through i-PI (NVE, a unix socket, frames saved every 2 steps with ``flush=100``);
3. 8-bead PIMD (PILE-L, 300 K) through i-PI with ``<batch_size> 8`` (one batched prediction per step);
4. the same with ``batch_size`` 1 (8 requests, 8 predictions per step);
5. ``model.predict`` of 1 and of 8 geometries with BLAS's default threads (``blas_threads=None``)
   and with one, and the cost of entering and leaving threadpoolctl's ``threadpool_limits`` (why the
   client sets it once per run).

i-PI runs as a subprocess; the client runs in this process and time-stamps every request, so a
step's wall time is (last request - first request) / (requests - 1) per step, excluding i-PI's
start-up. "in client" is the share of that spent in the client's ``compute`` (prediction and unit
conversion); the rest is i-PI and the socket.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from threadpoolctl import threadpool_limits

from nxplugin.calculator import RPRCalculator
from nxplugin.ipi import IPIClient, inputs
from nxplugin.model.modelfile import load_model
from nxplugin.reference.molecules import dce

MODEL = os.path.join(os.path.dirname(__file__), "..", "calculators", "dce-gfn2xtb", "model.npz")


class TimedClient(IPIClient):
    """An IPIClient that records when each request arrives and how long ``compute`` takes."""

    def compute(self, positions_bohr):
        start = time.perf_counter()
        out = super().compute(positions_bohr)
        self.stamps.append((start, time.perf_counter() - start))
        return out


def start_atoms(model):
    atoms = dce("gauche")
    atoms.set_masses(model.masses)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0), force_temp=True)
    Stationary(atoms)
    ZeroRotation(atoms)
    return atoms


def time_ase(model, atoms, n_steps):
    atoms = atoms.copy()
    atoms.calc = RPRCalculator(model)
    dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    with threadpool_limits(1, user_api="blas"):
        dynamics.run(10)
        start = time.perf_counter()
        dynamics.run(n_steps)
    return (time.perf_counter() - start) / n_steps, None


def time_ipi(model, atoms, n_steps, *, beads=1, batch_size=1):
    with tempfile.TemporaryDirectory(prefix="bench_ipi") as tmp:
        inputs.write_xyz(os.path.join(tmp, "init.xyz"), atoms)
        inputs.write_xyz(os.path.join(tmp, "vel.xyz"), atoms, velocities=True)
        with open(os.path.join(tmp, "input.xml"), "w") as handle:
            handle.write(inputs.simulation_xml(
                address="bench", steps=n_steps, beads=beads, batch_size=batch_size,
                thermostat="nve" if beads == 1 else "pile_l", velocities="vel.xyz" if beads == 1 else None,
                prefix="sim", sockets_prefix=f"{tmp}/", verbosity="quiet"))
        script = os.path.join(os.path.dirname(sys.executable), "i-pi")
        with open(os.path.join(tmp, "ipi.log"), "w") as log:
            process = subprocess.Popen([sys.executable, script, "input.xml"], cwd=tmp, stdout=log,
                                       stderr=subprocess.STDOUT)
        try:
            client = TimedClient(model, unix="bench", sockets_prefix=f"{tmp}/")
            client.stamps = []
            client.connect(timeout=120)
            summary = client.serve()
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    requests_per_step = beads // batch_size
    stamps = np.array(client.stamps)
    if summary["ended"] != "exit" or len(stamps) != (n_steps + 1) * requests_per_step:
        raise RuntimeError(f"i-PI run incomplete: {summary}, {len(stamps)} requests")
    # from the first request of step 1 to the first request of the last step: whole steps only
    first, last = requests_per_step, n_steps * requests_per_step
    per_step = (stamps[last, 0] - stamps[first, 0]) / (n_steps - 1)
    in_client = stamps[first:last, 1].sum() / (n_steps - 1)
    return per_step, in_client


def best_of(function, repeat=5, number=20):
    import timeit
    return min(timeit.repeat(function, repeat=repeat, number=number)) / number


def time_predictions(model, atoms):
    rng = np.random.default_rng(0)
    one = atoms.positions
    eight = one + rng.normal(scale=0.01, size=(8,) + one.shape)
    out = {}
    pinned = model.blas_threads
    for threads in (None, 1):          # the model's own pinning off (process default) / on
        model.blas_threads = threads
        out[threads] = (best_of(lambda: model.predict(one)), best_of(lambda: model.predict(eight)))
    model.blas_threads = pinned
    out["limit"] = best_of(lambda: threadpool_limits(1, user_api="blas").restore_original_limits())
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="classical steps (0.5 fs)")
    parser.add_argument("--pimd-steps", type=int, default=300, help="8-bead PIMD steps (0.5 fs)")
    args = parser.parse_args()
    load = os.getloadavg()
    model = load_model(MODEL)
    atoms = start_atoms(model)
    rows = [("classical NVE, ASE VelocityVerlet in-process", time_ase(model, atoms, args.steps)),
            ("classical NVE through i-PI", time_ipi(model, atoms, args.steps)),
            ("8-bead PIMD through i-PI, batch_size 8", time_ipi(model, atoms, args.pimd_steps, beads=8, batch_size=8)),
            ("8-bead PIMD through i-PI, batch_size 1", time_ipi(model, atoms, args.pimd_steps, beads=8))]
    predictions = time_predictions(model, atoms)
    for label, (per_step, in_client) in rows:
        share = "" if in_client is None else f"  ({in_client * 1e3:.2f} ms in the client)"
        print(f"{label:44s} {per_step * 1e3:8.2f} ms/step{share}")
    print(f"load average before/after: {load[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"i-PI / ASE, classical: {rows[1][1][0] / rows[0][1][0]:.1f}x; "
          f"8 beads unbatched / batched: {rows[3][1][0] / rows[2][1][0]:.2f}x")
    from threadpoolctl import threadpool_info
    default = max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")
    for threads, label in ((None, f"default BLAS threads ({default})"), (1, "one BLAS thread")):
        single, batch = predictions[threads]
        print(f"model.predict, {label:26s} 1 geometry {single * 1e3:6.2f} ms, 8 geometries {batch * 1e3:6.2f} ms")
    print(f"entering and leaving threadpool_limits(1): {predictions['limit'] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
