"""Conditioning diagnostics of a model's descriptor and frames along trajectories.

For every frame of every TRAJ (any ase-readable file or Newton-X folder, atoms in the model's order):
the singular values of the descriptor Jacobian (its rank beyond the six rigid motions in
descriptor_rank, and the smallest, 1/Angstrom), the Eckart frame's matrix singular values
(amu*Angstrom^2), ratio (s2+s3)/(s1+s2) and sensitivity |dR/dx| (rad/Angstrom, analytic), the inertia
frame's relative moment gaps and sensitivity, and the model's dipole sensitivity |dmu/dx| (e, central
differences) with the part carried by the frame's rotation. Writes DIR/diagnostics.csv (one row per
frame), DIR/diagnostics.png (time series, gauche frames shaded) and DIR/summary.json, and prints
the worst frames and the fraction beyond each threshold.
"""
from nxplugin.commands._options import positive_float, positive_int


def add_arguments(parser):
    parser.add_argument("model", metavar="MODEL.npz")
    parser.add_argument("trajectories", metavar="TRAJ", nargs="+", help="trajectory files (Angstrom)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--every", type=positive_int(), default=1, metavar="K", help="use every K-th frame (default 1)")
    parser.add_argument("--eckart-ratio", type=positive_float(), default=0.01,
                        help="flag frames whose Eckart singular ratio (s2+s3)/(s1+s2) is below this (default 0.01; "
                        "near-prolate trans-DCE itself has 0.05)")
    parser.add_argument("--inertia-gap", type=positive_float(), default=0.02,
                        help="flag frames whose smallest relative moment gap is below this (default 0.02)")
    parser.add_argument("--sensitivity", type=positive_float("rad/Angstrom"), default=2.0, metavar="RAD/A",
                        help="flag frames whose internal frame sensitivity exceeds this, rad/Angstrom (default 2)")


def run(args):
    import json
    import os

    import numpy as np
    from tqdm import tqdm

    from nxplugin.analysis import diagnostics
    from nxplugin.analysis.timeseries import read_frames
    from nxplugin.errors import DataFileError
    from nxplugin.fileio import atomic_write
    from nxplugin.model.modelfile import load_model

    if args.every < 1:
        raise ValueError(f"--every {args.every} must be at least 1")
    model = load_model(args.model)
    inputs = []
    for path in args.trajectories:          # validate every file before the long loop
        frames = read_frames(path)[:: args.every]
        if not frames:
            raise DataFileError(f"{path}: no frames")
        if len({len(a) for a in frames}) != 1:
            raise DataFileError(f"{path}: frames have different numbers of atoms")
        positions = np.array([a.positions for a in frames])
        model.check_geometry(frames[0].numbers, positions)
        times = [a.info.get("time", a.info.get("time_fs")) for a in frames]
        inputs.append((path, positions, None if any(t is None for t in times) else np.array(times, float)))
    os.makedirs(args.out, exist_ok=True)
    total = sum(len(p) for _, p, _ in inputs)
    tables = []
    with tqdm(total=total, desc="diagnosing", unit="frame", disable=None) as bar:
        for path, positions, times in inputs:
            tables.append(diagnostics.diagnose_frames(model, positions, times_fs=times, trajectory=path,
                                                      frame_numbers=np.arange(len(positions)) * args.every,
                                                      progress=bar.update))
    table = diagnostics.concatenate(tables)
    summary = diagnostics.summarize(table, n_atoms=len(model.numbers_), thresholds={
        "eckart_singular_ratio": args.eckart_ratio, "inertia_min_gap": args.inertia_gap,
        "frame_sensitivity_rad_per_A": args.sensitivity})
    summary.update(model=args.model, model_frame=model.frame, every=args.every,
                   trajectories=list(args.trajectories))
    csv_path = os.path.join(args.out, "diagnostics.csv")
    diagnostics.write_csv(table, csv_path)
    diagnostics.plot_diagnostics(table, os.path.join(args.out, "diagnostics.png"),
                                 title=f"{os.path.basename(args.model)} ({model.frame} frame)")
    atomic_write(os.path.join(args.out, "summary.json"), json.dumps(summary, indent=1) + "\n")
    print(f"{summary['n_frames']} frames from {len(inputs)} trajectories; expected descriptor rank "
          f"{3 * len(model.numbers_) - 6}")
    for name, value in summary["fractions"].items():
        print(f"  fraction {name}: {value:.4f}")
    for name, rows in summary["worst"].items():
        trajectory, frame, value = rows[0]
        print(f"  worst {name}: {value:.4g} at frame {frame} of {trajectory}")
    print(f"wrote {csv_path}, diagnostics.png and summary.json in {args.out}")
