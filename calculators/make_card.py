"""Train a shipped model (any X-CH2-CH2-Y molecule) and measure every figure of its model card.

Usage (from the repository root; about 15 minutes on 2 cores per model)::

    python calculators/make_card.py calculators/dce-gfn2xtb      # or dbe-gfn2xtb, dfe-gfn2xtb

``MODEL_DIR/card_config.json`` names the molecule, its level of theory and its conformers (start
geometries: ``"dce:trans"`` or a file in MODEL_DIR, relaxed with GFN2-xTB here; atoms in the data's
order), which of them is the reference geometry, and optional notes (a DFT comparison file, a
warning). Reads ``MODEL_DIR/data/train.extxyz.gz`` (training), ``data/test.extxyz.gz`` (independent
500 K trajectories) and ``data/test300.extxyz.gz`` (independent 300 K trajectories); writes
``model.npz`` (with the conformer minima), ``card.json``, ``learning_curve.png`` and
``MODEL_CARD.md`` in MODEL_DIR. Every number in the card comes from this script's measurements.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from nxplugin.analysis.conformers import dihedral_series, find_dihedral
from nxplugin.reference.datasets import file_digest, model_errors, read_dataset, subset
from nxplugin.model.modelfile import save_model
from nxplugin.model.estimator import RPRModel

CALCULATORS = os.path.dirname(os.path.abspath(__file__))
FRAMES = {"eckart": "RPR, Eckart frame (shipped)", "inertia": "RPR, inertia frame (paper)",
          "lab": "direct lab-frame"}


def read_config(model_dir):
    """``card_config.json`` of a model folder, with ``dir`` added."""
    with open(os.path.join(model_dir, "card_config.json")) as handle:
        config = json.load(handle)
    config["dir"] = os.path.abspath(model_dir)
    return config


def conformer_minima(config):
    """GFN2-xTB minima of the configured conformers (name -> ase.Atoms, Angstrom, data atom order)."""
    from ase.io import read

    from nxplugin.reference.molecules import dce
    from nxplugin.reference.starts import optimise_gfn2

    minima = {}
    for name, spec in config["conformers"].items():
        if spec.startswith("dce:"):
            minima[name] = dce(spec[4:])      # stored GFN2-xTB minima
        else:
            minima[name] = optimise_gfn2(read(os.path.join(config["dir"], spec)))
    return minima


def reference_facts(atoms, model_path):
    """What the card says about the reference geometry: torsion atoms and symbols, the split of its
    two larger moments of inertia (%), and the symmetry relabellings the model's energy kernel uses."""
    from nxplugin.model.modelfile import read_metadata

    moments = np.sort(atoms.get_moments_of_inertia())
    symbols = atoms.get_chemical_symbols()
    atoms_ = find_dihedral(atoms.numbers, atoms.positions)
    return {"symbols": symbols, "torsion": list(atoms_),
            "torsion_label": "–".join(symbols[i] for i in atoms_),
            "moments_split_percent": float(100 * (moments[2] - moments[1]) / moments[2]),
            "symmetry_images": int(read_metadata(model_path)[0].get("symmetry_images", 1))}


def dft_comparison(config, model, minima):
    """Conformer energy gaps (eV) and gauche dihedrals: the model and GFN2-xTB at their own minima
    beside the DFT results of the model folder's script (``config['dft']``)."""
    from ase.units import kcal, mol

    from nxplugin.calculator import RPRCalculator
    from nxplugin.analysis.harmonic import optimise

    with open(os.path.join(config["dir"], config["dft"])) as handle:
        rows = json.load(handle)
    rows = {label: r for label, r in rows.items() if isinstance(r, dict) and {"trans", "gauche"} <= set(r)}
    relaxed = {c: optimise(minima[c], RPRCalculator(model), fmax=1e-4) for c in ("trans", "gauche")}
    torsion_atoms = find_dihedral(minima["trans"].numbers, minima["trans"].positions)
    rows["this model"] = {c: {"energy_eV": float(a.get_potential_energy()),
                              "dihedral_deg": abs(float(a.get_dihedral(*torsion_atoms)))}
                          for c, a in relaxed.items()}
    out = {}
    for label, r in rows.items():
        gap = r["gauche"]["energy_eV"] - r["trans"]["energy_eV"]
        out[label] = {"gauche_minus_trans_eV": gap, "gauche_minus_trans_kcal_mol": gap / (kcal / mol),
                      "gauche_dihedral_deg": r["gauche"]["dihedral_deg"]}
    return out


