"""The `nxplugin spectrum` command and the trajectory reader behind it, on synthetic files."""
import csv
import os

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from nxplugin.analysis import spectra
from nxplugin.analysis import timeseries as trajio
from nxplugin.cli import main
from nxplugin.errors import DataFileError

TIMESTEP_FS = 0.5
# trans-1,2-dichloroethane (C, C, Cl, Cl, H, H, H, H), Angstrom; the C-C bond lies on the z axis
DCE = np.array([[0.000, 0.000, 0.766], [0.000, 0.000, -0.756], [0.000, 1.650, 1.370],
                [0.000, -1.655, -1.381], [0.891, -0.515, 1.148], [-0.891, -0.510, 1.142],
                [0.896, 0.507, -1.144], [-0.895, 0.510, -1.146]])
SECOND_GROUP = [1, 3, 6, 7]
NEWTONX_SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "newtonx-samples",
                              "cs-2.2-bagel-traj1")


def thermal_mode(wavenumber, n_frames, temperature_K=300.0, phase=0.0):
    """Classical cosine with <Qdot^2> = k_B T, amu^(1/2)*Angstrom."""
    omega = 2 * np.pi * spectra.LIGHT_SPEED_CM_PER_FS * wavenumber
    time = np.arange(n_frames) * TIMESTEP_FS
    return np.sqrt(2 * spectra.thermal_energy(temperature_K)) / omega * np.cos(omega * time + phase)


def dce_positions(dihedral_deg):
    """DCE geometries with the Cl-C-C-Cl dihedral of each frame (turning the second CH2Cl group)."""
    turn = np.radians(np.asarray(dihedral_deg) - 180.0)
    c, s = np.cos(turn), np.sin(turn)
    rotation = np.zeros((len(turn), 3, 3))
    rotation[:, 0, 0] = rotation[:, 1, 1] = c
    rotation[:, 0, 1], rotation[:, 1, 0] = -s, s
    rotation[:, 2, 2] = 1
    positions = np.repeat(DCE[None], len(turn), axis=0)
    positions[:, SECOND_GROUP] = np.einsum("fij,aj->fai", rotation, DCE[SECOND_GROUP])
    return positions


def write_trajectory(path, dipoles, positions, *, times=True, polarizabilities=None, temperature_K=300.0):
    frames = []
    for index, (dipole, geometry) in enumerate(zip(dipoles, positions)):
        atoms = Atoms("C2Cl2H4", positions=geometry)
        if times:
            atoms.info.update(time=index * TIMESTEP_FS, timestep_fs=TIMESTEP_FS)
        if temperature_K is not None:
            atoms.info["temperature_K"] = temperature_K
        if polarizabilities is not None:
            atoms.info["polarizability"] = polarizabilities[index].ravel()
        results = {} if dipole is None else {"dipole": dipole}
        atoms.calc = SinglePointCalculator(atoms, energy=0.0, **results)
        frames.append(atoms)
    import ase.io
    ase.io.write(path, frames, format="extxyz")
    return path


D_TRANS = np.array([0.12, -0.05, 0.08])   # e/amu^(1/2), mode at 1000 cm^-1 in trans
D_GAUCHE = np.array([0.0, 0.15, -0.04])   # mode at 1500 cm^-1 in gauche


@pytest.fixture(scope="module")
def dce_runs(tmp_path_factory):
    """Three 1 ps runs: trans first, then gauche (the turn at a random frame), one IR mode each."""
    folder = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    paths = []
    n_frames = 1600
    for run in range(3):
        switch = int(rng.integers(650, 950))
        dihedral = np.where(np.arange(n_frames) < switch, 180.0, 65.0) + rng.normal(scale=5, size=n_frames)
        trans = np.outer(thermal_mode(1000.0, n_frames, phase=rng.uniform(0, 6)), D_TRANS)
        gauche = np.outer(thermal_mode(1500.0, n_frames, phase=rng.uniform(0, 6)), D_GAUCHE)
        dipoles = 0.5 + np.where((np.arange(n_frames) < switch)[:, None], trans, gauche)
        mean_alpha = 6.0 + 0.4 * thermal_mode(1000.0, n_frames, phase=rng.uniform(0, 6))
        alpha = mean_alpha[:, None, None] * np.eye(3)
        paths.append(write_trajectory(folder / f"run{run}.extxyz", dipoles, dce_positions(dihedral),
                                      polarizabilities=alpha))
    return [str(p) for p in paths]


