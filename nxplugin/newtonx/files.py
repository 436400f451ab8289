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


# ---------------------------------------------------------------- RESULTS/ files
_STEP = re.compile(r"^\s*STEP\s+(\d+)\s+Molecular dynamics on state\s+(\d+)\s+TIME\s*=\s*(\S+)\s*fs", re.I)
_WAVE = re.compile(r"Wave function state\s+(\d+):\s+(\S+)\s+(\S+)")


def _numeric_block(lines, start, ncols, *, symbol_first=False):
    """Rows of numbers right after line ``start``; stops at the first line of another shape."""
    rows = []
    for line in lines[start:]:
        fields = line.split()
        if symbol_first:
            if len(fields) != ncols + 1 or not fields[0][:1].isalpha():
                break
            fields = fields[1:]
        if len(fields) != ncols:
            break
        try:
            rows.append([fortran_float(f) for f in fields])
        except ValueError:
            break
    return rows


def _parse_step(lines, path, offset, nat):
    """One STEP block of dyn.out as a dict; raises ValueError with a reason when incomplete or garbled."""
    match = _STEP.match(lines[0])
    record = {"step": int(match[1]), "state": int(match[2]), "time": fortran_float(match[3]),
              "line": offset + 1, "velocities": None}
    populations = {}
    for i, line in enumerate(lines):
        low = line.lower()
        if "geometry:" in low:
            rows = _numeric_block(lines, i + 1, 5, symbol_first=True)
            symbols = [lines[i + 1 + k].split()[0].capitalize() for k in range(len(rows))]
            if not rows or (nat is not None and len(rows) != nat):
                raise ValueError(f"{path}:{offset + i + 2}: geometry has {len(rows)} complete atom lines")
            rows = np.array(rows)
            record.update(symbols=symbols, numbers=rows[:, 0].round().astype(int),
                          positions=rows[:, 1:4], masses=rows[:, 4])
        elif "velocity:" in low:
            rows = _numeric_block(lines, i + 1, 3)
            if len(rows) != len(record.get("symbols", rows)):
                raise ValueError(f"{path}:{offset + i + 2}: velocity has {len(rows)} complete lines")
            record["velocities"] = np.array(rows)
        elif line.startswith("%"):
            try:
                values = [fortran_float(f) for f in line[1:].split()]
            except ValueError:
                raise ValueError(f"{path}:{offset + i + 1}: garbled energy line {line.strip()!r}") from None
            if len(values) < 4 or not np.all(np.isfinite(values)):
                raise ValueError(f"{path}:{offset + i + 1}: garbled energy line {line.strip()!r}")
            record.update(etot=values[1], ekin=values[2], state_energies=np.array(values[3:]))
        elif _WAVE.search(line):
            state, re_part, im_part = _WAVE.search(line).groups()
            try:
                populations[int(state)] = fortran_float(re_part) ** 2 + fortran_float(im_part) ** 2
            except ValueError:
                pass
    for key, name in (("positions", "geometry"), ("etot", "'%' energy line")):
        if key not in record:
            raise ValueError(f"{path}:{offset + 1}: step at TIME = {record['time']} fs has no {name}")
    if record["state"] > len(record["state_energies"]):
        raise ValueError(f"{path}:{offset + 1}: state {record['state']} but only "
                         f"{len(record['state_energies'])} state energies")
    if populations:
        record["populations"] = np.array([populations[k] for k in sorted(populations)])
    return record


def read_dyn_out(path):
    """Read Newton-X's ``dyn.out``: one dict per printed step, in file order.

    Each dict has ``step``, ``time`` (fs), ``state`` (1-based), ``symbols``, ``numbers``,
    ``positions`` (nat, 3) bohr, ``masses`` amu, ``velocities`` (nat, 3) bohr/atomic time unit or None,
    ``etot`` and ``ekin`` (Hartree), ``state_energies`` (nstat,) Hartree, ``populations`` when printed,
    and ``line`` (where the step starts). Blocks other than geometry, velocity, the ``%`` line and
    wave-function lines (accelerations, hopping notes) are skipped. Handles the 2.2 and 2.6 number formats
    (fixed, ``E`` or ``D`` exponents) and LF, CRLF or CR line ends. An incomplete or garbled step is left
    out with a warning naming file and line; a file without any complete step raises DataFileError.
    """
    lines = _lines(path)
    starts = [i for i, line in enumerate(lines) if _STEP.match(line)]
    records, nat = [], None
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        try:
            record = _parse_step(lines[start:end], path, start, nat)
        except ValueError as err:
            kind = "truncated" if k + 1 == len(starts) else "garbled"
            warnings.warn(f"{kind} step skipped: {err}", stacklevel=2)
            continue
        nat = len(record["symbols"])
        records.append(record)
    if not records:
        raise DataFileError(f"{path}: no complete 'STEP ... TIME = ... fs' block")
    return records


