"""Harmonic IR spectrum of the trans and gauche conformers with a model (ase.vibrations.Infrared).

Optimises each conformer with the model (--start FILE ...; default: the conformer minima stored
with the model; older DCE models: trans and gauche; else the model's equilibrium geometry), computes harmonic frequencies (cm^-1) and IR intensities (km/mol) by finite
differences, and writes a CSV with columns conformer, wavenumber_cm-1, intensity_km_mol-1. The
sticks can be overlaid on an MD spectrum: nxplugin spectrum ... --harmonic harmonic.csv.
"""
from nxplugin.commands._options import MODEL_HELP, model_path, positive_float


def add_arguments(parser):
    parser.add_argument("model", metavar="MODEL", nargs="?", help=MODEL_HELP)
    parser.add_argument("--start", nargs="+", metavar="FILE",
                        help="start geometries (any ase-readable file, the model's atoms), one per conformer; "
                        "named trans/gauche by their X-C-C-Y torsion, else by file name (default: the "
                        "conformer minima stored with the model)")
    parser.add_argument("--out", default="harmonic.csv", metavar="CSV", help="output CSV (default harmonic.csv)")
    parser.add_argument("--fmax", type=positive_float("eV/Angstrom"), default=1e-4, metavar="EV/A",
                        help="optimisation threshold, eV/Angstrom (default 1e-4)")
    parser.add_argument("--delta", type=positive_float("Angstrom"), default=0.01, metavar="A",
                        help="finite-difference displacement, Angstrom (default 0.01)")


def run(args):
    import csv

    from ase import Atoms

    from nxplugin.calculator import RPRCalculator
    from nxplugin.model.elements import formula
    from nxplugin.analysis.harmonic import harmonic_ir, optimise
    from nxplugin.model.modelfile import load_model
    from nxplugin.reference import molecules

    model = load_model(model_path(args.model))
    if args.start:
        from nxplugin.reference.starts import read_geometries
        starts = read_geometries(args.start, model.numbers)
    elif getattr(model, "conformers_", None):
        starts = {c: Atoms(model.numbers, positions=x) for c, x in model.conformers_.items()}
    elif sorted(formula(model.numbers).split()) == sorted(molecules.DCE_SYMBOLS):   # any numbering: mapped
        starts = {c: molecules.dce(c) for c in molecules.CONFORMERS}
    else:
        starts = {"equilibrium": Atoms(model.numbers, positions=model.reference_)}
    rows = []
    for name, atoms in starts.items():
        relaxed = optimise(atoms, RPRCalculator(model), fmax=args.fmax)
        wavenumbers, intensities = harmonic_ir(relaxed, delta=args.delta)
        rows += [(name, w, i) for w, i in zip(wavenumbers, intensities)]
        print(f"{name}: {len(wavenumbers)} modes, strongest {wavenumbers[intensities.argmax()]:.1f} cm^-1 "
              f"({intensities.max():.1f} km/mol), total {intensities.sum():.1f} km/mol")
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["conformer", "wavenumber_cm-1", "intensity_km_mol-1"])
        writer.writerows((c, f"{w:.3f}", f"{i:.5f}") for c, w, i in rows)
    print(f"wrote {args.out}")
