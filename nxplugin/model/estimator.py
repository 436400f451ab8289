"""Rotate-predict-rotate kernel ridge regression (KREG) for energy, forces, dipole and polarizability.

Units: positions Angstrom, energies eV, forces eV/Angstrom, dipoles e*Angstrom, polarizabilities
Angstrom**3, masses amu.

The model learns, from the inverse-distance descriptor (:mod:`nxplugin.model.descriptors`) and one Gaussian
kernel per output group (:mod:`nxplugin.model.kernels`):

- the energy, whose analytic gradient gives the forces;
- the dipole's components in the molecular frame of :mod:`nxplugin.model.molframe` (rotate), predicted there
  (predict) and rotated back to the laboratory frame (rotate), so the dipole is exactly covariant;
- the six components of the frame-resolved polarizability, rotated back as ``R @ alpha @ R.T``.

With ``frame="lab"`` the same code learns laboratory-frame components directly (the "direct" model
that RPR is compared against; it is not covariant).
"""
import numpy as np

from nxplugin.errors import GeometryError, NotFittedError
from nxplugin.model import descriptors, kernels, molframe
from nxplugin.model.kernelsums import KernelSums, resolve_backend

FRAMES = ("eckart", "inertia", "lab")
GROUPS = {"energy": slice(0, 1), "dipole": slice(1, 4), "polarizability": slice(4, 10)}
MIN_DISTANCE = 0.5  # Angstrom; closer atoms are rejected as overlapping
# search grids: widths relative to the median descriptor distance, and ridge strengths
SIGMA_FACTORS = np.geomspace(0.1, 10.0, 15)
LAMBDAS = np.geomspace(1e-10, 1e-2, 17)
REFINE_FACTORS = (1.0, 0.7, 0.5, 0.35, 0.25)
FORCE_SIGMA_FACTORS = (2.0, 1.4, 1.0, 0.7, 0.5)   # fits to forces too: widths around the energy LOO width
FORCE_WEIGHTS = np.geomspace(1e-2, 1e2, 5)        # Angstrom**2, in standardised units
MAX_FORCE_FIT = 2000   # frames; the gradient design holds n * 3 * n_atoms * n_centres numbers (1.5 GB for DCE)