def torsion(data):
    """The X-C-C-Y dihedral atoms of the data (from the bonds of the first frame)."""
    return find_dihedral(data["numbers"], data["positions"][0])


def conformer_masks(data):
    """trans: |X-C-C-Y| >= 120 degrees, gauche: below; barrier: the interconversion region 100-140."""
    phi = np.abs(dihedral_series(data["positions"], torsion(data)))
    return {"trans": phi >= 120, "gauche": phi < 120, "barrier": (phi >= 100) & (phi < 140)}


def fit(train, frame, n=None, seed=0, *, reference):
    if n is not None:
        train = subset(train, np.random.default_rng(seed).permutation(len(train["positions"]))[:n])
    start = time.perf_counter()
    model = RPRModel(frame=frame).fit(train["numbers"], train["positions"], energies=train["energies"],
                                      dipoles=train["dipoles"], polarizabilities=train["polarizabilities"],
                                      reference=reference)
    return model, time.perf_counter() - start


def errors_by_conformer(model, data):
    out = {"all": model_errors(model, data)}
    for name, mask in conformer_masks(data).items():
        if mask.sum():
            out[name] = model_errors(model, subset(data, np.flatnonzero(mask)))
    return out


def other_class(numbers, positions):
    """Relabelling that puts frames into the other labelling class: the two hydrogens on the second
    carbon of the X-C-C-Y torsion swapped (DCE: H6 <-> H7)."""
    from nxplugin.model.symmetry import bond_graph

    torsion_atoms = find_dihedral(numbers, positions)
    bonded = {tuple(sorted(map(int, b))) for b in np.asarray(bond_graph(numbers, positions)).reshape(-1, 2)}
    carbon = torsion_atoms[2]
    hydrogens = [i for i in range(len(numbers)) if numbers[i] == 1 and tuple(sorted((i, carbon))) in bonded]
    order = np.arange(len(numbers))
    order[hydrogens[0]], order[hydrogens[1]] = hydrogens[1], hydrogens[0]
    return order


def labelling_class(model, positions):
    """+1 for frames in the model's labelling class, -1 for the other (handedness signs, per frame)."""
    mapper = model.atom_mapper
    signs = np.linalg.det(positions[:, mapper.triples] - positions[:, mapper.centres, None])
    return np.where(np.all(np.sign(signs) == mapper.reference_signs, axis=1)
                    | np.all(np.sign(signs) == -mapper.reference_signs, axis=1), 1, -1)


