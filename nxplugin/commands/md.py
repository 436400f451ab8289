"""Run molecular dynamics with an nxplugin model (ASE integrators), one extxyz file per trajectory.

Every saved frame keeps positions (Angstrom), momenta, info['time'] (fs), the potential energy (eV),
forces (eV/Angstrom), dipole (e*Angstrom), info['polarizability'] (Angstrom^3) when the model has it,
info['ood_score'] and info['temperature_K']; ase.io.read reads the files. Trajectories
start in turn from --start FILE ... or from the conformer minima stored with the model. Checkpoints are written as the run goes: after a
crash or kill, the same command with --resume continues every unfinished trajectory.

Ensembles: with --n-traj > 1 the batched engine propagates the replicas of a chunk together, one
model prediction per step for all of them (the same trajectories as --engine ase, to round-off).
Chunks run in this process, over --jobs local processes (joblib), or on a Dask cluster given by
--scheduler or --scheduler-file; every backend writes the same bytes.
"""
import os


def add_arguments(parser):
    parser.add_argument("--model", metavar="MODEL", help="model file or shipped model name (default: dce-gfn2xtb, 'nxplugin models' lists them)")
    parser.add_argument("--start", nargs="+", metavar="FILE",
                        help="start geometries (any ase-readable file, the model's atom order), used in turn; "
                        "default: the conformer minima stored with the model")
    parser.add_argument("--temperature", type=float, default=300.0, metavar="K",
                        help="initial velocities and thermostat target, K (default 300)")
    parser.add_argument("--timestep", type=float, default=0.5, metavar="FS", help="time step, fs (default 0.5)")
    parser.add_argument("--time", type=float, default=1.0, metavar="PS", help="length of each trajectory, ps (default 1)")
    parser.add_argument("--n-traj", type=int, default=2, help="number of trajectories (default 2)")
    parser.add_argument("--thermostat", choices=["nve", "langevin", "bussi"], default="langevin",
                        help="nve (velocity Verlet), langevin or bussi (default langevin)")
    parser.add_argument("--friction", type=float, default=0.01, metavar="1/FS",
                        help="Langevin friction, 1/fs (default 0.01)")
    parser.add_argument("--taut", type=float, default=100.0, metavar="FS", help="Bussi time constant, fs (default 100)")
    parser.add_argument("--interval", type=int, default=2, help="steps between saved frames (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (traj_000.extxyz, ...)")
    parser.add_argument("--resume", action="store_true", help="continue unfinished trajectories in DIR")
    parser.add_argument("--checkpoint-every", type=int, default=200, metavar="FRAMES",
                        help="saved frames between checkpoints (default 200)")
    parser.add_argument("--ood-threshold", type=float, default=1.0,
                        help="out-of-domain score that triggers a warning (default 1.0)")
    parser.add_argument("--stop-on-ood", action="store_true",
                        help="stop a trajectory cleanly when it leaves the training domain")
    parser.add_argument("--engine", choices=["ase", "batched"],
                        help="batched replicas (default for --n-traj > 1) or one ASE dynamics per trajectory")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="local processes running chunks of trajectories (joblib; default 1)")
    parser.add_argument("--chunk-size", type=int, default=32, metavar="N",
                        help="trajectories per chunk, predicted together (default 32)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run the chunks on this Dask scheduler")
    cluster.add_argument("--scheduler-file", metavar="FILE", help="Dask scheduler file (dask scheduler --scheduler-file)")


def run(args):
    import json
    import warnings

    from tqdm import tqdm

    from nxplugin.fileio import atomic_write
    from nxplugin.md.dynamics import initial_conditions
    from nxplugin.md.ensemble import run_ensemble
    from nxplugin.md.settings import MDSettings
    from nxplugin.model.modelfile import load_model
    from nxplugin.shipped import model_path

    if args.timestep <= 0 or args.time <= 0 or args.n_traj < 1 or args.temperature < 0:
        raise ValueError("--timestep, --time and --n-traj must be positive and --temperature non-negative")
    if args.jobs < 1 or args.chunk_size < 1:
        raise ValueError(f"--jobs ({args.jobs}) and --chunk-size ({args.chunk_size}) must be at least 1")
    engine = args.engine or ("batched" if args.n_traj > 1 else "ase")
    model_file = model_path(args.model)
    model = load_model(model_file)
    settings = MDSettings(temperature_K=args.temperature, timestep_fs=args.timestep,
                          n_steps=int(round(args.time * 1000 / args.timestep)), interval=args.interval,
                          thermostat=args.thermostat, friction_per_fs=args.friction, taut_fs=args.taut,
                          seed=args.seed, checkpoint_every=args.checkpoint_every,
                          ood_threshold=args.ood_threshold, stop_on_ood=args.stop_on_ood)
    geometries = None
    if args.start:
        from nxplugin.reference.starts import read_geometries
        geometries = read_geometries(args.start, model.numbers)
    starts = initial_conditions(model, args.n_traj, args.temperature, args.seed, starts=geometries)
    where = args.scheduler or args.scheduler_file or (f"{args.jobs} processes" if args.jobs > 1 else "this process")
    print(f"model {model_file}; {args.n_traj} x {args.time} ps at {args.temperature} K "
          f"({args.thermostat}, {args.timestep} fs steps, {engine} engine, {where}) -> {args.out}")
    with tqdm(total=args.n_traj, unit="traj", desc="md", disable=None) as bar, warnings.catch_warnings():
        warnings.simplefilter("always")
        steps = [0]

        def progress(trajectories, replica_steps):
            steps[0] += replica_steps
            bar.set_postfix_str(f"{steps[0] * args.timestep / 1000:.2f} ps", refresh=False)
            bar.update(trajectories)

        summary = run_ensemble(model, starts, args.out, settings, engine=engine, jobs=args.jobs,
                               scheduler=args.scheduler, scheduler_file=args.scheduler_file,
                               chunk_size=args.chunk_size, resume=args.resume, progress=progress)
    n_ood = sum(s["ood_frames"] for s in summary)
    stopped = [s["path"] for s in summary if s.get("stopped")]
    atomic_write(os.path.join(args.out, "summary.json"), json.dumps(
        {"model": model_file, "engine": engine, "kernel": model.kernel_backend, "settings": settings.as_dict(),
         "args": {k: v for k, v in vars(args).items() if not k.startswith("_")},
         "ood_frames": n_ood, "stopped_out_of_domain": len(stopped), "trajectories": summary},
        indent=1, default=str))
    print(f"wrote {len(summary)} trajectories ({sum(s['frames'] for s in summary)} frames) in {args.out}; "
          f"{n_ood} frames beyond the training data; {len(stopped)} stopped out of domain"
          + (f": {stopped}" if stopped else ""))
