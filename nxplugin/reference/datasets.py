"""Labelled data sets as numpy arrays (read from extxyz with ASE's standard keys) and model errors.

Units: positions Angstrom, energies eV, forces eV/Angstrom, dipoles e*Angstrom, polarizabilities
Angstrom**3 (``info['polarizability']``, 9 numbers or 3x3). Reported errors use the units chemists
quote: kcal/mol, kcal/mol/Angstrom, Debye, Angstrom**3.
"""
import hashlib

import numpy as np

from nxplugin.errors import DataFileError


def file_digest(path):
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_dataset(path, index=":"):
    """Read labelled frames.

    Returns
    -------
    dict of ndarray
        ``numbers`` (n_atoms,), ``positions`` (n, n_atoms, 3), ``energies`` (n,), ``forces``
        (n, n_atoms, 3) or None, ``dipoles`` (n, 3), ``polarizabilities`` (n, 3, 3) or None, and
        ``info``: a list of each frame's ``atoms.info``.

    Raises
    ------
    DataFileError
        Naming the file and frame for missing labels or mixed molecules.
    """
    import ase.io
    try:
        if str(path).endswith(".gz"):
            # ASE seeks frame by frame, which is quadratic in a gzip stream: decompress once
            import gzip
            import io
            with gzip.open(path, "rt") as handle:
                frames = ase.io.read(io.StringIO(handle.read()), index, format="extxyz")
        else:
            frames = ase.io.read(path, index)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise DataFileError(f"{path}: cannot read ({type(err).__name__}: {err})") from err
    if not frames:
        raise DataFileError(f"{path}: no frames")
    numbers = frames[0].numbers
    out = {"numbers": numbers.copy(), "positions": [], "energies": [], "forces": [], "dipoles": [],
           "polarizabilities": [], "info": []}
    for n, atoms in enumerate(frames):
        if not np.array_equal(atoms.numbers, numbers):
            raise DataFileError(f"{path}: frame {n} is {atoms.get_chemical_formula()} with another atom "
                                f"order than frame 0; a data set holds one molecule in one order")
        calc = atoms.calc
        results = calc.results if calc is not None else {}
        for key, store in (("energy", "energies"), ("dipole", "dipoles")):
            if key not in results:
                raise DataFileError(f"{path}: frame {n} has no {key}; expected ASE's standard keys "
                                    "(what ase.io.write stores from a SinglePointCalculator)")
            out[store].append(results[key])
        out["positions"].append(atoms.positions)
        out["forces"].append(results.get("forces"))
        pol = atoms.info.get("polarizability")
        out["polarizabilities"].append(None if pol is None else np.reshape(pol, (3, 3)))
        out["info"].append(dict(atoms.info))
    for key in ("forces", "polarizabilities"):
        have = [v is not None for v in out[key]]
        out[key] = np.asarray(out[key], float) if all(have) else None
    for key in ("positions", "energies", "dipoles"):
        out[key] = np.asarray(out[key], float)
    return out


def subset(data, index):
    """The frames ``index`` of a data set from :func:`read_dataset`."""
    out = {}
    for key, value in data.items():
        if key == "numbers" or value is None:
            out[key] = value
        elif key == "info":
            out[key] = [value[i] for i in index]
        else:
            out[key] = value[index]
    return out


def model_errors(model, data):
    """Root-mean-square errors of a model on a data set (all Cartesian components after back-rotation).

    Returns
    -------
    dict of float
        ``energy_kcal_mol``, ``forces_kcal_mol_A`` (when the data have forces), ``dipole_D``,
        ``polarizability_A3`` (when both have it), and ``n``.
    """
    from ase import units
    kcal = units.kcal / units.mol
    pred = model.predict(data["positions"], forces=data["forces"] is not None, numbers=data["numbers"])
    rmse = lambda a, b: float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))
    out = {"n": int(len(data["positions"])),
           "energy_kcal_mol": rmse(pred["energy"], data["energies"]) / kcal,
           "dipole_D": rmse(pred["dipole"], data["dipoles"]) / units.Debye}
    if data["forces"] is not None:
        out["forces_kcal_mol_A"] = rmse(pred["forces"], data["forces"]) / kcal
    if data["polarizabilities"] is not None and "polarizability" in pred:
        out["polarizability_A3"] = rmse(pred["polarizability"], data["polarizabilities"])
    return out


def format_errors(errors):
    """One line of RMSEs with units."""
    parts = [f"energy {errors['energy_kcal_mol']:.4f} kcal/mol"]
    if "forces_kcal_mol_A" in errors:
        parts.append(f"forces {errors['forces_kcal_mol_A']:.3f} kcal/mol/A")
    parts.append(f"dipole {errors['dipole_D']:.4f} D")
    if "polarizability_A3" in errors:
        parts.append(f"polarizability {errors['polarizability_A3']:.4f} A^3")
    return f"RMSE on {errors['n']} frames: " + ", ".join(parts)
