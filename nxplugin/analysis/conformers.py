"""Trans and gauche conformers of X-CH2-CH2-X molecules (1,2-dichloroethane type) along trajectories.

Units: positions in Angstrom, dihedral angles in degrees in (-180, 180].

A frame is *trans* when the X-C-C-X dihedral is far from 0 and *gauche* otherwise, with hysteresis
so that vibrations around the barrier do not count as transitions: with the boundary ``b`` (120 deg)
and margin ``m`` (30 deg), ``|phi| >= b + m`` is the trans core, ``|phi| <= b - m`` the gauche core,
and a frame in between keeps the label of the last core visited (frames before any core visit are
labelled by ``|phi| > b``). A transition is a change of label, i.e. a passage from one core to the other.
Gauche+ and gauche- (mirror images) are one conformer. This is nxplugin's one definition of
conformers and torsion transitions (sampling summaries and spectra use it).
"""
import numpy as np

CONFORMERS = ("trans", "gauche")
TRANS, GAUCHE = 0, 1


def find_dihedral(numbers, positions, *, bond_scale=1.2):
    """Atom indices (X, C, C, X) of the one X-C-C-X dihedral with X a non-hydrogen substituent.

    Parameters
    ----------
    numbers : array-like of shape (n_atoms,), atomic numbers
    positions : array-like of shape (n_atoms, 3), Angstrom
        One geometry; atoms closer than ``bond_scale`` times the sum of covalent radii are bonded.

    Raises
    ------
    ValueError
        No such dihedral or more than one: give the indices yourself.
    """
    from ase.data import covalent_radii

    numbers = np.asarray(numbers)
    positions = np.asarray(positions, dtype=float)
    radii = covalent_radii[numbers]
    distance = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    bonded = (distance < bond_scale * (radii[:, None] + radii[None])) & ~np.eye(len(numbers), dtype=bool)
    carbons = np.flatnonzero(numbers == 6)
    found = []
    for a in carbons:
        for b in carbons[carbons > a]:
            if not bonded[a, b]:
                continue
            ends = [[x for x in np.flatnonzero(bonded[c]) if x != other and numbers[x] != 1]
                    for c, other in ((a, b), (b, a))]
            if len(ends[0]) == 1 and len(ends[1]) == 1:
                found.append((int(ends[0][0]), int(a), int(b), int(ends[1][0])))
    if len(found) != 1:
        raise ValueError(f"cannot infer the X-C-C-X dihedral: found {len(found)} candidates {found}; "
                         f"give the four atom indices (--dihedral I J K L)")
    return found[0]


def dihedral_series(positions, indices):
    """Dihedral angle of atoms ``indices = (i, j, k, l)`` in every frame.

    Parameters
    ----------
    positions : array-like of shape (n_frames, n_atoms, 3), Angstrom
    indices : sequence of 4 int

    Returns
    -------
    ndarray of shape (n_frames,), degrees in (-180, 180]; 180 is trans (anti).
    """
    positions = np.asarray(positions, dtype=float)
    if len(indices) != 4 or len(set(indices)) != 4:
        raise ValueError(f"indices={tuple(indices)} must be four different atoms")
    if max(indices) >= positions.shape[1] or min(indices) < 0:
        raise ValueError(f"indices={tuple(indices)} out of range for {positions.shape[1]} atoms")
    p0, p1, p2, p3 = (positions[:, i] for i in indices)
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n0, n1 = np.cross(b0, b1), np.cross(b1, b2)
    axis = b1 / np.linalg.norm(b1, axis=1, keepdims=True)
    x = np.sum(n0 * n1, axis=1)
    y = np.sum(np.cross(n0, n1) * axis, axis=1)
    return 180.0 - np.mod(180.0 - np.degrees(np.arctan2(y, x)), 360.0)


def classify(dihedral_deg, *, boundary_deg=120.0, margin_deg=30.0):
    """Conformer label of every frame (``TRANS`` = 0, ``GAUCHE`` = 1), with hysteresis.

    Parameters
    ----------
    dihedral_deg : array-like of shape (n_frames,), degrees
        Any range (wrapped to (-180, 180] first).
    boundary_deg : float, default=120.0, degrees
    margin_deg : float, default=30.0, degrees
        Half-width of the band around the boundary where frames keep their last core label; 0 gives a
        plain cut at the boundary.

    Returns
    -------
    ndarray of int of shape (n_frames,)
    """
    magnitude = np.abs(180.0 - np.mod(180.0 - np.asarray(dihedral_deg, dtype=float), 360.0))
    core = np.full(len(magnitude), -1)
    core[magnitude >= boundary_deg + margin_deg] = TRANS
    core[magnitude <= boundary_deg - margin_deg] = GAUCHE
    last_core = np.maximum.accumulate(np.where(core >= 0, np.arange(len(core)), -1))
    plain = np.where(magnitude > boundary_deg, TRANS, GAUCHE)
    return np.where(last_core >= 0, core[np.maximum(last_core, 0)], plain)


def count_transitions(labels):
    """Number of trans <-> gauche transitions (label changes) in one trajectory."""
    return int(np.count_nonzero(np.diff(np.asarray(labels))))


def populations(label_series, *, n_blocks=1):
    """Conformer fractions with standard errors between trajectories (or blocks of each).

    Parameters
    ----------
    label_series : list of array-like of int
        Labels of each trajectory (:func:`classify`).
    n_blocks : int, default=1
        Each trajectory is cut into this many contiguous blocks, each one sample.

    Returns
    -------
    dict of str to (fraction, stderr)
        By conformer name; each sample has equal weight; stderr is NaN with one sample.
    """
    samples = []
    for labels in label_series:
        labels = np.asarray(labels)
        length = len(labels) // n_blocks
        samples += [labels[i * length:(i + 1) * length] for i in range(n_blocks)]
    fractions = np.array([[np.mean(block == code) for code in (TRANS, GAUCHE)] for block in samples])
    if len(fractions) > 1:
        stderr = fractions.std(axis=0, ddof=1) / np.sqrt(len(fractions))
    else:
        stderr = np.full(2, np.nan)
    mean = fractions.mean(axis=0)
    return {name: (float(mean[i]), float(stderr[i])) for i, name in enumerate(CONFORMERS)}


def longest_run(mask):
    """Length in frames of the longest run of True in a boolean series (0 when there is none)."""
    mask = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(mask.astype(np.int8)))
    return int(np.max(edges[1::2] - edges[::2])) if len(edges) else 0
