"""ASE molecular dynamics with a model: initial conditions, one trajectory per file, checkpoint and resume.

Units: temperature K, time step fs, friction 1/fs, Bussi time constant fs; frames are written in ASE
units (positions Angstrom, momenta in ASE units, energies eV, dipoles e*Angstrom,
polarizabilities Angstrom**3).

Each trajectory appends whole extxyz records (one ``write`` and ``flush`` per frame) to its own file.
Every ``checkpoint_every`` frames the file is fsynced and a checkpoint is written atomically
(temporary file, then rename) with the exact positions, momenta, step, random-generator state and the
byte length of the trajectory file at that moment. A resumed run truncates the file to that length
and recomputes the frames after it, which are bit-identical because the state is exact: no saved
frame is lost or duplicated and the trajectory equals an uninterrupted one.
"""
import json
import os
import warnings

import numpy as np
from ase import Atoms, units
from ase.constraints import FixCom
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation

from nxplugin.calculator import RPRCalculator
from nxplugin.md.trajfile import format_frame
from nxplugin.fileio import atomic_write

THERMOSTATS = ("nve", "langevin", "bussi")


class OutOfDomain(Exception):
    """Raised inside a trajectory to stop it when its geometry leaves the training domain."""


def initial_conditions(model, n_traj, temperature_K, seed):
    """Starting geometries and Maxwell-Boltzmann velocities (no net momentum or rotation).

    DCE models (C, C, Cl, Cl, H x4) alternate trans and gauche minima; other models start from the
    model's equilibrium geometry.

    Returns
    -------
    list of ase.Atoms
        ``info['conformer']`` names the start.
    """
    from nxplugin.model.elements import formula
    from nxplugin.reference import molecules
    starts = [("equilibrium", Atoms(model.numbers, positions=model.reference_))]
    if formula(model.numbers) == " ".join(molecules.DCE_SYMBOLS):
        starts = [(c, molecules.dce(c)) for c in molecules.CONFORMERS]
    out = []
    for k in range(n_traj):
        name, atoms = starts[k % len(starts)]
        atoms = atoms.copy()
        atoms.set_masses(model.masses)
        rng = np.random.default_rng([seed, k])
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng, force_temp=True)
        Stationary(atoms)
        ZeroRotation(atoms)
        atoms.info["conformer"] = name
        out.append(atoms)
    return out


def checkpoint_path(traj_path):
    return os.fspath(traj_path) + ".ckpt.npz"


def read_checkpoint(traj_path):
    """The checkpoint dict of a trajectory file, or None when there is none."""
    path = checkpoint_path(traj_path)
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as data:
        state = {key: data[key] for key in data.files}
    state["meta"] = json.loads(str(state["meta"][()]))
    return state


def _make_dynamics(atoms, thermostat, timestep_fs, temperature_K, friction_per_fs, taut_fs, rng):
    if thermostat == "nve":
        from ase.md.verlet import VelocityVerlet
        return VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    atoms.set_constraint(FixCom())
    if thermostat == "langevin":
        from ase.md.langevin import Langevin
        # fixcm=True in ASE 3.29 overheats small molecules (DCE runs at ~760 K for 400 K): FixCom instead
        return Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K,
                        friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
    if thermostat == "bussi":
        from ase.md.bussi import Bussi
        return Bussi(atoms, timestep_fs * units.fs, temperature_K=temperature_K, taut=taut_fs * units.fs,
                     rng=rng)
    raise ValueError(f"thermostat={thermostat!r} is not one of {THERMOSTATS}")


