"""Dipole and polarizability time series from trajectory files, for spectra.

Units: time in fs, dipoles in e*Angstrom, polarizabilities in Angstrom^3, positions in Angstrom,
temperature in K.

Accepted inputs: any file ``ase.io.read`` reads whose frames carry the dipole as a calculator result
(``atoms.get_dipole_moment()``, as ``nxplugin md`` and any ASE calculator write it) or as
``info['dipole']``; a Newton-X trajectory folder (read with :func:`nxplugin.newtonx.interface.read_trajectory`);
plain arrays through :class:`TimeSeries`; i-PI's extras and xyz files
(:mod:`nxplugin.analysis.ipi_files`, one run with all its beads is one trajectory). The spacing of
the frames is taken from ``info['time']`` (fs; or ``info['time_fs']``) when every frame has it, else from ``info['timestep_fs']``, else it must
be given. The temperature comes from ``info['temperature_K']`` unless given. The polarizability is
``info['polarizability']`` or a calculator result, 9 numbers or 3x3.
"""
import os
import warnings
from dataclasses import dataclass

import numpy as np

from nxplugin.errors import DataFileError

#: relative tolerance on the spacing of frame times
TIME_STEP_RTOL = 1e-6


@dataclass
class TimeSeries:
    """A time series of one trajectory.

    Attributes
    ----------
    source : str
        File name (or a label for arrays), used in error messages.
    timestep_fs : float, fs
        Time between consecutive frames.
    dipoles : ndarray of shape (n_frames, 3), e*Angstrom, or None
    polarizabilities : ndarray of shape (n_frames, 3, 3), Angstrom^3, or None
    positions : ndarray of shape (n_frames, n_atoms, 3), Angstrom, or None
    numbers : ndarray of shape (n_atoms,) of atomic numbers, or None
    temperature_K : float, K, or None
    """
    source: str
    timestep_fs: float
    dipoles: np.ndarray = None
    polarizabilities: np.ndarray = None
    positions: np.ndarray = None
    numbers: np.ndarray = None
    temperature_K: float = None

    @property
    def n_frames(self):
        present = [a for a in (self.dipoles, self.polarizabilities, self.positions) if a is not None]
        return len(present[0]) if present else 0


