"""Replica-steps per second: batched ensemble vs one ASE dynamics per replica vs GFN2-xTB (tblite).

Usage::

    python bench/bench_ensemble.py [--n-train 5000] [--replica-steps 3000] [--dask]

The model is ``calculators/dce-gfn2xtb/model.npz`` when it exists, otherwise a synthetic DCE model of
``--n-train`` geometries fitted with fixed ``sigma``/``lam`` to made-up smooth labels (a harmonic
energy in the pair distances, eV, and a point-charge dipole, e*Angstrom): its cost per prediction is
that of a real model of the same size. All engines run Langevin MD at 300 K with 0.5 fs steps in
one process, one after the other, on one core each (OMP_NUM_THREADS=1, also for tblite); the
ensemble engines write every 2nd frame (the CLI default).
With ``--dask`` the same ensemble also runs on 2 loky processes and on a 2-worker Dask LocalCluster.
Every row is timed with the numpy kernel sums and, when numba is installed, the compiled ones
(:mod:`nxplugin.model.compiled`); the Dask comparison uses the compiled ones.
"""
import os
os.environ.setdefault("OMP_NUM_THREADS", "1")            # before numpy and tblite load: one core each
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import sys
import tempfile
import time
import timeit

import numpy as np


def synthetic_model(n_train, seed=0):
    from nxplugin.model import descriptors
    from nxplugin.model.estimator import RPRModel
    from nxplugin.reference.molecules import dce

    rng = np.random.default_rng(seed)
    eq = dce("trans").positions
    positions = eq + rng.normal(scale=0.06, size=(n_train, len(eq), 3))
    stretch = descriptors.pair_distances(positions) - descriptors.pair_distances(eq)
    energies = 2.0 * np.sum(stretch**2, axis=1)                      # eV
    charges = np.array([-0.1, -0.1, -0.2, -0.2, 0.15, 0.15, 0.15, 0.15])
    dipoles = np.einsum("a,nai->ni", charges, positions)              # e*Angstrom
    return RPRModel(sigma=1.0, lam=1e-8).fit(dce("trans").numbers, positions, energies=energies,
                                             dipoles=dipoles, reference=eq)


def load_or_make_model(n_train):
    path = os.path.join(os.path.dirname(__file__), "..", "calculators", "dce-gfn2xtb", "model.npz")
    if os.path.exists(path):
        from nxplugin.model.modelfile import load_model
        return load_model(path), os.path.normpath(path)
    return synthetic_model(n_train), f"synthetic, N_train = {n_train}"


def time_xtb(n_steps=20):
    """Seconds per Langevin step of one replica with GFN2-xTB forces (tblite, ASE)."""
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase import units
    from tblite.ase import TBLite

    from nxplugin.reference.molecules import dce
    atoms = dce("trans")
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    atoms.set_constraint(FixCom())
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.01 / units.fs, fixcm=False,
                   rng=np.random.default_rng(0))
    dyn.run(2)
    start = time.perf_counter()
    dyn.run(n_steps)
    return (time.perf_counter() - start) / n_steps


def time_predict(model, n_replicas, seconds=1.0):
    """Seconds per replica of one batched ``model.predict`` call (energy, forces, dipole)."""
    from nxplugin.reference.molecules import dce
    positions = dce("trans").positions + np.random.default_rng(0).normal(scale=0.05, size=(n_replicas, 8, 3))
    model.predict(positions)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        model.predict(positions)
        calls += 1
    return (time.perf_counter() - start) / calls / n_replicas


