"""Gaussian-process posterior variance of a fitted RPR energy model, in closed form.

Units: positions Angstrom, energies eV; the returned standard deviation is in eV.

Kernel ridge regression with kernel ``k`` and ridge ``lam`` has the same mean as a Gaussian process
with prior covariance ``a**2 k`` and noise variance ``a**2 lam``. The energy model uses the kernel
averaged over the symmetry images of :attr:`RPRModel.pair_permutations_`,
``k(x, t) = mean_s exp(-|x[perm_s] - t|**2 / (2 sigma**2))``, so its posterior variance at ``x`` is

    var(x) = a**2 [k(x, x) - k_x^T (K + lam I)^-1 k_x]

with ``K`` the (symmetrised) training kernel, ``k_x`` the kernel between ``x`` and the training
points, and the amplitude ``a**2 = y^T (K + lam I)^-1 y / n`` (maximum likelihood for fixed
``sigma``, ``lam``), where ``y`` are the training energies minus their mean. ``y`` is not stored in
model files, but ``(K + lam I) c = y`` recovers it from the dual coefficients ``c`` (eV), so
``a**2 = c^T (K + lam I) c / n``. A model fitted to forces too (:mod:`nxplugin.model.forcefit`) has
other coefficients and extra centres (displaced copies of the training geometries, not
observations): its posterior uses the training geometries only, and ``y`` its fitted energies there.

This variance is what the learner ranks candidates by: it is the model's own measure of how far a
geometry is from what the training set pins down, it needs no labels and no second model, and
because it is a covariance it also tells how much labelling one geometry lowers the uncertainty of
the others (:mod:`nxplugin.learn.selection`). The ``ood_score`` of the model is only the distance to
the nearest training point and ignores the kernel width, the ridge and every other training point.

The Cholesky factor of ``K + lam I`` (n**2 numbers) is derived lazily and kept in the model's
``__dict__`` under ``_posterior``, never in model files; it is made again after a refit.
"""
import numpy as np

from nxplugin.errors import NotFittedError
from nxplugin.model import descriptors, kernels


class Posterior:
    """The Cholesky factor and amplitude of a fitted model's energy posterior.

    Parameters
    ----------
    model : RPRModel
        A fitted model.

    Attributes
    ----------
    train : ndarray of shape (n_train, n_pairs)
        The training geometries' descriptors (minus 1) among the model's centres.
    factor : ndarray of shape (n_train, n_train)
        Lower Cholesky factor of ``K + lam I``.
    amplitude2 : float, eV**2
        ``a**2`` of the module docstring.
    """

    def __init__(self, model):
        from scipy import linalg
        if not hasattr(model, "coef_"):
            raise NotFittedError("this RPRModel is not fitted yet: call fit() or nxplugin.load_model() first")
        self.model = model
        h = model.hyperparameters_["energy"]
        self.sigma, self.lam = float(h["sigma"]), float(h["lam"])
        self.train = x = model.train_descriptors_[:model.n_train]
        k = self.kernel(x, x)
        k = 0.5 * (k + k.T)
        k.flat[:: len(k) + 1] += self.lam
        self.factor = linalg.cholesky(k, lower=True, check_finite=False)
        coef = model.coef_[:, 0]
        if "force_weight" in h:                                 # fitted energies minus the mean, eV
            y = self.kernel(x, model.train_descriptors_) @ coef
        else:
            y = self.factor @ (self.factor.T @ coef)            # (K + lam I) c = y - mean, eV
        alpha = linalg.cho_solve((self.factor, True), y, check_finite=False)
        self.amplitude2 = float(max(y @ alpha, 0.0) / len(y))

    def kernel(self, x, train):
        """Symmetrised energy kernel between descriptor rows ``x`` and ``train``, shape (len(x), len(train))."""
        d2 = kernels.invariant_squared_distances(x, train, self.model.pair_permutations_)
        return kernels.gaussian(d2, self.sigma).mean(axis=1)

    def descriptors(self, positions):
        """Descriptors minus 1 (the model's training features) of geometries in the model's atom order."""
        pos = np.asarray(positions, dtype=float).reshape(-1, len(self.model.numbers_), 3)
        return descriptors.inverse_distances(pos, self.model._symmetric("reference_distances_")) - 1.0

    def whitened(self, x):
        """``L^-1 k_x`` for descriptor rows ``x``, shape (n_train, len(x))."""
        from scipy import linalg
        return linalg.solve_triangular(self.factor, self.kernel(x, self.train).T,
                                       lower=True, check_finite=False)

    def self_kernel(self, x):
        """``k(x, x)`` of the symmetrised kernel (1 for a geometry without symmetry images nearby)."""
        images = x[:, self.model.pair_permutations_]                    # (n, n_images, n_features)
        d2 = np.einsum("nsf,nsf->ns", images - x[:, None], images - x[:, None])
        return kernels.gaussian(d2, self.sigma).mean(axis=1)

    def variance(self, x):
        """Posterior variance ``k(x,x) - k_x^T (K + lam I)^-1 k_x`` in kernel units (no amplitude), shape (len(x),)."""
        v = self.whitened(x)
        return np.maximum(self.self_kernel(x) - np.einsum("ij,ij->j", v, v), 0.0)


