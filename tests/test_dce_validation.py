"""The shipped DCE model, end to end: classical MD spectra at 50 K against the same model's harmonic
spectrum (the spectra engine's absolute units and quantum correction on a real molecule)."""
import os

import numpy as np
import pytest
from ase import units
from ase.md.verlet import VelocityVerlet
from ase.vibrations import Vibrations

from nxplugin.calculator import RPRCalculator
from nxplugin.harmonic import harmonic_ir, optimise
from nxplugin.molecules import dce
from nxplugin.spectra import band_integral, ensemble_spectrum

MODEL = os.path.join(os.path.dirname(__file__), "..", "calculators", "dce-gfn2xtb", "model.npz")
pytestmark = pytest.mark.skipif(not os.path.exists(MODEL), reason="shipped model not built yet")


def normal_mode_start(atoms, temperature_K, rng, tmp_path):
    """Geometry and velocities with exactly k_B T in every normal mode, random phases."""
    vib = Vibrations(atoms, name=str(tmp_path / "vib"), delta=0.01)
    vib.run()
    hessian = vib.get_vibrations().get_hessian_2d()                    # eV/Angstrom^2
    inv_sqrt_m = np.repeat(atoms.get_masses() ** -0.5, 3)
    omega2, modes = np.linalg.eigh(inv_sqrt_m[:, None] * hessian * inv_sqrt_m)
    start = atoms.copy()
    x, v = np.zeros(24), np.zeros(24)
    for k in range(6, 24):                                              # skip translations, rotations
        omega = np.sqrt(omega2[k])                                       # 1/ASE time unit
        amplitude = np.sqrt(2 * units.kB * temperature_K) / omega       # Angstrom amu^(1/2)
        phase = rng.uniform(0, 2 * np.pi)
        x += amplitude * np.cos(phase) * modes[:, k]
        v -= amplitude * omega * np.sin(phase) * modes[:, k]
    start.positions += (x * inv_sqrt_m).reshape(-1, 3)
    start.set_velocities((v * inv_sqrt_m).reshape(-1, 3))
    return start


def test_md_spectrum_at_50K_matches_harmonic_spectrum(tmp_path):
    temperature, dt, n_steps = 50.0, 0.5, 12000
    calc = RPRCalculator(MODEL)
    trans = optimise(dce("trans"), calc, fmax=1e-5)
    wavenumbers, intensities = harmonic_ir(trans)
    rng = np.random.default_rng(0)
    series = []
    for _ in range(4):
        atoms = normal_mode_start(trans, temperature, rng, tmp_path)
        atoms.calc = RPRCalculator(MODEL)
        dipoles = []
        dyn = VelocityVerlet(atoms, timestep=dt * units.fs)
        dyn.attach(lambda: dipoles.append(atoms.get_dipole_moment()), interval=1)
        dyn.run(n_steps)
        series.append(np.array(dipoles))
    spec = ensemble_spectrum(series, timestep_fs=dt, temperature_K=temperature, depth_fs=1500.0)
    checked = 0
    for w, i in zip(wavenumbers, intensities):
        if i < 5 or w < 150:              # strong bands; the 94 cm^-1 torsion needs a longer depth
            continue
        window = max(25.0, 0.02 * w)
        near = np.abs(wavenumbers - w) < window
        lo, hi = w - window, w + window
        band = (spec.wavenumber > lo) & (spec.wavenumber < hi)
        peak = spec.wavenumber[band][np.argmax(spec.mean[band])]
        integral = band_integral(spec.wavenumber, spec.mean, lo, hi)
        assert abs(peak - w) < 0.01 * w, (w, peak)
        assert integral == pytest.approx(intensities[near].sum(), rel=0.10), (w, integral, intensities[near].sum())
        checked += 1
    assert checked >= 5
