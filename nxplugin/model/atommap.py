"""Any input atom numbering onto a model's own: :class:`AtomMapper` and :func:`predict_mapped`.

Units: positions Angstrom; results as :meth:`nxplugin.model.estimator.RPRModel.predict` gives them.

The map of an input is an isomorphism of its bond graph onto the model's that puts it in the model's
labelling class (:mod:`nxplugin.model.symmetry`). The isomorphisms within that class differ by the
class-preserving automorphisms, over which the model averages every output, so the choice among them
changes nothing beyond round-off. Still, one is chosen by the geometry alone, never by the input's
numbering (so that ``nxplugin train`` sees the same frames whatever their numbering): the one that
best overlays the reference (Eckart fit, reflections allowed), overlays within :data:`TIE_RMSD` of the
best (the symmetry-equivalent ones) counting as ties, broken by the lexicographic order of the
mapped coordinates.

The map is found once per atom order and then checked cheaply on each new geometry: every model bond
is shorter than the midpoint between its reference length and the reference's shortest distance to
an unbonded atom of the same elements (a relabelled input fails this), and the handedness signs give
the same class. A failed check finds the map again, which raises :class:`ModelDomainError` if the
bonds no longer match the model's molecule.
"""
import numpy as np

from nxplugin.errors import ModelDomainError
from nxplugin.model import symmetry
from nxplugin.model.descriptors import pair_distances, pair_indices

TIE_RMSD = 1e-6   # Angstrom: overlays of the reference closer than this count as equally good


class AtomMapper:
    """Maps geometries in any atom numbering onto a model's labelling (cached per atom order).

    Parameters
    ----------
    numbers : array-like of shape (n_atoms,)
        The model's atomic numbers, in its order.
    reference : array-like of shape (n_atoms, 3), Angstrom
        The model's reference geometry.
    masses : array-like of shape (n_atoms,), amu
    bonds : array-like of int of shape (n_bonds, 2), optional
        The model's bond graph; default: :func:`nxplugin.model.symmetry.bond_graph` of ``reference``.
    averaging : array-like of int of shape (n_sym, n_atoms), optional
        Atom permutations the model averages its outputs over (identity only by default).
    """

    def __init__(self, numbers, reference, masses, *, bonds=None, averaging=None):
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.reference = np.asarray(reference, dtype=float)
        self.masses = np.asarray(masses, dtype=float)
        self.bonds = symmetry.bond_graph(self.numbers, self.reference) if bonds is None \
            else np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
        self.automorphisms = symmetry.isomorphisms(self.numbers, self.bonds, self.numbers, self.bonds)
        self.centres, self.triples = symmetry.stereo_centres(self.numbers, self.bonds, self.reference)
        self.reference_signs = symmetry.handedness(self.reference, self.centres, self.triples)
        keep = symmetry.same_class(symmetry.handedness(self.reference[self.automorphisms], self.centres,
                                                       self.triples), self.reference_signs)
        self.class_preserving = self.automorphisms[keep]
        n = len(self.numbers)
        self.averaging = np.arange(n)[None] if averaging is None else np.asarray(averaging, dtype=np.int64)
        self._bond_limits_sq = self._bond_limits() ** 2
        self._key = None
        self._order = None

    def _bond_limits(self):
        r = np.zeros((len(self.numbers),) * 2)
        i, j = pair_indices(len(self.numbers))
        r[i, j] = r[j, i] = pair_distances(self.reference)
        bonded = np.zeros(r.shape, bool)
        bonded[self.bonds[:, 0], self.bonds[:, 1]] = bonded[self.bonds[:, 1], self.bonds[:, 0]] = True
        limits = []
        for a, b in self.bonds:
            rivals = [r[a, k] for k in range(len(r)) if self.numbers[k] == self.numbers[b] and not bonded[a, k] and k != a]
            rivals += [r[b, k] for k in range(len(r)) if self.numbers[k] == self.numbers[a] and not bonded[b, k] and k != b]
            limits.append(0.5 * (r[a, b] + min(rivals)) if rivals else np.inf)
        return np.array(limits)

    def order(self, numbers, positions):
        """Input indices of the model's atoms: ``positions[order]`` is in the model's labelling.

        Parameters
        ----------
        numbers : array-like of shape (n_atoms,)
        positions : ndarray of shape (n_atoms, 3), Angstrom

        Raises
        ------
        ModelDomainError
            The atoms are not the model's molecule (species, counts or bonds differ).
        """
        key = np.asarray(numbers, dtype=np.int64).tobytes()
        if key == self._key and self._still_valid(positions[self._order]):
            return self._order
        order = self.find(numbers, positions)
        self._key, self._order = key, order
        return order

    def _still_valid(self, x):
        # the cheap check on the MD hot path (a few microseconds): bonds in place, same class
        d = x[self.bonds[:, 0]] - x[self.bonds[:, 1]]
        if ((d * d).sum(axis=1) > self._bond_limits_sq).any():
            return False
        if not len(self.centres):
            return True
        signs = np.linalg.det(x[self.triples] - x[self.centres, None])
        return bool((signs * self.reference_signs > 0).all() or (signs * self.reference_signs < 0).all())

    def find(self, numbers, positions):
        """The map of one geometry, found from its bonds (uncached; see :meth:`order`)."""
        numbers = np.asarray(numbers, dtype=np.int64)
        positions = np.asarray(positions, dtype=float)
        if len(numbers) != len(self.numbers) or sorted(numbers) != sorted(self.numbers):
            raise ModelDomainError(symmetry.describe_difference(self.numbers, self.bonds, numbers, []))
        if not np.isfinite(positions).all():
            raise ModelDomainError(f"non-finite coordinates (NaN or inf) for atoms "
                                   f"{np.flatnonzero(~np.isfinite(positions).all(axis=1)).tolist()}")
        bonds = symmetry.bond_graph(numbers, positions)
        maps = symmetry.isomorphisms(self.numbers, self.bonds, numbers, bonds)
        if not len(maps):
            raise ModelDomainError(symmetry.describe_difference(self.numbers, self.bonds, numbers, bonds))
        signs = symmetry.handedness(positions[maps], self.centres, self.triples)
        maps = maps[symmetry.same_class(signs, self.reference_signs)]
        if not len(maps):
            raise ModelDomainError("not the model's molecule: same atoms and bonds but another stereoisomer "
                                   "(the handedness of its stereo centres matches no labelling of the model's)")
        return self._choose(positions, maps)

    def canonical(self, positions, order):
        """The map :meth:`find` would choose, from any map in the right class (4 overlays for DCE)."""
        return self._choose(positions, order[self.class_preserving])

    def _choose(self, positions, maps):
        if len(maps) == 1:
            return maps[0]
        # best overlay; overlays within TIE_RMSD of the best (symmetry-equivalent ones) are ties, broken by
        # the mapped coordinates themselves: the same set of candidates whatever the input's numbering
        rmsd = np.array([symmetry._overlay_rmsd(positions[m], self.reference, self.masses) for m in maps])
        tied = maps[rmsd <= rmsd.min() + TIE_RMSD]
        return min(tied, key=lambda m: tuple(positions[m].ravel()))

    def orders(self, numbers, positions):
        """Maps of a batch, shape (n, n_atoms), for positions (n, n_atoms, 3) in one numbering."""
        return np.array([self.order(numbers, x) for x in np.asarray(positions, dtype=float)], dtype=np.int64)


