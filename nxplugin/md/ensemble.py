"""Trajectory ensembles: many replicas of one molecule propagated together, in chunks run in this
process, over local processes (joblib) or on a Dask cluster (joblib's Dask backend).

Units: as :mod:`nxplugin.md.dynamics` (temperature K, time step fs, friction 1/fs, Bussi time constant
fs); internally ASE units (positions Angstrom, momenta ASE units, energies eV, forces eV/Angstrom).

:class:`BatchedDynamics` repeats the update order and random draws of ASE 3.29's ``VelocityVerlet``,
``Langevin(fixcm=False)`` with ``FixCom`` and ``Bussi`` with ``FixCom`` for every replica, with one
``model.predict`` call per step for all replicas of a chunk. Replica ``k`` draws from
``np.random.default_rng([seed, k, 1])`` exactly as the one-replica path does, so both give the same
trajectory (to round-off of the model's matrix products, ~1e-12 Angstrom over hundreds of steps).

Files and checkpoints are those of :func:`nxplugin.md.dynamics.run_trajectory` (one extxyz per
trajectory, whole records flushed, checkpoints written atomically), so ``--resume`` works with
either engine. A chunk always predicts every replica slot, finished or not, so each replica's
numbers do not depend on what the others are doing: sequential, joblib and Dask runs, and resumed
runs, write byte-identical files. A chunk continues from the checkpoints it finds, so a chunk
retried after a lost worker loses nothing.
"""
import contextlib
import ctypes
import json
import math
import os

import numpy as np
from ase import units

from nxplugin.md.trajfile import format_frame
from nxplugin.fileio import atomic_write
from nxplugin.md.dynamics import THERMOSTATS, checkpoint_path, read_checkpoint, run_trajectory

ENGINES = ("ase", "batched")


