"""Trans and gauche 1,2-difluoroethane: GFN2-xTB against DFT (PySCF), the conformer energy gap.

B3LYP-D3(BJ) minima (PySCF + pyscf-dispersion, ASE BFGS to fmax 0.01 eV/Angstrom) in the def2-SVP
basis from the GFN2-xTB minima, then def2-TZVP single points at those geometries (and, with
``--tzvp-opt``, def2-TZVP optimisations from the SVP minima; finished optimisations found in the
output are reused). Writes ``dft_conformers.json`` next to
this script; the model card quotes it. Energies eV (printed also in kcal/mol), dihedrals degrees.

    OMP_NUM_THREADS=1 python calculators/dfe-gfn2xtb/dft_conformers.py [--tzvp-opt]
"""
import argparse
import json
import os
import time

from ase import Atoms, units
from ase.io import read
from ase.optimize import BFGS

from nxplugin.analysis.conformers import find_dihedral
from nxplugin.fileio import atomic_write
from nxplugin.reference.engines import PySCFCalculator
from nxplugin.reference.starts import optimise_gfn2

HERE = os.path.dirname(os.path.abspath(__file__))
KCAL = units.kcal / units.mol  # eV per kcal/mol


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tzvp-opt", action="store_true", help="also optimise in def2-TZVP")
    parser.add_argument("--fmax", type=float, default=0.01, help="eV/Angstrom (default 0.01)")
    args = parser.parse_args()
    out = os.path.join(HERE, "dft_conformers.json")
    result = json.load(open(out)) if os.path.exists(out) else {}

    def save():
        atomic_write(out, json.dumps(result, indent=1))

    geometries = {}
    for conformer in ("trans", "gauche"):
        gfn2 = optimise_gfn2(read(os.path.join(HERE, f"start-{conformer}.xyz")))
        torsion = find_dihedral(gfn2.numbers, gfn2.positions)
        geometries[conformer] = gfn2
        result.setdefault("GFN2-xTB", {})[conformer] = {
            "energy_eV": gfn2.info["energy"], "dihedral_deg": abs(gfn2.get_dihedral(*torsion))}
    save()

    steps = [("b3lyp-d3bj/def2-svp", True), ("b3lyp-d3bj/def2-tzvp", args.tzvp_opt)]
    for method, optimise in steps:
        label = method + (" opt" if optimise else " single point at the previous minima")
        if optimise and set(result.get(label, {})) >= {"trans", "gauche"}:   # done before: reuse
            for conformer in geometries:
                saved = result[label][conformer]
                geometries[conformer] = Atoms(saved["symbols"], positions=saved["positions"])
            print(label, "from", out, flush=True)
            continue
        for conformer, atoms in geometries.items():
            atoms = atoms.copy()
            atoms.calc = PySCFCalculator(method=method, conv_tol=1e-9)
            start = time.perf_counter()
            n_steps = 0
            if optimise:
                optimizer = BFGS(atoms, logfile=os.path.join("/tmp", f"dfe-{conformer}-{method.replace('/', '_')}.log"))
                optimizer.run(fmax=args.fmax, steps=200)
                n_steps = optimizer.nsteps
                geometries[conformer] = atoms
            energy = atoms.get_potential_energy()
            torsion = find_dihedral(atoms.numbers, atoms.positions)
            result.setdefault(label, {})[conformer] = {
                "energy_eV": float(energy), "dihedral_deg": abs(atoms.get_dihedral(*torsion)),
                "fmax_eV_per_A": float(abs(atoms.get_forces()).max()), "steps": n_steps,
                "wall_s": round(time.perf_counter() - start, 1),
                "positions": atoms.positions.round(6).tolist(), "symbols": atoms.get_chemical_symbols()}
            save()
            print(label, conformer, result[label][conformer]["dihedral_deg"], energy, flush=True)
    for label, minima in result.items():
        if set(minima) >= {"trans", "gauche"}:
            gap = minima["gauche"]["energy_eV"] - minima["trans"]["energy_eV"]
            minima["gauche_minus_trans_eV"] = gap
            minima["gauche_minus_trans_kcal_mol"] = gap / KCAL
            print(f"{label}: gauche - trans = {gap:+.4f} eV = {gap / KCAL:+.2f} kcal/mol, "
                  f"gauche dihedral {minima['gauche']['dihedral_deg']:.1f} deg")
    save()


if __name__ == "__main__":
    main()
