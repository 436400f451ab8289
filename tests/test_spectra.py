"""Known answers for nxplugin.analysis.spectra: classical harmonic modes give harmonic intensities."""
import numpy as np
import pytest
import scipy.constants as sc

from nxplugin.analysis import spectra

TIMESTEP_FS = 0.5
WAVENUMBERS = np.array([400.0, 1100.0, 1700.0, 3000.0])  # cm^-1


def normal_coordinates(temperature_K, n_frames=40000, seed=0):
    """Classical thermal cosines, amu^(1/2)*Angstrom, with <Qdot^2> = k_B T exactly."""
    rng = np.random.default_rng(seed)
    omega = 2 * np.pi * spectra.LIGHT_SPEED_CM_PER_FS * WAVENUMBERS  # rad/fs
    amplitude = np.sqrt(2 * spectra.thermal_energy(temperature_K)) / omega
    time = np.arange(n_frames) * TIMESTEP_FS
    return amplitude * np.cos(np.outer(time, omega) + rng.uniform(0, 2 * np.pi, len(omega)))


@pytest.fixture(scope="module")
def derivatives():
    return np.random.default_rng(1).normal(scale=0.2, size=(len(WAVENUMBERS), 3))  # e/amu^(1/2)


def band_integrals(wavenumber, density, half_width=100.0):
    return np.array([spectra.band_integral(wavenumber, density, nu - half_width, nu + half_width)
                     for nu in WAVENUMBERS])


def peak_positions(wavenumber, density):
    peaks = []
    for nu in WAVENUMBERS:
        i = np.argmax(np.where(np.abs(wavenumber - nu) < 100, density, -np.inf))
        left, mid, right = density[i - 1: i + 2]
        offset = 0.5 * (left - right) / (left - 2 * mid + right)  # parabolic interpolation
        peaks.append(wavenumber[i] + offset * (wavenumber[1] - wavenumber[0]))
    return np.array(peaks)


def test_ir_intensity_unit_matches_literature_factor():
    # 1 (D/Angstrom)^2/amu = 42.2561 km/mol; 1 D = 1e-21/c C*m
    debye_in_e_angstrom = 1e-21 / sc.c / sc.e / sc.angstrom
    assert spectra.harmonic_ir_intensity([debye_in_e_angstrom, 0, 0]) == pytest.approx(42.2561, rel=1e-5)


@pytest.mark.parametrize("temperature_K", [50.0, 300.0, 1000.0])
def test_harmonic_modes_give_peaks_and_harmonic_intensities(derivatives, temperature_K):
    dipoles = 0.7 + normal_coordinates(temperature_K) @ derivatives
    wavenumber, intensity = spectra.ir_spectrum(dipoles, TIMESTEP_FS, temperature_K, padding=8)
    assert np.abs(peak_positions(wavenumber, intensity) - WAVENUMBERS).max() < 1.0
    expected = spectra.harmonic_ir_intensity(derivatives)
    np.testing.assert_allclose(band_integrals(wavenumber, intensity), expected, rtol=0.02)


def test_window_depth_and_padding_do_not_move_integrals(derivatives):
    dipoles = normal_coordinates(300.0) @ derivatives
    reference = band_integrals(*spectra.ir_spectrum(dipoles, TIMESTEP_FS, 300.0))
    for options in [dict(window="gaussian"), dict(depth_fs=600.0), dict(depth_fs=1500.0),
                    dict(padding=1), dict(padding=16)]:
        integrals = band_integrals(*spectra.ir_spectrum(dipoles, TIMESTEP_FS, 300.0, **options))
        np.testing.assert_allclose(integrals, reference, rtol=0.01, err_msg=str(options))


def test_quantum_correction_formulas():
    wavenumber, temperature_K = np.array([0.0, 200.0, 1500.0, 3000.0]), 250.0
    x = sc.h * sc.c * (wavenumber / sc.centi) / (sc.k * temperature_K)
    with np.errstate(invalid="ignore", divide="ignore"):
        harmonic = np.where(x == 0, 1.0, x / (1 - np.exp(-x)))
    np.testing.assert_allclose(spectra.quantum_correction(wavenumber, temperature_K), harmonic)
    np.testing.assert_allclose(spectra.quantum_correction(wavenumber, temperature_K, "standard"),
                               2 / (1 + np.exp(-x)))
    np.testing.assert_allclose(spectra.quantum_correction(wavenumber, temperature_K, "schofield"),
                               np.exp(x / 2))
    with pytest.raises(ValueError, match="qcf='kubo'"):
        spectra.quantum_correction(wavenumber, temperature_K, "kubo")


