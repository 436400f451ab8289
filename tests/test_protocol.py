"""The MD protocol for spectra (nxplugin.md.protocol): equilibrium populations, canonical starts, NVE
production, and what a Langevin production does to band widths."""
import json

import ase.io
import numpy as np
import pytest
import scipy.constants as sc

from nxplugin.analysis import spectra
from nxplugin.md import protocol
from nxplugin.md.dynamics import initial_conditions
from nxplugin.md.ensemble import run_ensemble
from nxplugin.md.settings import MDSettings
from nxplugin.md.trajfile import trajectory_path


def markov_chain(n_series, length, p_tg, p_gt, start_gauche, rng):
    labels = np.empty((n_series, length), dtype=int)
    labels[:, 0] = np.arange(n_series) < start_gauche * n_series
    for t in range(1, length):
        u = rng.random(n_series)
        flip = np.where(labels[:, t - 1] == 0, u < p_tg, u < p_gt)
        labels[:, t] = np.where(flip, 1 - labels[:, t - 1], labels[:, t - 1])
    return list(labels)


def test_two_state_populations_forget_where_the_replicas_started():
    rng = np.random.default_rng(3)
    truth = 0.005 / (0.005 + 0.02)                                # stationary gauche population 0.2
    series = markov_chain(200, 100, 0.005, 0.02, start_gauche=0.5, rng=rng)  # half start in gauche,
    # runs of 2.5 relaxation times: the fraction of frames remembers the start
    estimate = protocol.two_state_populations(series, seed=1)
    gauche, stderr = estimate["populations"]["gauche"]
    assert abs(gauche - truth) < 3 * stderr and stderr < 0.05
    assert estimate["frame_fractions"]["gauche"] > truth + 3 * stderr     # what the plain fraction gives
    assert estimate["populations"]["trans"][0] == pytest.approx(1 - gauche)


def test_two_state_populations_without_transitions_fall_back_and_say_so():
    estimate = protocol.two_state_populations([np.zeros(10, int), np.ones(10, int)])
    assert "fraction of frames" in estimate["method"] and estimate["populations"]["gauche"][0] == 0.5


@pytest.mark.parametrize("p_gauche, n_traj, want", [(0.19, 4, {"trans": 3, "gauche": 1}),
                                                    (0.5, 4, {"trans": 2, "gauche": 2}),
                                                    (0.19, 1, {"trans": 1, "gauche": 0}),
                                                    (0.0, 3, {"trans": 3, "gauche": 0}),
                                                    (0.19, 20, {"trans": 16, "gauche": 4})])
def test_allocation_follows_the_populations(p_gauche, n_traj, want):
    assert protocol.allocate({"trans": (1 - p_gauche, 0), "gauche": (p_gauche, 0)}, n_traj) == want


def _mean_temperature(paths, n_atoms):
    """Per trajectory: time-averaged kinetic temperature (K) with 3N - 3 degrees of freedom."""
    temperatures = []
    for path in paths:
        ekin = np.array([f.info["ekin"] for f in ase.io.read(path, ":")])
        temperatures.append(2 * ekin.mean() / ((3 * n_atoms - 3) * sc.k / sc.e))
    return np.mean(temperatures), np.std(temperatures, ddof=1) / np.sqrt(len(temperatures))


