"""IR and Raman spectra in absolute units from dipole and polarizability time series.

Internal units: time in fs, wavenumber in cm^-1, temperature in K, dipole in e*Angstrom,
polarizability in Angstrom^3, normal coordinates mass-weighted in amu^(1/2)*Angstrom, so that
k_B*T is expressed in amu*Angstrom^2/fs^2. SI constants come from :mod:`scipy.constants` and are
used only to build the few conversion factors below.

Method (one engine for IR and Raman)
------------------------------------
For a series ``x(t)`` (dipole vector or polarizability tensor) sampled every ``dt``:

1. central finite difference ``xdot_j = (x_{j+1} - x_{j-1}) / (2 dt)``;
2. unbiased autocorrelation summed over components (the vector or tensor is used as a whole,
   components are never normalised separately), ``C_k = sum_j xdot_j . xdot_{j+k} / N_k`` with
   ``N_k`` the number of pairs at lag ``k``, computed by FFT for lags ``k = 0 .. M``
   (``M = depth_fs / dt``);
3. a one-sided window ``w_k`` with ``w_0 = 1`` and zero-padding to ``L`` points;
4. the two-sided transform ``S(omega) = dt * sum_{|k|<=M} w_k C_k cos(omega k dt)`` and the density per
   wavenumber ``G(nu) = 2 c S(2 pi c nu)``, normalised so that ``integral_0^inf G dnu = C_0``
   (= <|xdot|^2>, window and padding do not change it);
5. the finite-difference correction ``(omega dt / sin(omega dt))^2`` (the central difference
   multiplies a component at ``omega`` by ``sin(omega dt) / (omega dt)``); the spectrum is returned
   up to half the Nyquist wavenumber, ``omega dt <= pi / 2``, where this factor is at most 2.47;
6. the absorption ``beta G(nu) q(nu)`` with ``beta = 1/(k_B T)`` and the quantum correction ``q``.

Quantum corrections. With ``x = hbar omega / (k_B T)`` the quantum lineshape is taken as ``Q(omega)``
times the classical one, ``Q = x / (1 - exp(-x))`` ("harmonic"), ``2 / (1 + exp(-x))`` ("standard") or
``exp(x / 2)`` ("schofield"). The absorption is ``omega (1 - exp(-x)) / hbar`` times the quantum
lineshape, so relative to the classical absorption ``beta omega^2 * lineshape`` the factor applied is
``q = Q (1 - exp(-x)) / x``: exactly 1 for "harmonic", ``tanh(x/2) / (x/2)`` for "standard" and
``sinh(x/2) / (x/2)`` for "schofield". The harmonic correction makes classical MD exact for a harmonic
system: a mode ``mu = mu' Q`` with classical ``<Qdot^2> = k_B T`` gives ``beta C_0 = |mu'|^2`` at any T.

IR, absolute units. ``I(nu) = N_A / (12 eps_0 c^2) * beta G(nu) q(nu)`` in km mol^-1 per cm^-1, so the
integral of a band over wavenumber (cm^-1) is its integrated absorption coefficient in km/mol, equal
to the harmonic intensity ``A = N_A / (12 eps_0 c^2) |d mu / dQ|^2``: with ``|d mu/dQ|^2`` in
e^2/amu, ``N_A e^2 / (12 eps_0 c^2 amu) = 974.88 km/mol`` (42.256 km/mol per (D/Angstrom)^2/amu).

Raman, absolute units. With the mean polarizability ``a = tr(alpha) / 3`` and the anisotropic
(traceless) part ``b = alpha - a 1``: isotropic ``45 beta G_a q`` and anisotropic
``7 * (3/2) beta G_b q`` (``G_b`` from ``tr(bdot(0) bdot(t))``), both in Angstrom^4 amu^-1 per cm^-1.
Band integrals are the harmonic Raman activities ``45 a'^2`` and ``7 gamma'^2`` (Angstrom^4/amu,
``gamma^2 = (3/2) tr(b b)``); their sum is the usual Raman activity. The laser-frequency and
Bose factors of a scattering cross-section are not applied.
"""
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.constants as sc
from scipy.fft import irfft, next_fast_len, rfft

