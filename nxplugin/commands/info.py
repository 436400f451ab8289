"""Print the metadata of an nxplugin model file (species, units, frame, hyperparameters, errors)."""


def add_arguments(parser):
    parser.add_argument("model", metavar="MODEL", help="model file or shipped model name ('nxplugin models' lists them)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON metadata")


def run(args):
    import json

    from nxplugin.model.modelfile import read_metadata
    from nxplugin.shipped import model_path

    args.model = model_path(args.model)
    meta, arrays = read_metadata(args.model)
    if args.json:
        print(json.dumps({k: v for k, v in meta.items() if k != "equilibrium_geometry"}, indent=2))
        return
    print(f"{args.model}: nxplugin model, schema version {meta['schema_version']}, checksum OK")
    print(f"  species (atom order): {' '.join(meta['species'])}")
    print(f"  frame: {meta['frame']}; outputs: {', '.join(meta['outputs'])}; training points: {meta['n_train']}")
    print(f"  energy kernel averaged over {meta.get('symmetry_images', 1)} symmetry relabelling(s); "
          f"dipole baseline charges (e): {' '.join(f'{q:+.4f}' for q in meta.get('charges_e') or [])}")
    print("  units: " + ", ".join(f"{k} {v}" for k, v in meta["units"].items()))
    for group, h in meta["hyperparameters"].items():
        print(f"  {group}: sigma={h['sigma']:.4g}, lambda={h['lam']:.3g}")
    for key, value in meta.get("training", {}).items():
        print(f"  training {key}: {_format_training(key, value)}")


def _format_training(key, value):
    """Held-out errors as one line with units (4 significant digits), seconds rounded, the rest as stored."""
    if key == "test_errors" and isinstance(value, dict) and value:
        from nxplugin.reference.datasets import format_errors
        try:
            return format_errors(value)
        except KeyError:            # errors written by another version: print them compactly
            return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.1f}" if key.endswith("seconds") else f"{value:.4g}"
    return value
