"""Readers and writers of Newton-X CS 2.x's RESULTS/ files (dyn.out, en.dat, dyn.xyz), in the files' units.

Units: lengths in bohr (dyn.out) or Angstrom (dyn.xyz), energies in Hartree, velocities in bohr per
atomic time unit, time in fs. Numpy only, like :mod:`nxplugin.newtonx.files`; conversion to ASE units
happens in :mod:`nxplugin.newtonx.interface`.
"""
import re
import warnings

import numpy as np

from nxplugin.errors import DataFileError
from nxplugin.newtonx.files import _lines, fortran_float

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