def predict_mapped(model, numbers, positions, *, forces=True):
    """``model.predict`` for atoms in any numbering; per-atom results come back in the input's order.

    Parameters
    ----------
    model : RPRModel
    numbers : array-like of shape (n_atoms,)
        Atomic numbers of the input, in its own order.
    positions : array-like of shape (n_atoms, 3) or (n, n_atoms, 3), Angstrom
    forces : bool, default=True

    Returns
    -------
    dict, as :meth:`RPRModel.predict`; ``forces`` (eV/Angstrom) in the input's atom order, energy,
    dipole (e*Angstrom), polarizability (Angstrom**3) and ``ood_score`` as for the mapped geometry.
    """
    pos = np.asarray(positions, dtype=float)
    single = pos.ndim == 2
    pos = pos[None] if single else pos
    mapper = model.atom_mapper
    orders = mapper.orders(numbers, pos)
    mapped = np.take_along_axis(pos, orders[:, :, None], axis=1)
    model.check_geometry(model.numbers_, mapped)
    out = model.predict(mapped, forces=forces)
    if forces:
        back = np.empty_like(out["forces"])
        np.put_along_axis(back, orders[:, :, None], out["forces"], axis=1)
        out["forces"] = back
    if single:
        out = {key: value[0] for key, value in out.items()}
    return out


def map_dataset(mapper, data):
    """A data set (:func:`nxplugin.reference.datasets.read_dataset` layout) in the mapper's labelling.

    Every frame gets the map :meth:`AtomMapper.find` chooses from its geometry alone, so a data set
    maps onto the same frames whatever its numbering and classes. Positions (Angstrom) and forces
    (eV/Angstrom) are reordered frame by frame; energies, dipoles and
    polarizabilities do not depend on the numbering and are kept. Raises :class:`ModelDomainError`
    naming the first frame that is not the mapper's molecule.
    """
    orders = []
    for k, x in enumerate(np.asarray(data["positions"], dtype=float)):
        try:
            orders.append(mapper.canonical(x, mapper.order(data["numbers"], x)))
        except ModelDomainError as err:
            raise ModelDomainError(f"frame {k}: {err}") from err
    orders = np.array(orders, dtype=np.int64).reshape(-1, len(mapper.numbers))
    out = dict(data, numbers=mapper.numbers.copy())
    for key in ("positions", "forces"):
        if out.get(key) is not None:
            out[key] = np.take_along_axis(np.asarray(out[key], dtype=float), orders[:, :, None], axis=1)
    return out
