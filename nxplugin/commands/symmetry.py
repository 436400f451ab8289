"""Exact covariance (rotate-predict-rotate) against learned symmetry (direct, augmented, averaged models).

Trains, on the same N frames of DATA (extxyz, eV and e*Angstrom): RPR in the Eckart and the inertia
frame, the direct lab-frame model, the direct model on K randomly rotated copies of each frame (for
each --augment K), and the largest-K model averaged over the 48 operations of O_h at prediction time.
For each: dipole RMSE on TEST (Debye), covariance error (RMS of f(Qx) - Q f(x) over random rotations
and reflections, Debye), training time (s) and prediction time (ms/frame), and harmonic IR intensity
errors (km/mol) of the trans and gauche minima against GFN2-xTB (tblite), with the reference's
normal modes and each model's dipole, in the stored and in a rotated orientation (skip with
--no-harmonic). Writes DIR/symmetry.csv, DIR/symmetry.md and DIR/symmetry.png.
"""
from nxplugin.commands._options import int_at_least, nonnegative_int, positive_int


def add_arguments(parser):
    parser.add_argument("data", metavar="DATA", help="training frames (extxyz, eV, e*Angstrom)")
    parser.add_argument("--test", required=True, metavar="TEST", help="test frames")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--n-train", type=int_at_least(2), default=1000, help="training frames (default 1000)")
    parser.add_argument("--augment", type=positive_int(), nargs="*", default=[1, 4, 16], metavar="K",
                        help="rotated copies per frame of the augmented direct models (default 1 4 16)")
    parser.add_argument("--n-rotations", type=positive_int(), default=16,
                        help="random rotations/reflections for the covariance error (default 16)")
    parser.add_argument("--n-covariance-frames", type=positive_int(), default=100,
                        help="test frames for the covariance error (default 100)")
    parser.add_argument("--seed", type=nonnegative_int(), default=0, help="seed of the training subset and rotations")
    parser.add_argument("--no-harmonic", action="store_true", help="skip the harmonic IR intensities (tblite)")


def run(args):
    import csv
    import io
    import json
    import os
    import time

    import numpy as np

    from nxplugin.analysis import symmetry_study
    from nxplugin.fileio import atomic_write
    from nxplugin.reference.datasets import read_dataset, subset

    if any(k < 1 for k in args.augment):
        raise ValueError(f"--augment {args.augment}: every K must be at least 1")
    if args.n_train < 10:
        raise ValueError(f"--n-train {args.n_train} is too small (at least 10)")
    for path in (args.data, args.test):      # before reading thousands of frames
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file")
    data = read_dataset(args.data)
    test = read_dataset(args.test)
    if not np.array_equal(data["numbers"], test["numbers"]):
        raise ValueError(f"{args.test}: atoms differ from those of {args.data} (species or order)")
    n = len(data["positions"])
    if args.n_train > n:
        raise ValueError(f"--n-train {args.n_train} but {args.data} has {n} frames")
    order = np.random.default_rng(args.seed).permutation(n)[: args.n_train]
    train = subset(data, np.sort(order))
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    harmonic = None
    if not args.no_harmonic:
        if len(data["numbers"]) != 8:
            raise ValueError("the harmonic IR comparison is for DCE data; give --no-harmonic for other molecules")
        print("harmonic IR of trans and gauche with GFN2-xTB (tblite), two orientations", flush=True)
        harmonic = symmetry_study.HarmonicReference(seed=args.seed)
    rows = symmetry_study.run_study(train, test, augment=args.augment, n_rotations=args.n_rotations,
                                    n_covariance_frames=args.n_covariance_frames, seed=args.seed,
                                    harmonic=harmonic, progress=lambda m: print(m, flush=True))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=symmetry_study.COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(os.path.join(args.out, "symmetry.csv"), buffer.getvalue())
    table = symmetry_study.format_markdown(rows)
    atomic_write(os.path.join(args.out, "symmetry.md"), table)
    symmetry_study.plot_study(rows, os.path.join(args.out, "symmetry.png"))
    meta = {"data": args.data, "test": args.test, "n_train": args.n_train, "n_test": len(test["positions"]),
            "augment": args.augment, "n_rotations": args.n_rotations, "seed": args.seed,
            "n_covariance_frames": args.n_covariance_frames, "wall_s": time.perf_counter() - start}
    atomic_write(os.path.join(args.out, "symmetry.json"), json.dumps(meta, indent=1) + "\n")
    print(table)
    print(f"wrote symmetry.csv, symmetry.md, symmetry.png in {args.out} ({meta['wall_s']:.0f} s)")
