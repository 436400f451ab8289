"""List the shipped models: name, molecule, level of theory, training points, file size and the
held-out accuracy recorded in each model file (RMSE on independent trajectories: energy kcal/mol,
forces kcal/mol/Angstrom, dipole D). A name works wherever a model path does
(`nxplugin info NAME`, `nxplugin md --model NAME`); in Python, nxplugin.shipped_model(NAME).
"""


def add_arguments(parser):
    parser.add_argument("--paths", action="store_true", help="also print each model file's path")


def describe(name):
    """One shipped model's facts as a dict (from its model file's metadata; molecule and level from
    its folder's card_config.json for files that predate them)."""
    import json
    import os

    from nxplugin.model.modelfile import read_metadata
    from nxplugin.shipped import shipped_model

    path = shipped_model(name)
    meta, _ = read_metadata(path)
    training = meta.get("training", {})
    config = {}
    config_path = os.path.join(os.path.dirname(path), "card_config.json")
    if os.path.isfile(config_path):
        with open(config_path) as handle:
            config = json.load(handle)
    errors = training.get("test_errors") or {}
    accuracy = (f"E {errors['energy_kcal_mol']:.3f} kcal/mol, F {errors['forces_kcal_mol_A']:.3f} kcal/mol/A, "
                f"mu {errors['dipole_D']:.4f} D on {errors['n']} held-out frames"
                if {"energy_kcal_mol", "forces_kcal_mol_A", "dipole_D", "n"} <= set(errors) else "not recorded")
    return {"name": name, "path": path,
            "molecule": training.get("molecule") or config.get("molecule") or " ".join(meta["species"]),
            "level": (training.get("level") or config.get("level") or "unknown").split(" (")[0],
            "n_train": meta["n_train"], "size_MB": os.path.getsize(path) / 1e6, "accuracy": accuracy}


def run(args):
    from nxplugin.shipped import shipped_models

    names = shipped_models()
    if not names:
        print("no shipped models installed")
        return 1
    rows = [describe(name) for name in names]
    print(f"{'name':<14} {'molecule':<20} {'level':<9} {'N train':>7} {'size':>8}  accuracy (test RMSE)")
    for r in rows:
        print(f"{r['name']:<14} {r['molecule']:<20} {r['level']:<9} {r['n_train']:>7} {r['size_MB']:>6.1f} MB  {r['accuracy']}")
        if args.paths:
            print(f"{'':<14} {r['path']}")
    return 0