def numbering_errors(model, data, seed=0):
    """Test errors per labelling class and numbering: as stored, the other class (H6, H7 swapped),
    and every frame with its atoms in a random order of its own (both classes; hydrogens first for
    every fourth frame), all through the atom mapping; plus the other class unmapped (how nxplugin
    predicted before the mapping) for comparison."""
    rng = np.random.default_rng(seed)
    n = len(data["positions"])
    n_atoms = len(data["numbers"])
    hydrogens_first = np.argsort(data["numbers"] != 1, kind="stable")
    other_labelling = other_class(data["numbers"], data["positions"][0])
    out = {}

    def relabelled(orders, mapped=True):
        pred = {"energy": [], "forces": [], "dipole": [], "polarizability": []}
        for k, order in enumerate(orders):
            x, numbers = data["positions"][k][order], data["numbers"][order]
            p = model.predict(x, numbers=numbers) if mapped else model.predict(x)
            for key in pred:
                pred[key].append(p[key])
        return {key: np.array(v) for key, v in pred.items()}

    def rmse(pred, orders):
        from ase import units
        kcal = units.kcal / units.mol
        forces = np.array([data["forces"][k][o] for k, o in enumerate(orders)])
        r = lambda a, b: float(np.sqrt(np.mean((a - b) ** 2)))
        return {"n": n, "energy_kcal_mol": r(pred["energy"], data["energies"]) / kcal,
                "forces_kcal_mol_A": r(pred["forces"], forces) / kcal,
                "dipole_D": r(pred["dipole"], data["dipoles"]) / units.Debye,
                "polarizability_A3": r(pred["polarizability"], data["polarizabilities"])}

    same = [np.arange(n_atoms)] * n
    other = [other_labelling] * n
    shuffled_same = [hydrogens_first if k % 4 == 0 else rng.permutation(n_atoms) for k in range(n)]
    shuffled_other = [other_labelling[o] for o in shuffled_same]
    for name, orders in (("as stored", same), ("other class", other), ("shuffled, as stored class", shuffled_same),
                         ("shuffled, other class", shuffled_other)):
        out[name] = rmse(relabelled(orders), orders)
    out["other class, unmapped"] = rmse(relabelled(other, mapped=False), other)
    out["class_of_stored_frames"] = sorted(set(labelling_class(model, data["positions"]).tolist()))
    return out


def numbering_tables(model, model_dir, minima):
    """:func:`numbering_errors` on both test sets, and the labelling class of every data set's frames."""
    out = {"test500": numbering_errors(model, read_dataset(os.path.join(model_dir, "data", "test.extxyz.gz"))),
           "test300": numbering_errors(model, read_dataset(os.path.join(model_dir, "data", "test300.extxyz.gz")))}
    train = read_dataset(os.path.join(model_dir, "data", "train.extxyz.gz"))
    out["train_classes"] = sorted(set(labelling_class(model, train["positions"]).tolist()))
    out["reference_classes"] = sorted(set(labelling_class(model, np.array(
        [atoms.positions for atoms in minima.values()])).tolist()))
    return out


def covariance_error(model, data, n_geometries=10, n_transforms=1000, seed=0):
    """Covariance error over random rotations, reflections and translations.

    Returns the largest deviation of the predicted dipole (polarizability) from the exactly rotated
    prediction, relative to the RMS dipole (polarizability) of the test set, and the largest absolute
    dipole deviation (e*Angstrom). Relative to the RMS: a trans geometry's own dipole is nearly zero.
    """
    rng = np.random.default_rng(seed)
    scale_mu = np.sqrt(np.mean(np.sum(data["dipoles"] ** 2, axis=1)))
    scale_alpha = np.sqrt(np.mean(np.sum(data["polarizabilities"] ** 2, axis=(1, 2))))
    worst = {"dipole": 0.0, "polarizability": 0.0, "dipole_abs_eA": 0.0}
    for x in data["positions"][:n_geometries]:
        q, r = np.linalg.qr(rng.normal(size=(n_transforms, 3, 3)))
        q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
        q[::2, :, 0] *= -1
        moved = np.einsum("nij,aj->nai", q, x) + rng.normal(scale=5, size=(n_transforms, 1, 3))
        p0, p = model.predict(x), model.predict(moved)
        dev = np.abs(p["dipole"] - q @ p0["dipole"]).max()
        worst["dipole_abs_eA"] = max(worst["dipole_abs_eA"], float(dev))
        worst["dipole"] = max(worst["dipole"], float(dev / scale_mu))
        rot = q @ p0["polarizability"] @ np.swapaxes(q, 1, 2)
        worst["polarizability"] = max(worst["polarizability"],
                                      float(np.abs(p["polarizability"] - rot).max() / scale_alpha))
    return worst