def read_frames(path):
    """Frames of a trajectory file or Newton-X folder as a list of ``ase.Atoms``.

    A file that fails part-way (a truncated last frame) keeps the complete frames before the failure,
    with a warning naming the file and frame.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        from nxplugin.newtonx.interface import read_trajectory
        return read_trajectory(path)
    import ase.io
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return ase.io.read(path, ":")
    except Exception as first_error:  # salvage the frames before the bad one
        frames = []
        try:
            for atoms in ase.io.iread(path, ":"):
                frames.append(atoms)
        except Exception as err:
            if not frames:
                raise DataFileError(f"{path}: cannot read frame 0: {err}") from err
            warnings.warn(f"{path}: frame {len(frames)} cannot be read ({err}); using the "
                          f"{len(frames)} complete frames before it", stacklevel=2)
            return frames
        raise DataFileError(f"{path}: {first_error}") from first_error


def _frame_value(atoms, key):
    if atoms.calc is not None and key in getattr(atoms.calc, "results", {}):
        return atoms.calc.results[key]
    return atoms.info.get(key)


def _frame_spacing(frames, path, timestep_fs):
    times = [atoms.info.get("time", atoms.info.get("time_fs")) for atoms in frames]
    stored = frames[0].info.get("timestep_fs")
    if any(t is not None for t in times):
        missing = [i for i, t in enumerate(times) if t is None]
        if missing:
            raise DataFileError(f"{path}: frame {missing[0]} has no info['time'] while other frames do")
        steps = np.diff(np.asarray(times, dtype=float))
        if len(steps) == 0:
            spacing = stored if stored is not None else timestep_fs
        else:
            spacing = float(steps[0])
            bad = np.flatnonzero(~np.isclose(steps, spacing, rtol=TIME_STEP_RTOL, atol=1e-9))
            if spacing <= 0 or len(bad):
                frame = int(bad[0]) + 1 if len(bad) else 1
                raise DataFileError(f"{path}: frame {frame} is {steps[frame - 1]:g} fs after frame "
                                    f"{frame - 1}, but frame 1 is {spacing:g} fs after frame 0; "
                                    f"spectra need evenly spaced frames")
    else:
        spacing = stored
    if spacing is None:
        if timestep_fs is None:
            raise DataFileError(f"{path}: the frames store no time step (info['time'] or "
                                f"info['timestep_fs']); give it (--timestep FS)")
        return float(timestep_fs)
    if timestep_fs is not None and not np.isclose(timestep_fs, spacing, rtol=TIME_STEP_RTOL):
        raise DataFileError(f"{path}: frames are {spacing:g} fs apart but timestep_fs={timestep_fs:g} was given")
    return float(spacing)


def _stack(frames, path, key, shape, required):
    values = []
    for index, atoms in enumerate(frames):
        value = _frame_value(atoms, key)
        if value is None:
            if not required:
                return None
            raise DataFileError(f"{path}: frame {index} has no {key} (neither a calculator result nor "
                                f"info[{key!r}])")
        value = np.asarray(value, dtype=float)
        if value.size != np.prod(shape):
            raise DataFileError(f"{path}: frame {index}: {key} has {value.size} numbers, expected {np.prod(shape)}")
        if not np.all(np.isfinite(value)):
            raise DataFileError(f"{path}: frame {index}: {key} is not finite ({value.ravel().tolist()})")
        values.append(value.reshape(shape))
    return np.array(values)


def read_timeseries(path, *, timestep_fs=None, temperature_K=None, dipoles=True, polarizabilities=False):
    """Read one trajectory file or Newton-X folder into a :class:`TimeSeries`.

    Parameters
    ----------
    path : str or path-like
    timestep_fs : float, optional, fs
        Time between frames; required when the file stores none, checked against it otherwise.
    temperature_K : float, optional, K
        Overrides ``info['temperature_K']`` (with a warning when they differ).
    dipoles, polarizabilities : bool, default=True, False
        Require every frame to carry a dipole (e*Angstrom) / polarizability (Angstrom^3). When not
        required they are read if every frame has them.

    Raises
    ------
    DataFileError
        Missing dipole or polarizability, non-finite values, unevenly spaced or unknown time step,
        naming the file and frame.
    """
    path = os.fspath(path)
    from nxplugin.analysis import ipi_files
    if ipi_files.is_ipi_file(path):
        return ipi_files.read_run([path], timestep_fs=timestep_fs, temperature_K=temperature_K,
                                  dipoles=dipoles, polarizabilities=polarizabilities)
    frames = read_frames(path)
    if not frames:
        raise DataFileError(f"{path}: no frames")
    spacing = _frame_spacing(frames, path, timestep_fs)
    stored_temperature = frames[0].info.get("temperature_K")
    if temperature_K is None:
        temperature_K = None if stored_temperature is None else float(stored_temperature)
    elif stored_temperature is not None and not np.isclose(stored_temperature, temperature_K):
        warnings.warn(f"{path}: using temperature_K={temperature_K:g} instead of the stored "
                      f"{float(stored_temperature):g} K", stacklevel=2)
    positions = numbers = None
    if len({len(atoms) for atoms in frames}) == 1:
        positions = np.array([atoms.positions for atoms in frames])
        numbers = frames[0].numbers.copy()
    return TimeSeries(source=path, timestep_fs=spacing, temperature_K=temperature_K,
                      dipoles=_stack(frames, path, "dipole", (3,), dipoles),
                      polarizabilities=_stack(frames, path, "polarizability", (3, 3), polarizabilities),
                      positions=positions, numbers=numbers)


def read_timeseries_files(paths, *, progress=None, **options):
    """Read several trajectories; options as :func:`read_timeseries`.

    The i-PI files of one run (all beads, extras and xyz, :mod:`nxplugin.analysis.ipi_files`) make
    one trajectory of centroid (bead-averaged) quantities. ``progress``, if given, is called as
    ``progress(done, total)`` after each trajectory read.
    """
    from nxplugin.analysis import ipi_files

    paths = list(paths)
    items, runs = [], ipi_files.group_runs([p for p in paths if ipi_files.is_ipi_file(p)])
    for path in paths:
        run = runs.pop(ipi_files.group_key(path), None) if ipi_files.is_ipi_file(path) else path
        if run is not None:
            items.append(run)
    out = []
    for item in items:
        out.append(read_timeseries(item, **options) if isinstance(item, (str, os.PathLike))
                   else ipi_files.read_run(item, **options))
        if progress is not None:
            progress(len(out), len(items))
    return out


def read_harmonic_csv(path):
    """Harmonic sticks from ``nxplugin harmonic``'s CSV.

    Columns ``conformer``, ``wavenumber_cm-1``, ``intensity_km_mol-1``.

    Returns
    -------
    dict of str to (wavenumber, intensity) ndarrays, cm^-1 and km/mol, by conformer.
    """
    import csv

    sticks = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        needed = {"conformer", "wavenumber_cm-1", "intensity_km_mol-1"}
        if reader.fieldnames is None or not needed <= set(reader.fieldnames):
            raise DataFileError(f"{path}: expected columns {sorted(needed)}, found {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                stick = float(row["wavenumber_cm-1"]), float(row["intensity_km_mol-1"])
            except (TypeError, ValueError) as err:
                raise DataFileError(f"{path}: line {line}: {err}") from err
            sticks.setdefault(row["conformer"].strip(), []).append(stick)
    return {name: tuple(np.array(column) for column in zip(*rows)) for name, rows in sticks.items()}
