"""Conformer mixtures and what the MD protocol did to a spectrum: population-weighted sums, the
populations an MD run estimated, and the line broadening of a thermostatted production.

Units: wavenumbers cm^-1, spectra as in :mod:`nxplugin.analysis.spectra`, friction 1/fs, time fs.

A mixture of conformers ``c`` with populations ``p_c`` (standard errors ``e_c``) has the spectrum
``S = sum_c p_c S_c`` with ``var S = sum_c (p_c s_c)^2 + sum_c (S_c e_c)^2`` (``s_c``: the conformer
spectra's standard errors; population errors of a two-state model are fully anti-correlated, which
this sum treats as independent: an upper bound). Langevin dynamics with friction ``gamma`` damps
every vibration's amplitude at ``gamma / 2``, a Lorentzian of FWHM ``gamma / (2 pi c)`` in
wavenumber added to every band (53 cm^-1 at 0.01 fs^-1).
"""
import json
import os

import numpy as np

from nxplugin.analysis.spectra import LIGHT_SPEED_CM_PER_FS, Spectrum, window_function


def mixture(conformer_spectra, populations):
    """Population-weighted sum of conformer spectra.

    Parameters
    ----------
    conformer_spectra : dict of str to Spectrum
        On one wavenumber grid.
    populations : dict of str to (float, float)
        Population and its standard error per conformer (missing conformers count as 0).

    Returns
    -------
    Spectrum
        ``n_samples`` is the smallest of the parts'.
    """
    names = [c for c in conformer_spectra if populations.get(c, (0.0, 0.0))[0] > 0]
    if not names:
        raise ValueError(f"no conformer with a population among {sorted(conformer_spectra)}: {populations}")
    first = conformer_spectra[names[0]]
    mean, stderr = {}, {}
    for key in first.mean:
        mean[key] = sum(populations[c][0] * conformer_spectra[c].mean[key] for c in names)
        variance = sum((populations[c][0] * np.nan_to_num(conformer_spectra[c].stderr[key])) ** 2
                       + (conformer_spectra[c].mean[key] * populations[c][1]) ** 2 for c in names)
        stderr[key] = np.sqrt(variance)
    return Spectrum(first.wavenumber, mean, stderr, min(conformer_spectra[c].n_samples for c in names))


def read_run_files(paths, name):
    """The JSON file ``name`` (e.g. ``populations.json``) that ``nxplugin md`` wrote in the folder of
    the trajectory ``paths``; None if there is none or the files come from several folders."""
    folders = {os.path.dirname(os.path.abspath(p)) for p in paths}
    if len(folders) != 1:
        return None
    path = os.path.join(folders.pop(), name)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def thermostat_broadening(settings):
    """Lorentzian FWHM (cm^-1) a production thermostat adds to every band, or 0.

    Parameters
    ----------
    settings : dict
        ``MDSettings.as_dict()`` of the production (``nxplugin md``'s ``summary.json``).
    """
    if settings.get("thermostat") == "langevin":
        return settings["friction_per_fs"] / (2 * np.pi * LIGHT_SPEED_CM_PER_FS)
    return 0.0


def window_resolution(depth_fs, window="hann", *, padding=16):
    """FWHM (cm^-1) of a spectral line broadened only by the lag window of ``depth_fs`` (its
    resolution): the width of the window's Fourier transform, measured on a fine grid."""
    n_lags = 256
    dt = depth_fs / n_lags
    w = window_function(n_lags, window)
    full = np.concatenate([w, np.zeros(padding * n_lags), w[:0:-1]])   # symmetric in lag
    line = np.fft.rfft(full).real
    wavenumber = np.fft.rfftfreq(len(full), d=dt) / LIGHT_SPEED_CM_PER_FS
    half = np.flatnonzero(line < line[0] / 2)[0]
    crossing = np.interp(line[0] / 2, [line[half], line[half - 1]], [wavenumber[half], wavenumber[half - 1]])
    return 2 * crossing