def run_trajectory(model, atoms, path, *, temperature_K, timestep_fs, n_steps, interval=1,
                   thermostat="langevin", friction_per_fs=0.01, taut_fs=100.0, seed=0, traj_id=0,
                   resume=False, checkpoint_every=200, ood_threshold=1.0, stop_on_ood=False,
                   progress=None):
    """Run (or resume) one trajectory and write every ``interval``-th step to ``path`` (extxyz).

    Parameters
    ----------
    model : RPRModel
    atoms : ase.Atoms
        Start geometry (Angstrom) with velocities; ignored when resuming from a checkpoint.
    path : str
        Trajectory file; its checkpoint is ``path + ".ckpt.npz"``.
    temperature_K : float
        Thermostat target, K (also stored in every frame for spectra).
    timestep_fs : float
    n_steps : int
        Total steps of the trajectory.
    interval : int
        Steps between saved frames.
    thermostat : {"nve", "langevin", "bussi"}
    friction_per_fs : float
        Langevin friction, 1/fs.
    taut_fs : float
        Bussi time constant, fs.
    progress : callable or None
        Called with the number of steps just done.

    Returns
    -------
    dict
        ``frames`` written in total, ``ood_frames``, ``stopped`` (reason or None), ``resumed_from`` step.
    """
    path = os.fspath(path)
    state = read_checkpoint(path) if resume else None
    if state is not None and state["meta"].get("finished"):
        return dict(state["meta"], skipped=True)
    atoms = atoms.copy()
    atoms.calc = RPRCalculator(model, ood_threshold=np.inf)
    rng = np.random.default_rng([seed, traj_id, 1])
    step0, n_frames, ood_frames = 0, 0, 0
    if state is not None:
        atoms.positions = state["positions"]
        atoms.set_momenta(state["momenta"])
        rng.bit_generator.state = state["meta"]["rng"]
        step0, n_frames, ood_frames = (state["meta"][k] for k in ("step", "frames", "ood_frames"))
        with open(path, "r+b") as handle:
            handle.truncate(state["meta"]["bytes"])
    elif os.path.exists(path):
        os.unlink(path)
    dyn = _make_dynamics(atoms, thermostat, timestep_fs, temperature_K, friction_per_fs, taut_fs, rng)
    dyn.nsteps = step0
    handle = open(path, "ab")
    meta = {"traj_id": traj_id, "thermostat": thermostat, "temperature_K": temperature_K,
            "timestep_fs": timestep_fs, "n_steps": n_steps, "interval": interval, "seed": seed,
            "conformer": atoms.info.get("conformer", "")}
    written = {"last": state["meta"]["last_written"] if state is not None else -1}

    def save_checkpoint(finished=False, stopped=None):
        handle.flush()
        os.fsync(handle.fileno())
        info = dict(meta, step=dyn.nsteps, frames=n_frames, ood_frames=ood_frames, bytes=handle.tell(),
                    last_written=written["last"],
                    rng=rng.bit_generator.state, finished=finished, stopped=stopped)
        atomic_write(checkpoint_path(path), lambda f: np.savez(
            f, positions=atoms.positions, momenta=atoms.get_momenta(), meta=np.array(json.dumps(info))))
        return info

    def write_frame():
        nonlocal n_frames, ood_frames
        if dyn.nsteps == written["last"]:
            return                                   # ASE calls observers again when a run resumes
        written["last"] = dyn.nsteps
        results = atoms.calc.results
        ekin = atoms.get_kinetic_energy()
        info = {"time": dyn.nsteps * timestep_fs, "timestep_fs": timestep_fs * interval,
                "temperature_K": temperature_K, "ood_score": results["ood_score"], "traj_id": traj_id,
                "ekin": ekin, "etot": ekin + results["energy"]}
        if "polarizability" in results:
            info["polarizability"] = results["polarizability"].ravel()
        handle.write(format_frame(symbols, atoms.positions, masses, atoms.get_momenta(), results["forces"], info,
                                  results["energy"], results["dipole"]).encode())
        handle.flush()
        n_frames += 1
        if results["ood_score"] > ood_threshold:
            ood_frames += 1
            if ood_frames == 1 or stop_on_ood:
                warnings.warn(f"{path}: trajectory {traj_id}, frame {n_frames - 1} "
                              f"(t = {dyn.nsteps * timestep_fs:.1f} fs) is beyond the training data "
                              f"(ood_score {results['ood_score']:.2f} > {ood_threshold})", stacklevel=2)
            if stop_on_ood:
                raise OutOfDomain(f"ood_score {results['ood_score']:.2f} at t = {dyn.nsteps * timestep_fs:.1f} fs")
        if n_frames % checkpoint_every == 0:
            save_checkpoint()

    def report():
        if progress is not None:
            progress(1)

    symbols, masses = atoms.get_chemical_symbols(), atoms.get_masses()
    dyn.attach(write_frame, interval=interval)
    dyn.attach(report, interval=1)
    stopped = None
    try:
        if state is None:
            save_checkpoint()
        dyn.run(n_steps - dyn.nsteps)
    except OutOfDomain as err:
        stopped = f"out of domain: {err}"
    try:
        info = save_checkpoint(finished=True, stopped=stopped)
    finally:
        handle.close()
    return dict(info, resumed_from=step0)