class RPRModel:
    """Kernel ridge regression with rotate-predict-rotate tensor outputs.

    Parameters
    ----------
    frame : {"eckart", "inertia", "lab"}, default="eckart"
        Molecular frame for the dipole and polarizability (see :mod:`nxplugin.model.molframe`); ``"lab"``
        gives the direct, non-covariant model.
    sigma : float or dict of str to float, optional
        Kernel width (dimensionless descriptor units), one for all outputs or per group
        (``"energy"``, ``"dipole"``, ``"polarizability"``). Searched when not given.
    lam : float or dict of str to float, optional
        Ridge regularisation, like ``sigma``. Searched when not given.
    n_search : int, default=1500
        Training points used by the leave-one-out search (a random subset of that size).
    random_state : int, default=0
        Seed of the search subset.
    charges : bool, default=True
        Learn the dipole on top of a fixed-point-charge baseline ``sum_i q_i (x_i - c)`` whose
        charges (e) are fitted to the training dipoles by least squares with zero total charge. The
        baseline is exactly covariant and carries most of the dipole derivatives (IR intensities);
        the kernel model learns the smaller remainder in the molecular frame.
    symmetrize : bool, default=True
        Average every output over the relabellings of like atoms that keep the bonds and the labelling
        class (:mod:`nxplugin.model.symmetry`; for trans-DCE these are its 4 point-group symmetries):
        the energy kernel, and the dipole and polarizability predicted for each relabelled copy of the
        geometry, each in its own frame. The model is then exactly invariant to them, so the atom
        mapping of :mod:`nxplugin.model.atommap` may pick any of them, and near-degenerate normal
        modes of different symmetry (the C-H stretches of trans-DCE, 3 cm^-1 apart) cannot mix.
    kernel : {"auto", "numpy", "compiled"}, default="auto"
        Who evaluates the kernel sums at prediction (:mod:`nxplugin.model.kernelsums`): the compiled
        ones (numba) when installed, or numpy; the two agree to round-off. Not stored in model files.
    blas_threads : int or None, default=1
        BLAS threads for prediction's small matrix products; None leaves the environment's setting
        (more threads only slow these products down, and on a busy node by 100x).
    force_weight : float, optional
        Weight (Angstrom**2, standardised units) of the force residuals against the energy residuals
        when ``fit`` is given forces (:mod:`nxplugin.model.forcefit`). Searched with the energy width and
        ridge on held-out geometries (a tenth, at least 10) when not given.
    force_centres : int, default=1
        When ``fit`` is given forces: displaced copies (0.05 Angstrom) of each training geometry added
        as energy kernel centres (their dipole and polarizability coefficients are zero; the
        ``ood_score`` counts them as training points). More centres follow the forces more closely
        and cost proportionally more at prediction.

    Attributes
    ----------
    numbers_ : ndarray of int of shape (n_atoms,)
        Atomic numbers, in the model's atom order.
    masses_ : ndarray of shape (n_atoms,), amu
    reference_ : ndarray of shape (n_atoms, 3), Angstrom
        Equilibrium geometry, centred at its centre of mass (descriptor and frame reference).
    reference_distances_ : ndarray of shape (n_pairs,), Angstrom
    pair_permutations_ : ndarray of int of shape (n_images, n_pairs)
        Relabellings (class-preserving automorphisms) every output averages over (row 0: identity).
    charges_ : ndarray of shape (n_atoms,), e
        Point charges of the dipole baseline (zeros without ``charges``).
    train_descriptors_ : ndarray of shape (n_centres, n_pairs)
        Kernel centres, descriptors minus 1: the training geometries' and, after a fit to forces,
        ``hyperparameters_["energy"]["extra_centres"]`` displaced copies after them.
    coef_ : ndarray of shape (n_centres, n_columns)
        Dual coefficients (energy, 3 dipole and 6 polarizability columns, in standardised units).
    offset_ : ndarray of shape (n_columns,)
        Column means added back to the predictions.
    outputs_ : tuple of str
        Output groups learned (``"energy"``, ``"dipole"``, optionally ``"polarizability"``).
    hyperparameters_ : dict
        Per group: the ``sigma`` and ``lam`` used, and search diagnostics.
    ood_scale_ : float
        Descriptor distance that an ``ood_score`` of 1 stands for.
    """

    def __init__(self, *, frame="eckart", charges=True, symmetrize=True, sigma=None, lam=None, n_search=1500,
                 random_state=0, kernel="auto", blas_threads=1, force_weight=None, force_centres=1):
        self.frame = frame
        self.charges = charges
        self.symmetrize = symmetrize
        self.sigma = sigma
        self.lam = lam
        self.n_search = n_search
        self.random_state = random_state
        self.kernel = kernel
        self.blas_threads = blas_threads
        self.force_weight = force_weight
        self.force_centres = force_centres

    # ------------------------------------------------------------------ fitting
    def fit(self, numbers, positions, *, energies=None, dipoles=None, polarizabilities=None, forces=None,
            masses=None, reference=None, progress=None):
        """Fit to geometries and their labels.

        Parameters
        ----------
        numbers : array-like of shape (n_atoms,)
            Atomic numbers, in the order every geometry uses.
        positions : array-like of shape (n, n_atoms, 3), Angstrom
        energies : array-like of shape (n,), eV
        dipoles : array-like of shape (n, 3), e*Angstrom, laboratory frame
        polarizabilities : array-like of shape (n, 3, 3), Angstrom**3, laboratory frame, optional
        forces : array-like of shape (n, n_atoms, 3), eV/Angstrom, optional
            When given, the energy coefficients are fitted to energies and forces together
            (:mod:`nxplugin.model.forcefit`; at most ``MAX_FORCE_FIT`` frames); the model and its
            prediction are the same kind either way.
        masses : array-like of shape (n_atoms,), amu, default: ASE's standard atomic masses
        reference : array-like of shape (n_atoms, 3), Angstrom, optional
            Equilibrium geometry for the descriptor and the frame; default: the lowest-energy geometry.
        progress : callable or None
            Called after each step of the hyperparameter search.

        Returns
        -------
        self
        """
        if self.frame not in FRAMES:
            raise ValueError(f"frame={self.frame!r} is not one of {FRAMES}")
        numbers = np.asarray(numbers, dtype=int)
        positions = np.asarray(positions, dtype=float)
        if positions.ndim != 3 or positions.shape[1:] != (len(numbers), 3):
            raise ValueError(f"positions must have shape (n, {len(numbers)}, 3), got {positions.shape}")
        if energies is None or dipoles is None:
            raise ValueError("fit needs energies (eV) and dipoles (e*Angstrom) for every geometry")
        n = len(positions)
        labels = {"energy": np.asarray(energies, float).reshape(n, 1),
                  "dipole": np.asarray(dipoles, float).reshape(n, 3)}
        if polarizabilities is not None:
            labels["polarizability"] = np.asarray(polarizabilities, float).reshape(n, 3, 3)
        check = dict(labels)
        if forces is not None:
            if n > MAX_FORCE_FIT:
                raise ValueError(f"fitting to forces takes at most {MAX_FORCE_FIT} frames (got {n}): fit "
                                 "without forces, or on a subset")
            check["forces"] = forces = np.asarray(forces, float).reshape(positions.shape)
        for name, value in check.items():
            bad = np.flatnonzero(~np.isfinite(value.reshape(n, -1)).all(axis=1))
            if len(bad):
                raise ValueError(f"{name} is not finite for geometries {bad[:10].tolist()}")
        if masses is None:
            from ase.data import atomic_masses
            masses = atomic_masses[numbers]
        self.numbers_ = numbers
        self.masses_ = np.asarray(masses, dtype=float)
        if reference is None:
            reference = positions[np.argmin(labels["energy"][:, 0])]
        self.check_geometry(numbers, positions)
        self.reference_ = molframe.reference_coordinates(reference, self.masses_)
        self.reference_distances_ = descriptors.pair_distances(self.reference_)
        self.pair_permutations_ = _averaging_group(numbers, self.reference_) if self.symmetrize \
            else np.arange(len(self.reference_distances_))[None]
        self.reference_distances_ = _orbit_mean(self.reference_distances_, self.pair_permutations_)

        # features r_eq/r - 1: the same kernel, but squared distances lose less to cancellation
        x = descriptors.inverse_distances(positions, self.reference_distances_) - 1.0
        rot = self._frames(positions)
        self.charges_ = _fit_charges(positions, labels["dipole"], self.masses_) if self.charges \
            else np.zeros(len(numbers))
        residual = labels["dipole"] - self._charge_dipole(positions)
        columns = [labels["energy"], molframe.vector_to_frame(residual, rot)]
        if "polarizability" in labels:
            columns.append(molframe.symmetric_to_six(molframe.tensor_to_frame(labels["polarizability"], rot)))
        y = np.hstack(columns)
        self.outputs_ = [g for g in GROUPS if g in labels]
        self.offset_ = y.mean(axis=0)
        scale = np.ones(y.shape[1])
        for g in self.outputs_:
            scale[GROUPS[g]] = max(np.std(y[:, GROUPS[g]] - self.offset_[GROUPS[g]]), 1e-12)
        ys = (y - self.offset_) / scale

        self.__dict__.pop("_evaluator", None)       # derived arrays of an earlier fit
        self.hyperparameters_ = self._choose(x, ys, progress)
        d2 = kernels.invariant_squared_distances(x, x, self.pair_permutations_)
        coef = np.empty_like(y)
        for g, h in self.hyperparameters_.items():
            if g == "energy" and forces is not None:
                continue                                          # fitted below
            k = kernels.gaussian(d2, h["sigma"]).mean(axis=1) if g == "energy" else kernels.gaussian(d2[:, 0], h["sigma"])
            coef[:, GROUPS[g]] = kernels.solve(0.5 * (k + k.T), ys[:, GROUPS[g]], h["lam"]) * scale[GROUPS[g]]
        self.train_descriptors_ = x
        if forces is not None:
            energy, self.train_descriptors_ = self._fit_with_forces(positions, x, ys[:, 0], forces / scale[0])
            coef = np.vstack([coef, np.zeros((len(energy) - n, coef.shape[1]))])
            coef[:, 0] = energy * scale[0]
        self.coef_ = coef
        d2 = d2[:, 0]
        np.fill_diagonal(d2, np.inf)
        self.ood_scale_ = float(np.sqrt(d2.min(axis=1).max()))
        return self

    def _choose(self, x, ys, progress):
        fixed = {g: (_per_group(self.sigma, g), _per_group(self.lam, g)) for g in self.outputs_}
        chosen = {}
        todo = [g for g, (s, l) in fixed.items() if s is None or l is None]
        if todo:
            rng = np.random.default_rng(self.random_state)
            pick = rng.permutation(len(x))[: self.n_search]
            xs = x[pick]
            typical = np.sqrt(np.median(kernels.squared_distances(xs[:300], xs[:300])))
            d2 = kernels.invariant_squared_distances(xs, xs, self.pair_permutations_)
            best = kernels.search(d2, ys[pick], {g: (list(range(10))[GROUPS[g]], g == "energy") for g in todo},
                                  typical * SIGMA_FACTORS, LAMBDAS, progress)
            for g in todo:
                s, l, rmse = best[g]
                s = fixed[g][0] if fixed[g][0] is not None else s
                l = fixed[g][1] if fixed[g][1] is not None else l
                chosen[g] = {"sigma": s, "lam": l, "loo_rmse_standardised": rmse,
                             "n_search": int(len(xs))}
            if "energy" in todo and fixed["energy"][0] is None and len(x) > len(xs):
                chosen["energy"].update(kernels.refine_width(x, ys[:, 0], self.pair_permutations_, chosen["energy"],
                                                             REFINE_FACTORS, rng))
        for g in self.outputs_:
            if g not in chosen:
                chosen[g] = {"sigma": float(fixed[g][0]), "lam": float(fixed[g][1])}
        return chosen

    def _fit_with_forces(self, positions, x, y, f):
        """Energy coefficients (standardised) fitted to energies and forces, and their centres;
        updates the energy hyperparameters with what was used."""
        from nxplugin.model import forcefit
        h = self.hyperparameters_["energy"]
        sigma, lam = _per_group(self.sigma, "energy"), _per_group(self.lam, "energy")
        coef, centres, used = forcefit.fit(
            positions, x, y, f, self.pair_permutations_, self.reference_distances_,
            sigmas=[sigma] if sigma is not None else h["sigma"] * np.array(FORCE_SIGMA_FACTORS),
            rhos=[self.force_weight] if self.force_weight is not None else FORCE_WEIGHTS,
            lams=[lam] if lam is not None else LAMBDAS, copies=int(self.force_centres),
            rng=np.random.default_rng(self.random_state + 1))
        h.update(used)
        return coef, centres

    # --------------------------------------------------------------- prediction
    def _frames(self, positions):
        if self.frame == "lab":
            return np.broadcast_to(np.eye(3), positions.shape[:-2] + (3, 3))
        return molframe.compute_frames(positions, self.masses_, self.reference_, self.frame)[0]

    def _charge_dipole(self, positions):
        """Point-charge dipole ``sum_i q_i (x_i - c)``, e*Angstrom, shape (n, 3)."""
        return np.einsum("i,nij->nj", self.charges_, molframe.centered(positions, self.masses_))

    def check_geometry(self, numbers, positions):
        """Raise :class:`GeometryError` naming the atoms if the geometries cannot be used.

        Parameters
        ----------
        numbers : array-like of shape (n_atoms,)
        positions : array-like of shape (n_atoms, 3) or (n, n_atoms, 3), Angstrom
        """
        numbers = np.asarray(numbers)
        if numbers.shape != self.numbers_.shape or np.any(numbers != self.numbers_):
            from nxplugin.model.elements import describe_mismatch
            raise GeometryError(describe_mismatch(self.numbers_, numbers))
        pos = np.asarray(positions, dtype=float).reshape(-1, len(numbers), 3)
        bad = ~np.isfinite(pos).all(axis=2)
        if bad.any():
            geometry, atom = np.argwhere(bad)[0]
            raise GeometryError(f"non-finite coordinates (NaN or inf) for atoms "
                                f"{np.flatnonzero(bad[geometry]).tolist()} of geometry {geometry}")
        r = descriptors.pair_distances(pos)
        if r.min() < MIN_DISTANCE:
            geometry, pair = np.unravel_index(np.argmin(r), r.shape)
            i, j = descriptors.pair_indices(len(numbers))
            raise GeometryError(f"atoms {i[pair]} and {j[pair]} of geometry {geometry} are "
                                f"{r[geometry, pair]:.3f} Angstrom apart (< {MIN_DISTANCE}): overlapping atoms")

    def predict(self, positions, *, forces=True, numbers=None):
        """Predict for one geometry or a batch.

        Parameters
        ----------
        positions : array-like of shape (n_atoms, 3) or (n, n_atoms, 3), Angstrom
            Atoms in the model's order (:attr:`numbers`) when ``numbers`` is None; not validated then
            (see :meth:`check_geometry`), so that the MD hot path stays cheap.
        forces : bool, default=True
            Also return forces.
        numbers : array-like of shape (n_atoms,), optional
            Atomic numbers of an input in its own atom order: it is validated and mapped onto the
            model's labelling (:func:`nxplugin.model.atommap.predict_mapped`), and forces come back in
            the input's order. Raises :class:`nxplugin.errors.ModelDomainError` for another molecule.

        Returns
        -------
        dict
            ``energy`` (n,) eV, ``forces`` (n, n_atoms, 3) eV/Angstrom, ``dipole`` (n, 3)
            e*Angstrom, ``polarizability`` (n, 3, 3) Angstrom**3 when trained with it, and
            ``ood_score`` (n,): distance to the nearest training descriptor over the largest such
            distance within the training set (above 1 means beyond the training data).
            Leading dimension dropped for a single geometry.
        """
        if not hasattr(self, "coef_"):
            raise NotFittedError("this RPRModel is not fitted yet: call fit() or nxplugin.load_model() first")
        if numbers is not None:
            from nxplugin.model.atommap import predict_mapped
            return predict_mapped(self, numbers, positions, forces=forces)
        pos = np.asarray(positions, dtype=float)
        single = pos.ndim == 2
        if single and self.frame != "inertia" and self._kernel_sums.backend == "compiled":
            from nxplugin.model.compiled import predict_one       # the MD hot path: three compiled calls
            return predict_one(self, np.ascontiguousarray(pos), self._kernel_sums, forces)
        pos = pos.reshape(-1, len(self.numbers_), 3)
        descriptor = descriptors.inverse_distances(pos, self._symmetric("reference_distances_"))
        x = descriptor - 1.0
        perms = self.pair_permutations_
        n, n_img = len(pos), len(perms)
        images = x[:, perms]                                          # (n, n_sym, n_features)
        # every image on its own: the tensor outputs are averaged over the images too (see symmetrize)
        wsum, wt, values, d2min = self._kernel_sums(images.reshape(n * n_img, 1, -1), forces)
        wsum, wt = wsum.reshape(n, n_img), wt.reshape(images.shape)
        values = values.reshape(n, n_img, -1) + self.offset_[1:]
        d2min = d2min.reshape(n, n_img).min(axis=1)
        sigma = self.hyperparameters_["energy"]["sigma"]
        energy = wsum.sum(axis=1) / n_img + self.offset_[0]
        if forces:
            # d/dx of mean_s k(x[perm_s], t): per image, then scattered back through its permutation
            g_images = wt - wsum[..., None] * images
            grad_x = np.zeros_like(x)
            for s, perm in enumerate(perms):
                grad_x[:, perm] += g_images[:, s]
            grad_x /= sigma**2 * len(perms)
        out = {"energy": energy}
        if forces:
            out["forces"] = -descriptors.descriptor_gradient(pos, descriptor, grad_x)
        # the relabelled copies pos[:, a] of the images, each in its own frame
        rot = self._frames(pos[:, self._atom_permutations].reshape(n * n_img, -1, 3))
        values = values.reshape(n * n_img, -1)
        out["dipole"] = molframe.vector_from_frame(values[:, 0:3], rot).reshape(n, n_img, 3).mean(axis=1) \
            + np.einsum("i,nij->nj", self._symmetric("charges_"), molframe.centered(pos, self.masses_))
        if "polarizability" in self.outputs_:
            out["polarizability"] = molframe.tensor_from_frame(molframe.six_to_symmetric(values[:, 3:9]),
                                                               rot).reshape(n, n_img, 3, 3).mean(axis=1)
        out["ood_score"] = np.sqrt(d2min) / self.ood_scale_
        if single:
            out = {key: value[0] for key, value in out.items()}
        return out

    @property
    def _kernel_sums(self):
        """The :class:`KernelSums` of the fitted arrays, built at first use (and again after a refit,
        or when ``kernel`` or ``blas_threads`` changed)."""
        key = (self.kernel, self.blas_threads, id(self.coef_))
        cached = self.__dict__.get("_evaluator")
        if cached is None or cached[0] != key:
            groups = [(g, GROUPS[g], self.hyperparameters_[g]["sigma"]) for g in self.outputs_[1:]]
            sums = KernelSums(self.train_descriptors_, self.coef_[:, :GROUPS[self.outputs_[-1]].stop],
                              [(g, slice(cols.start, cols.stop), sigma) for g, cols, sigma in groups],
                              self.hyperparameters_["energy"]["sigma"], kernel=self.kernel,
                              blas_threads=self.blas_threads)
            cached = self.__dict__["_evaluator"] = (key, sums)
        return cached[1]

    def __getstate__(self):
        # sent to joblib/Dask workers without the derived arrays, which each process rebuilds
        # (with kernel="auto", a worker takes the compiled sums where it has numba)
        state = dict(self.__dict__)
        state.pop("_evaluator", None)
        return state

    def _derived(self, name, make):
        """Symmetry arrays derived from the fitted ones once (made again after a refit)."""
        key = (id(self.numbers_), id(self.reference_), id(self.pair_permutations_), id(self.charges_))
        cached = self.__dict__.get("_symmetry_cache")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_symmetry_cache"] = (key, {})
        if name not in cached[1]:
            cached[1][name] = make()
        return cached[1][name]

    def _symmetric(self, name):
        """``reference_distances_`` or ``charges_`` averaged over the symmetry images (bitwise invariant)."""
        if name == "charges_":
            return self._derived(name, lambda: _orbit_mean(self.charges_, self._atom_permutations))
        return self._derived(name, lambda: _orbit_mean(self.reference_distances_, self.pair_permutations_))

    @property
    def _atom_permutations(self):
        """Atom permutations of the symmetry images: image ``s`` is the descriptor of ``pos[a_s]``."""
        from nxplugin.model.symmetry import atom_permutation
        return self._derived("atom_perms", lambda: np.array(
            [atom_permutation(p, len(self.numbers_)) for p in self.pair_permutations_]))

    @property
    def atom_mapper(self):
        """The :class:`nxplugin.model.atommap.AtomMapper` of this model (built once, then cached)."""
        def make():
            from nxplugin.model.atommap import AtomMapper
            return AtomMapper(self.numbers_, self.reference_, self.masses_, bonds=getattr(self, "bonds_", None),
                              averaging=self._atom_permutations)
        return self._derived("atom_mapper", make)

    @property
    def kernel_backend(self):
        """``"compiled"`` or ``"numpy"``: what evaluates the kernel sums in this process (``kernel``)."""
        if hasattr(self, "coef_"):
            return self._kernel_sums.backend
        return resolve_backend(self.kernel)

    @property
    def _pairs(self):
        """Atom index arrays ``(i, j)`` of the descriptor's pairs."""
        return descriptors.pair_indices(len(self.numbers_))

    @property
    def numbers(self):
        """Atomic numbers in the model's atom order, shape (n_atoms,)."""
        return self.numbers_

    @property
    def masses(self):
        """Atomic masses used for the frame, amu, shape (n_atoms,)."""
        return self.masses_

    @property
    def n_train(self):
        """Training geometries: the kernel centres without the displaced copies of a fit to forces."""
        return len(self.train_descriptors_) - self.hyperparameters_["energy"].get("extra_centres", 0)

    @property
    def has_polarizability(self):
        return "polarizability" in getattr(self, "outputs_", ())


