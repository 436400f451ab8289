"""Labelled reference data for DCE: Langevin sampling on GFN2-xTB, labels from tblite or PySCF.

Units: energies eV, lengths Angstrom, forces eV/Angstrom, dipoles e*Angstrom, polarizabilities
Angstrom**3 (alpha / (4 pi eps0)), time fs, temperature K, dihedrals degrees. Atomic units appear only
inside the two engines and are converted with ``ase.units`` names at the boundary.

The dynamics always runs on GFN2-xTB (tblite, default settings, gas phase); ``engine`` only chooses
who labels the saved frames. Frames are appended to an extxyz file as whole records (flush + fsync);
each trajectory's state (positions, momenta, RNG state) is checkpointed atomically after every
frame, so an interrupted run continues with ``resume=True``.
"""
import gzip
import io
import json
import os
import shutil
import warnings

import numpy as np

from nxplugin.reference.engines import PySCFCalculator, check_engine, tblite_polarizability
from nxplugin.errors import DataFileError
from nxplugin.fileio import atomic_write
from nxplugin.reference.molecules import CONFORMERS, DCE_DIHEDRAL, dce

#: Dihedral centres (degrees) of the gauche+, trans and gauche- basins and their half-width; a
#: transition is counted when the torsion enters a basin core different from the last one visited.
TORSION_BASINS = {"g+": 68.0, "t": 180.0, "g-": 292.0}
TORSION_CORE_HALF_WIDTH = 35.0


def torsion_transitions(dihedrals_deg):
    """Count transitions between the trans, gauche+ and gauche- basins along one trajectory.

    Parameters
    ----------
    dihedrals_deg : array-like of shape (n_frames,), degrees
        Cl-C-C-Cl dihedral in [0, 360), in time order.

    Returns
    -------
    n_transitions : int
        Number of times the torsion enters the core (centre +- ``TORSION_CORE_HALF_WIDTH``) of a
        basin in ``TORSION_BASINS`` other than the last core visited. Frames between cores are
        ignored, so recrossings of the barrier top are not counted.
    """
    last, count = None, 0
    for phi in np.asarray(dihedrals_deg, dtype=float):
        for name, centre in TORSION_BASINS.items():
            if abs((phi - centre + 180.0) % 360.0 - 180.0) < TORSION_CORE_HALF_WIDTH:
                if last is not None and name != last:
                    count += 1
                last = name
    return count


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


def _thermalize(atoms, temperature_K, rng):
    """Maxwell-Boltzmann momenta (ASE 3.29 renamed the function)."""
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    else:
        thermalize_momenta(atoms, temperature_K, rng=rng)


def trajectory_plan(conformers, temperatures_K, n_traj, seed):
    """List of trajectories as dicts with ``traj_id``, ``conformer``, ``temperature_K``, ``seed``."""
    plan = []
    for conformer in conformers:
        for temperature in temperatures_K:
            for _ in range(n_traj):
                plan.append({"traj_id": len(plan), "conformer": conformer,
                             "temperature_K": float(temperature), "seed": [int(seed), len(plan)]})
    return plan


# ----------------------------------------------------------------------------- files and checkpoints

def _append_record(path, text):
    """Append one whole extxyz record and make it durable before returning."""
    with open(path, "a") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _save_checkpoint(path, *, atoms, rng, n_frames, step):
    buffer = io.BytesIO()
    np.savez(buffer, positions=atoms.positions, momenta=atoms.get_momenta(),
             rng_state=np.array(json.dumps(rng.bit_generator.state)),
             n_frames=np.array(n_frames), step=np.array(step))
    atomic_write(path, buffer.getvalue())


def _load_checkpoint(path):
    with np.load(path, allow_pickle=False) as data:
        return {"positions": data["positions"], "momenta": data["momenta"],
                "rng_state": json.loads(str(data["rng_state"])),
                "n_frames": int(data["n_frames"]), "step": int(data["step"])}


def _split_records(text):
    """Split extxyz text into complete records; return (records, trailing incomplete text)."""
    lines = text.splitlines(keepends=True)
    records, start = [], 0
    while start < len(lines):
        try:
            natoms = int(lines[start].split()[0])
        except (ValueError, IndexError):
            break
        end = start + 2 + natoms
        if end > len(lines) or not lines[end - 1].endswith("\n"):
            break
        records.append("".join(lines[start:end]))
        start = end
    return records, "".join(lines[start:])


