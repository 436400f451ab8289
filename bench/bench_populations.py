"""Gauche population of a model at T: the md protocol's estimate against a long reference run.

Usage (from the repository root)::

    python bench/bench_populations.py [--model dce-gfn2xtb] [--temperature 300]
        [--replicas 64] [--time 40] [--discard 20]

Reference: ``--replicas`` Langevin trajectories (friction 0.01/fs, ``FixCom``, 0.5 fs) of ``--time``
ps, started alternately at the trans and gauche minima; the first ``--discard`` ps of each are
dropped and the gauche population is the fraction of the remaining frames, with its standard error
between trajectories. Protocol: what ``nxplugin md`` does by default (32 replicas x 10 ps, two-state
Markov model of the labels, bootstrap error). Both in one run; prints the difference in units of the
combined standard error, and the wall time of each.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nxplugin.md import protocol  # noqa: E402
from nxplugin.md.dynamics import initial_conditions  # noqa: E402
from nxplugin.md.settings import MDSettings  # noqa: E402
from nxplugin.model.modelfile import load_model  # noqa: E402
from nxplugin.shipped import model_path  # noqa: E402


def gauche_labels(model, n_replicas, time_ps, temperature, seed, out):
    settings = MDSettings(temperature_K=temperature, n_steps=int(time_ps * 2000), interval=40, seed=seed)
    protocol.equilibrate(model, initial_conditions(model, n_replicas, temperature, seed), out, settings)
    labels, _ = protocol.conformer_labels(protocol.read_equilibration(out, n_replicas))
    return labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dce-gfn2xtb")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--time", type=float, default=40.0, help="reference trajectory length, ps")
    parser.add_argument("--discard", type=float, default=20.0, help="ps dropped from each reference trajectory")
    args = parser.parse_args()
    model = load_model(model_path(args.model))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        labels = protocol.two_state_populations(gauche_labels(model, 32, 10.0, args.temperature, 11,
                                                              os.path.join(tmp, "protocol")))
        t_protocol = time.perf_counter() - start
        p, e = labels["populations"]["gauche"]
        print(f"protocol (32 x 10 ps, {labels['method']}): gauche {p:.3f} ± {e:.3f}, "
              f"{labels['transitions']} transitions; plain frame fraction {labels['frame_fractions']['gauche']:.3f}; "
              f"{t_protocol:.0f} s")
        start = time.perf_counter()
        series = gauche_labels(model, args.replicas, args.time, args.temperature, 12, os.path.join(tmp, "reference"))
        t_reference = time.perf_counter() - start
    keep = [s[int(len(s) * args.discard / args.time):] for s in series]
    fractions = np.array([np.mean(s == 1) for s in keep])
    ref, ref_err = fractions.mean(), fractions.std(ddof=1) / np.sqrt(len(fractions))
    transitions = sum(int(np.count_nonzero(np.diff(s))) for s in series)
    print(f"reference ({args.replicas} x {args.time:g} ps, first {args.discard:g} ps dropped): gauche {ref:.3f} ± "
          f"{ref_err:.3f}, {transitions} transitions; {t_reference:.0f} s")
    print(f"difference {p - ref:+.3f} = {(p - ref) / np.hypot(e, ref_err):+.1f} combined standard errors")


if __name__ == "__main__":
    main()
