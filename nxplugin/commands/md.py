"""Run molecular dynamics with an nxplugin model, one extxyz file per trajectory, for spectra.

The protocol (see README): an equilibration ensemble (--equilibration-replicas replicas, Langevin with
a fixed centre of mass at --temperature for --equilibration ps, started alternately from the
conformer minima stored with the model or from --start FILE ...; files in DIR/equilibration/, not part of the production), conformer populations at
T from it by a two-state Markov model of the trans/gauche labels (DIR/populations.json; `nxplugin
spectrum --conformers` weights the conformer spectra by them), then production trajectories that
start from equilibrated positions and momenta, drawn per conformer in proportion to the populations,
and run NVE (--thermostat nve, the default: a thermostat would broaden every band). With
--equilibration 0 the trajectories start at the minima with Maxwell-Boltzmann velocities.

Every saved frame keeps positions (Angstrom), momenta, info['time'] (fs), the potential energy (eV),
forces (eV/Angstrom), dipole (e*Angstrom), info['polarizability'] (Angstrom^3) when the model has it,
info['ood_score'], info['temperature_K'], info['ekin'] and info['etot'] (eV); ase.io.read reads the
files. Checkpoints are written as the run goes: after a crash or kill, the same command with --resume
continues every unfinished trajectory (equilibration included).

Ensembles: with more than one trajectory the batched engine propagates the replicas of a chunk
together, one model prediction per step for all of them (the same trajectories as --engine ase, to
round-off). Chunks run in this process, over --jobs local processes (joblib), or on a Dask cluster
given by --scheduler or --scheduler-file; every backend writes the same bytes.
"""
import os

# --- option range types (issue 17) ---
from nxplugin.commands._options import (nonnegative_float, nonnegative_int, positive_float, positive_int,
                                        refuse_existing_run)
# --- end ---

#: steps between the equilibration frames kept for populations and production starts
EQUILIBRATION_INTERVAL = 40


