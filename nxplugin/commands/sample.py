"""Make labelled reference data: Langevin dynamics on GFN2-xTB from start geometries of any molecule
(--start FILE ..., each optimised with GFN2-xTB first, atoms in the file's order; default: the
trans and gauche minima of 1,2-dichloroethane), frames labelled with energy (eV), forces (eV/Angstrom), dipole (e*Angstrom) and
optionally the static polarizability (Angstrom**3), by GFN2-xTB (tblite) or PySCF.

Output is extxyz readable by ase.io.read; info keys: dihedral (X-C-C-Y found from the bonds, or --dihedral;
degrees in (-180, 180]), traj_id,
frame, time (fs), temperature_K, conformer, polarizability. A killed run continues with --resume.

example:
  nxplugin sample --out train.extxyz.gz --temperatures 300 400 500 600 --n-traj 4 \\
      --n-frames 190 --seed 1 --polarizability
  nxplugin sample --start trans.xyz gauche.xyz --out dfe.extxyz.gz --temperatures 300 500
"""
import time

from nxplugin.commands._options import nonnegative_float, nonnegative_int, positive_float, positive_int


def add_arguments(parser):
    add = parser.add_argument
    add("--out", required=True,
        help="output FILE.extxyz, FILE.extxyz.gz (compressed when complete) or DIR (DIR/frames.extxyz)")
    add("--start", nargs="+", metavar="FILE", default=None,
        help="start geometries, one file per conformer (any format ase.io.read reads; optimised "
             "with GFN2-xTB first; named trans/gauche by their torsion, else by file name)")
    add("--dihedral", nargs=4, type=int, metavar=("I", "J", "K", "L"), default=None,
        help="0-based atoms of the torsion stored per frame (default: the X-C-C-Y dihedral found "
             "from the bonds)")
    add("--conformers", nargs="+", default=None, metavar="NAME",
        help="which starts to run from (default: all; without --start: trans gauche of DCE)")
    add("--temperatures", nargs="+", type=positive_float("K"), default=[300.0, 400.0, 500.0, 600.0],
        metavar="K", help="thermostat temperatures in K (default: 300 400 500 600)")
    add("--n-traj", type=positive_int(), default=2, help="trajectories per (conformer, temperature) (default: 2)")
    add("--n-frames", type=positive_int(), default=50, help="saved frames per trajectory (default: 50)")
    add("--stride", type=positive_int("steps"), default=40, help="MD steps between saved frames (default: 40)")
    add("--timestep", type=positive_float("fs"), default=0.5, metavar="FS", help="MD time step in fs (default: 0.5)")
    add("--equilibration", type=nonnegative_float("fs"), default=500.0, metavar="FS",
        help="dynamics in fs before the first saved frame (default: 500)")
    add("--friction", type=positive_float("1/fs"), default=0.01, metavar="PER_FS",
        help="Langevin friction in 1/fs (default: 0.01)")
    add("--seed", type=nonnegative_int(), default=0, help="random seed; trajectory k uses default_rng([seed, k])")
    add("--polarizability", action="store_true",
        help="also store the static polarizability tensor in Angstrom**3 (finite field, 6 extra SCFs)")
    add("--engine", choices=["tblite", "pyscf"], default="tblite",
        help="who labels the frames; the dynamics always runs on GFN2-xTB (default: tblite)")
    add("--method", default=None,
        help="tblite method (default GFN2-xTB) or PySCF 'xc/basis' (default b3lyp/6-31g*)")
    add("--resume", action="store_true", help="continue an interrupted run with the same settings")
    add("--quiet", action="store_true", help="no progress bar")


def run(args):
    from tqdm import tqdm

    from nxplugin.reference.sampling import sample

    start = time.perf_counter()
    starts, dihedral = None, args.dihedral
    if args.start:
        from nxplugin.reference.starts import read_starts

        starts, dihedral = read_starts(args.start, dihedral=args.dihedral)
        for name, atoms in starts.items():
            print(f"start {name}: {atoms.get_chemical_formula()} GFN2-xTB minimum "
                  f"{atoms.info['energy']:.5f} eV, dihedral {dihedral} = {atoms.info['dihedral']:.1f} deg")
    with tqdm(unit="frame", desc="sample", disable=True if args.quiet else None) as bar:
        def progress(frames, total):
            bar.total = total
            bar.update(frames)

        table = sample(args.out, conformers=args.conformers, starts=starts, dihedral=dihedral,
                       temperatures_K=args.temperatures,
                       n_traj=args.n_traj, n_frames=args.n_frames, stride=args.stride,
                       timestep_fs=args.timestep, equilibration_fs=args.equilibration,
                       friction_per_fs=args.friction, seed=args.seed,
                       polarizability=args.polarizability, engine=args.engine, method=args.method,
                       resume=args.resume, progress=progress)
    print(f"{'traj':>4} {'start':>7} {'T/K':>6} {'frames':>6} {'transitions':>11}")
    for row in table:
        print(f"{row['traj_id']:>4} {row['conformer']:>7} {row['temperature_K']:>6.0f} "
              f"{row['n_frames']:>6} {row['transitions']:>11}")
    total = sum(row["n_frames"] for row in table)
    print(f"{total} frames in {args.out}; {time.perf_counter() - start:.1f} s wall")
    return 0
