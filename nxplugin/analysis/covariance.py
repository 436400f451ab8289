"""Exact versus learned rotational covariance of dipole models: errors, augmentation, averaging.

Units: positions Angstrom, dipoles e*Angstrom (errors converted to Debye by callers), time s.

A dipole model ``f`` is covariant under an orthogonal ``Q`` (rotation or reflection) when
``f(Q x) = Q f(x)``. :func:`covariance_error` measures the root-mean-square deviation over frames and
operations. Rotate-predict-rotate models are covariant by construction (round-off); the direct
lab-frame model (``RPRModel(frame="lab")``) is not.

Augmentation and averaging, after Langer, Pozdnyakov and Ceriotti (Mach. Learn.: Sci. Technol. 5,
04LT01 (2024)):

- :func:`fit_augmented` trains the direct model on K randomly rotated (or reflected) copies of every
  frame. The inverse-distance descriptor is invariant, so the K copies of a frame share one descriptor
  and kernel ridge regression on them (ridge ``lam``) is *identical* to regression on that descriptor
  with the mean of the K labels and ridge ``lam / K`` (the loss ``sum_k |f(d) - Q_k r|^2`` differs
  from ``K |f(d) - mean_k Q_k r|^2`` by a constant). The fitted point charges are unchanged, as their
  least-squares problem is itself covariant. This is how it is fitted, at the cost of the un-augmented
  model, with the un-augmented model's kernel widths; ``tests/test_diagnostics.py`` checks it against
  explicit copies.
- :class:`RotationAveraged` predicts ``mean_g g^T f(g x)`` over a finite group of orthogonal
  matrices (default: the 48 operations of the cube, O_h), exactly covariant under that group.
"""
import time

import numpy as np


def random_orthogonal(n, *, seed=0, reflections=True):
    """``n`` random orthogonal 3x3 matrices, uniform rotations, each reflected (times -1) with
    probability 1/2 when ``reflections``; shape (n, 3, 3)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    q = Rotation.random(n, random_state=rng).as_matrix()
    if reflections:
        q *= rng.choice([-1.0, 1.0], size=n)[:, None, None]
    return q


def cube_group():
    """The 48 orthogonal matrices of the cube's point group O_h (24 rotations and their inversions)."""
    from scipy.spatial.transform import Rotation

    rotations = Rotation.create_group("O").as_matrix()
    return np.concatenate([rotations, -rotations])


def covariance_error(predict_dipole, positions, operations):
    """RMS deviation of ``f(Q x)`` from ``Q f(x)`` over frames and operations.

    Parameters
    ----------
    predict_dipole : callable
        Positions (n, n_atoms, 3), Angstrom -> dipoles (n, 3), e*Angstrom.
    positions : ndarray of shape (n, n_atoms, 3), Angstrom
    operations : ndarray of shape (n_ops, 3, 3)
        Orthogonal matrices (applied about the origin: ``x -> x @ Q.T``).

    Returns
    -------
    float, e*Angstrom: ``sqrt(mean over frames, operations and components of (f(Qx) - Q f(x))**2)``.
    """
    positions = np.asarray(positions, dtype=float)
    base = predict_dipole(positions)
    moved = np.einsum("nai,qji->qnaj", positions, operations).reshape(-1, *positions.shape[1:])
    turned = predict_dipole(moved).reshape(len(operations), len(positions), 3)
    expected = np.einsum("qij,nj->qni", operations, base)
    return float(np.sqrt(np.mean((turned - expected) ** 2)))


class RotationAveraged:
    """A dipole model averaged over a group at prediction time: ``mean_g g^T f(g x)``.

    Parameters
    ----------
    model : RPRModel (fitted)
    operations : ndarray of shape (n_ops, 3, 3), default: :func:`cube_group`
        Should form a group for exact covariance under it.
    """

    def __init__(self, model, operations=None):
        self.model = model
        self.operations = cube_group() if operations is None else np.asarray(operations, dtype=float)

    def predict_dipole(self, positions):
        """Averaged dipoles, e*Angstrom, shape (n, 3) (or (3,) for one geometry)."""
        positions = np.asarray(positions, dtype=float)
        single = positions.ndim == 2
        x = positions.reshape(-1, *positions.shape[-2:])
        ops = self.operations
        moved = np.einsum("nai,qji->nqaj", x, ops).reshape(-1, *x.shape[1:])
        mu = self.model.predict(moved, forces=False)["dipole"].reshape(len(x), len(ops), 3)
        out = np.einsum("qji,nqj->ni", ops, mu) / len(ops)
        return out[0] if single else out


def fitted_hyperparameters(model):
    """``sigma`` and ``lam`` dicts of a fitted model, to refit with the same kernel."""
    return ({g: h["sigma"] for g, h in model.hyperparameters_.items()},
            {g: h["lam"] for g, h in model.hyperparameters_.items()})


def fit_augmented(lab_model, numbers, positions, energies, dipoles, n_copies, *, seed=0, reference=None):
    """The direct model trained on ``n_copies`` randomly rotated/reflected copies of every frame.

    Fitted through the exact equivalence in the module docstring (mean label, ``lam / n_copies``),
    with the kernel widths and ridge of ``lab_model`` (a fitted ``RPRModel(frame="lab")`` on the
    same frames) and its point charges.

    Parameters
    ----------
    lab_model : RPRModel
    numbers : array-like of shape (n_atoms,)
    positions : ndarray of shape (n, n_atoms, 3), Angstrom
    energies : ndarray of shape (n,), eV
    dipoles : ndarray of shape (n, 3), e*Angstrom
    n_copies : int
        K >= 1; K = 1 is one random orientation per frame (not the original one).
    seed : int
        Seed of the random operations.
    reference : ndarray of shape (n_atoms, 3), Angstrom, optional
        As given to ``lab_model``'s fit.

    Returns
    -------
    RPRModel
    """
    from nxplugin.model import molframe
    from nxplugin.model.estimator import RPRModel

    if lab_model.frame != "lab":
        raise ValueError(f"lab_model must be a direct model (frame='lab'), got frame={lab_model.frame!r}")
    if n_copies < 1:
        raise ValueError(f"n_copies={n_copies} must be at least 1")
    positions = np.asarray(positions, dtype=float)
    charges = lab_model.charges_
    charge_dipole = np.einsum("i,nij->nj", charges, molframe.centered(positions, lab_model.masses_))
    residual = np.asarray(dipoles, dtype=float) - charge_dipole
    ops = random_orthogonal(len(positions) * n_copies, seed=seed).reshape(len(positions), n_copies, 3, 3)
    mean_residual = np.einsum("nkij,nj->ni", ops, residual) / n_copies
    sigma, lam = fitted_hyperparameters(lab_model)
    model = RPRModel(frame="lab", charges=False, symmetrize=lab_model.symmetrize, sigma=sigma,
                     lam={g: v / n_copies for g, v in lam.items()})
    model.fit(numbers, positions, energies=energies, dipoles=mean_residual, masses=lab_model.masses_,
              reference=lab_model.reference_ if reference is None else reference)
    model.charges_ = charges.copy()          # the copies' charges: those of the original frames
    model.charges = True
    return model


def timed(function, *args, **kwargs):
    """``(result, seconds)`` of one call (wall clock)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start
