"""Read the trajectory files i-PI writes: positions/velocities (xyz) and extras (dipoles), per bead.

Units out: positions Angstrom, velocities Angstrom/fs, dipoles e*Angstrom, polarizabilities
Angstrom**3. In: the xyz files carry their unit in the comment line (``positions{angstrom}``,
``velocities{atomic_unit}``); the extras files are written by i-PI as the client sent them, and
i-PI's convention is atomic units (``nxplugin ipi`` sends the dipole in e*bohr and the polarizability
in bohr**3), so extras are read as atomic units.

i-PI names its files ``<prefix>.<filename>_<bead>`` (extras) and ``<prefix>.<filename>_<bead>.xyz``;
every frame is labelled ``Step: N`` and, in xyz files, with the cell (``CELL(abcABC): ...``), which
is ignored here: nxplugin models are for isolated molecules. For path-integral runs the
centroid quantity is the average over beads (:func:`read_run`).
"""
import os
import re
import warnings

import numpy as np
from ase.data import atomic_numbers
from ase.units import Bohr, _aut

from nxplugin.errors import DataFileError

_EXTRAS_HEADER = re.compile(r"^\s*#EXTRAS\((?P<types>[^)]*)\)#\s*Step:\s*(?P<step>\d+)")
_XYZ_COMMENT = re.compile(r"CELL[({]")
_STEP = re.compile(r"Step:\s*(\d+)")
_QUANTITY = re.compile(r"(positions|velocities)\{([^}]*)\}")
_BEAD_NAME = re.compile(r"^(?P<stem>.+)_(?P<bead>\d+)(?P<ext>\.xyz)?$")

#: numbers per frame of the extras nxplugin's client sends; their factor to e*Angstrom / Angstrom**3
EXTRA_SIZES = {"dipole": 3, "polarizability": 9, "ood_score": 1}
EXTRA_SHAPES = {"dipole": (3,), "polarizability": (3, 3), "ood_score": ()}
EXTRA_FACTORS = {"dipole": Bohr, "polarizability": Bohr**3, "ood_score": 1.0}
#: i-PI unit names -> Angstrom (positions) and Angstrom/fs (velocities)
LENGTH_UNITS = {"atomic_unit": Bohr, "bohr": Bohr, "angstrom": 1.0, "nanometer": 10.0}
VELOCITY_UNITS = {"atomic_unit": Bohr / (_aut * 1e15), "m/s": 1e-5, "angstrom/fs": 1.0}


def is_ipi_file(path):
    """Whether ``path`` looks like an i-PI extras file or an i-PI xyz trajectory (first lines only)."""
    path = os.fspath(path)
    if os.path.isdir(path) or not os.path.isfile(path):
        return False
    with open(path, errors="replace") as handle:
        first, second = handle.readline(), handle.readline()
    if _EXTRAS_HEADER.match(first):
        return True
    return first.strip().isdigit() and bool(_XYZ_COMMENT.search(second)) and bool(_STEP.search(second))


