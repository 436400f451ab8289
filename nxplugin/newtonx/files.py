"""Readers and writers of Newton-X CS 2.x files, in Newton-X's own units (numpy only, no ASE).

Units here are those of the files: lengths in bohr, energies in Hartree, gradients in Hartree/bohr,
velocities in bohr per atomic time unit, masses in amu, time in fs, dipoles in e*bohr and
polarizabilities in bohr**3 (side file). Conversion to eV and Angstrom happens in
:mod:`nxplugin.newtonx.interface`, once, at the edge.

This module sits on the path of every Newton-X step, so it imports numpy only. The two constants below
equal ``ase.units.Bohr`` and ``ase.units.Hartree`` (CODATA 2014, ASE 3.29); ``tests/test_newtonx.py``
asserts they do.
"""
import os
import re
import warnings

import numpy as np

from nxplugin.model.elements import SYMBOLS
from nxplugin.errors import DataFileError
from nxplugin.fileio import atomic_write

#: Bohr radius in Angstrom; = ase.units.Bohr (CODATA 2014).
BOHR = 0.5291772105638411
#: Hartree in eV; = ase.units.Hartree (CODATA 2014).
HARTREE = 27.211386024367243

CONTROL_D_FIELDS = ("nat", "istep", "nstat", "nstatdyn", "ndamp", "kt", "dt", "t", "tmax", "nintc",
                    "mem", "nxrestart", "thres", "killstat", "timekill", "prog", "lvprt",
                    "etot_jump", "etot_drift")
_CONTROL_D_REALS = {"dt", "t", "tmax", "thres", "timekill", "prog", "etot_jump", "etot_drift"}

SIDE_FILE = "nxplugin-dipoles.dat"

_NUMBER_OF = {s.upper(): z for z, s in enumerate(SYMBOLS)}


def fortran_float(text):
    """Parse a Fortran real (``1.5``, ``1.5D-03``, ``1.5d+00``); raise ValueError otherwise."""
    return float(text.replace("D", "E").replace("d", "e"))


def _lines(path):
    """Lines of a text file with any line ending (LF, CRLF, CR) removed."""
    with open(path, newline=None, encoding="ascii", errors="replace") as handle:
        return [line.rstrip("\r\n").replace("\r", "") for line in handle]


# ---------------------------------------------------------------- geom, veloc
def read_geom(path, *, nat=None):
    """Read a Newton-X ``geom`` file.

    Parameters
    ----------
    path : str or path-like
        File with one atom a line: symbol, Z, x, y, z in bohr, mass in amu.
    nat : int, optional
        Expected number of atoms (from ``control.d``); a different count raises.

    Returns
    -------
    symbols : list of str
    numbers : ndarray of shape (nat,), int
    positions : ndarray of shape (nat, 3), bohr
    masses : ndarray of shape (nat,), amu

    Raises
    ------
    DataFileError
        Missing file, a line without six fields, an unknown element, NaN or a wrong atom count;
        the message names the file and line.
    """
    if not os.path.exists(path):
        raise DataFileError(f"{path}: no such geom file")
    symbols, numbers, rows = [], [], []
    for lineno, line in enumerate(_lines(path), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) < 6:
            raise DataFileError(f"{where}: expected 'symbol Z x y z mass', got {line.strip()!r}")
        symbol = fields[0].capitalize()
        if symbol.upper() not in _NUMBER_OF or symbol == "X":
            raise DataFileError(f"{where}: unknown element {fields[0]!r}")
        try:
            values = [fortran_float(f) for f in fields[1:6]]
        except ValueError:
            raise DataFileError(f"{where}: not a number in {line.strip()!r}") from None
        if not np.all(np.isfinite(values)):
            raise DataFileError(f"{where}: non-finite value in {line.strip()!r}")
        if round(values[0]) != _NUMBER_OF[symbol.upper()]:
            raise DataFileError(f"{where}: Z={values[0]} does not match element {symbol}")
        symbols.append(symbol)
        numbers.append(_NUMBER_OF[symbol.upper()])
        rows.append(values[1:])
    if not rows:
        raise DataFileError(f"{path}: no atoms")
    if nat is not None and len(rows) != nat:
        raise DataFileError(f"{path}: {len(rows)} atoms, but control.d says nat={nat}")
    rows = np.array(rows)
    return symbols, np.array(numbers), rows[:, :3], rows[:, 3]


