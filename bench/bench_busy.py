"""One MD-step call of RPRCalculator on a busy node: BLAS threads as the environment sets them
against one thread (the library's default), side by side in one run.

Usage (from the repository root)::

    python bench/bench_busy.py [--busy 2] [--calls 300] [--kernel numpy]

``--busy`` processes spin on the CPU while the calls are timed (as other jobs on a shared node
would). ``blas_threads=None`` is what every version before the restructure did (OpenBLAS starts as
many threads as cores unless OPENBLAS_NUM_THREADS/OMP_NUM_THREADS say otherwise); ``blas_threads=1``
is the default now. Prints min / median / max microseconds per call for both, interleaved in rounds
so that both see the same load.
"""
import argparse
import multiprocessing
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def spin(stop):
    x = 0
    while not stop.is_set():
        for _ in range(10000):
            x += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2, help="spinning processes (default 2)")
    parser.add_argument("--calls", type=int, default=300, help="calls per round (default 300)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kernel", default="numpy", choices=["numpy", "compiled", "auto"])
    args = parser.parse_args()

    import nxplugin
    from nxplugin.reference.molecules import dce

    model = nxplugin.load_model(nxplugin.shipped_model())
    model.kernel = args.kernel
    atoms = dce("trans")
    atoms.calc = nxplugin.RPRCalculator(model)
    rng = np.random.default_rng(0)
    walk = [atoms.positions + rng.normal(scale=0.01, size=atoms.positions.shape) for _ in range(args.calls)]
    stop = multiprocessing.Event()
    workers = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for w in workers:
        w.start()
    times = {None: [], 1: []}
    try:
        for threads in (None, 1):                 # warm both
            model.blas_threads = threads
            atoms.positions = walk[0] + 0.001
            atoms.get_forces()
        for _ in range(args.rounds):
            for threads in (None, 1):
                model.blas_threads = threads
                for x in walk:
                    start = time.perf_counter()
                    atoms.positions = x
                    atoms.get_forces()
                    times[threads].append(time.perf_counter() - start)
    finally:
        stop.set()
        for w in workers:
            w.join()
    print(f"RPRCalculator energy+forces+dipole call, shipped model, {model.kernel_backend} kernel, "
          f"{args.busy} busy processes on {os.cpu_count()} cores, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for threads, label in ((None, "blas_threads=None (environment)"), (1, "blas_threads=1 (default)")):
        t = np.array(times[threads]) * 1e6
        print(f"  {label:32s} min {t.min():8.0f} us  median {np.median(t):8.0f} us  max {t.max():9.0f} us")
    print(f"  median ratio environment / one thread: {np.median(times[None]) / np.median(times[1]):.1f}x")


if __name__ == "__main__":
    main()