from nxplugin.errors import DataFileError, NxPluginError

WINDOWS = ("hann", "gaussian", "boxcar")
QUANTUM_CORRECTIONS = ("harmonic", "standard", "schofield")

#: speed of light in cm/fs
LIGHT_SPEED_CM_PER_FS = sc.c / sc.centi * sc.femto
#: km/mol per (e^2/amu): N_A e^2 / (12 eps_0 c^2 amu), the IR intensity of |dmu/dQ| = 1 e/amu^(1/2)
IR_INTENSITY_KM_PER_MOL = sc.N_A * sc.e**2 / (12 * sc.epsilon_0 * sc.c**2 * sc.atomic_mass) / sc.kilo
#: hbar*omega/(k_B T) for 1 cm^-1 at 1 K
_HC_OVER_K_CM_K = sc.h * sc.c / sc.centi / sc.k


class SegmentsTooShortError(NxPluginError, ValueError):
    """No sample has a selected segment (e.g. one conformer) longer than the correlation depth."""


def thermal_energy(temperature_K):
    """k_B*T in amu*Angstrom^2/fs^2 (so that classical <Qdot^2> = k_B*T for Q in amu^(1/2)*Angstrom)."""
    return sc.k * np.asarray(temperature_K, dtype=float) / (sc.atomic_mass * (sc.angstrom / sc.femto) ** 2)


def harmonic_ir_intensity(dipole_derivatives):
    """Harmonic IR intensities in km/mol.

    Parameters
    ----------
    dipole_derivatives : array-like of shape (..., 3), e*Angstrom/(amu^(1/2)*Angstrom) = e/amu^(1/2)
        ``d mu / d Q`` for mass-weighted normal coordinates ``Q``.

    Returns
    -------
    ndarray of shape (...,), km/mol: ``N_A / (12 eps_0 c^2) |d mu / dQ|^2``.
    """
    d = np.asarray(dipole_derivatives, dtype=float)
    return IR_INTENSITY_KM_PER_MOL * np.sum(d * d, axis=-1)


def _isotropic_anisotropic(tensors):
    tensors = np.asarray(tensors, dtype=float)
    mean = np.trace(tensors, axis1=-2, axis2=-1) / 3
    return mean, tensors - mean[..., None, None] * np.eye(3)


def harmonic_raman_activity(polarizability_derivatives):
    """Harmonic Raman activities ``45 a'^2`` and ``7 gamma'^2`` in Angstrom^4/amu.

    Parameters
    ----------
    polarizability_derivatives : array-like of shape (..., 3, 3), Angstrom^3/(amu^(1/2)*Angstrom)

    Returns
    -------
    isotropic, anisotropic : ndarray of shape (...,), Angstrom^4/amu. Their sum is the Raman activity.
    """
    mean, aniso = _isotropic_anisotropic(polarizability_derivatives)
    return 45 * mean**2, 7 * 1.5 * np.sum(aniso * aniso, axis=(-2, -1))


def window_function(n_lags, kind="hann"):
    """One-sided lag window ``w_k``, k = 0 .. n_lags, with ``w_0 = 1``.

    ``"hann"``: ``cos^2(pi k / (2 n_lags))``, 0 at the last lag. ``"gaussian"``:
    ``exp(-k^2 / (2 s^2))`` with ``s = n_lags / 3`` (0.011 at the last lag). ``"boxcar"``: 1.
    """
    if kind not in WINDOWS:
        raise ValueError(f"window={kind!r} is not one of {WINDOWS}")
    k = np.arange(n_lags + 1, dtype=float)
    if kind == "hann":
        return np.cos(0.5 * np.pi * k / max(n_lags, 1)) ** 2
    if kind == "gaussian":
        return np.exp(-0.5 * (3 * k / max(n_lags, 1)) ** 2)
    return np.ones_like(k)


