"""ASE molecular dynamics with a model: initial conditions, ASE integrators, one trajectory per file.

Units: temperature K, time step fs, friction 1/fs, Bussi time constant fs (:class:`MDSettings`);
frames are written in ASE units by :mod:`nxplugin.md.trajfile`, which also holds the checkpoint
schema and the resume rule.
"""
import numpy as np
from ase import Atoms, units
from ase.constraints import FixCom
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

from nxplugin.calculator import RPRCalculator
from nxplugin.md.settings import MDSettings
from nxplugin.md.trajfile import TrajectoryFile, format_frame, frame_info


class OutOfDomain(Exception):
    """Raised inside a trajectory to stop it when its geometry leaves the training domain."""


def initial_conditions(model, n_traj, temperature_K, seed, *, starts=None):
    """Starting geometries and Maxwell-Boltzmann velocities (no net momentum or rotation).

    Trajectories alternate over `starts`, else over the conformer minima stored with the model; older
    DCE models (C, C, Cl, Cl, H x4) alternate trans and gauche minima; other models start from the
    model's equilibrium geometry.

    Parameters
    ----------
    model : RPRModel
    n_traj : int
    temperature_K : float, K
    seed : int
        Trajectory ``k`` draws its velocities from ``numpy.random.default_rng([seed, k])``.
    starts : dict of str to ase.Atoms, optional
        Start geometries by name (Angstrom, the model's atom order).

    Returns
    -------
    list of ase.Atoms
        ``info['conformer']`` names the start.
    """
    from nxplugin.model.elements import formula
    from nxplugin.reference import molecules
    if starts:
        starts = list(starts.items())
    elif getattr(model, "conformers_", None):
        starts = [(c, Atoms(model.numbers, positions=x)) for c, x in model.conformers_.items()]
    elif formula(model.numbers) == " ".join(molecules.DCE_SYMBOLS):
        starts = [(c, molecules.dce(c)) for c in molecules.CONFORMERS]
    else:
        starts = [("equilibrium", Atoms(model.numbers, positions=model.reference_))]
    out = []
    for k in range(n_traj):
        name, atoms = starts[k % len(starts)]
        atoms = atoms.copy()
        atoms.set_masses(model.masses)
        thermalize_momenta(atoms, temperature_K, rng=np.random.default_rng([seed, k]), exact_temperature=True)
        Stationary(atoms)
        ZeroRotation(atoms)
        atoms.info["conformer"] = name
        out.append(atoms)
    return out


def make_dynamics(atoms, settings, rng):
    """The ASE integrator for ``settings.thermostat``; thermostats hold the centre of mass by ``FixCom``.

    ASE's ``Langevin(fixcm=True)`` overheats small molecules (DCE runs at ~760 K for 400 K), so it is
    used with ``fixcm=False`` and a ``FixCom`` constraint.
    """
    dt = settings.timestep_fs * units.fs
    if settings.thermostat == "nve":
        from ase.md.verlet import VelocityVerlet
        return VelocityVerlet(atoms, timestep=dt)
    atoms.set_constraint(FixCom())
    if settings.thermostat == "langevin":
        from ase.md.langevin import Langevin
        return Langevin(atoms, dt, temperature_K=settings.temperature_K,
                        friction=settings.friction_per_fs / units.fs, fixcm=False, rng=rng)
    from ase.md.bussi import Bussi
    return Bussi(atoms, dt, temperature_K=settings.temperature_K, taut=settings.taut_fs * units.fs, rng=rng)


def run_trajectory(model, atoms, path, settings, *, traj_id=0, resume=False, progress=None):
    """Run (or resume) one trajectory and write every ``settings.interval``-th step to ``path``.

    Parameters
    ----------
    model : RPRModel
    atoms : ase.Atoms
        Start geometry (Angstrom) with velocities; ignored when resuming from a checkpoint.
    path : str
        Trajectory file (extxyz); its checkpoint is ``path + ".ckpt.npz"``.
    settings : MDSettings
    traj_id : int, default=0
        Selects the random stream ``default_rng([settings.seed, traj_id, 1])``.
    resume : bool, default=False
        Continue from the checkpoint of ``path`` (a finished trajectory is skipped).
    progress : callable or None
        Called with the number of steps just done.

    Returns
    -------
    dict
        The last checkpoint's ``meta`` (``frames``, ``ood_frames``, ``stopped``, ...) plus
        ``resumed_from`` and ``messages`` (out-of-domain reports), or ``skipped=True``.
    """
    if not isinstance(settings, MDSettings):
        raise TypeError(f"settings must be an MDSettings, not {type(settings).__name__}")
    meta = dict(settings.as_dict(), traj_id=traj_id, conformer=atoms.info.get("conformer", ""))
    file = TrajectoryFile(path, meta, resume=resume)
    if file.finished:
        return dict(file.state["meta"], skipped=True, messages=[])
    atoms = atoms.copy()
    atoms.calc = RPRCalculator(model, ood_threshold=np.inf)
    rng = np.random.default_rng([settings.seed, traj_id, 1])
    if file.state is not None:
        atoms.positions = file.state["positions"]
        atoms.set_momenta(file.state["momenta"])
        rng.bit_generator.state = file.state["meta"]["rng"]
    dyn = make_dynamics(atoms, settings, rng)
    dyn.nsteps = file.step
    symbols, masses, messages = atoms.get_chemical_symbols(), atoms.get_masses(), []

    def write_frame():
        file.step = dyn.nsteps
        if file.last_written == dyn.nsteps:
            return                                   # ASE calls observers again when a run resumes
        results = atoms.calc.results
        info = frame_info(step=dyn.nsteps, settings=settings, traj_id=traj_id, ood_score=results["ood_score"],
                          kinetic_energy=atoms.get_kinetic_energy(), energy=results["energy"],
                          polarizability=results.get("polarizability"))
        file.write(format_frame(symbols, atoms.positions, masses, atoms.get_momenta(), results["forces"],
                                info, results["energy"], results["dipole"]))
        message = file.out_of_domain(info["ood_score"], settings.ood_threshold)
        if message is not None and (file.ood_frames == 1 or settings.stop_on_ood):
            messages.append(message)
        if message is not None and settings.stop_on_ood:
            raise OutOfDomain(f"ood_score {info['ood_score']:.2f} at t = {info['time']:.1f} fs")
        if file.frames % settings.checkpoint_every == 0:
            file.checkpoint(atoms.positions, atoms.get_momenta(), rng)

    dyn.attach(write_frame, interval=settings.interval)
    if progress is not None:
        dyn.attach(lambda: progress(1), interval=1)
    stopped = None
    try:
        if file.state is None:
            file.checkpoint(atoms.positions, atoms.get_momenta(), rng)
        dyn.run(settings.n_steps - dyn.nsteps)
    except OutOfDomain as err:
        stopped = f"out of domain: {err}"
    except BaseException:
        file.close()
        raise
    file.step = dyn.nsteps
    return dict(file.checkpoint(atoms.positions, atoms.get_momenta(), rng, finished=True, stopped=stopped),
                messages=messages)