def harmonic_table(models, minima):
    """GFN2-xTB (tblite, accuracy 0.01) against the models' harmonic IR spectra, per conformer."""
    from tblite.ase import TBLite

    from nxplugin.calculator import RPRCalculator
    from nxplugin.analysis.harmonic import harmonic_ir, match_modes, optimise
    table = {}
    for conformer, start in minima.items():
        ref = optimise(start, TBLite(method="GFN2-xTB", accuracy=0.01, verbosity=0), fmax=1e-4)
        w0, i0, modes0 = harmonic_ir(ref, return_modes=True)
        table[conformer] = {"gfn2": [w0.tolist(), i0.tolist()]}
        for name, model in models.items():
            w, i, modes = harmonic_ir(optimise(start, RPRCalculator(model), fmax=1e-4), return_modes=True)
            order = match_modes(modes0, modes)          # model mode paired with each GFN2-xTB mode
            table[conformer][name] = [w[order].tolist(), i[order].tolist()]
    return table


def band_check(table, name, min_km=5.0):
    """Bands of >= min_km km/mol in GFN2-xTB: wavenumber within 1.5 % or 10 cm^-1, intensity within 25 %.

    Each GFN2-xTB mode is compared with the model mode whose eigenvector overlaps it most.
    """
    out = {}
    for conformer, rows in table.items():
        (w0, i0), (w1, i1) = (np.array(v) for v in rows["gfn2"]), (np.array(v) for v in rows[name])
        bands = []
        for k in np.flatnonzero(i0 >= min_km):
            dw = w1[k] - w0[k]
            ok_w = abs(dw) <= max(10.0, 0.015 * w0[k])
            di = i1[k] / i0[k] - 1
            bands.append({"gfn2_cm-1": w0[k], "model_cm-1": w1[k], "gfn2_km_mol": i0[k], "model_km_mol": i1[k],
                          "intensity_error": di, "ok": bool(ok_w and abs(di) <= 0.25)})
        out[conformer] = bands
    return out


