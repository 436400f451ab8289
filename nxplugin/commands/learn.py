"""Active learning: a model from start geometries with as few engine labels as possible.

A small seed set (engine MD from the starts, GFN2-xTB dynamics, labels by --engine), then rounds of:
train (hyperparameters by closed-form leave-one-out, every round), many short Langevin trajectories
with the current model at --temperatures (batched replicas), a diverse batch of the visited
geometries chosen by the model's Gaussian-process posterior variance of the energy (by default the
picks that lower the summed variance of all visited geometries most, each pick conditioning the
next; nxplugin.learn.selection), engine labels for it; until the errors on validation frames (independent
engine MD, never trained on) meet every --target-* given, or --budget labels (seed and validation
included) are spent.

Writes to --out: model.npz (errors and label counts in its metadata), data.extxyz.gz (every labelled
frame with info round and set), learning.csv and learning.png (errors in kcal/mol, kcal/mol/Angstrom,
Debye against labels used; with --compare-random also for random engine-MD frames), state files for
--resume (a killed run loses no label).

example:
  nxplugin learn --start trans.xyz gauche.xyz --out al --temperatures 300 500 --budget 600 \\
      --target-energy 0.08 --target-forces 0.5 --target-dipole 0.02 --test test.extxyz.gz \\
      --compare-random train.extxyz.gz
"""
from nxplugin.commands._options import (OptionError, int_at_least, nonnegative_float, nonnegative_int,
                                        positive_float, positive_int)


def add_arguments(parser):
    add = parser.add_argument
    add("--start", nargs="+", metavar="FILE",
        help="start geometries, one file per conformer (any format ase.io.read reads; optimised with "
             "GFN2-xTB first; the first one is the model's reference geometry)")
    add("--out", metavar="DIR", help="output folder")
    add("--engine", choices=["tblite", "pyscf"], default="tblite",
        help="who labels the frames; engine MD of the seed set runs on GFN2-xTB (default: tblite)")
    add("--method", default=None, help="tblite method (default GFN2-xTB) or PySCF 'xc/basis' (default b3lyp/6-31g*)")
    add("--temperatures", nargs="+", type=positive_float("K"), default=[300.0, 500.0], metavar="K",
        help="temperatures in K of the seed, validation and model MD (default: 300 500)")
    add("--budget", type=int_at_least(3), default=600,
        help="most engine labels in total, seed and validation included (default: 600)")
    add("--target-energy", type=positive_float("kcal/mol"), metavar="KCAL",
        help="energy RMSE target, kcal/mol (every target must hold on the validation frames of each temperature)")
    add("--target-forces", type=positive_float("kcal/mol/Angstrom"), metavar="KCAL_A",
        help="forces RMSE target, kcal/mol/Angstrom")
    add("--target-dipole", type=positive_float("D"), metavar="D", help="dipole RMSE target, Debye")
    add("--polarizability", action="store_true", help="also label and learn the polarizability (Angstrom**3)")
    add("--n-seed", type=positive_int(), default=100, help="seed frames (default: 100)")
    add("--n-validation", type=positive_int(), default=60, help="validation frames, never trained on (default: 60)")
    add("--batch", type=positive_int(), default=50, help="frames labelled per round (default: 50)")
    add("--criterion", choices=["integrated", "variance"], default="integrated",
        help="batch selection: largest reduction of the summed posterior variance of all candidates "
             "(integrated, default) or largest posterior variance (variance)")
    add("--replicas", type=positive_int(), default=16, help="model MD replicas per temperature (default: 16)")
    add("--md-steps", type=positive_int("steps"), default=400, help="model MD steps per replica (default: 400)")
    add("--md-interval", type=positive_int("steps"), default=10,
        help="model MD steps between candidate frames (default: 10)")
    add("--timestep", type=positive_float("fs"), default=0.5, metavar="FS", help="MD time step in fs (default 0.5)")
    add("--stride", type=positive_int("steps"), default=40,
        help="engine MD steps between seed/validation frames (default: 40)")
    add("--equilibration", type=nonnegative_float("fs"), default=500.0, metavar="FS",
        help="engine MD in fs before the first seed/validation frame (default: 500)")
    add("--test", metavar="DATA", help="independent labelled frames: their errors are reported each round")
    add("--compare-random", metavar="POOL", nargs="?", const="md", default=None,
        help="also train on random frames at the same label counts: from POOL (labelled extxyz), or without "
             "POOL from new engine MD from the starts (costs labels outside the budget)")
    add("--seed", type=nonnegative_int(), default=0, help="random seed (default: 0)")
    add("--resume", action="store_true",
        help="continue an interrupted run in --out (same settings; --budget and --target-* may change)")
    add("--quiet", action="store_true", help="no progress bars")
    add("--evaluate-uncertainty", nargs=2, metavar=("MODEL", "DATA"),
        help="instead of learning: how well the energy uncertainty and the ood_score of MODEL rank its "
             "actual errors on the labelled frames DATA (Spearman rank correlations); needs no --start/--out")