def format_geom(symbols, positions, masses, *, decimals=8):
    """Text of a ``geom`` file; positions (nat, 3) in bohr, masses in amu. Newton-X writes 8 decimals."""
    width = decimals + 6
    lines = []
    for symbol, xyz, mass in zip(symbols, np.asarray(positions, float), np.asarray(masses, float)):
        z = _NUMBER_OF[symbol.upper()]
        lines.append(f" {symbol:<2s}{z:7.1f}" + "".join(f"{v:{width}.{decimals}f}" for v in (*xyz, mass)))
    return "\n".join(lines) + "\n"


def write_geom(path, symbols, positions, masses, *, decimals=8):
    """Write a Newton-X ``geom`` file: positions (nat, 3) in bohr, masses (nat,) in amu."""
    atomic_write(path, format_geom(symbols, positions, masses, decimals=decimals), durable=False)


def read_veloc(path, *, nat=None):
    """Read a ``veloc`` file: ndarray of shape (nat, 3) in bohr per atomic time unit."""
    rows = []
    for lineno, line in enumerate(_lines(path), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            row = [fortran_float(f) for f in fields]
        except ValueError:
            raise DataFileError(f"{path}:{lineno}: not a number in {line.strip()!r}") from None
        if len(row) != 3 or not np.all(np.isfinite(row)):
            raise DataFileError(f"{path}:{lineno}: expected three finite velocities, got {line.strip()!r}")
        rows.append(row)
    if nat is not None and len(rows) != nat:
        raise DataFileError(f"{path}: {len(rows)} velocity lines, expected nat={nat}")
    return np.array(rows).reshape(-1, 3)


def write_veloc(path, velocities):
    """Write a ``veloc`` file; velocities (nat, 3) in bohr per atomic time unit."""
    text = "".join(" " + "".join(f"{v:15.9f}" for v in row) + "\n" for row in np.asarray(velocities, float))
    atomic_write(path, text, durable=False)


# ---------------------------------------------------------------- control files
def _fortran_value(text):
    text = text.strip().rstrip(",")
    if text[:1] in "'\"":
        return text.strip("'\"")
    if text.upper() in (".TRUE.", "T"):
        return True
    if text.upper() in (".FALSE.", "F"):
        return False
    try:
        return int(text)
    except ValueError:
        return fortran_float(text)


def read_control_dyn(path):
    """Read the ``&input`` namelist of ``control.dyn`` into a dict (keys lower case, numbers parsed)."""
    params, inside = {}, False
    for lineno, line in enumerate(_lines(path), 1):
        stripped = line.split("!")[0].strip()
        if stripped.lower().startswith("&input"):
            inside, stripped = True, stripped[6:]
        if not inside or not stripped:
            continue
        if stripped.startswith("/") or stripped.lower().startswith("&end"):
            return params
        for key, value in re.findall(r"(\w+)\s*=\s*('[^']*'|\"[^\"]*\"|[^,\s/]+)", stripped):
            try:
                params[key.lower()] = _fortran_value(value)
            except ValueError:
                raise DataFileError(f"{path}:{lineno}: cannot read {key} = {value!r}") from None
        if stripped.endswith("/"):
            return params
    raise DataFileError(f"{path}: no complete '&input ... /' namelist")


def write_control_dyn(path, params):
    """Write ``control.dyn`` from a dict, keys in the dict's order."""
    body = "".join(f"  {key} = {value}\n" for key, value in params.items())
    atomic_write(path, f" &input\n{body} /\n", durable=False)


def read_control_d(path):
    """Read the one comma-separated line of ``control.d`` that Newton-X writes before each step.

    Returns a dict with the keys of :data:`CONTROL_D_FIELDS`: ``nat``, ``istep``, ``nstat``,
    ``nstatdyn`` ... as int, and ``dt``, ``t``, ``tmax`` (fs), ``thres`` ... as float.
    """
    if not os.path.exists(path):
        raise DataFileError(f"{path}: no such file; Newton-X writes control.d in TEMP/ before each step, "
                            "so run the step program in the TEMP/ folder")
    fields = [f for f in re.split(r"[,\s]+", " ".join(_lines(path))) if f]
    if len(fields) < len(CONTROL_D_FIELDS):
        raise DataFileError(f"{path}:1: {len(fields)} fields, expected {len(CONTROL_D_FIELDS)} "
                            f"({','.join(CONTROL_D_FIELDS)})")
    control = {}
    for name, text in zip(CONTROL_D_FIELDS, fields):
        try:
            value = fortran_float(text)
        except ValueError:
            raise DataFileError(f"{path}:1: {name} = {text!r} is not a number") from None
        control[name] = value if name in _CONTROL_D_REALS else int(round(value))
    return control


def write_control_d(path, control):
    """Write ``control.d`` as Newton-X's moldyn.pl does: one comma-separated line."""
    atomic_write(path, ",".join(str(control[name]) for name in CONTROL_D_FIELDS) + "\n", durable=False)


# ---------------------------------------------------------------- step outputs
def write_epot(path, energies):
    """Write ``epot``: one total energy per state in Hartree, state 1 first (17 significant digits)."""
    atomic_write(path, "".join(f"{e: .16e}\n" for e in np.ravel(energies)), durable=False)


def write_grad(path, gradient):
    """Write ``grad`` or ``grad.all``: gradient dE/dR (not the force), rows of x y z in Hartree/bohr."""
    rows = np.asarray(gradient, float).reshape(-1, 3)
    atomic_write(path, "".join(f"{x: .16e} {y: .16e} {z: .16e}\n" for x, y, z in rows), durable=False)


def read_numbers(path, *, columns=None):
    """Read a free-format table of numbers (``epot``, ``grad``, ``grad.all``) as a float array."""
    rows = []
    for lineno, line in enumerate(_lines(path), 1):
        if line.strip():
            try:
                rows.append([fortran_float(f) for f in line.split()])
            except ValueError:
                raise DataFileError(f"{path}:{lineno}: not a number in {line.strip()!r}") from None
            if columns is not None and len(rows[-1]) != columns:
                raise DataFileError(f"{path}:{lineno}: expected {columns} columns")
    return np.array(rows)


# ---------------------------------------------------------------- dipole side file
SIDE_HEADER = (
    "# nxplugin dipole side file, appended by 'nxplugin newtonx step' once per Newton-X step\n"
    "# keyed by time; a repeated time (after a restart) replaces the earlier line\n"
    "# units: time fs; dipole e*bohr; polarizability bohr**3 (atomic units)\n"
    "# columns: time_fs mu_x mu_y mu_z [alpha_xx alpha_xy alpha_xz alpha_yx ... alpha_zz]\n")


def append_side_file(path, time_fs, dipole_au, polarizability_au=None):
    """Append one line (time in fs, dipole in e*bohr, polarizability in bohr**3) to the side file.

    The line goes out in one ``write`` on a file opened with ``O_APPEND``, so a crash never leaves half
    a line between whole ones; a new file gets :data:`SIDE_HEADER` first.
    """
    values = [time_fs, *np.ravel(dipole_au)]
    if polarizability_au is not None:
        values += list(np.ravel(polarizability_au))
    line = " ".join(f"{v: .12e}" for v in values) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size == 0:
            line = SIDE_HEADER + line
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_side_file(path):
    """Read the dipole side file: dict time_fs (rounded to 1e-6) -> (dipole e*bohr, polarizability or None)."""
    records = {}
    for lineno, line in enumerate(_lines(path), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            values = [fortran_float(f) for f in line.split()]
        except ValueError:
            values = []
        if len(values) not in (4, 13):
            warnings.warn(f"{path}:{lineno}: garbled line skipped", stacklevel=2)
            continue
        alpha = np.array(values[4:]).reshape(3, 3) if len(values) == 13 else None
        records[round(values[0], 6)] = (np.array(values[1:4]), alpha)
    return records
