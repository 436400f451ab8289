"""A molecule's own symmetry from its bonds, and the mapping of any atom numbering onto a model's.

Units: positions and distances in Angstrom. numpy only (no ASE): the Newton-X step path imports it.

Definitions used throughout (``n`` atoms, permutations as integer arrays):

- A *bond graph*: atoms ``i < j`` are bonded when ``r_ij < BOND_FACTOR * (R_i + R_j)`` with the
  covalent radii ``R`` of :data:`nxplugin.model.elements.COVALENT_RADII`.
- An *atom map* ``order`` of an input onto the model: model atom ``k`` is input atom ``order[k]``, so
  ``positions[order]`` is the input in the model's labelling, and per-atom results go back as
  ``out[order] = result``.
- An *automorphism* ``a``: an atom map of the model's molecule onto itself that keeps elements and bonds
  (``positions[a]`` relabels like atoms; DCE has 8).
- *Labelling classes*: with like atoms numbered, relabellings that no rotation, reflection or torsion
  can undo. They are told apart by the handedness of the stereo centres (atoms with three or more
  neighbours that are not planar in the reference): the sign of
  ``(x_a - x_c) . ((x_b - x_c) x (x_d - x_c))`` for the centre ``c`` and its first three neighbours
  ``a < b < d``. Two labellings are in the same class when all these signs agree or all are opposite
  (a reflection flips every sign). For DCE this is the sign of the product of the two carbons'
  handedness; half of the 8 automorphisms change the class, the other 4 are the symmetries of
  the trans minimum.
"""
from collections import Counter

import numpy as np

from nxplugin.errors import ModelDomainError
from nxplugin.model.descriptors import pair_distances, pair_indices
from nxplugin.model.elements import COVALENT_RADII, SYMBOLS, formula

BOND_FACTOR = 1.2          # bonded below this multiple of the sum of covalent radii
MIN_STEREO_VOLUME = 0.2    # |u_a . (u_b x u_d)| of unit bond vectors above which a centre counts (0.77 tetrahedral)
MAX_ISOMORPHISMS = 20_000  # enumeration cap (a molecule with more like-atom automorphisms is not supported)


def bond_graph(numbers, positions, *, factor=BOND_FACTOR):
    """Bonded pairs ``(i, j)``, ``i < j``, shape (n_bonds, 2), of one geometry (Angstrom)."""
    numbers = np.asarray(numbers, dtype=int)
    missing = sorted({SYMBOLS[z] for z in numbers if int(z) not in COVALENT_RADII})
    if missing:
        raise ModelDomainError(f"no covalent radius for {', '.join(missing)}: add it to "
                               "nxplugin.model.elements.COVALENT_RADII")
    radii = np.array([COVALENT_RADII[int(z)] for z in numbers])
    i, j = pair_indices(len(numbers))
    bonded = pair_distances(positions) < factor * (radii[i] + radii[j])
    return np.stack([i[bonded], j[bonded]], axis=1).astype(np.int64)


def _neighbours(n_atoms, bonds):
    out = [[] for _ in range(n_atoms)]
    for i, j in np.asarray(bonds, dtype=int).reshape(-1, 2):
        out[i].append(int(j))
        out[j].append(int(i))
    return [sorted(x) for x in out]


def environments(numbers, bonds):
    """Per atom: its symbol and its neighbours' symbols, e.g. ``"C(C,Cl,H,H)"``."""
    nbrs = _neighbours(len(numbers), bonds)
    return [f"{SYMBOLS[int(z)]}({','.join(sorted(SYMBOLS[int(numbers[k])] for k in nb))})"
            for z, nb in zip(numbers, nbrs)]


def isomorphisms(numbers, bonds, other_numbers, other_bonds, *, limit=MAX_ISOMORPHISMS):
    """Every atom map of a second molecule onto the first that keeps elements and bonds.

    Parameters
    ----------
    numbers, bonds : the first (model's) molecule: atomic numbers (n,) and bonded pairs (m, 2)
    other_numbers, other_bonds : the second molecule, same meaning

    Returns
    -------
    ndarray of int of shape (n_maps, n)
        Row ``order``: atom ``k`` of the first molecule is atom ``order[k]`` of the second. Sorted
        lexicographically; empty when the bonded structures differ.
    """
    n = len(numbers)
    if len(other_numbers) != n:
        return np.zeros((0, n), dtype=np.int64)
    env_a, env_b = environments(numbers, bonds), environments(other_numbers, other_bonds)
    if Counter(env_a) != Counter(env_b):
        return np.zeros((0, n), dtype=np.int64)
    adj_a = np.zeros((n, n), bool)
    adj_b = np.zeros((n, n), bool)
    for adj, b in ((adj_a, bonds), (adj_b, other_bonds)):
        b = np.asarray(b, dtype=int).reshape(-1, 2)
        adj[b[:, 0], b[:, 1]] = adj[b[:, 1], b[:, 0]] = True
    candidates = [[c for c in range(n) if env_b[c] == env_a[k]] for k in range(n)]
    # visit atoms connected to those already placed first, rarest environments first: strong pruning
    visit, placed = [], set()
    while len(visit) < n:
        rest = [k for k in range(n) if k not in placed]
        linked = [k for k in rest if adj_a[k, list(placed)].any()] if placed else []
        k = min(linked or rest, key=lambda a: (len(candidates[a]), a))
        visit.append(k)
        placed.add(k)
    found, order, used = [], np.full(n, -1), np.zeros(n, bool)

    def extend(depth):
        if len(found) >= limit:
            return
        if depth == n:
            found.append(order.copy())
            return
        k = visit[depth]
        before = visit[:depth]
        for c in candidates[k]:
            if used[c] or any(adj_a[k, m] != adj_b[c, order[m]] for m in before):
                continue
            order[k], used[c] = c, True
            extend(depth + 1)
            order[k], used[c] = -1, False

    extend(0)
    if len(found) >= limit:
        raise ModelDomainError(f"more than {limit} like-atom maps of {formula(numbers)}: too symmetric a "
                               "bond graph for nxplugin's atom mapping")
    return np.array(sorted(map(tuple, found)), dtype=np.int64).reshape(-1, n)


