"""Kernel sums over the training set at prediction time (the MD hot path), and their backend.

Units: none (descriptors are dimensionless, widths in descriptor units); see :mod:`nxplugin.model.kernels`.

:class:`KernelSums` holds the arrays derived from a fitted model's learned state for fast evaluation,
and evaluates, per molecule ``i``, symmetry image ``s`` and training point ``j`` with kernel values
``k_ijs`` (energy width) and ``k_ij`` (image 0, each other group's width):

- ``wsum[i, s] = sum_j c_j k_ijs`` and ``wt[i, s] = sum_j c_j k_ijs t_j`` (energy; ``wt`` only for forces),
- ``values[i]``: the dipole and polarizability columns ``sum_j C_jg k_ij``,
- ``d2min[i]``: image 0's smallest squared distance to the training set.

Two backends agree to round-off (tested): ``"numpy"`` (BLAS products, in cache-sized chunks of
molecules) and ``"compiled"`` (:mod:`nxplugin.model.compiled`, numba, optional). ``"auto"`` takes the
compiled one when numba is installed and usable, unless the environment variable ``NXPLUGIN_NUMBA``
is ``0``. The small matrix products run on ``blas_threads`` BLAS threads (threadpoolctl; 1 by
default: at these sizes more threads only cost, and on a busy node they cost 100x).
"""
import numpy as np

from nxplugin.model import kernels

BACKENDS = ("auto", "numpy", "compiled")
NUMPY_CHUNK = 1 << 16   # kernel values per numpy pass (512 kB arrays: within L2)


def numba_usable():
    """True when the compiled kernel sums can be used: numba is installed, works with this numpy, and
    is not switched off with ``NXPLUGIN_NUMBA=0`` (a broken numba gives a warning and False)."""
    import importlib.util
    import os
    if os.environ.get("NXPLUGIN_NUMBA", "1") == "0" or importlib.util.find_spec("numba") is None:
        return False
    try:
        import nxplugin.model.compiled  # noqa: F401
    except ImportError as err:          # e.g. a numba built for another numpy release
        import warnings
        warnings.warn(f"numba is installed but cannot be used ({err}); predicting with numpy instead "
                      "(set NXPLUGIN_NUMBA=0 to silence this)", stacklevel=5)
        return False
    return True


def resolve_backend(kernel):
    """``"numpy"`` or ``"compiled"`` for a requested ``kernel`` in :data:`BACKENDS`."""
    if kernel not in BACKENDS:
        raise ValueError(f"kernel={kernel!r} is not one of {BACKENDS}")
    if kernel == "auto":
        return "compiled" if numba_usable() else "numpy"
    return kernel


class BlasThreads:
    """Context manager: the loaded BLAS libraries run on ``n`` threads inside, as before outside.

    The libraries are found once (threadpoolctl) when the object is made; entering costs one
    get/set call per library.
    """

    def __init__(self, n):
        from threadpoolctl import ThreadpoolController
        self.n = n
        self._libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        self._changed = []

    def __enter__(self):
        self._changed = []
        for lib in self._libraries:
            old = lib.num_threads
            if old != self.n:
                lib.set_num_threads(self.n)
                self._changed.append((lib, old))
        return self

    def __exit__(self, *exc):
        for lib, old in self._changed:
            lib.set_num_threads(old)


class KernelSums:
    """The prediction-time kernel sums of one fitted model.

    Parameters
    ----------
    train_descriptors : ndarray of shape (n_train, n_features)
        Shifted training descriptors ``t_j`` (the model's ``train_descriptors_``).
    coef : ndarray of shape (n_train, n_columns)
        Regression coefficients; column 0 is the energy, then the groups' columns.
    groups : list of (str, slice, float)
        Each non-energy output group: name, its columns of ``coef`` and its kernel width.
    sigma_energy : float
        Energy kernel width.
    kernel : {"auto", "numpy", "compiled"}, default="auto"
    blas_threads : int or None, default=1
        BLAS threads for the products; None leaves the libraries as the environment set them.

    Attributes
    ----------
    backend : {"numpy", "compiled"}
        What evaluates the sums in this process.
    """

    def __init__(self, train_descriptors, coef, groups, sigma_energy, *, kernel="auto", blas_threads=1):
        self.backend = resolve_backend(kernel)
        self.train = np.ascontiguousarray(train_descriptors, dtype=float)
        self.train_sq = np.einsum("ij,ij->i", self.train, self.train)
        self.train_t = np.ascontiguousarray(self.train.T)
        self.coef_energy = np.ascontiguousarray(coef[:, 0])
        self.coef_groups = [np.ascontiguousarray(coef[:, cols]) for _, cols, _ in groups]
        self.coef_t = np.ascontiguousarray(coef[:, 1:].T)
        self.sigma_energy = sigma_energy
        self.sigmas = [sigma for _, _, sigma in groups]
        self.col_group = np.concatenate([np.full(cols.stop - cols.start, i, dtype=np.int64)
                                         for i, (_, cols, _) in enumerate(groups)] or [np.zeros(0, np.int64)])
        self.inv_energy = 0.5 / sigma_energy**2
        self.inv_groups = 0.5 / np.array(self.sigmas, dtype=float) ** 2
        if self.backend == "compiled":
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS numba's products call: limit it too)
        self._threads = BlasThreads(blas_threads) if blas_threads is not None else None

    def __call__(self, images, grad):
        """Sums for ``images`` of shape (n, n_img, n_features); see the module docstring.

        Returns
        -------
        wsum : ndarray of shape (n, n_img)
        wt : ndarray of shape (n, n_img, n_features), zeros without ``grad``
        values : ndarray of shape (n, n_columns - 1)
        d2min : ndarray of shape (n,)
        """
        if self._threads is None:
            return self._sums(images, grad)
        with self._threads:
            return self._sums(images, grad)

    def _sums(self, images, grad):
        n, n_img, n_feat = images.shape
        if self.backend == "compiled":
            from nxplugin.model import compiled
            wsum, wt, values, d2min = compiled.kernel_sums(
                images.reshape(n * n_img, n_feat), n_img, self.train, self.train_sq, self.coef_energy,
                self.inv_energy, self.coef_t, self.col_group, self.inv_groups, grad)
            return wsum.reshape(n, n_img), wt.reshape(n, n_img, n_feat), values, d2min
        if n * n_img * len(self.train) > NUMPY_CHUNK and n > 1:     # keep the arrays in cache
            step = max(1, NUMPY_CHUNK // (n_img * len(self.train)))
            parts = [self._sums(images[i:i + step], grad) for i in range(0, n, step)]
            return tuple(np.concatenate(p) for p in zip(*parts))
        d2 = kernels.squared_distances(images.reshape(n * n_img, n_feat), self.train, self.train_sq,
                                       self.train_t).reshape(n, n_img, -1)
        k = kernels.gaussian(d2, self.sigma_energy)
        wsum = k @ self.coef_energy                                  # BLAS, not a strided sum
        wt = np.zeros(images.shape)
        if grad:
            k *= self.coef_energy
            wt = (k.reshape(n * n_img, -1) @ self.train).reshape(images.shape)
        values = [kernels.gaussian(d2[:, 0], s) @ c for c, s in zip(self.coef_groups, self.sigmas)]
        return wsum, wt, np.hstack(values) if values else np.zeros((n, 0)), d2[:, 0].min(axis=1)