def format_dyn_out(records, *, layout="2.6"):
    """Text of a ``dyn.out`` with the records of :func:`read_dyn_out`, in the 2.2 or 2.6 layout.

    The 2.2 layout is that of Newton-X CS 2.2 (fixed-point numbers, CRLF line ends as on the sample);
    the 2.6 layout prints E-notation energies, 10-decimal coordinates and an acceleration block.
    """
    wide = layout != "2.2"
    out = [" ", "      *** Molecular Dynamics ***", " "]
    for rec in records:
        out += [f"STEP {rec['step']:8d}    Molecular dynamics on state {rec['state']:2d}    "
                f"TIME = {rec['time']:10.2f} fs",
                "Type of dyn. =    1    N. of hoppings =    0    N. of rejec. hoppings =    0", " ",
                "  New geometry: "]
        digits = "{:16.10f}" if wide else "{:14.8f}"
        for sym, z, xyz, m in zip(rec["symbols"], rec["numbers"], rec["positions"], rec["masses"]):
            out.append(f" {sym:<2s}{z:7.1f}" + "".join(digits.format(v) for v in (*xyz, m)))
        blocks = [("New velocity", rec.get("velocities"))]
        if wide:
            blocks.append(("New acceleration", np.zeros_like(rec["positions"])))
        for title, rows in blocks:
            if rows is not None:
                out += [" ", f"  {title}: "] + ["".join(f"{v:13.8f}" for v in r) for r in rows]
        energies = [rec["time"], rec["etot"], rec["ekin"], *rec["state_energies"]]
        fmt = "{:19.10E}" if wide else "{:14.6f}"
        out += [" ", "     Time    Etot         Ekin       Epot E0,      E1, ...",
                f"%{rec['time']:11.2f}" + "".join(fmt.format(e) for e in energies[1:]),
                "Etot variation =   0.000000 au    Worse conservation =   0.000000 au", " ", " ------------", " "]
    newline = "\r\n" if layout == "2.2" else "\n"
    return newline.join(out) + newline


def read_en_dat(path):
    """Read ``en.dat``: array (n, nstat + 3) of time (fs), E_1..E_nstat, E_current, E_total (Hartree).

    A garbled or short line ends the table with a warning naming file and line.
    """
    rows = []
    for lineno, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = [fortran_float(f) for f in line.split()]
        except ValueError:
            row = []
        if len(row) < 4 or (rows and len(row) != len(rows[0])):
            warnings.warn(f"{path}:{lineno}: garbled line; en.dat read up to line {lineno - 1}", stacklevel=2)
            break
        rows.append(row)
    return np.array(rows)


def read_dyn_xyz(path):
    """Read ``dyn.xyz``: list of (time fs, symbols, positions (nat, 3) in Angstrom)."""
    lines, frames, i = _lines(path), [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            nat = int(lines[i].split()[0])
            time = fortran_float(lines[i + 1].split("=")[-1].split()[0])
            atoms = [lines[i + 2 + k].split() for k in range(nat)]
            positions = np.array([[fortran_float(f) for f in a[1:4]] for a in atoms])
        except (ValueError, IndexError):
            warnings.warn(f"{path}:{i + 1}: truncated or garbled frame; dyn.xyz read up to line {i}",
                          stacklevel=2)
            break
        frames.append((time, [a[0].capitalize() for a in atoms], positions))
        i += nat + 2
    return frames


def format_dyn_xyz(frames):
    """Text of ``dyn.xyz`` from (time fs, symbols, positions in Angstrom) tuples."""
    out = []
    for time, symbols, positions in frames:
        out += [f" {len(symbols)} ", f" Time = {time:.2f} "]
        out += [f"{s:<2s}" + "".join(f"{v:12.8f}" for v in xyz) for s, xyz in zip(symbols, positions)]
    return "\n".join(out) + "\n"
