"""Compiled (numba) kernel sums for :meth:`nxplugin.model.estimator.RPRModel.predict`, the MD hot path.

Optional: :meth:`nxplugin.model.estimator.RPRModel.predict` uses it when numba is installed
(``pip install "nxplugin[fast]"``) and the environment variable ``NXPLUGIN_NUMBA`` is not ``0``, and
computes the same sums with numpy otherwise. Two things make it faster than numpy here:

- the training descriptors are visited in blocks that stay in cache, once for all query images (the
  dot products and the force sums are two BLAS products per block), and the squared distance, the
  exponential and the weighting happen in one pass over each block instead of one array pass each;
- ``exp(-a)`` is evaluated in a loop the compiler vectorises: ``a = m ln2 - r`` with integer ``m``
  and ``|r| <= ln2/2``, a degree-13 Taylor polynomial for ``exp(r)`` (truncation below 1e-17) and
  ``2**-m`` built from its exponent bits. Within 2 ulp of ``numpy.exp`` (tested; arguments beyond
  700 give ``exp(-700)``, about 1e-304). numpy's float64 ``exp`` is a scalar libm call on CPUs
  without AVX-512, several times slower (``python bench/bench_ensemble.py`` prints this one's rate).
"""
import numpy as np

# --- JIT cache out of the installed package (issue 17; nxplugin.model.jitcache) ---
from nxplugin.model.jitcache import use_user_cache_dir

use_user_cache_dir()
# --- end ---
from numba import njit  # noqa: E402

BLOCK_ELEMENTS = 32768   # query images x training points per block (256 kB of weights: within L2)
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01     # ln 2 split so that m * _LN2_HI is exact for |m| < 2**20
_LN2_LO = 1.90821492927058770002e-10
_FASTMATH = {"reassoc", "contract", "nsz", "nnan", "ninf"}   # reassociation vectorises the sums


@njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _exp_neg(a, bits):
    """``a <- exp(-a)`` in place for ``a >= 0`` (``bits``: int64 scratch of the same length)."""
    for j in range(a.shape[0]):
        t = a[j] if a[j] < 700.0 else 700.0          # exp(-700) ~ 1e-304: still normal
        mi = np.int32(t * _LOG2E + 0.5)
        m = np.float64(mi)
        r = (m * _LN2_HI - t) + m * _LN2_LO          # exp(-t) = 2**-m * exp(r)
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        a[j] = p * r + 1.0
        bits[j] = np.int64(1023 - mi) << 52          # the float64 2**-m
    scale = bits.view(np.float64)
    for j in range(a.shape[0]):
        a[j] *= scale[j]


@njit(fastmath=_FASTMATH, cache=True, nogil=True)
def _sums(images, n_img, train, train_sq, coef_e, inv_e, coef_t, col_group, inv_groups, grad, block):
    q_count, n_feat = images.shape
    n_train = train.shape[0]
    n_mol = q_count // n_img
    q_sq = np.zeros(q_count)
    for q in range(q_count):
        for f in range(n_feat):
            q_sq[q] += images[q, f] * images[q, f]
    wsum = np.zeros(q_count)
    wt = np.zeros((q_count, n_feat))
    values = np.zeros((n_mol, coef_t.shape[0]))
    d2min = np.full(n_mol, np.inf)
    d2 = np.empty(block)
    a = np.empty(block)
    bits = np.empty(block, np.int64)
    for start in range(0, n_train, block):
        nb = min(block, n_train - start)
        t = train[start:start + nb]
        w = images @ t.T                               # dot products, then weights in place
        for q in range(q_count):
            row = w[q]
            for j in range(nb):
                v = q_sq[q] + train_sq[start + j] - 2.0 * row[j]
                d2[j] = v if v > 0.0 else 0.0
                row[j] = d2[j] * inv_e
            _exp_neg(row, bits)
            total = 0.0
            for j in range(nb):
                row[j] *= coef_e[start + j]
                total += row[j]
            wsum[q] += total
            if q % n_img:
                continue
            mol = q // n_img                           # image 0: the other groups and the OOD score
            for j in range(nb):
                d2min[mol] = min(d2min[mol], d2[j])
            for g in range(inv_groups.shape[0]):
                for j in range(nb):
                    a[j] = d2[j] * inv_groups[g]
                _exp_neg(a[:nb], bits)
                for c in range(coef_t.shape[0]):
                    if col_group[c] == g:
                        acc = 0.0
                        for j in range(nb):
                            acc += coef_t[c, start + j] * a[j]
                        values[mol, c] += acc
        if grad:
            wt += w @ t
    return wsum, wt, values, d2min


