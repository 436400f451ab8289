"""Labelled reference data: Langevin sampling on GFN2-xTB, labels from tblite or PySCF, from DCE's
stored minima or from start geometries of any molecule (:mod:`nxplugin.reference.starts`).

Units: energies eV, lengths Angstrom, forces eV/Angstrom, dipoles e*Angstrom, polarizabilities
Angstrom**3 (alpha / (4 pi eps0)), time fs, temperature K, dihedrals degrees in (-180, 180].
Atomic units appear only inside the two engines and are converted with ``ase.units`` names at the
boundary.

The dynamics always runs on GFN2-xTB (tblite, default settings, gas phase); ``engine`` only chooses
who labels the saved frames. Each trajectory is written with the trajectory files and checkpoints
of :mod:`nxplugin.md.trajfile` (a checkpoint after every labelled frame: labels are the expensive
part) in a working folder next to the output; when all are complete they are joined, in trajectory
order, into the output file. An interrupted run continues with ``resume=True``.
"""
import gzip
import io
import json
import os
import shutil
import warnings

import numpy as np

from nxplugin.analysis.conformers import classify, count_transitions, dihedral_series
from nxplugin.errors import DataFileError
from nxplugin.fileio import atomic_write
from nxplugin.md.trajfile import TrajectoryFile
from nxplugin.reference.engines import PySCFCalculator, check_engine, tblite_polarizability
from nxplugin.reference.molecules import CONFORMERS, DCE_DIHEDRAL, dce

def langevin_dynamics(atoms, *, temperature_K, timestep_fs, friction_per_fs, rng):
    """Langevin dynamics with the centre of mass held by ``FixCom`` (ASE's ``fixcm=True`` overheats).

    Parameters
    ----------
    atoms : ase.Atoms
        System with a calculator; a ``FixCom`` constraint is added to it.
    temperature_K : float, K
    timestep_fs : float, fs
    friction_per_fs : float, 1/fs
    rng : numpy.random.Generator
        Source of the random forces (its state is what a checkpoint saves).

    Returns
    -------
    dyn : ase.md.langevin.Langevin
    """
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin

    if not any(isinstance(c, FixCom) for c in atoms.constraints):
        atoms.set_constraint(list(atoms.constraints) + [FixCom()])
    return Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K,
                    friction=friction_per_fs / units.fs, fixcm=False, rng=rng)


def trajectory_plan(conformers, temperatures_K, n_traj, seed):
    """List of trajectories as dicts with ``traj_id``, ``conformer``, ``temperature_K``, ``seed``."""
    plan = []
    for conformer in conformers:
        for temperature in temperatures_K:
            for _ in range(n_traj):
                plan.append({"traj_id": len(plan), "conformer": conformer,
                             "temperature_K": float(temperature), "seed": [int(seed), len(plan)]})
    return plan


def _frame_record(atoms, calc, *, traj, frame, time_fs, polarizability, dihedral=DCE_DIHEDRAL):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frame_atoms = Atoms(numbers=atoms.numbers, positions=atoms.positions)
    if polarizability is not None:  # first, so a calculator computing it does all in one go
        frame_atoms.info["polarizability"] = polarizability(atoms)
    # Raw forces from the calculator: FixCom would project the net force out of atoms.get_forces().
    results = {name: calc.get_property(name, atoms) for name in ("energy", "forces", "dipole")}
    frame_atoms.info.update(traj_id=traj["traj_id"], frame=frame, time=float(time_fs),
                            temperature_K=traj["temperature_K"], conformer=traj["conformer"],
                            dihedral=float(dihedral_series(atoms.positions[None], dihedral)[0]))
    frame_atoms.calc = SinglePointCalculator(frame_atoms, **results)
    text = io.StringIO()
    write(text, frame_atoms, format="extxyz")
    return text.getvalue()


def _output_paths(out):
    """(final path, working folder of the trajectories and their checkpoints) for ``out``."""
    out = os.fspath(out)
    final = out if out.endswith((".gz", ".extxyz", ".xyz")) else os.path.join(out, "frames.extxyz")
    return final, final + ".work"


def summarize(path):
    """Per-trajectory frame and torsion-transition counts of a file written by :func:`sample`.

    Returns
    -------
    trajectories : list of dict
        ``traj_id``, ``conformer`` (start), ``temperature_K``, ``n_frames`` and ``transitions``
        (trans <-> gauche, :func:`nxplugin.analysis.conformers.count_transitions` of the dihedrals in
        frame order), sorted by ``traj_id``.
    """
    from ase.io import read

    # Read from memory: ASE seeks frame by frame, which is quadratic in a gzip stream.
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        text = handle.read()
    groups = {}
    for atoms in read(io.StringIO(text), index=":", format="extxyz"):
        groups.setdefault(int(atoms.info["traj_id"]), []).append(atoms.info)
    table = []
    for traj_id, infos in sorted(groups.items()):
        infos.sort(key=lambda info: info["frame"])
        table.append({"traj_id": traj_id, "conformer": str(infos[0].get("conformer", "")),
                      "temperature_K": float(infos[0]["temperature_K"]), "n_frames": len(infos),
                      "transitions": count_transitions(classify([info["dihedral"] for info in infos]))})
    return table