def test_nve_production_from_equilibrated_starts_is_canonical(tmp_path, dce_model):
    temperature = 100.0
    eq = MDSettings(temperature_K=temperature, n_steps=1000, interval=40, seed=5)
    trans = initial_conditions(dce_model, 48, temperature, seed=5)[::2]      # the test model knows trans only
    protocol.equilibrate(dce_model, trans, tmp_path / "run", eq)
    replicas = protocol.read_equilibration(tmp_path / "run", 24)
    starts = protocol.production_starts(replicas, None, None, 16, seed=5)
    positions = {tuple(np.round(f.positions.ravel(), 6)) for frames in replicas for f in frames[len(frames) // 2:]}
    assert all(tuple(np.round(s.positions.ravel(), 6)) in positions for s in starts)   # drawn from equilibration
    production = MDSettings(temperature_K=temperature, n_steps=600, interval=10, thermostat="nve")
    run_ensemble(dce_model, starts, tmp_path / "run", production)
    paths = [trajectory_path(tmp_path / "run", k) for k in range(16)]
    mean, stderr = _mean_temperature(paths, 8)
    assert abs(mean - temperature) < 3 * stderr, (mean, stderr)
    for path in paths:          # NVE: each trajectory keeps its energy (Verlet's O(dt^2) wobble, no drift)
        frames = ase.io.read(path, ":")
        etot, ekin = (np.array([f.info[key] for f in frames]) for key in ("etot", "ekin"))
        quarter = len(etot) // 4
        assert np.ptp(etot) < 0.03 * ekin.mean()
        assert abs(etot[-quarter:].mean() - etot[:quarter].mean()) < 0.005 * ekin.mean()
    # the old protocol (NVE from the minimum with kinetic energy at T) does not pass this check
    run_ensemble(dce_model, trans[:16], tmp_path / "cold", production)
    cold_mean, cold_err = _mean_temperature([trajectory_path(tmp_path / "cold", k) for k in range(16)], 8)
    assert abs(cold_mean - temperature) > 5 * max(cold_err, stderr)


def test_md_command_equilibrates_estimates_populations_and_runs_nve(tmp_path):
    from nxplugin.cli import main

    out = tmp_path / "md"
    assert main(["md", "--time", "0.1", "--n-traj", "2", "--equilibration", "0.4", "--equilibration-replicas", "4",
                 "--interval", "4", "--out", str(out)]) == 0
    populations = json.loads((out / "populations.json").read_text())
    assert set(populations["populations"]) == {"trans", "gauche"} and populations["n_replicas"] == 4
    assert "Markov" in populations["method"] or "fraction" in populations["method"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["thermostat"] == "nve" and summary["populations"] == populations
    for k in range(2):
        frames = ase.io.read(trajectory_path(out, k), ":")
        assert len(frames) == 51                                   # 200 steps, every 4th
        etot = [f.info["etot"] for f in frames]
        assert np.ptp(etot) < 5e-3                                 # eV over 100 fs of NVE
    assert (out / "equilibration" / "traj_003.extxyz").exists()


def test_spectrum_weights_conformers_by_md_populations_and_flags_langevin_broadening(tmp_path, capsys):
    from nxplugin.cli import main

    out = tmp_path / "md"
    assert main(["md", "--time", "0.4", "--n-traj", "3", "--equilibration", "0.4", "--equilibration-replicas", "6",
                 "--out", str(out)]) == 0
    populations = json.loads((out / "populations.json").read_text())["populations"]
    capsys.readouterr()
    csv = tmp_path / "s.csv"
    files = [str(p) for p in sorted(out.glob("traj_*.extxyz"))]
    assert main(["spectrum", *files, "--conformers", "--depth", "250", "--out", str(csv), "--quiet"]) == 0
    printed = capsys.readouterr().out
    header = csv.read_text().splitlines()[0].split(",")
    table = dict(zip(header, np.loadtxt(csv, delimiter=",", skiprows=1, unpack=True)))
    if {"trans_km_mol-1_cm", "gauche_km_mol-1_cm"} <= set(table):
        assert "from 6 x 0.4 ps langevin equilibration" in printed
        want = populations["trans"][0] * table["trans_km_mol-1_cm"] + populations["gauche"][0] * table["gauche_km_mol-1_cm"]
        np.testing.assert_allclose(table["intensity_km_mol-1_cm"], want, rtol=1e-6, atol=1e-9)
    else:                                    # a conformer without a spectrum: said, and the frame average stays
        assert "no spectrum of" in printed
    assert "production: nve" in printed
    assert main(["spectrum", *files, "--conformers", "--populations", "frames", "--depth", "250",
                 "--out", str(csv), "--quiet"]) == 0
    assert "where the trajectories happened to be" in capsys.readouterr().out
    langevin = tmp_path / "langevin"
    assert main(["md", "--time", "1.2", "--n-traj", "2", "--equilibration", "0", "--thermostat", "langevin",
                 "--interval", "4", "--out", str(langevin)]) == 0
    langevin_files = [str(p) for p in sorted(langevin.glob("traj_*.extxyz"))]
    with pytest.warns(UserWarning, match="broadens every band by 53 cm\\^-1"):      # resolution 33 cm^-1
        assert main(["spectrum", *langevin_files, "--depth", "1000", "--out", str(csv), "--quiet"]) == 0
    assert main(["spectrum", *langevin_files, "--depth", "250", "--out", str(csv), "--quiet"]) == 0   # 133 cm^-1
    assert "Lorentzian of FWHM 53 cm^-1" in capsys.readouterr().out


def _fwhm(wavenumber, density, low, high):
    """Full width at half maximum (cm^-1) of the band with its peak in [low, high]."""
    inside = (wavenumber >= low) & (wavenumber <= high)
    peak = np.flatnonzero(inside)[np.argmax(density[inside])]
    half = density[peak] / 2
    left, right = peak, peak
    while density[left] > half:
        left -= 1
    while density[right] > half:
        right += 1
    # linear interpolation of the crossings
    x_left = np.interp(half, [density[left], density[left + 1]], [wavenumber[left], wavenumber[left + 1]])
    x_right = np.interp(half, [density[right], density[right - 1]], [wavenumber[right], wavenumber[right - 1]])
    return x_right - x_left


@pytest.mark.slow
def test_langevin_production_broadens_bands_by_gamma_over_2_pi_c(tmp_path, dce_model):
    temperature, friction = 100.0, 0.02                            # 1/fs
    eq = MDSettings(temperature_K=temperature, n_steps=1000, interval=50, seed=9)
    protocol.equilibrate(dce_model, initial_conditions(dce_model, 32, temperature, seed=9)[::2], tmp_path, eq)
    starts = protocol.production_starts(protocol.read_equilibration(tmp_path, 16), None, None, 16, seed=9)
    widths = {}
    for thermostat in ("nve", "langevin"):
        settings = MDSettings(temperature_K=temperature, n_steps=8000, interval=4, thermostat=thermostat,
                              friction_per_fs=friction, seed=9)
        run_ensemble(dce_model, starts, tmp_path / thermostat, settings)
        dipoles = [np.array([f.get_dipole_moment() for f in ase.io.read(trajectory_path(tmp_path / thermostat, k), ":")])
                   for k in range(16)]
        spectrum = spectra.ensemble_spectrum(dipoles, timestep_fs=2.0, temperature_K=temperature, depth_fs=2000)
        widths[thermostat] = _fwhm(spectrum.wavenumber, spectrum.mean["intensity"], 600, 900)
    expected = friction / (2 * np.pi * spectra.LIGHT_SPEED_CM_PER_FS)   # 106 cm^-1
    assert widths["langevin"] - widths["nve"] == pytest.approx(expected, rel=0.25), widths
