"""The X-CH2-CH2-X family at 300 K: IR spectra of DFE, DCE and DBE from the shipped models, one panel
each, with the trans and gauche contributions, the harmonic sticks and the gauche population.

    python trajectories/family/make_family.py [--n-traj 8] [--time 10] [--depth 1000]

For each shipped model of the three (``nxplugin models``): ``nxplugin md`` at 300 K (its protocol:
an equilibration ensemble started from the conformer minima stored with the model, conformer
populations from it by a two-state Markov model with their standard errors, then NVE production
runs), ``nxplugin harmonic`` and ``nxplugin spectrum --conformers``, written under
``trajectories/family/NAME/``; then ``family.png`` and ``populations.json`` here. Units: wavenumber
cm^-1, IR km mol^-1 per cm^-1, sticks km/mol. The trans and gauche curves are the conformer spectra
weighted by the populations; the transition count of the equilibration is printed beside them.
"""
import argparse
import csv
import glob
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = (("dfe-gfn2xtb", "1,2-difluoroethane (DFE)"), ("dce-gfn2xtb", "1,2-dichloroethane (DCE)"),
          ("dbe-gfn2xtb", "1,2-dibromoethane (DBE)"))


def _read_csv(path):
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    columns = {key: [r[key] for r in rows] for key in rows[0]}
    return {key: np.array(v) if key == "conformer" else np.array(v, dtype=float) for key, v in columns.items()}


def populations(md):
    """Trans/gauche fractions with standard errors and the transitions of ``nxplugin md``'s
    equilibration (its ``populations.json``)."""
    with open(os.path.join(md, "populations.json")) as handle:
        estimate = json.load(handle)
    out = {name: {"fraction": f, "stderr": e} for name, (f, e) in estimate["populations"].items()}
    root = os.path.dirname(os.path.dirname(HERE)) + os.sep          # paths relative to the checkout
    out.update(transitions=estimate["transitions"], source=estimate.get("source", "").replace(root, ""),
               method=estimate.get("method", ""))
    return out


def main(argv=None):
    from nxplugin.cli import main as nxplugin
    from nxplugin.shipped import shipped_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-traj", type=int, default=8, help="production trajectories")
    parser.add_argument("--time", type=float, default=10.0, help="ps per production trajectory")
    parser.add_argument("--equilibration", type=float, default=10.0, help="ps per equilibration replica")
    parser.add_argument("--replicas", type=int, default=32, help="equilibration replicas")
    parser.add_argument("--depth", type=float, default=1000.0, help="correlation depth, fs")
    args = parser.parse_args(argv)
    available = [(name, label) for name, label in MODELS if name in shipped_models()]
    summary = {}
    for name, label in available:
        folder = os.path.join(HERE, name)
        md = os.path.join(folder, "md")
        done = os.path.exists(os.path.join(md, "summary.json"))
        command = ["md", "--model", name, "--temperature", "300", "--time", str(args.time), "--n-traj",
                   str(args.n_traj), "--equilibration", str(args.equilibration), "--equilibration-replicas",
                   str(args.replicas), "--interval", "4", "--seed", "0", "--out", md] + (["--resume"] if done else [])
        if nxplugin(command) != 0:
            raise SystemExit(f"md failed for {name}")
        if nxplugin(["harmonic", name, "--out", os.path.join(folder, "harmonic.csv")]) != 0:
            raise SystemExit(f"harmonic failed for {name}")
        paths = sorted(glob.glob(os.path.join(md, "traj_*.extxyz")))
        if nxplugin(["spectrum", *paths, "--conformers", "--depth", str(args.depth), "--quiet",
                     "--out", os.path.join(folder, "spectrum.csv")]) != 0:
            raise SystemExit(f"spectrum failed for {name}")
        summary[name] = populations(md)
    with open(os.path.join(HERE, "populations.json"), "w") as handle:
        json.dump({"settings": vars(args), "models": summary}, handle, indent=1)
    plot(available, summary, os.path.join(HERE, "family.png"))


def plot(available, summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(available), 1, figsize=(8, 3.2 * len(available)), sharex=True, squeeze=False)
    for ax, (name, label) in zip(axes[:, 0], available):
        folder = os.path.join(HERE, name)
        s = _read_csv(os.path.join(folder, "spectrum.csv"))
        h = _read_csv(os.path.join(folder, "harmonic.csv"))
        pop = summary[name]
        w = s["wavenumber_cm-1"]
        ax.plot(w, s["intensity_km_mol-1_cm"], color="k", lw=1.2, label="all")
        for conformer, color in (("trans", "tab:blue"), ("gauche", "tab:red")):
            key = f"{conformer}_km_mol-1_cm"
            if key in s:
                ax.plot(w, pop[conformer]["fraction"] * s[key], color=color, lw=0.9,
                        label=f"{conformer} × {pop[conformer]['fraction']:.2f}")
        sticks = ax.twinx()
        for conformer, color in (("trans", "tab:blue"), ("gauche", "tab:red")):
            pick = h["conformer"] == conformer
            sticks.vlines(h["wavenumber_cm-1"][pick], 0, h["intensity_km_mol-1"][pick], color=color, alpha=0.5, lw=1)
        sticks.set_ylabel("harmonic (km/mol)")
        g = pop["gauche"]
        ax.set_title(f"{label}: gauche {g['fraction']:.2f} ± {g['stderr']:.2f} at 300 K "
                     f"({pop['transitions']} transitions in the equilibration)", fontsize=10)
        ax.set_ylabel("IR (km mol⁻¹ cm)")
        ax.legend(fontsize=8, loc="upper left")
    axes[-1, 0].set_xlim(0, 3300)
    axes[-1, 0].set_xlabel("wavenumber (cm⁻¹)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
