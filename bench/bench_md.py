"""Benchmark: wall time of `nxplugin md` dynamics per step and per ps, next to GFN2-xTB dynamics.

Usage::

    python bench/bench_md.py [--steps 2000] [--xtb-steps 200]

Both run the same thing in one process, one after the other: Langevin dynamics (0.5 fs, 300 K,
frames written every 2 steps) of trans-DCE, with the shipped model through
``nxplugin.md.dynamics.run_trajectory`` (what ``nxplugin md --engine ase`` runs) and with
``tblite.ase.TBLite`` (GFN2-xTB) through the same ASE integrator.
"""
import argparse
import os
import tempfile
import time

import numpy as np
from ase import units
from ase.constraints import FixCom
from ase.md.langevin import Langevin

from nxplugin.md.dynamics import initial_conditions, run_trajectory
from nxplugin.md.settings import MDSettings
from nxplugin.model.modelfile import load_model

MODEL = os.path.join(os.path.dirname(__file__), "..", "calculators", "dce-gfn2xtb", "model.npz")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="model steps (0.5 fs)")
    parser.add_argument("--xtb-steps", type=int, default=200, help="GFN2-xTB steps (0.5 fs)")
    args = parser.parse_args()
    from tblite.ase import TBLite

    model = load_model(MODEL)
    atoms = initial_conditions(model, 1, 300.0, seed=0)[0]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_trajectory(model, atoms, os.path.join(tmp, "t.extxyz"),
                       MDSettings(temperature_K=300.0, timestep_fs=0.5, n_steps=args.steps, interval=2))
        t_model = (time.perf_counter() - start) / args.steps
    xtb = atoms.copy()
    xtb.calc = TBLite(method="GFN2-xTB", verbosity=0)
    xtb.set_constraint(FixCom())
    dyn = Langevin(xtb, 0.5 * units.fs, temperature_K=300.0, friction=0.01 / units.fs, fixcm=False,
                   rng=np.random.default_rng(0))
    dyn.attach(lambda: xtb.get_dipole_moment(), interval=2)
    start = time.perf_counter()
    dyn.run(args.xtb_steps)
    t_xtb = (time.perf_counter() - start) / args.xtb_steps
    per_ps = 2000                                         # steps of 0.5 fs
    print(f"nxplugin md (shipped model, ASE Langevin, frames written): {t_model * 1e3:.3f} ms/step, "
          f"{t_model * per_ps:.2f} s/ps")
    print(f"GFN2-xTB (tblite) ASE Langevin:                           {t_xtb * 1e3:.3f} ms/step, "
          f"{t_xtb * per_ps:.2f} s/ps")
    print(f"speed-up: {t_xtb / t_model:.1f}x")


if __name__ == "__main__":
    main()