def plot_learning_curve(curve, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    from matplotlib.ticker import NullFormatter
    keys = [("dipole_D", "dipole RMSE (D)"), ("energy_kcal_mol", "energy RMSE (kcal/mol)"),
            ("forces_kcal_mol_A", "force RMSE (kcal/mol/Å)")]
    for ax, (key, label) in zip(axes, keys):
        # the energy model is the same for every frame choice: one line for energy and forces
        for frame, points in (curve.items() if key == "dipole_D" else [("eckart", curve["eckart"])]):
            n = [p["n_train"] for p in points]
            ax.loglog(n, [p["errors"][key] for p in points], "o-",
                      label=FRAMES[frame] if key == "dipole_D" else "energy model (all three)")
        ax.set_xlabel("training points N")
        ax.set_ylabel(label)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}: held-out 500 K trajectories")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="model folder with card_config.json and data/")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000, 3000, 5000])
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--skip-harmonic", action="store_true")
    parser.add_argument("--numbering", action="store_true",
                        help="only measure the shipped model.npz per labelling class and shuffled atom order "
                        "(card.json 'numbering'), then rewrite MODEL_CARD.md")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw learning_curve.png and MODEL_CARD.md from card.json (and refresh "
                        "the DFT comparison from the model file)")
    args = parser.parse_args(argv)
    config = read_config(args.model_dir)
    model_dir = config["dir"]
    title = f"{config['short']} {config['level'].split()[0]}"
    from write_card import write_card
    if args.replot:
        with open(os.path.join(model_dir, "card.json")) as handle:
            card = json.load(handle)
        if "reference" not in card:   # cards made before the shared script
            card["reference"] = reference_facts(conformer_minima(config)[config["reference"]],
                                                os.path.join(model_dir, "model.npz"))
        if config.get("dft"):         # DFT results may arrive after the model (a few optimisations)
            from nxplugin.model.modelfile import load_model
            card["dft"] = dft_comparison(config, load_model(os.path.join(model_dir, "model.npz")),
                                         conformer_minima(config))
            with open(os.path.join(model_dir, "card.json"), "w") as handle:
                json.dump(card, handle, indent=1, default=float)
        plot_learning_curve(card["learning_curve"], os.path.join(model_dir, "learning_curve.png"), title)
        write_card(card, config, os.path.join(model_dir, "MODEL_CARD.md"))
        return
    if args.numbering:
        from nxplugin.model.modelfile import load_model
        with open(os.path.join(model_dir, "card.json")) as handle:
            card = json.load(handle)
        model = load_model(os.path.join(model_dir, "model.npz"))
        card["numbering"] = numbering_tables(model, model_dir, conformer_minima(config))
        with open(os.path.join(model_dir, "card.json"), "w") as handle:
            json.dump(card, handle, indent=1, default=float)
        write_card(card, config, os.path.join(model_dir, "MODEL_CARD.md"))
        return
    minima = conformer_minima(config)
    reference = minima[config["reference"]].positions
    data = {name: read_dataset(os.path.join(model_dir, "data", f"{name}.extxyz.gz"))
            for name in ("train", "test", "test300")}
    train, test = data["train"], data["test"]
    card = {"data": {name: {"frames": len(d["positions"]),
                            "sha256": file_digest(os.path.join(model_dir, "data", f"{name}.extxyz.gz")),
                            **{c: int(m.sum()) for c, m in conformer_masks(d).items()}}
                     for name, d in data.items()}}
    models, seconds = {}, {}
    for frame in FRAMES:
        models[frame], seconds[frame] = fit(train, frame, args.n_train, reference=reference)
        print(f"{frame}: trained on {args.n_train} in {seconds[frame]:.1f} s", file=sys.stderr)
    card["train_seconds"] = seconds
    card["hyperparameters"] = models["eckart"].hyperparameters_
    card["errors"] = {frame: {"test500": errors_by_conformer(m, test),
                              "test300": errors_by_conformer(m, data["test300"])}
                      for frame, m in models.items()}
    card["covariance"] = {f: covariance_error(models[f], test) for f in ("eckart", "inertia")}
    curve = {frame: [] for frame in FRAMES}
    for n in args.sizes:
        for frame in FRAMES:
            model = models[frame] if n == args.n_train else fit(train, frame, n, reference=reference)[0]
            curve[frame].append({"n_train": n, "errors": model_errors(model, test)})
        print(f"learning curve: N = {n} done", file=sys.stderr)
    card["learning_curve"] = curve
    plot_learning_curve(curve, os.path.join(model_dir, "learning_curve.png"), title)
    if not args.skip_harmonic:
        table = harmonic_table({"eckart": models["eckart"], "inertia": models["inertia"]}, minima)
        card["harmonic"] = table
        card["band_check"] = {name: band_check(table, name) for name in ("eckart", "inertia")}
    name = config["name"]
    models["eckart"].conformers_ = {c: atoms.positions.copy() for c, atoms in minima.items()}
    save_model(models["eckart"], os.path.join(model_dir, "model.npz"), training={
        "data": f"calculators/{name}/data/train.extxyz.gz", "data_sha256": card["data"]["train"]["sha256"],
        "n_train": args.n_train, "seed": 0, "test_errors": card["errors"]["eckart"]["test500"]["all"],
        "test": f"calculators/{name}/data/test.extxyz.gz", "train_seconds": seconds["eckart"],
        "molecule": config["molecule"], "level": config["level"],
        "command": f"python calculators/make_card.py calculators/{name}"})
    card["reference"] = reference_facts(minima[config["reference"]], os.path.join(model_dir, "model.npz"))
    if config.get("dft"):
        card["dft"] = dft_comparison(config, models["eckart"], minima)
    card["numbering"] = numbering_tables(models["eckart"], model_dir, minima)
    with open(os.path.join(model_dir, "card.json"), "w") as handle:
        json.dump(card, handle, indent=1, default=float)
    write_card(card, config, os.path.join(model_dir, "MODEL_CARD.md"))
    print("wrote model.npz, card.json, learning_curve.png, MODEL_CARD.md", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, CALCULATORS)
    main()