def exp_neg(a):
    """``exp(-a)`` for ``a >= 0`` (a new array), the compiled kernel's exponential."""
    out = np.array(a, dtype=float).ravel()
    _exp_neg(out, np.empty(out.shape, np.int64))
    return out.reshape(np.shape(a))


def kernel_sums(images, n_img, train, train_sq, coef_energy, inv_energy, coef_t, col_group, inv_groups,
                grad=True, block=None):
    """Kernel sums over the training set for every query image.

    Parameters
    ----------
    images : ndarray of shape (n * n_img, n_features)
        Query descriptors, the ``n_img`` symmetry images of each molecule in a row (image 0 first).
    n_img : int
    train : ndarray of shape (n_train, n_features), C-contiguous
    train_sq : ndarray of shape (n_train,)
        Squared norms of ``train``'s rows.
    coef_energy : ndarray of shape (n_train,)
        Energy coefficients (eV).
    inv_energy : float
        ``1 / (2 sigma_energy**2)``.
    coef_t : ndarray of shape (m, n_train), C-contiguous
        Coefficients of the other outputs, one row per output column.
    col_group : ndarray of int of shape (m,)
        Width group of each of those columns.
    inv_groups : ndarray of shape (n_groups,)
        ``1 / (2 sigma**2)`` per width group.
    grad : bool
        Also accumulate ``wt``.
    block : int, optional
        Training points per block; default: about ``BLOCK_ELEMENTS / len(images)``, at least 256.

    Returns
    -------
    wsum : ndarray of shape (n * n_img,)
        ``sum_j c_j k_j`` per image.
    wt : ndarray of shape (n * n_img, n_features)
        ``sum_j c_j k_j t_j`` per image (zeros without ``grad``).
    values : ndarray of shape (n, m)
        ``sum_j C_jc k_j`` with image 0 and the column's width.
    d2min : ndarray of shape (n,)
        Smallest squared distance of image 0 to the training set.
    """
    if block is None:
        block = max(256, BLOCK_ELEMENTS // len(images))
    return _sums(images, n_img, train, train_sq, coef_energy, inv_energy, coef_t, col_group, inv_groups, grad,
                 min(int(block), len(train)))


@njit(cache=True, nogil=True)
def _geometry(pos, reference_distances, pair_i, pair_j, perms, atom_perms, masses, reference, eckart):
    """Descriptor, its pair vectors, symmetry images, centred positions and the frame of each image's
    relabelled copy ``pos[atom_perms[s]]`` of one geometry."""
    n_pairs = pair_i.shape[0]
    diff = np.empty((n_pairs, 3))
    r2 = np.empty(n_pairs)
    descriptor = np.empty(n_pairs)
    for p in range(n_pairs):
        s = 0.0
        for k in range(3):
            diff[p, k] = pos[pair_i[p], k] - pos[pair_j[p], k]
            s += diff[p, k] * diff[p, k]
        r2[p] = s
        descriptor[p] = reference_distances[p] / np.sqrt(s)
    n_img = perms.shape[0]
    images = np.empty((n_img, n_pairs))
    for s in range(n_img):
        for p in range(n_pairs):
            images[s, p] = descriptor[perms[s, p]] - 1.0
    total = masses.sum()
    centred = pos.copy()
    for k in range(3):
        com = 0.0
        for a in range(pos.shape[0]):
            com += masses[a] * pos[a, k]
        com /= total
        for a in range(pos.shape[0]):
            centred[a, k] -= com
    frames = np.empty((n_img, 3, 3))
    for s in range(n_img):
        if eckart:
            h = np.zeros((3, 3))
            for a in range(pos.shape[0]):
                b = atom_perms[s, a]
                for j in range(3):
                    for k in range(3):
                        h[j, k] += masses[a] * centred[b, j] * reference[a, k]
            u, _, vt = np.linalg.svd(h)
            frames[s] = u @ vt
        else:
            frames[s] = np.eye(3)
    return descriptor, diff, r2, images, centred, frames


@njit(cache=True, nogil=True)
def _assemble(wsum, wt, images, perms, inv_width2, descriptor, diff, r2, pair_i, pair_j, n_atoms, values,
              offset, frames, charges, centred, forces):
    """Energy (eV), forces (eV/Angstrom, into ``forces``), dipole and polarizability of one geometry,
    the tensor outputs averaged over the images, each rotated back from its own frame."""
    n_img, n_pairs = images.shape
    energy = wsum.sum() / n_img + offset[0]
    if forces.shape[0]:
        grad = np.zeros(n_pairs)
        for s in range(n_img):
            for p in range(n_pairs):
                grad[perms[s, p]] += wt[s, p] - wsum[s] * images[s, p]
        for p in range(n_pairs):
            c = grad[p] * inv_width2 / n_img * descriptor[p] / r2[p]    # -dE/d(pair vector) / |.|
            for k in range(3):
                forces[pair_i[p], k] += c * diff[p, k]
                forces[pair_j[p], k] -= c * diff[p, k]
    dipole = np.zeros(3)
    polarizability = np.zeros((3, 3))
    for s in range(n_img):
        columns = values[s] + offset[1:]
        frame = frames[s]
        for j in range(3):
            for k in range(3):
                dipole[j] += frame[j, k] * columns[k] / n_img
        if columns.shape[0] >= 9:
            six = columns[3:9]
            local = np.array([[six[0], six[3], six[4]], [six[3], six[1], six[5]], [six[4], six[5], six[2]]])
            polarizability += frame @ local @ frame.T / n_img
    for j in range(3):
        for a in range(n_atoms):
            dipole[j] += charges[a] * centred[a, j]
    return energy, dipole, polarizability


def predict_one(model, positions, sums, forces=True):
    """:meth:`RPRModel.predict` for one geometry (Eckart or lab frame) in three compiled calls.

    Parameters
    ----------
    model : RPRModel
        Fitted, with ``frame`` "eckart" or "lab".
    positions : ndarray of shape (n_atoms, 3), Angstrom
    sums : nxplugin.model.kernelsums.KernelSums
        The model's compiled kernel sums.
    forces : bool

    Returns
    -------
    dict
        As :meth:`RPRModel.predict` for a single geometry.
    """
    i, j = model._pairs
    perms = model.pair_permutations_
    descriptor, diff, r2, images, centred, frames = _geometry(
        positions, model._symmetric("reference_distances_"), i, j, perms, model._atom_permutations,
        model.masses_, model.reference_, model.frame == "eckart")
    n_img = len(perms)
    wsum, wt, values, d2min = sums(images[:, None, :], forces)      # every image on its own
    n_atoms = len(positions)
    out_forces = np.zeros((n_atoms, 3) if forces else (0, 3))
    energy, dipole, polarizability = _assemble(
        wsum.reshape(n_img), wt.reshape(n_img, -1), images, perms,
        1.0 / model.hyperparameters_["energy"]["sigma"] ** 2, descriptor, diff, r2, i, j, n_atoms, values,
        model.offset_, frames, model._symmetric("charges_"), centred, out_forces)
    out = {"energy": energy, "dipole": dipole}
    if forces:
        out["forces"] = out_forces
    if model.has_polarizability:
        out["polarizability"] = polarizability
    out["ood_score"] = np.sqrt(d2min.min()) / model.ood_scale_
    return out