def run(args):
    import os
    import time

    from tqdm import tqdm

    from nxplugin.learn import curves
    from nxplugin.learn.loop import learn
    from nxplugin.reference.datasets import format_errors
    from nxplugin.reference.starts import read_starts

    if args.evaluate_uncertainty:
        return _evaluate_uncertainty(*args.evaluate_uncertainty)
    if not args.start or not args.out:
        raise OptionError("--start FILE [FILE ...] and --out DIR are required (except with --evaluate-uncertainty)")
    if not args.resume and os.path.exists(os.path.join(args.out, "run.json")):
        raise OptionError(f"--out {args.out} already holds a learning run; add --resume to continue it, "
                          f"or choose a new folder")
    started = time.perf_counter()
    starts, dihedral = read_starts(args.start)
    for name, atoms in starts.items():
        print(f"start {name}: {atoms.get_chemical_formula()} GFN2-xTB minimum {atoms.info['energy']:.5f} eV")
    targets = {"energy": args.target_energy, "forces": args.target_forces, "dipole": args.target_dipole}
    bars = {}

    def progress(event, **info):
        if event == "stage":
            if not args.quiet:
                print(info["text"], flush=True)
        elif event == "label":
            bar = bars.get(info["round"])
            if bar is None:
                bar = bars[info["round"]] = tqdm(total=info["total"], initial=info["done"] - 1, unit="label",
                                                 desc=f"round {info['round']} labels",
                                                 disable=True if args.quiet else None)
            bar.update(1)
            if info["done"] == info["total"]:
                bar.close()
        elif event == "round":
            row = info["row"]
            errors = {k[4:]: v for k, v in row.items() if k.startswith("val_")}
            worst = {k[7:]: v for k, v in row.items() if k.startswith("valmax_")}
            print(f"round {row['round']}: {row['n_labels']} labels ({row['n_train']} trained on); validation "
                  + format_errors(dict(errors, n=row["n_labels"] - row["n_train"])).replace("RMSE on", "RMSE,")
                  + ("; worst temperature: " + format_errors(dict(worst, n=0)).split(": ", 1)[1] if worst else "")
                  + (" -- targets met" if row["met"] else ""), flush=True)

    rows = learn(args.out, starts=starts, dihedral=dihedral, temperatures_K=args.temperatures, budget=args.budget,
                 targets=targets, n_seed=args.n_seed, n_validation=args.n_validation, batch=args.batch,
                 n_replicas=args.replicas, md_steps=args.md_steps, md_interval=args.md_interval,
                 timestep_fs=args.timestep, criterion=args.criterion, stride=args.stride,
                 equilibration_fs=args.equilibration, engine=args.engine, method=args.method,
                 polarizability=args.polarizability, seed=args.seed, test=args.test, resume=args.resume,
                 progress=progress)
    random_rows = _compare_random(args, rows, starts, dihedral) if args.compare_random else None
    if random_rows:
        curves.write_csv(os.path.join(args.out, "learning_random.csv"), random_rows)
    curves.plot(os.path.join(args.out, "learning.png"), rows, random_rows, targets=targets,
                title=f"{next(iter(starts.values())).get_chemical_formula()}: "
                      f"{'test' if args.test else 'validation'} errors")
    last = rows[-1]
    print(f"{'targets met' if last['met'] else 'targets not met'} with {last['n_labels']} labels in "
          f"{len(rows)} rounds; {time.perf_counter() - started:.0f} s wall; wrote {args.out}/model.npz, "
          f"data.extxyz.gz, learning.csv, learning.png")
    return 0


def _compare_random(args, rows, starts, dihedral):
    """Random-frame models at the learner's training-set sizes (same validation and test frames)."""
    import os

    from nxplugin.learn.curves import random_baseline
    from nxplugin.reference.datasets import read_dataset

    if args.compare_random == "md":
        from nxplugin.learn.loop import split_count
        from nxplugin.reference.sampling import sample
        path = os.path.join(args.out, "random.extxyz.gz")
        n_sets = len(starts) * len(args.temperatures)
        if not os.path.exists(path):
            print(f"random pool: engine MD, {rows[-1]['n_train']} frames")
            sample(path, starts=starts, dihedral=dihedral, temperatures_K=args.temperatures, n_traj=1,
                   n_frames=split_count(rows[-1]["n_train"], n_sets), stride=args.stride, timestep_fs=args.timestep,
                   equilibration_fs=args.equilibration, polarizability=args.polarizability, engine=args.engine,
                   method=args.method,
                   seed=2 * args.seed + 7, resume=os.path.exists(path + ".work"))
        pool = read_dataset(path)
    else:
        pool = read_dataset(args.compare_random)
    validation = read_dataset(os.path.join(args.out, "validation.extxyz.gz"))
    test = read_dataset(args.test) if args.test else None
    n_val = rows[-1]["n_labels"] - rows[-1]["n_train"]
    counts = [r["n_train"] for r in rows]
    print(f"random baseline: {len(counts)} models on random frames of {args.compare_random}")
    out = random_baseline(pool, counts, validation=validation, reference=next(iter(starts.values())).positions,
                          test=test, seed=args.seed)
    for row in out:
        row["n_labels"] = row["n_train"] + n_val
    return out


def _evaluate_uncertainty(model_file, data_file):
    from nxplugin.learn.uncertainty import error_predictors
    from nxplugin.model.modelfile import load_model
    from nxplugin.reference.datasets import read_dataset
    from nxplugin.shipped import model_path

    result = error_predictors(load_model(model_path(model_file)), read_dataset(data_file))
    print(f"{model_file} on {result['n']} frames of {data_file}: Spearman rank correlation with")
    print(f"  |energy error|:      energy_uncertainty {result['spearman_energy_uncertainty']:+.3f}, "
          f"ood_score {result['spearman_energy_ood']:+.3f}")
    if "spearman_forces_uncertainty" in result:
        print(f"  RMS force error:     energy_uncertainty {result['spearman_forces_uncertainty']:+.3f}, "
              f"ood_score {result['spearman_forces_ood']:+.3f}")
    print(f"  largest 10% energy errors among the highest 10% scores: energy_uncertainty "
          f"{result['top10_energy_uncertainty']:.0%}, ood_score {result['top10_energy_ood']:.0%}")
    return 0
