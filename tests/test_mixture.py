"""Conformer mixtures and thermostat broadening (nxplugin.analysis.mixture)."""
import numpy as np
import pytest

from nxplugin.analysis import mixture
from nxplugin.analysis.spectra import LIGHT_SPEED_CM_PER_FS, Spectrum


def test_mixture_weights_conformer_spectra_and_propagates_errors():
    w = np.linspace(0, 100, 11)
    trans = Spectrum(w, {"intensity": np.full(11, 2.0)}, {"intensity": np.full(11, 0.1)}, 8)
    gauche = Spectrum(w, {"intensity": np.full(11, 10.0)}, {"intensity": np.full(11, np.nan)}, 1)
    mixed = mixture.mixture({"trans": trans, "gauche": gauche}, {"trans": (0.8, 0.05), "gauche": (0.2, 0.05)})
    np.testing.assert_allclose(mixed.mean["intensity"], 0.8 * 2 + 0.2 * 10)
    np.testing.assert_allclose(mixed.stderr["intensity"], np.sqrt((0.8 * 0.1) ** 2 + (2 * 0.05) ** 2 + (10 * 0.05) ** 2))
    assert mixed.n_samples == 1
    only = mixture.mixture({"trans": trans, "gauche": gauche}, {"trans": (1.0, 0.0), "gauche": (0.0, 0.0)})
    np.testing.assert_allclose(only.mean["intensity"], 2.0)
    with pytest.raises(ValueError, match="no conformer with a population"):
        mixture.mixture({"trans": trans}, {"gauche": (1.0, 0.0)})


def test_thermostat_broadening_is_gamma_over_2_pi_c():
    assert mixture.thermostat_broadening({"thermostat": "langevin", "friction_per_fs": 0.01}) == \
        pytest.approx(53.09, abs=0.01)
    assert mixture.thermostat_broadening({"thermostat": "nve"}) == 0.0


def test_window_resolution_of_a_boxcar_is_the_sinc_width():
    depth = 1000.0                                             # fs: full lag range 2 * depth
    sinc_fwhm = 1.2067 / (2 * depth) / LIGHT_SPEED_CM_PER_FS   # first zero-free sinc FWHM, cm^-1
    assert mixture.window_resolution(depth, "boxcar") == pytest.approx(sinc_fwhm, rel=0.01)
    assert mixture.window_resolution(depth, "hann") > mixture.window_resolution(depth, "boxcar")
    assert mixture.window_resolution(2 * depth) == pytest.approx(mixture.window_resolution(depth) / 2, rel=1e-3)