@pytest.mark.parametrize("kind", ["standard", "schofield"])
def test_spectrum_ratio_is_the_correction_relative_to_harmonic(derivatives, kind):
    dipoles = normal_coordinates(300.0, n_frames=8000) @ derivatives
    wavenumber, harmonic = spectra.ir_spectrum(dipoles, TIMESTEP_FS, 300.0, depth_fs=500.0)
    _, corrected = spectra.ir_spectrum(dipoles, TIMESTEP_FS, 300.0, depth_fs=500.0, qcf=kind)
    # absorption ~ Q(omega) (1 - exp(-x)) / x relative to the harmonic (= classical beta*omega^2) one
    ratio = (spectra.quantum_correction(wavenumber, 300.0, kind)
             / spectra.quantum_correction(wavenumber, 300.0, "harmonic"))
    np.testing.assert_allclose(corrected, harmonic * ratio, rtol=1e-10, atol=1e-12 * harmonic.max())


def test_raman_band_integrals_are_harmonic_activities():
    rng = np.random.default_rng(2)
    derivatives = rng.normal(scale=0.5, size=(len(WAVENUMBERS), 3, 3))
    derivatives = derivatives + derivatives.transpose(0, 2, 1)  # Angstrom^2/amu^(1/2), symmetric
    alpha = 5.0 * np.eye(3) + np.einsum("ti,ijk->tjk", normal_coordinates(300.0), derivatives)
    wavenumber, isotropic, anisotropic = spectra.raman_spectrum(alpha.reshape(-1, 9), TIMESTEP_FS, 300.0)
    expected_iso, expected_aniso = spectra.harmonic_raman_activity(derivatives)
    np.testing.assert_allclose(band_integrals(wavenumber, isotropic), expected_iso, rtol=0.02)
    np.testing.assert_allclose(band_integrals(wavenumber, anisotropic), expected_aniso, rtol=0.02)


def test_vector_dipole_not_its_norm():
    # a dipole turning at constant length: its norm is constant, the vector still absorbs
    omega = 2 * np.pi * spectra.LIGHT_SPEED_CM_PER_FS * 1000.0
    time = np.arange(8000) * TIMESTEP_FS
    dipoles = np.stack([np.cos(omega * time), np.sin(omega * time), np.zeros_like(time)], axis=1)
    wavenumber, intensity = spectra.ir_spectrum(dipoles, TIMESTEP_FS, 300.0, depth_fs=500.0)
    assert abs(wavenumber[np.argmax(intensity)] - 1000.0) < 10.0


def test_autocorrelation_matches_direct_sum_and_mask_keeps_pairs_within_runs():
    x = np.random.default_rng(3).normal(size=(50, 3))
    direct = [np.sum(x[: 50 - k] * x[k:]) / (50 - k) for k in range(6)]
    np.testing.assert_allclose(spectra.autocorrelation(x, 5), direct)
    mask = np.zeros(50, bool)
    mask[:10] = mask[20:24] = True
    runs = [x[:10], x[20:24]]
    expected = [sum(np.sum(r[: len(r) - k] * r[k:]) for r in runs if len(r) > k)
                / sum(max(len(r) - k, 0) for r in runs)
                for k in range(10)]
    got = spectra.autocorrelation(x, 10, mask=mask)
    np.testing.assert_allclose(got[:10], expected)
    assert np.isnan(got[10])


def test_ensemble_standard_error_between_trajectories(derivatives):
    series = [normal_coordinates(300.0, n_frames=6000, seed=seed) @ derivatives for seed in range(4)]
    result = spectra.ensemble_spectrum(series, timestep_fs=TIMESTEP_FS, temperature_K=300.0, depth_fs=500.0)
    assert result.n_samples == 4
    samples = [spectra.ir_spectrum(s, TIMESTEP_FS, 300.0, depth_fs=500.0)[1] for s in series]
    np.testing.assert_allclose(result.mean["intensity"], np.mean(samples, axis=0))
    np.testing.assert_allclose(result.stderr["intensity"], np.std(samples, axis=0, ddof=1) / 2)
    blocks = spectra.ensemble_spectrum(series[:1], timestep_fs=TIMESTEP_FS, temperature_K=300.0,
                                       depth_fs=500.0, n_blocks=3)
    assert blocks.n_samples == 3 and np.all(np.isfinite(blocks.stderr["intensity"]))
    single = spectra.ensemble_spectrum(series[:1], timestep_fs=TIMESTEP_FS, temperature_K=300.0,
                                       depth_fs=500.0)
    assert np.all(np.isnan(single.stderr["intensity"]))


def test_bad_series_errors_name_source_and_frame():
    dipoles = np.random.default_rng(4).normal(size=(100, 3))
    with pytest.raises(ValueError, match=r"run1.xyz: 100 frames .* too short for depth_fs=100"):
        spectra.ensemble_spectrum([dipoles], timestep_fs=0.5, temperature_K=300.0, depth_fs=100.0,
                                  sources=["run1.xyz"])
    dipoles[17, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite value at frame 17"):
        spectra.ir_spectrum(dipoles, 0.5, 300.0, depth_fs=10.0)
    with pytest.raises(ValueError, match="shape"):
        spectra.ir_spectrum(dipoles[:, 0], 0.5, 300.0, depth_fs=10.0)
    with pytest.raises(ValueError, match="temperature_K"):
        spectra.ir_spectrum(dipoles[:10], 0.5, 0.0, depth_fs=1.0)