def read_extras(path):
    """Read an i-PI extras file.

    Returns
    -------
    steps : ndarray of int, shape (n_frames,)
    values : dict of str to ndarray
        ``dipole`` (n_frames, 3) e*Angstrom, ``polarizability`` (n_frames, 3, 3) Angstrom**3,
        ``ood_score`` (n_frames,), for the types named in the file's ``#EXTRAS(...)#`` headers.

    Raises
    ------
    DataFileError
        Not an extras file, an unknown extra type, a frame with the wrong count of numbers.
    """
    path = os.fspath(path)
    steps, frames, types = [], [], None
    with open(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            match = _EXTRAS_HEADER.match(line)
            if match:
                names = [name.strip() for name in match["types"].split(",")]
                if types is None:
                    types = _check_types(path, names)
                elif names != types:
                    raise DataFileError(f"{path}: line {line_number}: extras {names} after {types}")
                steps.append(int(match["step"]))
                frames.append([])
            elif line.strip():
                if not frames:
                    raise DataFileError(f"{path}: line {line_number}: numbers before the first #EXTRAS header; "
                                        "not an i-PI extras file")
                try:
                    frames[-1].extend(float(word) for word in line.split())
                except ValueError as err:
                    raise DataFileError(f"{path}: line {line_number}: {err}") from err
    if types is None:
        raise DataFileError(f"{path}: no #EXTRAS(...)# header; not an i-PI extras file")
    size = sum(EXTRA_SIZES[name] for name in types)
    if frames and len(frames[-1]) < size:                        # a run still writing its last frame
        warnings.warn(f"{path}: the last frame (step {steps[-1]}) is incomplete; using the {len(frames) - 1} "
                      "before it", stacklevel=3)
        steps, frames = steps[:-1], frames[:-1]
    bad = [k for k, frame in enumerate(frames) if len(frame) != size]
    if bad:
        raise DataFileError(f"{path}: step {steps[bad[0]]} has {len(frames[bad[0]])} numbers, expected {size} "
                            f"for {','.join(types)}")
    table = np.array(frames, dtype=float).reshape(len(frames), size)
    if not np.all(np.isfinite(table)):
        raise DataFileError(f"{path}: step {steps[np.flatnonzero(~np.isfinite(table).all(axis=1))[0]]}: "
                            "non-finite extras")
    values, column = {}, 0
    for name in types:
        block = table[:, column:column + EXTRA_SIZES[name]] * EXTRA_FACTORS[name]
        column += EXTRA_SIZES[name]
        values[name] = block.reshape((len(block),) + EXTRA_SHAPES[name])
    return np.array(steps, dtype=int), values


def _check_types(path, names):
    unknown = [name for name in names if name not in EXTRA_SIZES]
    if unknown:
        hint = (" (extra_type='raw' files hold the JSON strings; write the trajectory with "
                "extra_type='dipole')") if "raw" in unknown else ""
        raise DataFileError(f"{path}: extras {unknown} are not among {sorted(EXTRA_SIZES)}{hint}")
    return names


def read_xyz(path):
    """Read an i-PI xyz trajectory of positions or velocities.

    Returns
    -------
    steps : ndarray of int, shape (n_frames,)
    numbers : ndarray of int, shape (n_atoms,)
    quantity : str
        ``"positions"`` or ``"velocities"``.
    values : ndarray of shape (n_frames, n_atoms, 3)
        Angstrom (positions) or Angstrom/fs (velocities).
    """
    path = os.fspath(path)
    with open(path) as handle:
        lines = handle.read().splitlines()
    steps, frames, symbols, quantity, unit = [], [], None, None, None
    start = 0
    while start < len(lines) and lines[start].strip():
        try:
            n_atoms = int(lines[start])
        except ValueError:
            raise DataFileError(f"{path}: line {start + 1}: expected an atom count, got {lines[start][:40]!r}") from None
        block = lines[start + 2:start + 2 + n_atoms]
        if len(block) < n_atoms:
            warnings.warn(f"{path}: the last frame is incomplete; using the {len(frames)} before it", stacklevel=3)
            break
        comment = lines[start + 1]
        step, tag = _STEP.search(comment), _QUANTITY.search(comment)
        if step is None or tag is None:
            raise DataFileError(f"{path}: line {start + 2}: no 'Step:' or positions{{unit}}/velocities{{unit}} "
                                "in the comment; not an i-PI xyz trajectory")
        if quantity is None:
            quantity, unit = tag.groups()
        elif tag.groups() != (quantity, unit):
            raise DataFileError(f"{path}: line {start + 2}: {tag.group(0)} after {quantity}{{{unit}}}")
        rows = [line.split() for line in block]
        if symbols is None:
            symbols = [row[0] for row in rows]
        elif [row[0] for row in rows] != symbols:
            raise DataFileError(f"{path}: step {step.group(1)}: the atoms changed")
        try:
            frames.append([[float(word) for word in row[1:4]] for row in rows])
        except (ValueError, IndexError) as err:
            raise DataFileError(f"{path}: frame at line {start + 1}: {err}") from err
        steps.append(int(step.group(1)))
        start += 2 + n_atoms
    if not frames:
        raise DataFileError(f"{path}: no complete frame")
    table = VELOCITY_UNITS if quantity == "velocities" else LENGTH_UNITS
    if unit not in table:
        raise DataFileError(f"{path}: {quantity} in {unit!r}; readable units are {sorted(table)}")
    try:
        numbers = np.array([atomic_numbers[symbol] for symbol in symbols])
    except KeyError as err:
        raise DataFileError(f"{path}: unknown element {err.args[0]!r}") from None
    return np.array(steps, dtype=int), numbers, quantity, np.array(frames, dtype=float) * table[unit]


def split_bead_name(path):
    """``(stem, bead)`` of an i-PI per-bead file name (``sim.dip_03`` -> ``("sim.dip", 3)``), or None."""
    match = _BEAD_NAME.match(os.path.basename(os.fspath(path)))
    if match is None:
        return None
    return os.path.join(os.path.dirname(os.fspath(path)), match["stem"]), int(match["bead"])


def group_runs(paths):
    """Group i-PI files by run (``<directory>/<prefix>``), keeping the order of first appearance.

    Returns
    -------
    dict of str to list of str
    """
    runs = {}
    for path in map(os.fspath, paths):
        split = split_bead_name(path)
        stem = split[0] if split else os.path.splitext(path)[0]
        runs.setdefault(stem.rsplit(".", 1)[0] if "." in os.path.basename(stem) else stem, []).append(path)
    return runs


def read_beads(paths):
    """Read the files of one i-PI run, bead by bead, on common steps.

    Parameters
    ----------
    paths : list of str or path-like
        Extras files and/or xyz trajectories of one run, any beads (``sim.dip_0``, ``sim.dip_1``,
        ``sim.pos_0.xyz``, ...). Files of one quantity must cover the same beads' steps.

    Returns
    -------
    dict
        ``steps`` (n_frames,); ``numbers`` (n_atoms,) or None; for each quantity found a tuple
        ``(beads, values)`` with bead indices and values of shape (n_beads, n_frames, ...):
        ``dipole`` e*Angstrom, ``polarizability`` Angstrom**3, ``ood_score``, ``positions``
        Angstrom, ``velocities`` Angstrom/fs. A run still being written is cut to the steps every
        file has.
    """
    series, numbers = {}, None
    for path in map(os.fspath, paths):
        split = split_bead_name(path)
        bead = split[1] if split else 0
        with open(path, errors="replace") as handle:
            extras = bool(_EXTRAS_HEADER.match(handle.readline()))
        if extras:
            steps, values = read_extras(path)
        else:
            steps, file_numbers, quantity, array = read_xyz(path)
            if numbers is not None and not np.array_equal(numbers, file_numbers):
                raise DataFileError(f"{path}: atoms {file_numbers.tolist()} differ from {numbers.tolist()} "
                                    "of the other files of the run")
            numbers, values = file_numbers, {quantity: array}
        for name, value in values.items():
            beads = series.setdefault(name, {})
            if bead in beads:
                raise DataFileError(f"{path}: a second {name} file for bead {bead} ({beads[bead][0]})")
            beads[bead] = (path, steps, value)
    if not series:
        raise DataFileError("no i-PI files given")
    entries = [entry for beads in series.values() for entry in beads.values()]
    n_common = min(len(steps) for _, steps, _ in entries)
    reference_path, reference, _ = max(entries, key=lambda entry: len(entry[1]))
    for path, steps, _ in entries:
        if not np.array_equal(steps[:n_common], reference[:n_common]):
            raise DataFileError(f"{path}: steps {steps[:3].tolist()}... differ from {reference[:3].tolist()}... of "
                                f"{reference_path}; write every trajectory of the run with the same stride")
        if len(steps) > n_common + 1:
            warnings.warn(f"{path}: {len(steps)} frames, but another file of the run has {n_common}; using "
                          f"the first {n_common}", stacklevel=2)
    out = {"steps": reference[:n_common], "numbers": numbers}
    for name, beads in series.items():
        order = sorted(beads)
        out[name] = (order, np.array([beads[b][2][:n_common] for b in order]))
    return out


def _warn_missing_beads(paths):
    given = {}
    for path in map(os.fspath, paths):
        split = split_bead_name(path)
        if split:
            given.setdefault(split[0], set()).add(split[1])
    for stem, beads in given.items():
        directory, name = os.path.split(stem)
        pattern = re.compile(re.escape(name) + r"_(\d+)(\.xyz)?$")
        present = {int(m.group(1)) for m in map(pattern.match, os.listdir(directory or ".")) if m}
        if present - beads:
            warnings.warn(f"{stem}_*: {len(beads)} of the {len(present)} bead files given; the centroid "
                          f"is the average of the beads given", stacklevel=3)


def read_run(paths, *, timestep_fs=None, temperature_K=None, dipoles=True, polarizabilities=False):
    """One i-PI run as a :class:`~nxplugin.analysis.timeseries.TimeSeries` of centroid quantities.

    The centroid dipole (polarizability, positions) is the average over the beads given: for
    TRPMD and PA-CMD the spectrum of the bead-averaged dipole approximates the Kubo-transformed
    quantum one. A classical run has one bead, which is its own centroid.

    Parameters
    ----------
    paths : list of str or path-like
        Files of one run (see :func:`read_beads`).
    timestep_fs : float, fs
        Time between saved frames (i-PI's ``<timestep>`` times the trajectory ``stride``). Required:
        i-PI's files store step numbers, not times.
    temperature_K : float, optional, K
    dipoles, polarizabilities : bool, default=True, False
        Require the dipole / polarizability extras.
    """
    from nxplugin.analysis.timeseries import TimeSeries

    paths = [os.fspath(path) for path in paths]
    source = paths[0] if len(paths) == 1 else f"{group_key(paths[0])}.* ({len(paths)} files)"
    _warn_missing_beads(paths)
    data = read_beads(paths)
    for name, needed in (("dipole", dipoles), ("polarizability", polarizabilities)):
        if needed and name not in data:
            raise DataFileError(f"{source}: no {name} extras; write them with <trajectory filename='{name[:3]}' "
                                f"extra_type='{name}'> extras </trajectory> and give those files")
    strides = np.diff(data["steps"])
    if len(strides) and (strides[0] <= 0 or np.any(strides != strides[0])):
        bad = int(np.flatnonzero(strides != strides[0])[0]) + 1 if np.any(strides != strides[0]) else 1
        raise DataFileError(f"{source}: steps {data['steps'][bad - 1]} and {data['steps'][bad]} are not "
                            f"{strides[0]} apart; spectra need evenly spaced frames")
    if timestep_fs is None:
        raise DataFileError(f"{source}: i-PI files store steps, not times; give the time between frames "
                            f"(--timestep FS: i-PI's <timestep> times the stride, "
                            f"{strides[0] if len(strides) else 1} steps here)")

    def centroid(name):
        return data[name][1].mean(axis=0) if name in data else None

    return TimeSeries(source=source, timestep_fs=float(timestep_fs), temperature_K=temperature_K,
                      dipoles=centroid("dipole"), polarizabilities=centroid("polarizability"),
                      positions=centroid("positions"), numbers=data["numbers"])


def group_key(path):
    """The run a file belongs to: ``<directory>/<prefix>`` of ``<prefix>.<filename>_<bead>``."""
    return next(iter(group_runs([path])))