def quantum_correction(wavenumber, temperature_K, kind="harmonic"):
    """Quantum correction factor ``Q(omega)`` of the lineshape (see the module notes).

    Parameters
    ----------
    wavenumber : array-like, cm^-1
    temperature_K : float, K
    kind : {"harmonic", "standard", "schofield"}, default="harmonic"

    Returns
    -------
    ndarray: ``x / (1 - exp(-x))``, ``2 / (1 + exp(-x))`` or ``exp(x / 2)``, ``x = h c nu / (k_B T)``.
    """
    x = _reduced_frequency(wavenumber, temperature_K)
    if kind == "harmonic":
        safe = np.where(x == 0, 1.0, x)
        return np.where(x == 0, 1.0, safe / -np.expm1(-safe))
    if kind == "standard":
        return 2 / (1 + np.exp(-x))
    if kind == "schofield":
        return np.exp(x / 2)
    raise ValueError(f"qcf={kind!r} is not one of {QUANTUM_CORRECTIONS}")


def _reduced_frequency(wavenumber, temperature_K):
    if not np.all(np.asarray(temperature_K) > 0):
        raise ValueError(f"temperature_K={temperature_K:g} K must be positive for the quantum correction")
    return _HC_OVER_K_CM_K * np.asarray(wavenumber, dtype=float) / temperature_K


def _absorption_correction(wavenumber, temperature_K, kind):
    """``q = Q (1 - exp(-x)) / x``: the factor applied to the classical absorption ``beta G``."""
    if kind not in QUANTUM_CORRECTIONS:
        raise ValueError(f"qcf={kind!r} is not one of {QUANTUM_CORRECTIONS}")
    half = 0.5 * _reduced_frequency(wavenumber, temperature_K)
    safe = np.where(half == 0, 1.0, half)
    if kind == "harmonic":
        return np.ones_like(half)
    if kind == "standard":
        return np.where(half == 0, 1.0, np.tanh(safe) / safe)
    return np.where(half == 0, 1.0, np.sinh(safe) / safe)


def depth_steps(depth_fs, timestep_fs):
    """Number of correlation lags ``M = round(depth_fs / timestep_fs)`` (at least 1)."""
    if not timestep_fs > 0:
        raise ValueError(f"timestep_fs={timestep_fs:g} fs must be positive")
    if not depth_fs > 0:
        raise ValueError(f"depth_fs={depth_fs:g} fs must be positive")
    return max(1, int(round(depth_fs / timestep_fs)))