def read_csv(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], np.array(rows[1:], dtype=float)


def test_ir_with_conformers_csv_and_plot(dce_runs, tmp_path, capsys):
    out, png, sticks = tmp_path / "spectrum.csv", tmp_path / "spectrum.png", tmp_path / "harmonic.csv"
    expected_trans = spectra.harmonic_ir_intensity(D_TRANS)
    expected_gauche = spectra.harmonic_ir_intensity(D_GAUCHE)
    sticks.write_text("conformer,wavenumber_cm-1,intensity_km_mol-1\n"
                      f"trans,1000.0,{expected_trans}\ngauche,1500.0,{expected_gauche}\n")
    code = main(["spectrum", *dce_runs, "--depth", "250", "--conformers", "--out", str(out),
                 "--plot", str(png), "--harmonic", str(sticks), "--range", "0", "2500", "--quiet"])
    assert code == 0
    header, table = read_csv(out)
    assert header == ["wavenumber_cm-1", "intensity_km_mol-1_cm", "stderr", "trans_km_mol-1_cm",
                      "trans_stderr", "gauche_km_mol-1_cm", "gauche_stderr"]
    wavenumber = table[:, 0]
    assert np.all(np.isfinite(table[1:, 2])) and np.all(table[1:, 2] > 0)
    trans, gauche = table[:, 3], table[:, 5]
    # each conformer's segments show its own band with its harmonic intensity, and not the other one
    assert spectra.band_integral(wavenumber, trans, 800, 1200) == pytest.approx(expected_trans, rel=0.05)
    assert spectra.band_integral(wavenumber, gauche, 1300, 1700) == pytest.approx(expected_gauche, rel=0.05)
    assert spectra.band_integral(wavenumber, trans, 1300, 1700) < 0.02 * expected_gauche
    assert spectra.band_integral(wavenumber, gauche, 800, 1200) < 0.02 * expected_trans
    printed = capsys.readouterr().out
    assert "dihedral atoms (2, 0, 1, 3)" in printed and "3 transitions" in printed
    assert png.stat().st_size > 10000


def test_raman_columns(dce_runs, tmp_path):
    out = tmp_path / "raman.csv"
    assert main(["spectrum", *dce_runs[:2], "--raman", "--depth", "250", "--out", str(out), "--quiet"]) == 0
    header, table = read_csv(out)
    assert header == ["wavenumber_cm-1", "activity_A4_amu-1_cm", "stderr", "isotropic_A4_amu-1_cm",
                      "isotropic_stderr", "anisotropic_A4_amu-1_cm", "anisotropic_stderr"]
    # alpha = (6 + 0.4 Q) * 1: isotropic activity 45 * 0.4^2, no anisotropy
    assert spectra.band_integral(table[:, 0], table[:, 3], 800, 1200) == pytest.approx(45 * 0.16, rel=0.03)
    assert np.abs(table[:, 5]).max() < 1e-10


def test_file_without_time_needs_timestep_and_single_file_uses_blocks(tmp_path, capsys):
    n_frames = 2500
    dipoles = np.outer(thermal_mode(1200.0, n_frames), D_TRANS)
    path = str(write_trajectory(tmp_path / "plain.xyz", dipoles, dce_positions(np.full(n_frames, 180.0)),
                                times=False, temperature_K=None))
    short = str(write_trajectory(tmp_path / "short.xyz", dipoles[:20], dce_positions(np.full(20, 180.0)),
                                 times=False, temperature_K=None))
    out = tmp_path / "s.csv"
    assert main(["spectrum", short, "--out", str(out), "--depth", "2", "--quiet"]) == 2
    assert "short.xyz: the frames store no time step" in capsys.readouterr().err
    assert main(["spectrum", short, "--out", str(out), "--depth", "2", "--timestep", "0.5"]) == 2
    assert "short.xyz: no temperature stored" in capsys.readouterr().err
    assert main(["spectrum", path, "--out", str(out), "--depth", "150", "--timestep", "0.5",
                 "--temperature", "300"]) == 0
    assert "4 samples" in capsys.readouterr().out
    header, table = read_csv(out)
    integral = spectra.band_integral(table[:, 0], table[:, 1], 1000, 1400)
    assert integral == pytest.approx(spectra.harmonic_ir_intensity(D_TRANS), rel=0.03)