class BatchedDynamics:
    """Velocity Verlet, or Langevin / Bussi with a fixed centre of mass, for ``n`` replicas.

    Parameters
    ----------
    model : RPRModel
    positions, momenta : ndarray of shape (n, n_atoms, 3), Angstrom and ASE momentum units
    masses : ndarray of shape (n_atoms,), amu
    rngs : list of numpy.random.Generator
        One stream per replica (Langevin and Bussi).
    thermostat : {"nve", "langevin", "bussi"}
    timestep_fs, temperature_K, friction_per_fs, taut_fs : float
        As :func:`nxplugin.md.dynamics.run_trajectory`.

    Notes
    -----
    ``step(idx)`` moves only the replicas ``idx``; ``results`` holds the latest prediction of every
    replica (``energy`` (n,) eV, ``forces`` (n, n_atoms, 3) eV/Angstrom, ``dipole`` (n, 3)
    e*Angstrom, ``ood_score`` (n,), ``polarizability`` (n, 3, 3) Angstrom**3 if the model has it).
    """

    def __init__(self, model, positions, momenta, masses, rngs, *, thermostat, timestep_fs,
                 temperature_K, friction_per_fs=0.01, taut_fs=100.0):
        if thermostat not in THERMOSTATS:
            raise ValueError(f"thermostat={thermostat!r} is not one of {THERMOSTATS}")
        self.model = model
        self.positions = np.array(positions, dtype=float)
        self.momenta = np.array(momenta, dtype=float)
        self.masses = np.asarray(masses, dtype=float)
        self.rngs = rngs
        self.thermostat = thermostat
        self.dt = timestep_fs * units.fs
        m = self.masses[:, None]
        if thermostat == "langevin":   # ase.md.langevin.Langevin.updatevars
            dt, fr, temp = self.dt, friction_per_fs / units.fs, units.kB * temperature_K
            sigma = np.sqrt(2 * temp * fr / m)
            self.c1 = dt / 2.0 - dt * dt * fr / 8.0
            self.c2 = dt * fr / 2 - dt * dt * fr * fr / 8.0
            self.c3 = np.sqrt(dt) * sigma / 2.0 - dt**1.5 * fr * sigma / 8.0
            self.c5 = dt**1.5 * sigma / (2 * np.sqrt(3))
            self.c4 = fr / 2.0 * self.c5
        if thermostat == "bussi":      # ase.md.bussi.Bussi.__init__, 3 degrees of freedom to FixCom
            self.ndof = 3 * len(self.masses) - 3
            self.target_kinetic_energy = 0.5 * (temperature_K * units.kB) * self.ndof
            self.exp_term = math.exp(-self.dt / (taut_fs * units.fs))
        self.predict()

    def predict(self):
        """Predict every replica slot (one ``model.predict`` call)."""
        self.results = self.model.predict(self.positions)

    def kinetic_energy(self, k):
        """Kinetic energy of replica ``k``, eV (as ``Atoms.get_kinetic_energy``)."""
        p = self.momenta[k]
        return 0.5 * np.vdot(p, p / self.masses[:, None])

    def _fix_positions(self, old, new):
        """FixCom.adjust_positions on a stack of replicas (in place)."""
        total = self.masses.sum()
        new += (self.masses @ old / total - self.masses @ new / total)[:, None, :]

    def _fix_momenta(self, p):
        """FixCom.adjust_momenta on a stack of replicas (in place)."""
        p -= self.masses[:, None] * (p.sum(axis=1) / self.masses.sum())[:, None, :]

    def step(self, idx):
        """Advance the replicas ``idx`` (array of slot indices) by one time step."""
        idx = np.asarray(idx, dtype=int)
        if self.thermostat == "langevin":
            self._langevin(idx)
        else:
            if self.thermostat == "bussi":
                self._bussi_scale(idx)
            self._verlet(idx)

    def _verlet(self, idx):
        # ase.md.verlet.VelocityVerlet.step (with FixCom's RATTLE part for Bussi)
        dt, m, constrained = self.dt, self.masses[:, None], self.thermostat != "nve"
        p = self.momenta[idx] + 0.5 * dt * self.results["forces"][idx]
        r = self.positions[idx]
        new = r + dt * p / m
        if constrained:
            self._fix_positions(r, new)
            p = (new - r) * m / dt
        self.positions[idx] = new
        self.predict()
        p = p + 0.5 * dt * self.results["forces"][idx]
        if constrained:
            self._fix_momenta(p)
        self.momenta[idx] = p

    def _bussi_scale(self, idx):
        # ase.md.bussi.Bussi.scale_velocities, then set_momenta through FixCom
        alpha = np.empty(len(idx))
        for j, k in enumerate(idx):
            rng = self.rngs[k]
            term = (1 - self.exp_term) * self.target_kinetic_energy / self.kinetic_energy(k) / self.ndof
            normal = rng.standard_normal()
            sum_of_noises = 2.0 * rng.standard_gamma(0.5 * (self.ndof - 1))
            alpha[j] = math.sqrt(self.exp_term + term * (sum_of_noises + normal**2)
                                 + 2 * normal * math.sqrt(self.exp_term * term))
        p = alpha[:, None, None] * self.momenta[idx]
        self._fix_momenta(p)
        self.momenta[idx] = p

    def _langevin(self, idx):
        # ase.md.langevin.Langevin.step with fixcm=False and the FixCom constraint
        dt, m, n_atoms = self.dt, self.masses[:, None], len(self.masses)
        xi, eta = np.empty((2, len(idx), n_atoms, 3))
        for j, k in enumerate(idx):
            xi[j] = self.rngs[k].standard_normal(size=(n_atoms, 3))
            eta[j] = self.rngs[k].standard_normal(size=(n_atoms, 3))
        rnd_pos = self.c5 * eta
        rnd_vel = self.c3 * xi - self.c4 * eta
        v = self.momenta[idx] / m
        v += self.c1 * self.results["forces"][idx] / m - self.c2 * v + rnd_vel
        x = self.positions[idx]
        new = x + dt * v + rnd_pos
        self._fix_positions(x, new)
        self.positions[idx] = new
        v = (new - x - rnd_pos) / dt
        self.predict()
        v += self.c1 * self.results["forces"][idx] / m - self.c2 * v + rnd_vel
        p = v * m
        self._fix_momenta(p)
        self.momenta[idx] = p


