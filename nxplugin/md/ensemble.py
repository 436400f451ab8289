"""Trajectory ensembles: chunks of replicas run in this process, over local processes (joblib) or on
a Dask cluster (joblib's Dask backend).

Units: as :class:`nxplugin.md.settings.MDSettings` (K, fs, 1/fs); frames in ASE units.

Files and checkpoints are those of :mod:`nxplugin.md.trajfile` (one extxyz per trajectory), so
``resume`` works with either engine. A chunk always predicts every replica slot, finished or not, so
each replica's numbers do not depend on what the others are doing: sequential, joblib and Dask runs,
and resumed runs, write byte-identical files. A chunk continues from the checkpoints it finds, so a
chunk retried after a lost worker loses nothing. Chunks run their matrix products on one BLAS thread
(threadpoolctl): faster at these sizes, and the same sums everywhere.
"""
import contextlib
import os

import numpy as np
from threadpoolctl import threadpool_limits

from nxplugin.md.batched import BatchedDynamics
from nxplugin.md.dynamics import run_trajectory
from nxplugin.md.trajfile import TrajectoryFile, format_frame, frame_info, trajectory_path

MD_ENGINES = ("ase", "batched")


def run_chunk(model, starts, traj_ids, out_dir, settings, *, engine="batched", progress=None):
    """Run the trajectories ``traj_ids``, continuing from any checkpoints in ``out_dir``.

    Parameters
    ----------
    model : RPRModel
    starts : list of ase.Atoms
        Their start geometries (Angstrom) with masses and momenta.
    traj_ids : list of int
    out_dir : str
    settings : MDSettings
    engine : {"batched", "ase"}, default="batched"
    progress : callable or None
        Called with the number of replica-steps done.

    Returns
    -------
    list of dict
        One summary per trajectory (the checkpoint's ``meta`` plus ``path`` and ``messages``, the
        out-of-domain reports).
    """
    if engine not in MD_ENGINES:
        raise ValueError(f"engine={engine!r} is not one of {MD_ENGINES}")
    os.makedirs(out_dir, exist_ok=True)
    with threadpool_limits(limits=1, user_api="blas"):
        if engine == "ase":
            return [dict(run_trajectory(model, atoms, trajectory_path(out_dir, k), settings, traj_id=k,
                                        resume=True, progress=progress), path=trajectory_path(out_dir, k))
                    for k, atoms in zip(traj_ids, starts)]
        return _run_batched(model, starts, traj_ids, out_dir, settings, progress)


def _run_batched(model, starts, traj_ids, out_dir, settings, progress):
    files, rngs, positions, momenta = [], [], [], []
    for k, atoms in zip(traj_ids, starts):
        meta = dict(settings.as_dict(), traj_id=k, conformer=atoms.info.get("conformer", ""))
        file = TrajectoryFile(trajectory_path(out_dir, k), meta, resume=True)
        rng = np.random.default_rng([settings.seed, k, 1])
        if file.state is not None:
            positions.append(file.state["positions"])
            momenta.append(file.state["momenta"])
            rng.bit_generator.state = file.state["meta"]["rng"]
        else:
            positions.append(atoms.positions)
            momenta.append(atoms.get_momenta())
        files.append(file)
        rngs.append(rng)
    symbols = starts[0].get_chemical_symbols()
    dyn = BatchedDynamics(model, positions, momenta, starts[0].get_masses(), rngs, settings)
    summaries = [dict(f.state["meta"], skipped=True) if f.finished else None for f in files]
    messages = [[] for _ in files]

    def finish(i, stopped=None):
        summaries[i] = files[i].checkpoint(dyn.positions[i], dyn.momenta[i], rngs[i], finished=True,
                                           stopped=stopped)

    def save_frame(i):
        file, res = files[i], dyn.results
        info = frame_info(step=file.step, settings=settings, traj_id=file.meta["traj_id"],
                          ood_score=res["ood_score"][i], kinetic_energy=dyn.kinetic_energy(i),
                          energy=res["energy"][i],
                          polarizability=res["polarizability"][i] if "polarizability" in res else None)
        file.write(format_frame(symbols, dyn.positions[i], dyn.masses, dyn.momenta[i], res["forces"][i], info,
                                float(res["energy"][i]), res["dipole"][i]))
        message = file.out_of_domain(info["ood_score"], settings.ood_threshold)
        if message is not None and (file.ood_frames == 1 or settings.stop_on_ood):
            messages[i].append(message)
        if message is not None and settings.stop_on_ood:
            return finish(i, f"out of domain: ood_score {info['ood_score']:.2f} at t = {info['time']:.1f} fs")
        if file.frames % settings.checkpoint_every == 0:
            file.checkpoint(dyn.positions[i], dyn.momenta[i], rngs[i])

    for i, file in enumerate(files):
        if file.finished:
            continue
        if file.state is None:
            file.checkpoint(dyn.positions[i], dyn.momenta[i], rngs[i])
        if file.step % settings.interval == 0 and file.last_written != file.step:
            save_frame(i)
        if not file.finished and file.step >= settings.n_steps:
            finish(i)
    while True:
        live = [i for i, f in enumerate(files) if not f.finished]
        if not live:
            break
        step = min(files[i].step for i in live)           # replicas behind (after a kill) catch up first
        idx = [i for i in live if files[i].step == step]
        dyn.step(idx)
        for i in idx:
            files[i].step += 1
            if files[i].step % settings.interval == 0:
                save_frame(i)
            if not files[i].finished and files[i].step >= settings.n_steps:
                finish(i)
        if progress is not None:
            progress(len(idx))
    return [dict(s, path=f.path, messages=m) for s, f, m in zip(summaries, files, messages)]