def _record_keys(record):
    """traj_id and frame of one extxyz record (read with ASE, so a garbled record raises)."""
    from ase.io import read

    try:
        atoms = read(io.StringIO(record), format="extxyz")
        return int(atoms.info["traj_id"]), int(atoms.info["frame"])
    except Exception as e:
        raise DataFileError(f"unreadable frame in the output file: {e}") from e


def _frame_record(atoms, calc, *, traj, frame, time_fs, polarizability):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frame_atoms = Atoms(numbers=atoms.numbers, positions=atoms.positions)
    if polarizability is not None:  # first, so a calculator computing it does all in one go
        frame_atoms.info["polarizability"] = polarizability(atoms)
    # Raw forces from the calculator: FixCom would project the net force out of atoms.get_forces().
    results = {name: calc.get_property(name, atoms) for name in ("energy", "forces", "dipole")}
    frame_atoms.info.update(traj_id=traj["traj_id"], frame=frame, time_fs=float(time_fs),
                            temperature_K=traj["temperature_K"], conformer=traj["conformer"],
                            dihedral=float(atoms.get_dihedral(*DCE_DIHEDRAL)))
    frame_atoms.calc = SinglePointCalculator(frame_atoms, **results)
    text = io.StringIO()
    write(text, frame_atoms, format="extxyz")
    return text.getvalue()


def _output_paths(out):
    """(final path, working extxyz path, checkpoint directory) for an ``out`` argument."""
    out = os.fspath(out)
    if out.endswith(".gz"):
        final, work = out, out[:-3]
    elif out.endswith((".extxyz", ".xyz")):
        final = work = out
    else:
        final = work = os.path.join(out, "frames.extxyz")
    return final, work, work + ".checkpoint"