class _TrajectoryFile:
    """One trajectory's extxyz file and checkpoint, in the format of :mod:`nxplugin.md.dynamics`."""

    def __init__(self, path, meta):
        self.path, self.meta = path, meta
        state = read_checkpoint(path)
        self.state = state
        self.finished = state is not None and bool(state["meta"].get("finished"))
        self.step, self.frames, self.ood_frames, self.last_written = 0, 0, 0, -1
        if self.finished:
            return
        if state is not None:
            info = state["meta"]
            self.step, self.frames, self.ood_frames = info["step"], info["frames"], info["ood_frames"]
            self.last_written = info["last_written"]
            with open(path, "r+b") as handle:
                handle.truncate(info["bytes"])
        elif os.path.exists(path):
            os.unlink(path)
        self.resumed_from = self.step
        self.handle = open(path, "ab")

    def write(self, record):
        self.handle.write(record.encode())
        self.handle.flush()
        self.frames += 1
        self.last_written = self.step

    def checkpoint(self, positions, momenta, rng, finished=False, stopped=None):
        self.handle.flush()
        os.fsync(self.handle.fileno())
        info = dict(self.meta, step=self.step, frames=self.frames, ood_frames=self.ood_frames,
                    bytes=self.handle.tell(), last_written=self.last_written, rng=rng.bit_generator.state,
                    finished=finished, stopped=stopped)
        atomic_write(checkpoint_path(self.path), lambda f: np.savez(
            f, positions=positions, momenta=momenta, meta=np.array(json.dumps(info))))
        if finished:
            self.handle.close()
            self.finished = True
        return dict(info, resumed_from=self.resumed_from)