def autocorrelation(series, n_lags, *, mask=None):
    """Unbiased autocorrelation summed over components, by FFT.

    Parameters
    ----------
    series : array-like of shape (n_frames, ...), any unit u
    n_lags : int
        Lags 0 .. n_lags are returned.
    mask : array-like of bool, shape (n_frames,), optional
        Only pairs of frames inside the same contiguous run of True count (segments of one state).

    Returns
    -------
    ndarray of shape (n_lags + 1,), u^2: ``C_k = sum_j x_j . x_{j+k} / N_k``; NaN where ``N_k = 0``.
    """
    x = np.asarray(series, dtype=float)
    x = x.reshape(len(x), -1)
    if mask is None:
        runs = [(0, len(x))]
    else:
        edges = np.diff(np.concatenate(([0], np.asarray(mask, dtype=np.int8), [0])))
        runs = zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))
    sums = np.zeros(n_lags + 1)
    counts = np.zeros(n_lags + 1)
    for start, stop in runs:
        lags = min(n_lags, stop - start - 1)
        if lags < 0:
            continue
        size = next_fast_len(stop - start + lags + 1, real=True)
        spectrum = rfft(x[start:stop], n=size, axis=0)
        power = np.sum(spectrum.real**2 + spectrum.imag**2, axis=1)
        sums[: lags + 1] += irfft(power, n=size)[: lags + 1]
        counts[: lags + 1] += stop - start - np.arange(lags + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def finite_difference(series, timestep_fs):
    """Central difference ``(x_{j+1} - x_{j-1}) / (2 dt)``, shape (n_frames - 2, ...), unit u/fs."""
    x = np.asarray(series, dtype=float)
    return (x[2:] - x[:-2]) / (2 * timestep_fs)


def derivative_spectrum(acf, timestep_fs, temperature_K, *, window="hann", qcf="harmonic", padding=4):
    """Corrected absorption density ``beta G(nu) q(nu)`` from the autocorrelation of a derivative.

    Parameters
    ----------
    acf : ndarray of shape (n_lags + 1,), (u/fs)^2
        Autocorrelation of the time derivative, lags 0 .. n_lags (:func:`autocorrelation`).
    timestep_fs : float, fs
    temperature_K : float, K
    window : {"hann", "gaussian", "boxcar"}, default="hann"
    qcf : {"harmonic", "standard", "schofield"}, default="harmonic"
    padding : float, default=4
        The windowed two-sided ACF (2 n_lags + 1 points) is zero-padded to ``padding`` times its
        length (rounded up to a fast FFT length ``L``); the wavenumber spacing is ``1/(c L dt)``.

    Returns
    -------
    wavenumber : ndarray, cm^-1, from 0 to half the Nyquist wavenumber ``1 / (4 c dt)``
    density : ndarray, u^2 / (amu Angstrom^2) per cm^-1; integrates to ``beta C_0``
    """
    n_lags = len(acf) - 1
    if not temperature_K > 0:
        raise ValueError(f"temperature_K={temperature_K:g} K must be positive")
    if padding < 1:
        raise ValueError(f"padding={padding!r} must be at least 1")
    size = next_fast_len(int(np.ceil(padding * (2 * n_lags + 1))), real=True)
    weighted = np.asarray(acf, dtype=float) * window_function(n_lags, window)
    transform = timestep_fs * (2 * rfft(weighted, n=size).real - weighted[0])
    wavenumber = np.arange(len(transform)) / (size * timestep_fs * LIGHT_SPEED_CM_PER_FS)
    keep = 2 * LIGHT_SPEED_CM_PER_FS * wavenumber * timestep_fs <= 0.5
    wavenumber = wavenumber[keep]
    density = 2 * LIGHT_SPEED_CM_PER_FS * transform[keep] / thermal_energy(temperature_K)
    density /= np.sinc(2 * LIGHT_SPEED_CM_PER_FS * wavenumber * timestep_fs) ** 2
    return wavenumber, density * _absorption_correction(wavenumber, temperature_K, qcf)


def _derivative_acf(series, timestep_fs, depth_fs, mask=None):
    x = np.asarray(series, dtype=float)
    n_lags = depth_steps(depth_fs, timestep_fs)
    if len(x) < n_lags + 3:
        raise ValueError(f"{len(x)} frames ({(len(x) - 1) * timestep_fs:g} fs) are too short for "
                         f"depth_fs={depth_fs:g} ({n_lags} steps of {timestep_fs:g} fs): need at least "
                         f"{n_lags + 3} frames")
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        raise ValueError(f"the series has a non-finite value at frame {frame}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        mask = mask[:-2] & mask[1:-1] & mask[2:]
    return autocorrelation(finite_difference(x, timestep_fs), n_lags, mask=mask)


def ir_spectrum(dipoles, timestep_fs, temperature_K, *, depth_fs=1000.0, window="hann",
                qcf="harmonic", padding=4, mask=None):
    """IR absorption in km mol^-1 per cm^-1 from a dipole series (see the module notes).

    Parameters
    ----------
    dipoles : array-like of shape (n_frames, 3), e*Angstrom
    timestep_fs : float, fs
    temperature_K : float, K
        Temperature of the trajectory, for ``beta`` and the quantum correction.
    depth_fs : float, default=1000.0, fs
        Correlation depth (longest lag).
    window, qcf, padding : see :func:`derivative_spectrum`
    mask : array-like of bool of shape (n_frames,), optional
        Use only pairs of frames inside the same run of True (e.g. one conformer).

    Returns
    -------
    wavenumber : ndarray, cm^-1
    intensity : ndarray, km mol^-1 per cm^-1; a band's integral over wavenumber is in km/mol.
    """
    dipoles = np.asarray(dipoles, dtype=float)
    if dipoles.ndim != 2 or dipoles.shape[1] != 3:
        raise ValueError(f"dipoles must have shape (n_frames, 3), got {dipoles.shape}")
    acf = _derivative_acf(dipoles, timestep_fs, depth_fs, mask)
    wavenumber, density = derivative_spectrum(acf, timestep_fs, temperature_K, window=window, qcf=qcf,
                                              padding=padding)
    return wavenumber, IR_INTENSITY_KM_PER_MOL * density


def raman_spectrum(polarizabilities, timestep_fs, temperature_K, *, depth_fs=1000.0, window="hann",
                   qcf="harmonic", padding=4, mask=None):
    """Isotropic and anisotropic Raman activity spectra in Angstrom^4 amu^-1 per cm^-1.

    Parameters
    ----------
    polarizabilities : array-like of shape (n_frames, 3, 3) or (n_frames, 9), Angstrom^3
    timestep_fs, temperature_K, depth_fs, window, qcf, padding, mask : as in :func:`ir_spectrum`

    Returns
    -------
    wavenumber : ndarray, cm^-1
    isotropic, anisotropic : ndarray, Angstrom^4 amu^-1 per cm^-1; band integrals are ``45 a'^2``
        and ``7 gamma'^2`` (Angstrom^4/amu).
    """
    alpha = np.asarray(polarizabilities, dtype=float)
    if alpha.ndim == 2 and alpha.shape[1] == 9:
        alpha = alpha.reshape(-1, 3, 3)
    if alpha.ndim != 3 or alpha.shape[1:] != (3, 3):
        raise ValueError(f"polarizabilities must have shape (n_frames, 3, 3) or (n_frames, 9), got {alpha.shape}")
    mean, aniso = _isotropic_anisotropic(alpha)
    options = dict(window=window, qcf=qcf, padding=padding)
    wavenumber, iso = derivative_spectrum(_derivative_acf(mean, timestep_fs, depth_fs, mask),
                                          timestep_fs, temperature_K, **options)
    _, ani = derivative_spectrum(_derivative_acf(aniso, timestep_fs, depth_fs, mask),
                                 timestep_fs, temperature_K, **options)
    return wavenumber, 45 * iso, 7 * 1.5 * ani


@dataclass
class Spectrum:
    """An ensemble-averaged spectrum.

    Attributes
    ----------
    wavenumber : ndarray of shape (n,), cm^-1
    mean, stderr : dict of str to ndarray of shape (n,)
        Curves by name ("intensity" for IR in km mol^-1 per cm^-1; "activity", "isotropic",
        "anisotropic" for Raman in Angstrom^4 amu^-1 per cm^-1) and their standard errors
        (NaN with a single sample).
    n_samples : int
        Trajectories or blocks averaged.
    """
    wavenumber: np.ndarray
    mean: dict
    stderr: dict
    n_samples: int


def split_blocks(n_frames, n_blocks):
    """Slices cutting ``n_frames`` into ``n_blocks`` contiguous blocks of equal length (rest dropped)."""
    if n_blocks < 1:
        raise ValueError(f"n_blocks={n_blocks} must be at least 1")
    length = n_frames // n_blocks
    return [slice(i * length, (i + 1) * length) for i in range(n_blocks)]


def _sample_curves(kind, values, timestep_fs, temperature_K, mask, options):
    if kind == "ir":
        wavenumber, intensity = ir_spectrum(values, timestep_fs, temperature_K, mask=mask, **options)
        return wavenumber, {"intensity": intensity}
    if kind == "raman":
        wavenumber, iso, aniso = raman_spectrum(values, timestep_fs, temperature_K, mask=mask, **options)
        return wavenumber, {"activity": iso + aniso, "isotropic": iso, "anisotropic": aniso}
    raise ValueError(f"kind={kind!r} is not 'ir' or 'raman'")


def ensemble_spectrum(series, *, timestep_fs, temperature_K, kind="ir", n_blocks=1, masks=None,
                      sources=None, depth_fs=1000.0, window="hann", qcf="harmonic", padding=4, what=None):
    """Average spectrum over trajectories (or blocks of each) with a per-wavenumber standard error.

    Parameters
    ----------
    series : list of array-like
        Dipoles of shape (n_frames, 3) in e*Angstrom (``kind="ir"``) or polarizabilities of shape
        (n_frames, 3, 3) in Angstrom^3 (``kind="raman"``), all at the same time step.
    timestep_fs : float, fs
    temperature_K : float or sequence of float, K
        One temperature, or one per series.
    kind : {"ir", "raman"}, default="ir"
    n_blocks : int, default=1
        Each series is cut into this many contiguous blocks, each an independent sample.
    masks : list of array-like of bool, optional
        Per series, frames to use (pairs inside one run of True only), e.g. one conformer. Samples with
        no run longer than the depth are skipped with a warning.
    sources : list of str, optional
        Names of the series (file names); a series that cannot be used (too short for the depth,
        non-finite values) raises :class:`~nxplugin.errors.DataFileError` naming it.
    depth_fs, window, qcf, padding : see :func:`ir_spectrum`
    what : str, optional
        What ``masks`` select (e.g. "gauche" for gauche segments), named in warnings and errors.

    Returns
    -------
    Spectrum
        Mean over samples with equal weights, stderr = sample standard deviation / sqrt(n_samples).

    Raises
    ------
    SegmentsTooShortError
        With ``masks``, when no sample has a selected segment longer than the depth.
    """
    if len(series) == 0:
        raise ValueError("no series given")
    temperatures = np.broadcast_to(np.asarray(temperature_K, dtype=float), (len(series),))
    sources = sources if sources is not None else [f"series {i}" for i in range(len(series))]
    options = dict(depth_fs=depth_fs, window=window, qcf=qcf, padding=padding)
    samples, wavenumber, skipped = [], None, []
    for index, values in enumerate(series):
        values = np.asarray(values, dtype=float)
        mask = None if masks is None else np.asarray(masks[index], dtype=bool)
        for block, part in enumerate(split_blocks(len(values), n_blocks)):
            label = sources[index] if n_blocks == 1 else f"{sources[index]} block {block}"
            try:
                wavenumber, curves = _sample_curves(kind, values[part], timestep_fs, temperatures[index],
                                                    None if mask is None else mask[part], options)
            except ValueError as err:
                raise DataFileError(f"{label}: {err}") from err
            if any(np.isnan(curve).any() for curve in curves.values()):
                skipped.append(label)
                continue
            samples.append(curves)
    segment = f"{what} segment" if what else "selected segment"
    if skipped and samples:
        warnings.warn(f"{len(skipped)} sample(s) have no {segment} longer than the depth ({depth_fs:g} fs) "
                      f"and were skipped: {', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}",
                      stacklevel=2)
    if not samples:
        raise SegmentsTooShortError(f"no sample has a {segment} longer than the depth ({depth_fs:g} fs)")
    mean, stderr = {}, {}
    for name in samples[0]:
        stack = np.array([sample[name] for sample in samples])
        mean[name] = stack.mean(axis=0)
        stderr[name] = (stack.std(axis=0, ddof=1) / np.sqrt(len(stack)) if len(stack) > 1
                        else np.full(stack.shape[1], np.nan))
    return Spectrum(wavenumber, mean, stderr, len(samples))


def band_integral(wavenumber, density, low, high):
    """Integral of ``density`` over ``low <= wavenumber <= high`` (cm^-1), rectangle rule on the grid."""
    wavenumber = np.asarray(wavenumber)
    inside = (wavenumber >= low) & (wavenumber <= high)
    return float(np.sum(np.asarray(density)[inside]) * (wavenumber[1] - wavenumber[0]))