def sample(out, *, conformers=None, starts=None, dihedral=None, temperatures_K=(300.0, 400.0, 500.0, 600.0),
           n_traj=2, n_frames=50, stride=40, timestep_fs=0.5, equilibration_fs=500.0,
           friction_per_fs=0.01, seed=0, polarizability=False, engine="tblite", method=None,
           resume=False, progress=None):
    """Run Langevin trajectories of DCE on GFN2-xTB and write labelled frames as extxyz.

    Parameters
    ----------
    out : str or path
        ``FILE.extxyz``, ``FILE.extxyz.gz`` (written plain next to it, compressed when all
        trajectories are complete) or a directory (``DIR/frames.extxyz``).
    conformers : sequence of str, optional
        Names of the start geometries to run from: {"trans", "gauche"} of
        :func:`nxplugin.reference.molecules.dce` (default both), or keys of `starts` (default all).
    starts : dict of str to ase.Atoms, optional
        Start geometries of any molecule by conformer name, atoms in their own order (minima:
        :func:`nxplugin.reference.starts.read_starts` optimises them). Default: DCE.
    dihedral : sequence of 4 int, optional
        Atoms of the torsion stored per frame; found from the bonds of the first start by default
        (DCE: :data:`nxplugin.reference.molecules.DCE_DIHEDRAL`).
    temperatures_K : sequence of float, K, default=(300, 400, 500, 600)
    n_traj : int, default=2
        Independent trajectories per (conformer, temperature).
    n_frames : int, default=50
        Frames saved per trajectory.
    stride : int, default=40
        MD steps between saved frames (stride * timestep_fs fs apart).
    timestep_fs : float, fs, default=0.5
    equilibration_fs : float, fs, default=500
        Dynamics before the first saved frame.
    friction_per_fs : float, 1/fs, default=0.01
    seed : int, default=0
        Trajectory k uses ``numpy.random.default_rng([seed, k])``.
    polarizability : bool, default=False
        Also store ``info['polarizability']`` (3, 3) in Angstrom**3 by finite field.
    engine : {"tblite", "pyscf"}, default="tblite"
        Who labels the frames; the dynamics always runs on GFN2-xTB.
    method : str, optional
        tblite method (default "GFN2-xTB") or PySCF ``"xc/basis"`` (default "b3lyp/6-31g*").
    resume : bool, default=False
        Continue an interrupted run with identical settings.
    progress : callable or None
        Called as ``progress(frames_done, frames_total)`` with an increment, once at the start
        with the frames already done.

    Returns
    -------
    trajectories : list of dict
        :func:`summarize` of the finished file.

    Notes
    -----
    Each frame stores energy (eV), forces (eV/Angstrom) and dipole (e*Angstrom) as ASE
    SinglePointCalculator results, and ``info`` keys ``traj_id``, ``frame``, ``time`` (fs),
    ``temperature_K``, ``conformer``, ``dihedral`` (X-C-C-Y, degrees in (-180, 180]).
    """
    from ase import Atoms
    from ase.md.velocitydistribution import thermalize_momenta
    from tblite.ase import TBLite

    if starts is None:
        known = {name: None for name in CONFORMERS}
        dihedral = tuple(DCE_DIHEDRAL if dihedral is None else dihedral)
    else:
        known = dict(starts)
        if not known:
            raise ValueError("starts is empty: give at least one start geometry")
        if dihedral is None:
            from nxplugin.analysis.conformers import find_dihedral
            first = next(iter(known.values()))
            dihedral = find_dihedral(first.numbers, first.positions)
        dihedral = tuple(int(i) for i in dihedral)
    conformers = list(known) if conformers is None else list(conformers)
    unknown = set(conformers) - set(known)
    if unknown or not conformers:
        raise ValueError(f"{conformers=} must be a non-empty subset of {tuple(known)}")
    if not temperatures_K or min(temperatures_K) <= 0:
        raise ValueError(f"{temperatures_K=} must be positive")
    for name, value in {"n_traj": n_traj, "n_frames": n_frames, "stride": stride}.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")
    if timestep_fs <= 0 or equilibration_fs < 0 or friction_per_fs <= 0:
        raise ValueError(f"{timestep_fs=} and {friction_per_fs=} must be positive and "
                         f"{equilibration_fs=} non-negative")
    method = check_engine(engine, method)
    settings = {"conformers": list(conformers), "temperatures_K": [float(t) for t in temperatures_K],
                "n_traj": int(n_traj), "n_frames": int(n_frames), "stride": int(stride),
                "timestep_fs": float(timestep_fs), "equilibration_fs": float(equilibration_fs),
                "friction_per_fs": float(friction_per_fs), "seed": int(seed),
                "polarizability": bool(polarizability), "engine": engine, "method": method}
    if starts is not None:  # what a resumed run must start from again (to 1e-5 Angstrom)
        settings["dihedral"] = list(dihedral)
        settings["starts"] = {name: {"numbers": [int(z) for z in known[name].numbers],
                                     "positions": np.round(known[name].positions, 5).tolist()}
                              for name in conformers}
    plan = trajectory_plan(conformers, temperatures_K, n_traj, seed)
    final, work_dir = _output_paths(out)
    run_file = os.path.join(work_dir, "run.json")

    if resume and not os.path.exists(run_file):
        if os.path.exists(final):
            warnings.warn(f"nothing to resume: {final} has no working folder {work_dir} (already complete)")
            return summarize(final)
        raise DataFileError(f"cannot resume: {run_file} is missing")
    if resume:
        with open(run_file) as handle:
            saved = json.load(handle)
        changed = sorted(k for k in set(saved) | set(settings) if not same_settings(saved.get(k), settings.get(k)))
        if changed:
            raise DataFileError(f"cannot resume {final}: settings differ from the first run in "
                                f"{changed} (saved {[saved.get(k) for k in changed]})")
    else:
        for path in (final, work_dir):
            if os.path.exists(path):
                raise FileExistsError(f"{path} exists; resume it or choose another output")
        os.makedirs(work_dir)
        atomic_write(run_file, json.dumps(settings, indent=1).encode())

    if engine == "pyscf":
        label_calc = PySCFCalculator(method=method)
        alpha = (lambda a: label_calc.get_property("polarizability", a)) if polarizability else None
    else:
        label_calc = None if method == "GFN2-xTB" else TBLite(method=method, verbosity=0)
        alpha = (lambda a: tblite_polarizability(a, method=method)) if polarizability else None

    files = [TrajectoryFile(os.path.join(work_dir, f"traj_{traj['traj_id']:04d}.extxyz"),
                            dict(settings, **traj), resume=resume) for traj in plan]
    for file in files:
        if file.finished:
            file.frames = file.state["meta"]["frames"]
    done = sum(file.frames for file in files)
    if progress is not None:
        progress(done, len(plan) * n_frames)
    for traj, file in zip(plan, files):
        if file.finished:
            continue
        if starts is None:
            atoms = dce(traj["conformer"])
        else:
            atoms = Atoms(numbers=known[traj["conformer"]].numbers,
                          positions=known[traj["conformer"]].positions)
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        rng = np.random.default_rng(traj["seed"])
        dyn = langevin_dynamics(atoms, temperature_K=traj["temperature_K"],
                                timestep_fs=timestep_fs, friction_per_fs=friction_per_fs, rng=rng)
        if file.state is not None:
            atoms.positions = file.state["positions"]
            atoms.set_momenta(file.state["momenta"])
            rng.bit_generator.state = file.state["meta"]["rng"]
        else:
            thermalize_momenta(atoms, traj["temperature_K"], rng=rng)
            dyn.run(int(round(equilibration_fs / timestep_fs)))
            file.step = dyn.nsteps
        calc = atoms.calc if label_calc is None else label_calc
        for frame in range(file.frames, n_frames):
            dyn.run(stride)
            file.step += stride
            file.write(_frame_record(atoms, calc, traj=traj, frame=frame, time_fs=file.step * timestep_fs,
                                     polarizability=alpha, dihedral=dihedral))
            file.checkpoint(atoms.positions, atoms.get_momenta(), rng, finished=frame + 1 == n_frames)
            if progress is not None:
                progress(1, len(plan) * n_frames)

    def joined(handle):
        for file in files:
            with open(file.path, "rb") as part:
                shutil.copyfileobj(part, handle)

    if final.endswith(".gz"):
        atomic_write(final, lambda f: _gzip_into(f, joined))
    else:
        atomic_write(final, joined)
    shutil.rmtree(work_dir)
    return summarize(final)


def same_settings(saved, now, atol=1e-4):
    """Settings equal; numbers (start positions, re-optimised on resume) to ``atol`` (Angstrom)."""
    if isinstance(saved, dict) and isinstance(now, dict) and set(saved) == set(now):
        return all(same_settings(saved[k], now[k], atol) for k in saved)
    if saved == now:
        return True
    try:
        return np.shape(saved) == np.shape(now) and np.allclose(saved, now, rtol=0, atol=atol)
    except (TypeError, ValueError):
        return False


def _gzip_into(handle, write):
    with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as zipped:
        write(zipped)