def test_bad_files_name_file_and_frame(tmp_path, capsys):
    n_frames = 50
    positions = dce_positions(np.full(n_frames, 180.0))
    dipoles = list(np.random.default_rng(1).normal(size=(n_frames, 3)))
    dipoles[7] = None
    missing = write_trajectory(tmp_path / "missing.extxyz", dipoles, positions)
    with pytest.raises(DataFileError, match=r"missing.extxyz: frame 7 has no dipole"):
        trajio.read_timeseries(missing)
    dipoles[7] = np.array([0.1, np.nan, 0.0])
    nan = write_trajectory(tmp_path / "nan.extxyz", dipoles, positions)
    with pytest.raises(DataFileError, match=r"nan.extxyz: frame 7: dipole is not finite"):
        trajio.read_timeseries(nan)
    dipoles[7] = np.zeros(3)
    good = write_trajectory(tmp_path / "good.extxyz", dipoles, positions)
    with pytest.raises(ValueError, match=r"good.extxyz: 50 frames .* too short for depth_fs=1000"):
        spectra.ensemble_spectrum([trajio.read_timeseries(good).dipoles], timestep_fs=0.5,
                                  temperature_K=300.0, sources=[good])
    assert main(["spectrum", str(good), "--quiet", "--out", str(tmp_path / "s.csv")]) == 2
    assert "error: " + str(good) + ": 50 frames (24.5 fs) are too short" in capsys.readouterr().err
    with pytest.raises(DataFileError, match="frames are 0.5 fs apart but timestep_fs=1 was given"):
        trajio.read_timeseries(good, timestep_fs=1.0)
    import ase.io
    frames = ase.io.read(good, ":")
    frames[12].info["time"] += 0.2
    ase.io.write(tmp_path / "uneven.extxyz", frames, format="extxyz")
    with pytest.raises(DataFileError, match=r"uneven.extxyz: frame 12 is 0.7 fs after frame 11"):
        trajio.read_timeseries(tmp_path / "uneven.extxyz")


def test_truncated_last_frame_keeps_complete_frames(tmp_path):
    n_frames = 20
    path = write_trajectory(tmp_path / "cut.extxyz", np.ones((n_frames, 3)),
                            dce_positions(np.full(n_frames, 180.0)))
    text = path.read_text()
    path.write_text(text[: len(text) - 60])
    with pytest.warns(UserWarning, match=r"cut.extxyz: frame 19 cannot be read .* 19 complete frames"):
        trajectory = trajio.read_timeseries(path)
    assert trajectory.n_frames == 19 and trajectory.timestep_fs == 0.5


def test_cli_errors_are_clean(tmp_path, capsys):
    assert main(["spectrum", str(tmp_path / "absent.extxyz"), "--quiet"]) == 2
    assert "absent.extxyz" in capsys.readouterr().err
    bad = tmp_path / "harmonic.csv"
    bad.write_text("mode,freq\n1,2\n")
    with pytest.raises(DataFileError, match="expected columns"):
        trajio.read_harmonic_csv(bad)


@pytest.mark.skipif(not os.path.isdir(NEWTONX_SAMPLE), reason="shared Newton-X sample absent")
def test_newtonx_folder_is_read_through_newtonx_reader(capsys):
    trajectory = trajio.read_timeseries(NEWTONX_SAMPLE, dipoles=False)
    assert trajectory.timestep_fs == pytest.approx(0.5)
    assert trajectory.positions.shape[1:] == (14, 3)
    assert main(["spectrum", NEWTONX_SAMPLE, "--quiet", "--temperature", "300"]) == 2
    assert "frame 0 has no dipole" in capsys.readouterr().err