@contextlib.contextmanager
def _one_blas_thread():
    """Run OpenBLAS on one thread: faster for these matrix sizes, and the same sums everywhere."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's OpenBLAS, the one compiled kernels call)
    calls = []
    try:
        with open("/proc/self/maps") as maps:
            libraries = {line.split()[-1] for line in maps if "openblas" in line and ".so" in line}
        for name in libraries:
            lib = ctypes.CDLL(name)
            for prefix in ("scipy_openblas", "openblas"):
                for suffix in ("64_", ""):
                    get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                    if get is not None:
                        calls.append((getattr(lib, f"{prefix}_set_num_threads{suffix}"), get()))
    except OSError:
        pass
    for set_threads, _ in calls:
        set_threads(1)
    try:
        yield
    finally:
        for set_threads, previous in calls:
            set_threads(previous)


def trajectory_path(out_dir, traj_id):
    """``out_dir/traj_{traj_id:03d}.extxyz``."""
    return os.path.join(os.fspath(out_dir), f"traj_{traj_id:03d}.extxyz")


def run_chunk(model, starts, traj_ids, out_dir, *, engine="batched", temperature_K, timestep_fs, n_steps,
              interval=1, thermostat="langevin", friction_per_fs=0.01, taut_fs=100.0, seed=0,
              checkpoint_every=200, ood_threshold=1.0, stop_on_ood=False, progress=None):
    """Run the trajectories ``traj_ids``, continuing from any checkpoints in ``out_dir``.

    Parameters as :func:`nxplugin.md.dynamics.run_trajectory`; ``starts`` are their start ``Atoms``
    (with masses and momenta) and ``progress`` is called with the number of replica-steps done.

    Returns
    -------
    list of dict
        One summary per trajectory (``run_trajectory``'s dict plus ``path``, and ``messages``:
        the out-of-domain reports).
    """
    options = dict(temperature_K=temperature_K, timestep_fs=timestep_fs, n_steps=n_steps, interval=interval,
                   thermostat=thermostat, friction_per_fs=friction_per_fs, taut_fs=taut_fs, seed=seed,
                   checkpoint_every=checkpoint_every, ood_threshold=ood_threshold, stop_on_ood=stop_on_ood)
    os.makedirs(out_dir, exist_ok=True)
    with _one_blas_thread():
        if engine == "ase":
            return [_run_one_ase(model, atoms, k, out_dir, options, progress) for k, atoms in zip(traj_ids, starts)]
        if engine != "batched":
            raise ValueError(f"engine={engine!r} is not one of {ENGINES}")
        return _run_batched(model, starts, traj_ids, out_dir, progress=progress, **options)


def _run_one_ase(model, atoms, traj_id, out_dir, options, progress):
    import warnings
    path = trajectory_path(out_dir, traj_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = run_trajectory(model, atoms, path, traj_id=traj_id, resume=True, progress=progress, **options)
    return dict(info, path=path, messages=[str(w.message) for w in caught])


def _run_batched(model, starts, traj_ids, out_dir, *, temperature_K, timestep_fs, n_steps, interval, thermostat,
                 friction_per_fs, taut_fs, seed, checkpoint_every, ood_threshold, stop_on_ood, progress):
    files, rngs, positions, momenta = [], [], [], []
    for k, atoms in zip(traj_ids, starts):
        meta = {"traj_id": k, "thermostat": thermostat, "temperature_K": temperature_K,
                "timestep_fs": timestep_fs, "n_steps": n_steps, "interval": interval, "seed": seed,
                "conformer": atoms.info.get("conformer", "")}
        file = _TrajectoryFile(trajectory_path(out_dir, k), meta)
        rng = np.random.default_rng([seed, k, 1])
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
    dyn = BatchedDynamics(model, positions, momenta, starts[0].get_masses(), rngs, thermostat=thermostat,
                          timestep_fs=timestep_fs, temperature_K=temperature_K,
                          friction_per_fs=friction_per_fs, taut_fs=taut_fs)
    summaries = [dict(f.state["meta"], skipped=True) if f.finished else None for f in files]
    messages = [[] for _ in files]

    def finish(i, stopped=None):
        summaries[i] = files[i].checkpoint(dyn.positions[i], dyn.momenta[i], rngs[i], finished=True,
                                           stopped=stopped)

    def save_frame(i):
        file, res = files[i], dyn.results
        ekin = dyn.kinetic_energy(i)
        info = {"time": file.step * timestep_fs, "timestep_fs": timestep_fs * interval,
                "temperature_K": temperature_K, "ood_score": float(res["ood_score"][i]),
                "traj_id": file.meta["traj_id"], "ekin": ekin, "etot": ekin + float(res["energy"][i])}
        if "polarizability" in res:
            info["polarizability"] = res["polarizability"][i].ravel()
        file.write(format_frame(symbols, dyn.positions[i], dyn.masses, dyn.momenta[i], res["forces"][i], info,
                                float(res["energy"][i]), res["dipole"][i]))
        score = info["ood_score"]
        if score > ood_threshold:
            file.ood_frames += 1
            if file.ood_frames == 1 or stop_on_ood:
                messages[i].append(f"{file.path}: trajectory {file.meta['traj_id']}, frame {file.frames - 1} "
                                   f"(t = {info['time']:.1f} fs) is beyond the training data "
                                   f"(ood_score {score:.2f} > {ood_threshold})")
            if stop_on_ood:
                return finish(i, f"out of domain: ood_score {score:.2f} at t = {info['time']:.1f} fs")
        if file.frames % checkpoint_every == 0:
            file.checkpoint(dyn.positions[i], dyn.momenta[i], rngs[i])

    for i, file in enumerate(files):
        if file.finished:
            continue
        if file.state is None:
            file.checkpoint(dyn.positions[i], dyn.momenta[i], rngs[i])
        if file.step % interval == 0 and file.last_written != file.step:
            save_frame(i)
        if not file.finished and file.step >= n_steps:
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
            if files[i].step % interval == 0:
                save_frame(i)
            if not files[i].finished and files[i].step >= n_steps:
                finish(i)
        if progress is not None:
            progress(len(idx))
    return [dict(s, path=f.path, messages=m) for s, f, m in zip(summaries, files, messages)]


def chunks(n_traj, chunk_size):
    """Trajectory indices in chunks of ``chunk_size``: the same split whichever backend runs them."""
    if chunk_size < 1:
        raise ValueError(f"{chunk_size=} must be at least 1")
    return [list(range(start, min(start + chunk_size, n_traj))) for start in range(0, n_traj, chunk_size)]


def run_ensemble(model, starts, out_dir, *, n_steps, timestep_fs, temperature_K, engine="batched", jobs=1,
                 scheduler=None, scheduler_file=None, chunk_size=32, resume=False, progress=None, **options):
    """Run an ensemble of trajectories, one file ``traj_NNN.extxyz`` each, in chunks of replicas.

    Parameters
    ----------
    model : RPRModel
    starts : list of ase.Atoms
        Start geometries (Angstrom) with momenta, one per trajectory (:func:`nxplugin.md.dynamics.initial_conditions`).
    out_dir : str
    n_steps : int
    timestep_fs, temperature_K : float
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
    **options
        ``interval``, ``thermostat``, ``friction_per_fs``, ``taut_fs``, ``seed``, ``checkpoint_every``,
        ``ood_threshold``, ``stop_on_ood`` of :func:`nxplugin.md.dynamics.run_trajectory`.

    Returns
    -------
    list of dict
        Per trajectory, in order: :func:`run_chunk`'s summaries. Out-of-domain reports are also
        given as warnings.
    """
    import warnings

    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r} is not one of {ENGINES}")
    if options.get("thermostat", "langevin") not in THERMOSTATS:
        raise ValueError(f"thermostat={options['thermostat']!r} is not one of {THERMOSTATS}")
    for k, atoms in enumerate(starts):
        model.check_geometry(atoms.numbers, atoms.positions)
        if not np.allclose(atoms.get_masses(), starts[0].get_masses()):
            raise ValueError(f"start {k} has masses {atoms.get_masses()} unlike start 0's")
    os.makedirs(out_dir, exist_ok=True)
    if not resume:
        for k in range(len(starts)):
            for path in (trajectory_path(out_dir, k), checkpoint_path(trajectory_path(out_dir, k))):
                if os.path.exists(path):
                    os.unlink(path)
    kwargs = dict(options, engine=engine, n_steps=n_steps, timestep_fs=timestep_fs, temperature_K=temperature_K)
    parts = chunks(len(starts), chunk_size)
    results = []
    if scheduler is None and scheduler_file is None and jobs == 1:
        steps = (lambda n: progress(0, n)) if progress is not None else None
        for ids in parts:
            done = run_chunk(model, [starts[k] for k in ids], ids, out_dir, progress=steps, **kwargs)
            results += done
            if progress is not None:
                progress(len(done), 0)
    else:
        results = _run_parallel(model, starts, parts, out_dir, kwargs, jobs, scheduler, scheduler_file, progress)
    results.sort(key=lambda s: s["traj_id"])
    for summary in results:
        for message in summary["messages"]:
            warnings.warn(message, stacklevel=2)
    return results


def _run_parallel(model, starts, parts, out_dir, kwargs, jobs, scheduler, scheduler_file, progress):
    import joblib

    tasks = (joblib.delayed(run_chunk)(model, [starts[k] for k in ids], ids, out_dir, **kwargs) for ids in parts)
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
