"""Benchmark: one RPRCalculator call against one GFN2-xTB call, and training with the search.

Usage::

    python bench/bench_core.py [--sizes 1000 5000] [--repeat 2000]

Side by side in one run on the shipped DCE data (calculators/dce-gfn2xtb/data/train.extxyz.gz): for
each training size N, the time of training with the hyperparameter search, and of one MD-step call
(energy + forces + dipole through ASE, a new geometry each call) of ``RPRCalculator`` and of
``tblite.ase.TBLite`` (GFN2-xTB, default settings), and their ratio. Also the bare model prediction.
Both kernel backends when numba is installed: numpy, and compiled (:mod:`nxplugin.model.compiled`).
"""
import argparse
import os
import time
import warnings

import numpy as np
from ase import Atoms

from nxplugin.calculator import RPRCalculator
from nxplugin.reference.datasets import read_dataset, subset
from nxplugin.model.estimator import RPRModel

DATA = os.path.join(os.path.dirname(__file__), "..", "calculators", "dce-gfn2xtb", "data", "train.extxyz.gz")


def time_calls(atoms, calc, geometries):
    """Seconds per energy+forces+dipole call. The model's out-of-domain warning is kept out of the
    table: the count is in ``calc.n_out_of_domain`` and printed after the row."""
    atoms = atoms.copy()
    atoms.calc = calc
    atoms.positions = geometries[0]
    atoms.get_forces(), atoms.get_dipole_moment()                  # warm-up
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="geometry beyond the training data")
        start = time.perf_counter()
        for x in geometries:
            atoms.positions = x
            atoms.get_potential_energy(), atoms.get_forces(), atoms.get_dipole_moment()
        return (time.perf_counter() - start) / len(geometries)


def backends():
    """Kernel backends to time: numpy always, the compiled one when numba is installed."""
    return ["numpy", "compiled"] if RPRModel().kernel_backend == "compiled" else ["numpy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeat", type=int, default=2000, help="calls timed per calculator")
    args = parser.parse_args()
    from tblite.ase import TBLite

    data = read_dataset(DATA)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data["positions"]))
    base = Atoms(data["numbers"], positions=data["positions"][0])
    geometries = data["positions"][order[-200:]]
    walk = [geometries[k % 200] + rng.normal(scale=0.002, size=(8, 3)) for k in range(args.repeat)]
    t_xtb = time_calls(base, TBLite(method="GFN2-xTB", verbosity=0), walk[:300])
    print(f"GFN2-xTB (tblite) energy+forces+dipole: {t_xtb * 1e3:.2f} ms per call")
    for n in args.sizes:
        train = subset(data, order[:n])
        start = time.perf_counter()
        model = RPRModel().fit(train["numbers"], train["positions"], energies=train["energies"],
                               dipoles=train["dipoles"], polarizabilities=train["polarizabilities"])
        t_fit = time.perf_counter() - start
        print(f"N = {n}: training with search {t_fit:.1f} s")
        from bench_ensemble import cost_floor
        floor = cost_floor(model)
        for kernel in backends():
            model.kernel = kernel
            calc = RPRCalculator(model)
            t_calc = time_calls(base, calc, walk)
            start = time.perf_counter()
            for x in walk:
                model.predict(x)
            t_pred = (time.perf_counter() - start) / len(walk)
            print(f"  {kernel:>8}: RPRCalculator call {t_calc * 1e6:.0f} us "
                  f"(model.predict {t_pred * 1e6:.0f} us) = {t_calc / floor:.1f}x the floor; "
                  f"GFN2-xTB / RPRCalculator = {t_xtb / t_calc:.1f}x")
            if calc.n_out_of_domain:
                print(f"  {'':>8}  ({calc.n_out_of_domain} of {len(walk) + 1} timed geometries beyond the "
                      f"training data of N = {n}: ood_score > {calc.ood_threshold:g}, max "
                      f"{calc.max_ood_score:.2f})")


if __name__ == "__main__":
    main()