def add_arguments(parser):
    parser.add_argument("--model", metavar="MODEL",
                        help="model file or shipped model name (default: dce-gfn2xtb; 'nxplugin models' lists them)")
    parser.add_argument("--start", nargs="+", metavar="FILE",
                        help="start geometries (any ase-readable file, the model's atoms), used in turn; "
                        "default: the conformer minima stored with the model")
    parser.add_argument("--temperature", type=nonnegative_float("K"), default=300.0, metavar="K",
                        help="temperature of the ensemble, K (default 300)")
    parser.add_argument("--timestep", type=positive_float("fs"), default=0.5, metavar="FS", help="time step, fs (default 0.5)")
    parser.add_argument("--time", type=positive_float("ps"), default=1.0, metavar="PS",
                        help="length of each production trajectory, ps (default 1)")
    parser.add_argument("--n-traj", type=positive_int(), default=2, help="number of production trajectories (default 2)")
    parser.add_argument("--thermostat", choices=["nve", "langevin", "bussi"], default="nve",
                        help="production: nve (velocity Verlet, default), langevin or bussi")
    parser.add_argument("--equilibration", type=nonnegative_float("ps"), default=10.0, metavar="PS",
                        help="equilibration per replica, ps (default 10; 0: start production at the minima)")
    parser.add_argument("--equilibration-replicas", type=positive_int(), default=32, metavar="N",
                        help="replicas of the equilibration ensemble (default 32, at least --n-traj)")
    parser.add_argument("--equilibration-thermostat", choices=["langevin", "bussi"], default="langevin",
                        help="thermostat of the equilibration (default langevin)")
    parser.add_argument("--friction", type=nonnegative_float("1/fs"), default=0.01, metavar="1/FS",
                        help="Langevin friction, 1/fs (default 0.01)")
    parser.add_argument("--taut", type=positive_float("fs"), default=100.0, metavar="FS", help="Bussi time constant, fs (default 100)")
    parser.add_argument("--interval", type=positive_int("steps"), default=2, help="steps between saved frames (default 2)")
    parser.add_argument("--seed", type=nonnegative_int(), default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (traj_000.extxyz, ...)")
    parser.add_argument("--resume", action="store_true", help="continue unfinished trajectories in DIR")
    parser.add_argument("--checkpoint-every", type=positive_int("frames"), default=200, metavar="FRAMES",
                        help="saved frames between checkpoints (default 200)")
    parser.add_argument("--ood-threshold", type=positive_float(), default=1.0,
                        help="out-of-domain score that triggers a warning (default 1.0)")
    parser.add_argument("--stop-on-ood", action="store_true",
                        help="stop a trajectory cleanly when it leaves the training domain")
    parser.add_argument("--uncertainty", action="store_true",
                        help="also write DIR/uncertainty.csv: per saved frame the energy's Gaussian-process "
                        "posterior standard deviation in eV (nxplugin.learn.uncertainty) beside ood_score")
    parser.add_argument("--engine", choices=["ase", "batched"],
                        help="batched replicas (default for more than one) or one ASE dynamics per trajectory")
    parser.add_argument("--jobs", type=positive_int(), default=1, metavar="N",
                        help="local processes running chunks of trajectories (joblib; default 1)")
    parser.add_argument("--chunk-size", type=positive_int(), default=32, metavar="N",
                        help="trajectories per chunk, predicted together (default 32)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run the chunks on this Dask scheduler")
    cluster.add_argument("--scheduler-file", metavar="FILE", help="Dask scheduler file (dask scheduler --scheduler-file)")


def _progress_bar(total, desc, timestep_fs):
    from tqdm import tqdm

    bar = tqdm(total=total, unit="traj", desc=desc, disable=None)
    steps = [0]

    def progress(trajectories, replica_steps):
        steps[0] += replica_steps
        bar.set_postfix_str(f"{steps[0] * timestep_fs / 1000:.2f} ps", refresh=False)
        bar.update(trajectories)

    return bar, progress


def _equilibrate(args, model, settings, ensemble):
    """Run the equilibration, write populations.json, and return the production starts."""
    import dataclasses
    import json

    import numpy as np

    from nxplugin.fileio import atomic_write
    from nxplugin.md import protocol
    from nxplugin.md.dynamics import initial_conditions

    n_replicas = max(args.equilibration_replicas, args.n_traj)
    steps = int(round(args.equilibration * 1000 / args.timestep))
    seed = int(np.random.SeedSequence([args.seed, 1]).generate_state(1)[0])   # streams apart from production's
    eq_settings = dataclasses.replace(settings, thermostat=args.equilibration_thermostat, n_steps=steps,
                                      interval=min(EQUILIBRATION_INTERVAL, steps), seed=seed)
    print(f"equilibration: {n_replicas} x {args.equilibration:g} ps, {args.equilibration_thermostat} at "
          f"{args.temperature:g} K -> {os.path.join(args.out, protocol.EQUILIBRATION_DIR)}")
    bar, progress = _progress_bar(n_replicas, "equilibrate", args.timestep)
    with bar:
        protocol.equilibrate(model, initial_conditions(model, n_replicas, args.temperature, seed,
                                                   starts=args.start_geometries), args.out,
                             eq_settings, progress=progress, **ensemble)
    replicas = protocol.read_equilibration(args.out, n_replicas)
    labels, dihedral = protocol.conformer_labels(replicas)
    estimate = None
    if labels is not None:
        estimate = protocol.two_state_populations(labels, seed=args.seed)
        half = [label[len(label) // 2:] for label in labels]
        estimate.update(temperature_K=args.temperature, dihedral=dihedral, n_replicas=n_replicas,
                        equilibration_ps=args.equilibration, thermostat=args.equilibration_thermostat,
                        source=f"{n_replicas} x {args.equilibration:g} ps {args.equilibration_thermostat} "
                               f"equilibration at {args.temperature:g} K ({os.path.join(args.out, protocol.EQUILIBRATION_DIR)})",
                        transitions_second_half=int(sum(np.count_nonzero(np.diff(h)) for h in half)))
        atomic_write(os.path.join(args.out, protocol.POPULATIONS_FILE), json.dumps(estimate, indent=1))
        print("populations at {:g} K: ".format(args.temperature) + ", ".join(
            f"{c} {p:.3f} ± {e:.3f}" for c, (p, e) in estimate["populations"].items())
            + f" ({estimate['transitions']} transitions; {estimate['method']})")
        if estimate["transitions"] < 20:
            import warnings
            warnings.warn(f"only {estimate['transitions']} conformer transitions in the equilibration: the "
                          "populations are rough; raise --equilibration or --equilibration-replicas", stacklevel=2)
    return protocol.production_starts(replicas, labels, estimate and estimate["populations"], args.n_traj,
                                      seed=args.seed), estimate


def run(args):
    import json
    import warnings

    from nxplugin.fileio import atomic_write
    from nxplugin.md.dynamics import initial_conditions
    from nxplugin.md.ensemble import run_ensemble
    from nxplugin.md.settings import MDSettings
    from nxplugin.model.modelfile import load_model
    from nxplugin.shipped import model_path

    refuse_existing_run(args.out, args.resume)   # issue 17; option ranges are checked by their types
    model_file = model_path(args.model)
    model = load_model(model_file)
    args.start_geometries = None
    if args.start:
        from nxplugin.reference.starts import read_geometries
        # onto the model's labelling (any numbering), before masses and velocities are set
        args.start_geometries = {name: atoms[model.atom_mapper.find(atoms.numbers, atoms.positions)]
                                 for name, atoms in read_geometries(args.start, model.numbers).items()}
    settings = MDSettings(temperature_K=args.temperature, timestep_fs=args.timestep,
                          n_steps=int(round(args.time * 1000 / args.timestep)), interval=args.interval,
                          thermostat=args.thermostat, friction_per_fs=args.friction, taut_fs=args.taut,
                          seed=args.seed, checkpoint_every=args.checkpoint_every,
                          ood_threshold=args.ood_threshold, stop_on_ood=args.stop_on_ood)
    engine = args.engine or ("batched" if args.n_traj > 1 or args.equilibration > 0 else "ase")
    ensemble = dict(engine=engine, jobs=args.jobs, scheduler=args.scheduler, scheduler_file=args.scheduler_file,
                    chunk_size=args.chunk_size, resume=args.resume)
    where = args.scheduler or args.scheduler_file or (f"{args.jobs} processes" if args.jobs > 1 else "this process")
    print(f"model {model_file}; {engine} engine, {where}")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        populations = None
        if args.equilibration > 0:
            starts, populations = _equilibrate(args, model, settings, ensemble)
        else:
            starts = initial_conditions(model, args.n_traj, args.temperature, args.seed,
                                        starts=args.start_geometries)
        # start geometries (any numbering or labelling class) onto the model's labelling: the batched
        # engine predicts on raw arrays in the model's order; ModelDomainError for another molecule
        starts = [atoms[model.atom_mapper.find(atoms.numbers, atoms.positions)] for atoms in starts]
        print(f"production: {args.n_traj} x {args.time:g} ps, {args.thermostat} at {args.temperature:g} K "
              f"({args.timestep:g} fs steps; starts: "
              + ", ".join(f"{c} {sum(s.info['conformer'] == c for s in starts)}"
                          for c in dict.fromkeys(s.info["conformer"] for s in starts)) + f") -> {args.out}")
        bar, progress = _progress_bar(args.n_traj, "md", args.timestep)
        with bar:
            summary = run_ensemble(model, starts, args.out, settings, progress=progress, **ensemble)
    n_ood = sum(s["ood_frames"] for s in summary)
    stopped = [s["path"] for s in summary if s.get("stopped")]
    atomic_write(os.path.join(args.out, "summary.json"), json.dumps(
        {"model": model_file, "engine": engine, "kernel": model.kernel_backend, "settings": settings.as_dict(),
         "args": {k: v for k, v in vars(args).items() if not k.startswith("_")}, "populations": populations,
         "ood_frames": n_ood, "stopped_out_of_domain": len(stopped), "trajectories": summary},
        indent=1, default=str))
    if args.uncertainty:
        from nxplugin.learn.uncertainty import write_trajectory_uncertainty
        path = write_trajectory_uncertainty(model, [s["path"] for s in summary],
                                            os.path.join(args.out, "uncertainty.csv"))
        print(f"energy uncertainty (eV) of every saved frame in {path}")
    print(f"wrote {len(summary)} trajectories ({sum(s['frames'] for s in summary)} frames) in {args.out}; "
          f"{n_ood} frames beyond the training data; {len(stopped)} stopped out of domain"
          + (f": {stopped}" if stopped else ""))
