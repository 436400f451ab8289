"""MD frames as extxyz records, byte for byte as ``ase.io.write`` writes them, without building Atoms.

Units (ASE): positions Angstrom, masses amu, momenta ASE units, forces eV/Angstrom, energy eV, dipole
e*Angstrom. ``ase.io.read`` reads the records back (energy, forces and dipole as calculator results).
"""
import numpy as np

PROPERTIES = "species:S:1:pos:R:3:masses:R:1:momenta:R:3:forces:R:3"


def _quote(values):
    # str of a Python float is what ase.io.write's f"{v}" gives for a numpy one, at half the cost
    return '"' + " ".join(map(str, np.asarray(values).tolist())) + '"'


def format_frame(symbols, positions, masses, momenta, forces, info, energy, dipole):
    """One extxyz record, byte for byte as ``ase.io.write`` writes the one-replica path's frames.

    Parameters
    ----------
    symbols : list of str
    positions, momenta, forces : ndarray of shape (n_atoms, 3), Angstrom, ASE units, eV/Angstrom
    masses : ndarray of shape (n_atoms,), amu
    info : dict
        Scalars or 1-d arrays, written in order after ``Properties``.
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
