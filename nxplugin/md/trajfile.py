"""Trajectory files and checkpoints: the one format of ASE runs, batched replicas and sampling.

Units (ASE): positions Angstrom, masses amu, momenta ASE units, forces eV/Angstrom, energies eV,
dipoles e*Angstrom, polarizabilities Angstrom**3, time fs.

A trajectory is one extxyz file of whole records (one ``write`` and ``flush`` each), and its
checkpoint ``FILE.ckpt.npz`` (written atomically: temporary file, then rename) holds the exact
positions and momenta, and in ``meta`` (JSON) the run's settings plus ``step``, ``frames``,
``ood_frames``, ``bytes`` (the file's length at that moment), ``last_written`` (step of the last
saved frame), ``rng`` (the random generator's state), ``finished`` and ``stopped``. The one resume
rule: truncate the file to ``bytes`` and continue from the state, so the frames after it are
recomputed bit-identically and none is lost or duplicated.
"""
import json
import os

import numpy as np

from nxplugin.fileio import atomic_write

PROPERTIES = "species:S:1:pos:R:3:masses:R:1:momenta:R:3:forces:R:3"


def _quote(values):
    # str of a Python float is what ase.io.write's f"{v}" gives for a numpy one, at half the cost
    return '"' + " ".join(map(str, np.asarray(values).tolist())) + '"'


def format_frame(symbols, positions, masses, momenta, forces, info, energy, dipole):
    """One extxyz record, byte for byte as ``ase.io.write`` writes it, without building Atoms.

    Parameters
    ----------
    symbols : list of str
    positions, momenta, forces : ndarray of shape (n_atoms, 3), Angstrom, ASE units, eV/Angstrom
    masses : ndarray of shape (n_atoms,), amu
    info : dict
        Scalars or 1-d arrays, written in order after ``Properties`` (:func:`frame_info`).
    energy : float, eV
    dipole : ndarray of shape (3,), e*Angstrom

    Returns
    -------
    str
    """
    items = [f"Properties={PROPERTIES}"]
    for key, value in info.items():
        items.append(f"{key}={_quote(value) if np.ndim(value) else f'{value}'}")
    items += [f"energy={energy}", f"dipole={_quote(dipole)}", 'pbc="F F F"']
    table = np.concatenate([positions, np.asarray(masses)[:, None], momenta, forces], axis=1).tolist()
    args = [x for symbol, row in zip(symbols, table) for x in (symbol, *row)]
    line = "%-2s" + " %16.8f" * 10 + "\n"
    return f"{len(symbols)}\n{' '.join(items)}\n" + (line * len(symbols)) % tuple(args)


def frame_info(*, step, settings, traj_id, ood_score, kinetic_energy, energy, polarizability=None):
    """The ``info`` keys of an MD frame: ``time`` (fs), ``timestep_fs`` (between saved frames),
    ``temperature_K``, ``ood_score``, ``traj_id``, ``ekin`` and ``etot`` (eV), and
    ``polarizability`` (9 values, Angstrom**3) when the model has it."""
    info = {"time": step * settings.timestep_fs, "timestep_fs": settings.timestep_fs * settings.interval,
            "temperature_K": settings.temperature_K, "ood_score": float(ood_score), "traj_id": traj_id,
            "ekin": kinetic_energy, "etot": kinetic_energy + float(energy)}
    if polarizability is not None:
        info["polarizability"] = np.asarray(polarizability).ravel()
    return info


def trajectory_path(out_dir, traj_id):
    """``out_dir/traj_{traj_id:03d}.extxyz``."""
    return os.path.join(os.fspath(out_dir), f"traj_{traj_id:03d}.extxyz")


def checkpoint_path(traj_path):
    """``traj_path + ".ckpt.npz"``."""
    return os.fspath(traj_path) + ".ckpt.npz"


def read_checkpoint(traj_path):
    """The checkpoint of a trajectory file as a dict (``positions``, ``momenta``, ``meta``), or None."""
    path = checkpoint_path(traj_path)
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as data:
        state = {key: data[key] for key in data.files}
    state["meta"] = json.loads(str(state["meta"][()]))
    return state


class TrajectoryFile:
    """One trajectory's extxyz file and its checkpoint (see the module docstring for the schema).

    Parameters
    ----------
    path : str or path-like
        The extxyz file.
    meta : dict
        Run metadata stored in every checkpoint (settings, ``traj_id``, ...).
    resume : bool
        Continue from the checkpoint if there is one (truncating the file to its ``bytes``);
        otherwise an old file and checkpoint at ``path`` are removed.

    Attributes
    ----------
    state : dict or None
        The checkpoint resumed from (:func:`read_checkpoint`).
    finished : bool
        The checkpoint says the trajectory is complete; nothing was opened.
    step, frames, ood_frames, last_written : int
        MD steps done, frames saved, frames beyond the training data, step of the last saved frame.
    """

    def __init__(self, path, meta, *, resume):
        self.path, self.meta = os.fspath(path), meta
        self.state = read_checkpoint(self.path) if resume else None
        self.finished = self.state is not None and bool(self.state["meta"].get("finished"))
        self.step, self.frames, self.ood_frames, self.last_written = 0, 0, 0, -1
        if self.finished:
            return
        if self.state is not None:
            info = self.state["meta"]
            self.step, self.frames, self.ood_frames = info["step"], info["frames"], info["ood_frames"]
            self.last_written = info["last_written"]
            with open(self.path, "r+b") as handle:
                handle.truncate(info["bytes"])
        else:
            for old in (self.path, checkpoint_path(self.path)):
                if os.path.exists(old):
                    os.unlink(old)
        self.resumed_from = self.step
        self.handle = open(self.path, "ab")

    def write(self, record):
        """Append one whole record (str) at the current step and flush it."""
        self.handle.write(record.encode())
        self.handle.flush()
        self.frames += 1
        self.last_written = self.step

    def out_of_domain(self, score, threshold):
        """Count a frame's out-of-domain score; return the report for the first one (or None)."""
        if score <= threshold:
            return None
        self.ood_frames += 1
        return (f"{self.path}: trajectory {self.meta.get('traj_id', 0)}, frame {self.frames - 1} "
                f"(t = {self.step * self.meta['timestep_fs']:.1f} fs) is beyond the training data "
                f"(ood_score {score:.2f} > {threshold})")

    def checkpoint(self, positions, momenta, rng, *, finished=False, stopped=None):
        """Make the file durable and write the checkpoint atomically; close the file if finished.

        Returns
        -------
        dict
            The checkpoint's ``meta`` plus ``resumed_from`` (the step this run started at).
        """
        self.handle.flush()
        os.fsync(self.handle.fileno())
        info = dict(self.meta, step=self.step, frames=self.frames, ood_frames=self.ood_frames,
                    bytes=self.handle.tell(), last_written=self.last_written,
                    rng=rng.bit_generator.state if rng is not None else None,
                    finished=finished, stopped=stopped)
        atomic_write(checkpoint_path(self.path), lambda f: np.savez(
            f, positions=positions, momenta=momenta, meta=np.array(json.dumps(info))))
        if finished:
            self.close()
            self.finished = True
        return dict(info, resumed_from=self.resumed_from)

    def close(self):
        self.handle.close()
