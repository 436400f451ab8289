"""Markdown tables of a model folder's reference data (for its data/README.md): frames, size and
torsion coverage per file and temperature.

    python calculators/data_tables.py calculators/dfe-gfn2xtb

Transitions: trans <-> gauche label changes per trajectory (:mod:`nxplugin.analysis.conformers`,
hysteresis); barrier region: frames with the folded X-C-C-Y dihedral in 100-140 degrees; gauche
below 100, trans above 140 degrees.
"""
import argparse
import os

import ase.io
import numpy as np

from nxplugin.analysis.conformers import dihedral_series, find_dihedral
from nxplugin.reference.datasets import read_dataset
from nxplugin.reference.sampling import summarize

FILES = ("train", "test", "test300")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    args = parser.parse_args(argv)
    print("| file | T / K | trajectories | frames | size | transitions | barrier-region frames | gauche (<100) | trans (>140) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in FILES:
        path = os.path.join(args.model_dir, "data", f"{name}.extxyz.gz")
        if not os.path.exists(path):
            continue
        table = summarize(path)
        data = read_dataset(path)
        torsion = find_dihedral(data["numbers"], data["positions"][0])
        phi = np.abs(dihedral_series(data["positions"], torsion))
        temperatures = np.array([a.info["temperature_K"] for a in ase.io.read(path, ":")])
        size = os.path.getsize(path) / 1e6
        for t in sorted(set(temperatures)):
            rows = [r for r in table if r["temperature_K"] == t]
            mask = temperatures == t
            print(f"| {name}.extxyz.gz | {t:.0f} | {len(rows)} | {int(mask.sum())} | {size:.2f} MB | "
                  f"{sum(r['transitions'] for r in rows)} | {int(np.sum(mask & (phi >= 100) & (phi <= 140)))} | "
                  f"{int(np.sum(mask & (phi < 100)))} | {int(np.sum(mask & (phi > 140)))} |")


if __name__ == "__main__":
    main()