def describe_difference(numbers, bonds, other_numbers, other_bonds, other_positions=None):
    """Message naming how a second molecule differs from the model's (species, bonds, isomer)."""
    def brutto(z):
        counts = Counter(SYMBOLS[int(a)] for a in z)
        return "".join(f"{s}{counts[s] if counts[s] > 1 else ''}" for s in sorted(counts))
    if sorted(numbers) != sorted(other_numbers):
        return (f"not the model's molecule: the model is for {brutto(numbers)} ({len(numbers)} atoms), "
                f"got {brutto(other_numbers)} ({len(other_numbers)} atoms)")
    env_a, env_b = Counter(environments(numbers, bonds)), Counter(environments(other_numbers, other_bonds))
    extra, lacking = env_b - env_a, env_a - env_b
    parts = []
    bond_types = lambda z, b: Counter("-".join(sorted((SYMBOLS[int(z[i])], SYMBOLS[int(z[j])]))) for i, j in b)
    ta, tb = bond_types(numbers, bonds), bond_types(other_numbers, other_bonds)
    for kind in sorted(set(ta) | set(tb)):
        if ta[kind] != tb[kind]:
            parts.append(f"{tb[kind]} {kind} bonds where the model has {ta[kind]}")
    envs = environments(other_numbers, other_bonds)
    where = [f"{e} (atom {k})" for k, e in enumerate(envs) if e in extra]
    detail = f"; atoms bonded as {', '.join(where[:6])} instead of {', '.join(sorted(lacking))}" if where else ""
    what = ", ".join(parts) if parts else "the same bond types, connected differently (another isomer)"
    return (f"not the model's molecule: same atoms ({brutto(numbers)}) but other bonds: {what}{detail}. "
            f"Bonds are distances below {BOND_FACTOR} x the sum of covalent radii; start from an "
            "unbroken geometry of the model's molecule")


def stereo_centres(numbers, bonds, reference, *, min_volume=MIN_STEREO_VOLUME):
    """Centres and their first three neighbours whose handedness labels a labelling class.

    Returns
    -------
    centres : ndarray of int of shape (m,)
    triples : ndarray of int of shape (m, 3)
    """
    reference = np.asarray(reference, dtype=float)
    centres, triples = [], []
    for c, nb in enumerate(_neighbours(len(numbers), bonds)):
        if len(nb) < 3:
            continue
        u = reference[nb[:3]] - reference[c]
        u /= np.linalg.norm(u, axis=1)[:, None]
        if abs(np.dot(u[0], np.cross(u[1], u[2]))) > min_volume:
            centres.append(c)
            triples.append(nb[:3])
    return np.array(centres, dtype=np.int64), np.array(triples, dtype=np.int64).reshape(-1, 3)


def handedness(positions, centres, triples):
    """Signs (+1/-1) of the centres' triple products, shape (..., m), for positions (..., n, 3)."""
    x = np.asarray(positions, dtype=float)
    return np.sign(np.linalg.det(x[..., triples, :] - x[..., centres, None, :]))


def same_class(signs, reference_signs):
    """True where signs (..., m) all agree with the reference's, or all are opposite (a mirror image)."""
    signs = np.asarray(signs)
    return np.all(signs == reference_signs, axis=-1) | np.all(signs == -reference_signs, axis=-1)


def pair_permutation(atom_permutation):
    """Pair permutation of the descriptor (``numpy.triu_indices`` order) for ``positions[atom_permutation]``."""
    a = np.asarray(atom_permutation)
    i, j = pair_indices(len(a))
    index = np.full((len(a), len(a)), -1)
    index[i, j] = index[j, i] = np.arange(len(i))
    return index[a[i], a[j]]


def atom_permutation(pair_perm, n_atoms):
    """Inverse of :func:`pair_permutation`: the atom permutation a pair permutation comes from."""
    pair_perm = np.asarray(pair_perm)
    i, j = pair_indices(n_atoms)
    ii, jj = i[pair_perm], j[pair_perm]
    out = np.empty(n_atoms, dtype=np.int64)
    for k in range(n_atoms):
        mine = (i == k) | (j == k)                               # pairs of atom k map to pairs of out[k]
        common = set(ii[mine]) | set(jj[mine])
        for other in np.flatnonzero(mine):
            common &= {ii[other], jj[other]}
        if len(common) != 1:
            raise ValueError("not the pair permutation of an atom permutation")
        out[k] = common.pop()
    if not np.array_equal(pair_permutation(out), pair_perm):
        raise ValueError("not the pair permutation of an atom permutation")
    return out


def _overlay_rmsd(x, reference, masses):
    """Mass-weighted RMSD (Angstrom) after the best rotation or reflection onto the reference."""
    w = masses / masses.sum()
    a = x - w @ x
    b = reference - w @ reference
    s = np.linalg.svd((a * w[:, None]).T @ b, compute_uv=False)
    return float(np.sqrt(max(np.sum(w[:, None] * (a * a + b * b)) - 2 * s.sum(), 0.0)))