def posterior(model):
    """The :class:`Posterior` of ``model``, made at first use and again after a refit."""
    key = (id(model.coef_), id(model.train_descriptors_))
    cached = model.__dict__.get("_posterior")
    if cached is None or cached[0] != key:
        cached = model.__dict__["_posterior"] = (key, Posterior(model))
    return cached[1]


def energy_uncertainty(model, positions, *, batch=512):
    """Posterior standard deviation of the model energy, eV.

    Parameters
    ----------
    model : RPRModel
        A fitted model.
    positions : array-like of shape (n_atoms, 3) or (n, n_atoms, 3), Angstrom
        Geometries in the model's atom order.
    batch : int, default=512
        Geometries per block (memory: ``batch * n_images * n_train`` floats).

    Returns
    -------
    ndarray of shape (n,) or float, eV
        ``a * sqrt(k(x,x) - k_x^T (K + lam I)^-1 k_x)`` (module docstring).
    """
    pos = np.asarray(positions, dtype=float)
    single = pos.ndim == 2
    post = posterior(model)
    x = post.descriptors(pos)
    var = np.concatenate([post.variance(x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) \
        else np.zeros(0)
    out = np.sqrt(post.amplitude2 * var)
    return float(out[0]) if single else out


def write_trajectory_uncertainty(model, paths, out):
    """Write ``out`` (CSV): ``path``, ``frame``, ``time_fs``, ``ood_score``, ``energy_uncertainty_eV`` of
    every frame of the trajectory files ``paths`` (extxyz written by ``nxplugin md``), atomically.

    The frames may use any atom numbering: each file is mapped onto the model's labelling from its
    first frame (the uncertainty is invariant under the relabellings the model averages over).

    Returns
    -------
    str
        ``out``.
    """
    import csv
    import io

    import ase.io

    from nxplugin.fileio import atomic_write

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "frame", "time_fs", "ood_score", "energy_uncertainty_eV"])
    for path in paths:
        frames = ase.io.read(path, ":", format="extxyz")
        if not frames:
            continue
        order = model.atom_mapper.find(frames[0].numbers, frames[0].positions)
        sd = energy_uncertainty(model, np.stack([a.positions[order] for a in frames]))
        for k, (atoms, value) in enumerate(zip(frames, sd)):
            writer.writerow([path, k, atoms.info.get("time", ""), atoms.info.get("ood_score", ""), f"{value:.6g}"])
    atomic_write(out, text.getvalue())
    return out


def error_predictors(model, data):
    """How well the energy uncertainty and the ``ood_score`` rank the model's actual errors.

    Parameters
    ----------
    model : RPRModel
    data : dict
        A labelled data set (:func:`nxplugin.reference.datasets.read_dataset`), any atom order.

    Returns
    -------
    dict
        ``n``; Spearman rank correlations of ``|energy error|`` (and, with forces in the data, of the
        per-frame RMS force error) with ``energy_uncertainty`` and with ``ood_score``:
        ``spearman_energy_uncertainty``, ``spearman_energy_ood``, ``spearman_forces_uncertainty``,
        ``spearman_forces_ood``; and ``top10_energy_uncertainty`` / ``top10_energy_ood``: the share of
        the 10 % largest energy errors found among the 10 % highest scores.
    """
    from scipy.stats import spearmanr

    from nxplugin.model.atommap import map_dataset
    mapped = map_dataset(model.atom_mapper, data)
    pred = model.predict(mapped["positions"], forces=mapped["forces"] is not None)
    sd = energy_uncertainty(model, mapped["positions"])
    ood = pred["ood_score"]
    energy_error = np.abs(pred["energy"] - mapped["energies"])
    out = {"n": int(len(sd)),
           "spearman_energy_uncertainty": float(spearmanr(sd, energy_error)[0]),
           "spearman_energy_ood": float(spearmanr(ood, energy_error)[0])}
    if mapped["forces"] is not None:
        force_error = np.sqrt(np.mean((pred["forces"] - mapped["forces"]) ** 2, axis=(1, 2)))
        out["spearman_forces_uncertainty"] = float(spearmanr(sd, force_error)[0])
        out["spearman_forces_ood"] = float(spearmanr(ood, force_error)[0])
    k = max(1, len(sd) // 10)
    worst = set(np.argsort(-energy_error)[:k].tolist())
    out["top10_energy_uncertainty"] = len(worst & set(np.argsort(-sd)[:k].tolist())) / k
    out["top10_energy_ood"] = len(worst & set(np.argsort(-ood)[:k].tolist())) / k
    return out
