"""Start geometries of any molecule from files: read, optimised with GFN2-xTB, named by their torsion.

Units: positions Angstrom, energies eV, forces eV/Angstrom, dihedrals degrees in (-180, 180].

The starts keep the atom order of the first file; later files in another order are mapped onto it
through the bond graph (:class:`nxplugin.model.atommap.AtomMapper`). Its conformer name is ``trans`` or ``gauche`` from the
torsion that separates conformers (the X-C-C-Y dihedral found from the bonds by
:func:`nxplugin.analysis.conformers.find_dihedral`, or four indices given by the caller) after the
optimisation, or the file's name when two starts would get the same name.
"""
import os

import numpy as np

from nxplugin.errors import GeometryError


def optimise_gfn2(atoms, *, fmax=1e-4, steps=2000):
    """A copy of ``atoms`` relaxed to a GFN2-xTB (tblite) minimum with ASE's BFGS.

    Parameters
    ----------
    atoms : ase.Atoms
        Neutral closed-shell molecule, positions in Angstrom.
    fmax : float, eV/Angstrom, default=1e-4
        Largest force component at convergence.
    steps : int, default=2000

    Returns
    -------
    relaxed : ase.Atoms
        Same atom order, no calculator; ``info['energy']`` holds the GFN2-xTB energy in eV.

    Raises
    ------
    GeometryError
        If the optimisation does not reach `fmax` in `steps` steps.
    """
    from ase import Atoms
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    work = Atoms(numbers=atoms.numbers, positions=atoms.positions)
    work.calc = TBLite(method="GFN2-xTB", verbosity=0)
    if not BFGS(work, logfile=None).run(fmax=fmax, steps=steps):
        raise GeometryError(f"GFN2-xTB optimisation of {work.get_chemical_formula()} did not reach "
                            f"fmax={fmax} eV/Angstrom in {steps} steps; check the start geometry")
    relaxed = Atoms(numbers=work.numbers, positions=work.positions)
    relaxed.info["energy"] = float(work.get_potential_energy())
    return relaxed


def torsion_name(dihedral_deg):
    """``"trans"`` for ``|phi| > 120`` degrees, else ``"gauche"`` (the boundary of
    :func:`nxplugin.analysis.conformers.classify`)."""
    from nxplugin.analysis.conformers import CONFORMERS, classify

    return CONFORMERS[int(classify([dihedral_deg], margin_deg=0.0)[0])]


def conformer_names(molecules, paths, dihedral):
    """Names of geometries: trans/gauche by the torsion ``dihedral`` (4 atom indices), or the file
    names when two would be alike; also sets ``info['dihedral']`` (degrees)."""
    from nxplugin.analysis.conformers import dihedral_series

    try:
        angles = [float(dihedral_series(m.positions[None], dihedral)[0]) for m in molecules]
    except ValueError as err:
        raise GeometryError(f"--dihedral: {err}") from err
    names = [torsion_name(angle) for angle in angles]
    if len(set(names)) < len(names):
        stems = [os.path.basename(os.fspath(p)).split(".")[0] for p in paths]
        names = stems if len(set(stems)) == len(stems) else [f"{s}-{i}" for i, s in enumerate(stems)]
    for molecule, angle in zip(molecules, angles):
        molecule.info["dihedral"] = angle
    return names


def read_geometries(paths, numbers):
    """Geometries of a model's molecule (atoms ``numbers``, in any order), each in its file's atom
    order, named as :func:`conformer_names` (the X-C-C-Y torsion found from each file's bonds; file
    names for molecules without one).

    Returns
    -------
    dict of str to ase.Atoms

    Raises
    ------
    GeometryError
        Unreadable file, or atoms that differ from ``numbers`` (species or counts).
    """
    from nxplugin.analysis.conformers import find_dihedral

    molecules = []
    for path in paths:
        atoms = _read_start(path)
        if sorted(atoms.numbers) != sorted(int(z) for z in numbers):
            raise GeometryError(f"{path}: atoms {atoms.get_chemical_formula()} are not the model's molecule "
                                f"(atomic numbers {sorted(int(z) for z in numbers)})")
        molecules.append(atoms)
    try:
        names = []
        for molecule, path in zip(molecules, paths):
            names += conformer_names([molecule], [path], find_dihedral(molecule.numbers, molecule.positions))
        if len(set(names)) < len(names):
            raise ValueError("two starts of one conformer")
    except ValueError:
        names = [os.path.basename(os.fspath(p)).split(".")[0] for p in paths]
        names = names if len(set(names)) == len(names) else [f"{s}-{i}" for i, s in enumerate(names)]
    return dict(zip(names, molecules))


def _in_order_of(first, atoms, path):
    """``atoms`` relabelled onto the atom order of ``first`` (the same molecule) by its bond graph."""
    from ase.data import atomic_masses

    from nxplugin.model.atommap import AtomMapper

    try:
        mapper = AtomMapper(first.numbers, first.positions, atomic_masses[first.numbers])
        return atoms[mapper.find(atoms.numbers, atoms.positions)]
    except ValueError as err:
        raise GeometryError(f"{path}: not the molecule of the first start file ({err})") from err


def read_starts(paths, *, dihedral=None, optimise=True, fmax=1e-4):
    """Start geometries from files, optimised, with their conformer names and the torsion.

    Parameters
    ----------
    paths : sequence of str or path
        One file per conformer, anything ``ase.io.read`` reads (its last image is taken).
    dihedral : sequence of 4 int, optional
        Atom indices (0-based, the files' order) of the torsion; found from the bonds by default.
    optimise : bool, default=True
        Relax each start with GFN2-xTB (:func:`optimise_gfn2`) first.
    fmax : float, eV/Angstrom, default=1e-4

    Returns
    -------
    starts : dict of str to ase.Atoms
        By conformer name, in the order of `paths`.
    dihedral : tuple of 4 int

    Raises
    ------
    GeometryError
        Unreadable file, files of different molecules (atoms or bonds), no torsion found.
    """
    from nxplugin.analysis.conformers import find_dihedral

    if not paths:
        raise GeometryError("no start files given")
    molecules = []
    for path in paths:
        atoms = _read_start(path)
        if not np.all(np.isfinite(atoms.positions)):
            raise GeometryError(f"{path}: positions are not finite")
        if len(molecules) and list(atoms.numbers) != list(molecules[0].numbers):
            atoms = _in_order_of(molecules[0], atoms, path)
        molecules.append(optimise_gfn2(atoms, fmax=fmax) if optimise else atoms.copy())
    if dihedral is None:
        try:
            dihedral = find_dihedral(molecules[0].numbers, molecules[0].positions)
        except ValueError as err:
            raise GeometryError(f"{paths[0]}: {err}") from err
    dihedral = tuple(int(i) for i in dihedral)
    names = conformer_names(molecules, paths, dihedral)
    return dict(zip(names, molecules)), dihedral


def _read_start(path):
    """The last frame of a start-geometry file (any ``ase.io.read`` format), or a GeometryError naming it."""
    from ase.io import read
    try:
        return read(path, index=-1)
    except Exception as err:  # ASE raises many kinds; name the file
        raise GeometryError(f"cannot read start geometry {path}: {err}") from err
