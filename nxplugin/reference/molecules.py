"""Reference geometries: 1,2-dichloroethane (DCE) at its GFN2-xTB trans and gauche minima, and ideal
(unoptimised) X-CH2-CH2-Y geometries of any substituents (:func:`xcch2ch2y`).

Units: positions in Angstrom, dihedrals in degrees.

Atom order is fixed and relied on by the models: C, C, Cl, Cl, H, H, H, H, where Cl2 is bonded to
C0, Cl3 to C1, H4 and H5 to C0 and H6 and H7 to C1. :data:`DCE_DIHEDRAL` names the Cl-C-C-Cl
torsion in that order, for ``atoms.get_dihedral(*DCE_DIHEDRAL)``.

The coordinates are GFN2-xTB minima (tblite 0.8, default settings, gas phase), optimized once and
stored so that importing this module runs no electronic structure. They are reproduced by::

    from ase.optimize import BFGS
    from tblite.ase import TBLite
    atoms = dce("trans")   # or "gauche"
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    BFGS(atoms).run(fmax=1e-4)

starting from ideal tetrahedral guesses (C-C 1.52, C-Cl 1.79, C-H 1.09 Angstrom; Cl-C-C-Cl 180 and
70 degrees). Energies at the minima: trans -419.49677 eV, gauche -419.43695 eV (gauche - trans =
0.0598 eV = 1.38 kcal/mol); Cl-C-C-Cl dihedral 180.0 and 68.1 degrees.
"""
import numpy as np

#: Atom indices (Cl, C, C, Cl) of the Cl-C-C-Cl torsion in the order used by :func:`dce`.
DCE_DIHEDRAL = (2, 0, 1, 3)

#: Chemical symbols of DCE in the fixed atom order.
DCE_SYMBOLS = ("C", "C", "Cl", "Cl", "H", "H", "H", "H")

# GFN2-xTB minima in Angstrom (see the module docstring for the command that reproduces them).
_POSITIONS = {
    "trans": np.array([
        [-0.0118224467, 0.0000000000, 0.0029754858],
        [0.0118224467, 0.0000000000, 1.5170245100],
        [1.6648694200, 0.0000000000, -0.6054336630],
        [-1.6648694200, 0.0000000000, 2.1254336600],
        [-0.5009226160, 0.8925716960, -0.3869401920],
        [-0.5009226160, -0.8925716960, -0.3869401920],
        [0.5009226160, -0.8925716960, 1.9069401900],
        [0.5009226160, 0.8925716960, 1.9069401900],
    ]),
    "gauche": np.array([
        [-0.00386016, -0.00233168, 0.00299506],
        [-0.00351132, -0.00282988, 1.51700494],
        [1.66250235, 0.02517048, -0.63503395],
        [0.59226181, 1.55363238, 2.15503395],
        [-0.51452170, 0.87540160, -0.39243968],
        [-0.47477523, -0.91180240, -0.37200643],
        [-1.01919668, -0.13428800, 1.89200643],
        [0.64663164, -0.78289723, 1.91243968],
    ]),
}

CONFORMERS = tuple(_POSITIONS)


def dce(conformer="trans"):
    """Return 1,2-dichloroethane at its GFN2-xTB minimum.

    Parameters
    ----------
    conformer : {"trans", "gauche"}, default="trans"
        Which minimum: Cl-C-C-Cl dihedral 180 degrees (trans) or 68 degrees (gauche).

    Returns
    -------
    atoms : ase.Atoms
        Eight atoms in the order C, C, Cl, Cl, H, H, H, H (positions in Angstrom, no cell, no
        calculator). Cl2 and H4, H5 are on C0; Cl3 and H6, H7 are on C1.

    Raises
    ------
    ValueError
        If `conformer` is not one of :data:`CONFORMERS`.
    """
    from ase import Atoms

    if conformer not in _POSITIONS:
        raise ValueError(f"{conformer=} is not one of {CONFORMERS}")
    return Atoms(symbols=DCE_SYMBOLS, positions=_POSITIONS[conformer].copy())


def xcch2ch2y(x, y, conformer="trans", *, dihedral_deg=None):
    """Ideal X-CH2-CH2-Y geometry (not a minimum: optimise it with the engine before use).

    Both carbons are tetrahedral (109.47 degree angles, staggered); bond lengths are sums of ASE's
    covalent radii (``ase.data.covalent_radii``), e.g. C-C 1.52, C-F 1.33, C-Br 1.96 Angstrom.

    Parameters
    ----------
    x, y : str
        Chemical symbols of the two substituents, e.g. ``"F"``, ``"Br"``.
    conformer : {"trans", "gauche"}, default="trans"
        X-C-C-Y dihedral 180 (trans) or 70 degrees (gauche); ignored if `dihedral_deg` is given.
    dihedral_deg : float, degrees, optional
        Any X-C-C-Y dihedral (rounded to the nearest staggered position of the hydrogens).

    Returns
    -------
    atoms : ase.Atoms
        Eight atoms in the order C, C, X, Y, H, H, H, H (Angstrom), the same as :func:`dce`: X2 and
        H4, H5 on C0; Y3 and H6, H7 on C1; X-C-C-Y is atoms (2, 0, 1, 3).

    Raises
    ------
    ValueError
        If `conformer` is unknown or a symbol is not an element.
    """
    from ase import Atoms
    from ase.data import atomic_numbers, covalent_radii

    for symbol in (x, y):
        if symbol not in atomic_numbers:
            raise ValueError(f"substituent {symbol!r} is not a chemical symbol")
    if dihedral_deg is None:
        if conformer not in CONFORMERS:
            raise ValueError(f"{conformer=} is not one of {CONFORMERS}")
        dihedral_deg = {"trans": 180.0, "gauche": 70.0}[conformer]

    def radius(symbol):
        return covalent_radii[atomic_numbers[symbol]]

    tetrahedral = np.arccos(-1.0 / 3.0)  # angle between a bond and the C-C axis
    cc = 2 * radius("C")

    def substituent(symbol, on_second, azimuth_deg):
        r = radius("C") + radius(symbol)
        phi = np.radians(azimuth_deg)
        axial = np.cos(tetrahedral) if not on_second else -np.cos(tetrahedral)
        return np.array([r * np.sin(tetrahedral) * np.cos(phi), r * np.sin(tetrahedral) * np.sin(phi),
                         (cc if on_second else 0.0) + r * axial])

    tau = float(dihedral_deg)
    positions = [[0.0, 0.0, 0.0], [0.0, 0.0, cc],
                 substituent(x, False, 0.0), substituent(y, True, tau),
                 substituent("H", False, 120.0), substituent("H", False, 240.0),
                 substituent("H", True, tau + 120.0), substituent("H", True, tau + 240.0)]
    return Atoms(symbols=["C", "C", x, y, "H", "H", "H", "H"], positions=positions)