def chunks(n_traj, chunk_size):
    """Trajectory indices in chunks of ``chunk_size``: the same split whichever backend runs them."""
    if chunk_size < 1:
        raise ValueError(f"{chunk_size=} must be at least 1")
    return [list(range(start, min(start + chunk_size, n_traj))) for start in range(0, n_traj, chunk_size)]


def run_ensemble(model, starts, out_dir, settings, *, engine="batched", jobs=1, scheduler=None,
                 scheduler_file=None, chunk_size=32, resume=False, progress=None):
    """Run an ensemble of trajectories, one file ``traj_NNN.extxyz`` each, in chunks of replicas.

    Parameters
    ----------
    model : RPRModel
    starts : list of ase.Atoms
        Start geometries (Angstrom) with momenta, one per trajectory (:func:`nxplugin.md.dynamics.initial_conditions`).
    out_dir : str
    settings : MDSettings
    engine : {"batched", "ase"}, default="batched"
        One batched prediction per step for a chunk, or one ASE dynamics object per trajectory.
    jobs : int, default=1
        Local processes (joblib, loky backend); 1 runs the chunks in this process.
    scheduler, scheduler_file : str, optional
        A ``dask.distributed`` scheduler address (``tcp://host:port``) or scheduler file: the chunks
        run there through joblib's Dask backend.
    chunk_size : int, default=32
        Replicas per chunk (per batched prediction).
    resume : bool, default=False
        Continue unfinished trajectories from their checkpoints and skip finished ones; otherwise
        old files of these trajectories are removed first.
    progress : callable or None
        Called as ``progress(trajectories_done, replica_steps_done)`` with increments.

    Returns
    -------
    list of dict
        Per trajectory, in order: :func:`run_chunk`'s summaries. Out-of-domain reports are also
        given as warnings.
    """
    import warnings

    if engine not in MD_ENGINES:
        raise ValueError(f"engine={engine!r} is not one of {MD_ENGINES}")
    for k, atoms in enumerate(starts):
        model.check_geometry(atoms.numbers, atoms.positions)
        if not np.allclose(atoms.get_masses(), starts[0].get_masses()):
            raise ValueError(f"start {k} has masses {atoms.get_masses()} unlike start 0's")
    os.makedirs(out_dir, exist_ok=True)
    if not resume:
        for k in range(len(starts)):
            TrajectoryFile(trajectory_path(out_dir, k), {}, resume=False).close()
    kwargs = dict(engine=engine)
    parts = chunks(len(starts), chunk_size)
    results = []
    if scheduler is None and scheduler_file is None and jobs == 1:
        steps = (lambda n: progress(0, n)) if progress is not None else None
        for ids in parts:
            done = run_chunk(model, [starts[k] for k in ids], ids, out_dir, settings, progress=steps, **kwargs)
            results += done
            if progress is not None:
                progress(len(done), 0)
    else:
        results = _run_parallel(model, starts, parts, out_dir, settings, kwargs, jobs, scheduler, scheduler_file,
                                progress)
    results.sort(key=lambda s: s["traj_id"])
    for summary in results:
        for message in summary["messages"]:
            warnings.warn(message, stacklevel=2)
    return results


def _run_parallel(model, starts, parts, out_dir, settings, kwargs, jobs, scheduler, scheduler_file, progress):
    import joblib

    tasks = (joblib.delayed(run_chunk)(model, [starts[k] for k in ids], ids, out_dir, settings, **kwargs)
             for ids in parts)
    with contextlib.ExitStack() as stack:
        if scheduler is not None or scheduler_file is not None:
            from distributed import Client
            stack.enter_context(Client(scheduler, scheduler_file=scheduler_file, set_as_default=True))
            stack.enter_context(joblib.parallel_config(backend="dask"))
            parallel = joblib.Parallel(n_jobs=-1, return_as="generator_unordered")
        else:
            parallel = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")
        results = []
        for done in parallel(tasks):
            results += done
            if progress is not None:
                progress(len(done), sum(s.get("step", 0) - s.get("resumed_from", s.get("step", 0)) for s in done))
    return results