def summarize(path):
    """Per-trajectory frame and torsion-transition counts of a file written by :func:`sample`.

    Returns
    -------
    trajectories : list of dict
        ``traj_id``, ``conformer`` (start), ``temperature_K``, ``n_frames`` and ``transitions``
        (:func:`torsion_transitions` of the dihedrals in frame order), sorted by ``traj_id``.
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
                      "transitions": torsion_transitions([info["dihedral"] for info in infos])})
    return table


def _recover(work, checkpoint_dir, plan):
    """Frames per trajectory that are both in the file and checkpointed; drop the rest atomically."""
    with open(work) as handle:
        records, tail = _split_records(handle.read())
    done = {}
    for traj in plan:
        path = os.path.join(checkpoint_dir, f"traj_{traj['traj_id']:04d}.npz")
        done[traj["traj_id"]] = _load_checkpoint(path)["n_frames"] if os.path.exists(path) else 0
    kept, seen = [], {}
    for record in records:
        traj_id, frame = _record_keys(record)
        if frame < done.get(traj_id, 0):
            kept.append(record)
            seen[traj_id] = seen.get(traj_id, 0) + 1
    for traj_id, n_done in done.items():
        if seen.get(traj_id, 0) != n_done:
            raise DataFileError(f"{work} holds {seen.get(traj_id, 0)} frames of trajectory "
                                f"{traj_id} but its checkpoint says {n_done}; cannot resume")
    if tail or len(kept) != len(records):
        warnings.warn(f"dropping {len(records) - len(kept)} uncheckpointed frame(s) and "
                      f"{len(tail)} bytes of an incomplete record from {work}")
        atomic_write(work, "".join(kept).encode())
    return done


def sample(out, *, conformers=("trans", "gauche"), temperatures_K=(300.0, 400.0, 500.0, 600.0),
           n_traj=2, n_frames=50, stride=40, timestep_fs=0.5, equilibration_fs=500.0,
           friction_per_fs=0.01, seed=0, polarizability=False, engine="tblite", method=None,
           resume=False, progress=True):
    """Run Langevin trajectories of DCE on GFN2-xTB and write labelled frames as extxyz.

    Parameters
    ----------
    out : str or path
        ``FILE.extxyz``, ``FILE.extxyz.gz`` (written plain next to it, compressed when all
        trajectories are complete) or a directory (``DIR/frames.extxyz``).
    conformers : sequence of {"trans", "gauche"}, default=("trans", "gauche")
        Start geometries (:func:`nxplugin.reference.molecules.dce`).
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
    progress : bool, default=True
        Show a tqdm progress bar.

    Returns
    -------
    trajectories : list of dict
        :func:`summarize` of the finished file.

    Notes
    -----
    Each frame stores energy (eV), forces (eV/Angstrom) and dipole (e*Angstrom) as ASE
    SinglePointCalculator results, and ``info`` keys ``traj_id``, ``frame``, ``time_fs``,
    ``temperature_K``, ``conformer``, ``dihedral`` (Cl-C-C-Cl, degrees in [0, 360)).
    """
    from tblite.ase import TBLite
    from tqdm import tqdm

    unknown = set(conformers) - set(CONFORMERS)
    if unknown or not conformers:
        raise ValueError(f"{conformers=} must be a non-empty subset of {CONFORMERS}")
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
    plan = trajectory_plan(conformers, temperatures_K, n_traj, seed)
    final, work, checkpoint_dir = _output_paths(out)
    run_file = os.path.join(checkpoint_dir, "run.json")

    if resume and not os.path.exists(run_file):
        if os.path.exists(final):
            warnings.warn(f"nothing to resume: {final} has no checkpoint (already complete)")
            return summarize(final)
        raise DataFileError(f"cannot resume: {run_file} is missing")
    if resume:
        with open(run_file) as handle:
            saved = json.load(handle)
        changed = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
        if changed:
            raise DataFileError(f"cannot resume {final}: settings differ from the first run in "
                                f"{changed} (saved {[saved.get(k) for k in changed]})")
        done = _recover(work, checkpoint_dir, plan)
    else:
        for path in {final, work, checkpoint_dir}:
            if os.path.exists(path):
                raise FileExistsError(f"{path} exists; resume it or choose another output")
        os.makedirs(os.path.dirname(os.path.abspath(work)), exist_ok=True)
        os.makedirs(checkpoint_dir)
        atomic_write(run_file, json.dumps(settings, indent=1).encode())
        open(work, "w").close()
        done = {traj["traj_id"]: 0 for traj in plan}

    if engine == "pyscf":
        label_calc = PySCFCalculator(method=method)
        alpha = (lambda a: label_calc.get_property("polarizability", a)) if polarizability else None
    else:
        label_calc = None if method == "GFN2-xTB" else TBLite(method=method, verbosity=0)
        alpha = (lambda a: tblite_polarizability(a, method=method)) if polarizability else None

    bar = tqdm(total=len(plan) * n_frames, initial=sum(done.values()), disable=not progress,
               unit="frame", desc="sample")
    for traj in plan:
        n_done = done[traj["traj_id"]]
        if n_done >= n_frames:
            continue
        checkpoint = os.path.join(checkpoint_dir, f"traj_{traj['traj_id']:04d}.npz")
        atoms = dce(traj["conformer"])
        atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
        rng = np.random.default_rng(traj["seed"])
        dyn = langevin_dynamics(atoms, temperature_K=traj["temperature_K"],
                                timestep_fs=timestep_fs, friction_per_fs=friction_per_fs, rng=rng)
        if n_done:
            state = _load_checkpoint(checkpoint)
            atoms.positions = state["positions"]
            atoms.set_momenta(state["momenta"])
            rng.bit_generator.state = state["rng_state"]
            step = state["step"]
        else:
            _thermalize(atoms, traj["temperature_K"], rng)
            step = int(round(equilibration_fs / timestep_fs))
            dyn.run(step)
        calc = atoms.calc if label_calc is None else label_calc
        bar.set_postfix(traj=traj["traj_id"], T=traj["temperature_K"])
        for frame in range(n_done, n_frames):
            dyn.run(stride)
            step += stride
            _append_record(work, _frame_record(atoms, calc, traj=traj, frame=frame,
                                               time_fs=step * timestep_fs, polarizability=alpha))
            _save_checkpoint(checkpoint, atoms=atoms, rng=rng, n_frames=frame + 1, step=step)
            bar.update(1)
    bar.close()

    if final != work:
        with open(work, "rb") as source:
            atomic_write(final, gzip.compress(source.read(), mtime=0))
        os.remove(work)
    shutil.rmtree(checkpoint_dir)
    return summarize(final)