def _fit_charges(positions, dipoles, masses):
    """Least-squares atomic charges (e) reproducing dipoles (e*Angstrom) with zero total charge."""
    x = molframe.centered(positions, masses)                      # (n, n_atoms, 3)
    n_atoms = x.shape[1]
    # q = Z t with the columns of Z spanning the zero-sum subspace
    basis = np.vstack([np.eye(n_atoms - 1), -np.ones((1, n_atoms - 1))])
    design = np.einsum("nij,ik->njk", x, basis).reshape(-1, n_atoms - 1)
    t = np.linalg.lstsq(design, dipoles.reshape(-1), rcond=None)[0]
    return basis @ t


def _averaging_group(numbers, reference):
    """Pair permutations of the class-preserving bond-graph automorphisms (:mod:`nxplugin.model.symmetry`)."""
    from nxplugin.model.atommap import AtomMapper
    from nxplugin.model.symmetry import pair_permutation
    autos = AtomMapper(numbers, reference, np.ones(len(numbers))).class_preserving
    return np.array([pair_permutation(a) for a in autos])


def _orbit_mean(values, permutations):
    """``mean_s values[perm_s]``, summed in sorted order so it is bitwise invariant under the group."""
    return np.sort(values[np.asarray(permutations)], axis=0).mean(axis=0)


def _per_group(value, group):
    if isinstance(value, dict):
        value = value.get(group)
    return None if value is None else float(value)