def _alternating_run(path, segment_frames, n_segments, rng):
    """One file alternating trans (mode at 1000 cm^-1) and gauche (1500 cm^-1) every segment_frames."""
    n_frames = segment_frames * n_segments
    is_trans = (np.arange(n_frames) // segment_frames) % 2 == 0
    dihedral = np.where(is_trans, 180.0, 65.0) + rng.normal(scale=5, size=n_frames)
    trans = np.outer(thermal_mode(1000.0, n_frames, phase=rng.uniform(0, 6)), D_TRANS)
    gauche = np.outer(thermal_mode(1500.0, n_frames, phase=rng.uniform(0, 6)), D_GAUCHE)
    return write_trajectory(path, 0.5 + np.where(is_trans[:, None], trans, gauche), dce_positions(dihedral))


def test_conformers_with_segments_shorter_than_depth_fall_back_with_a_note(tmp_path, capsys):
    # 600-frame segments (299.5 fs) at 0.5 fs: shorter than --depth 1000 fs, long enough for 298.5 fs
    rng = np.random.default_rng(1)
    runs = [str(_alternating_run(tmp_path / "alt.extxyz", 600, 6, rng))]
    out, png = tmp_path / "spectrum.csv", tmp_path / "spectrum.png"
    args = ["spectrum", *runs, "--depth", "1000", "--conformers", "--out", str(out), "--quiet"]
    assert main(args + ["--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert ("note: trans: the longest trans segment is 299.5 fs, shorter than --depth 1000 fs; its spectrum "
            "uses depth 298.5 fs") in printed
    assert "note: gauche: the longest gauche segment is 299.5 fs" in printed
    header, table = read_csv(out)
    assert header[3:] == ["trans_km_mol-1_cm", "trans_stderr", "gauche_km_mol-1_cm", "gauche_stderr"]
    wavenumber, trans, gauche = table[:, 0], table[:, 3], table[:, 5]
    # the coarser conformer spectra still hold their own band (wider: 300 fs gives ~110 cm^-1 resolution)
    assert spectra.band_integral(wavenumber, trans, 700, 1300) == pytest.approx(
        spectra.harmonic_ir_intensity(D_TRANS), rel=0.15)
    assert spectra.band_integral(wavenumber, gauche, 1200, 1800) == pytest.approx(
        spectra.harmonic_ir_intensity(D_GAUCHE), rel=0.15)
    assert png.stat().st_size > 10000
    # segments too short even for the shortest depth: no conformer panel, the all-frames spectrum stands
    short = [str(_alternating_run(tmp_path / "short.extxyz", 200, 12, rng))]
    assert main(["spectrum", *short, "--depth", "400", "--conformers", "--out", str(out), "--quiet",
                 "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "note: trans: no trans segment is longer than 99.5 fs, too short for a spectrum" in printed
    assert "the all-frames spectrum stands" in printed
    header, _ = read_csv(out)
    assert header == ["wavenumber_cm-1", "intensity_km_mol-1_cm", "stderr"]


def test_plot_range_follows_intensity_and_band_integral_matches_it(dce_runs, tmp_path, capsys):
    from nxplugin.analysis.plots import auto_range, plot_spectrum

    trajectories = [trajio.read_timeseries(path) for path in dce_runs]
    spectrum = spectra.ensemble_spectrum([t.dipoles for t in trajectories], timestep_fs=TIMESTEP_FS,
                                         temperature_K=300.0, depth_fs=250)
    low, high = auto_range(spectrum, "intensity")
    assert low == 0 and 1500 < high <= 1800 < spectrum.wavenumber[-1]     # modes at 1000 and 1500 cm^-1
    figure = plot_spectrum(spectrum, conformer_spectra={"trans": spectrum}, title="quantum correction: harmonic")
    assert figure.axes[0].get_xlim() == (low, high)
    assert figure.axes[0].get_ylim() == figure.axes[1].get_ylim()           # shared y scale, said so
    assert "same y scale" in figure._suptitle.get_text()
    assert main(["spectrum", *dce_runs, "--depth", "250", "--out", str(tmp_path / "s.csv"), "--quiet"]) == 0
    assert f"band integral 0-{high:g} cm^-1 (all)" in capsys.readouterr().out