def cost_floor(model):
    """Lower bound, seconds per replica-step, of any exact evaluation of this model on this core.

    Per replica-step the energy and forces need, for each of the ``n_img`` symmetry images and each
    of the N training points, one dot product of the d descriptor components (the squared distance)
    and one more for the force sum: ``4 n_img N d`` flops, at best at the core's dense matrix-multiply
    rate (measured here on a 1000 x 1000 product); and one exponential per image and per kernel
    width (the dipole and polarizability are averaged over the images too, issue 12):
    ``n_img * widths * N``, at best at the compiled kernel's vectorised rate (numpy's when numba is
    absent).
    """
    n_train, d = model.train_descriptors_.shape
    n_img = len(model.pair_permutations_)
    n_exp = n_img * len(model.outputs_) * n_train
    a = np.random.default_rng(0).normal(size=(1000, 1000))
    a @ a
    start = time.perf_counter()
    for _ in range(3):
        a @ a
    flop_rate = 3 * 2e9 / (time.perf_counter() - start)
    x = np.random.default_rng(0).uniform(0, 1, 20_000)             # in cache, as in the kernel
    try:
        from nxplugin.model.compiled import exp_neg
    except ImportError:
        def exp_neg(v):
            return np.exp(-v)
    exp_time = min(timeit.repeat(lambda: exp_neg(x), number=100, repeat=5)) / 100 / len(x)
    numpy_time = min(timeit.repeat(lambda: np.exp(-x), number=100, repeat=5)) / 100 / len(x)
    print(f"exp(-x) on {len(x)} numbers: {exp_time * 1e9:.2f} ns each (nxplugin), {numpy_time * 1e9:.2f} ns (numpy)")
    flops = 4 * n_img * n_train * d
    print(f"floor for this model (N = {n_train}, d = {d}, {n_img} symmetry images): {flops / 1e6:.2f} Mflop at "
          f"{flop_rate / 1e9:.1f} Gflop/s + {n_exp} exp at {exp_time * 1e9:.2f} ns "
          f"= {(flops / flop_rate + n_exp * exp_time) * 1e6:.0f} us per replica-step")
    return flops / flop_rate + n_exp * exp_time


def time_engine(model, n_replicas, replica_steps, engine, out, min_steps=20, **run):
    from nxplugin.md.dynamics import initial_conditions
    from nxplugin.md.ensemble import run_ensemble
    from nxplugin.md.settings import MDSettings

    n_steps = max(replica_steps // n_replicas, min_steps)
    starts = initial_conditions(model, 2 * n_replicas, 300, seed=1)[::2]   # trans starts
    start = time.perf_counter()
    run_ensemble(model, starts, out, MDSettings(n_steps=n_steps, timestep_fs=0.5, temperature_K=300, interval=2),
                 engine=engine, **run)
    return (time.perf_counter() - start) / (n_steps * n_replicas), n_steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--replica-steps", type=int, default=3000, help="replica-steps per measurement")
    parser.add_argument("--dask", action="store_true", help="also time joblib (loky) vs Dask on 2 workers")
    args = parser.parse_args(argv)

    import warnings
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    model, name = load_or_make_model(args.n_train)
    print(f"model: {name} ({time.perf_counter() - start:.1f} s to load/fit)")
    xtb = time_xtb()
    print(f"GFN2-xTB (tblite) Langevin step: {xtb * 1e3:.2f} ms  -> {1 / xtb:10.1f} replica-steps/s")
    floor = cost_floor(model)
    print(f"  so no exact evaluation of this model on this core beats GFN2-xTB by more than {xtb / floor:.0f}x")
    from bench_core import backends
    print(f"{'replicas':>8} {'kernel':>8} {'engine':>8} {'steps':>6} {'us/replica-step':>16} "
          f"{'replica-steps/s':>16} {'x GFN2-xTB':>11}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        for n in (1, 10, 100):
            for kernel in backends():
                model.kernel = kernel
                for engine in ("ase", "batched"):
                    cost, n_steps = time_engine(model, n, args.replica_steps, engine,
                                                os.path.join(tmp, f"{engine}{n}{kernel}"),
                                                min_steps=1000 if engine == "batched" else 20)
                    print(f"{n:8d} {kernel:>8} {engine:>8} {n_steps:6d} {cost * 1e6:16.1f} {1 / cost:16.1f} "
                          f"{xtb / cost:11.1f}")
                cost = time_predict(model, n)
                print(f"{n:8d} {kernel:>8} {'predict':>8} {'':6} {cost * 1e6:16.1f} {1 / cost:16.1f} "
                      f"{xtb / cost:11.1f}   (model.predict alone, batch of {n})")
        model.kernel = "auto"
        if args.dask:
            from distributed import LocalCluster
            n, steps = 64, 500
            for label, run in [("joblib loky, 2 processes", dict(jobs=2))]:
                cost, _ = time_engine(model, n, n * steps, "batched", os.path.join(tmp, "loky"), chunk_size=16, **run)
                print(f"{label}: {n} replicas x {steps} steps, chunks of 16: wall {cost * n * steps:.2f} s")
            start = time.perf_counter()
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                up = time.perf_counter() - start
                cost, _ = time_engine(model, n, n * steps, "batched", os.path.join(tmp, "dask"), chunk_size=16,
                                      scheduler=cluster.scheduler_address)
            print(f"Dask LocalCluster, 2 workers: {n} replicas x {steps} steps, chunks of 16: wall "
                  f"{cost * n * steps:.2f} s (+ {up:.1f} s cluster start)")


if __name__ == "__main__":
    sys.exit(main())
