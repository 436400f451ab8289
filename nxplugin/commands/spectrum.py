"""IR (or, with --raman, Raman) spectrum in absolute units from MD trajectories with dipoles.

FILES are trajectories that ase.io.read reads (the extxyz of `nxplugin md`, or any ASE file with the
dipole in e*Angstrom as a calculator result), or Newton-X trajectory folders. Each file is one
trajectory; the spectrum is their average, with a standard error between files (or between blocks
of a single file).

i-PI runs: give the extras files with the dipole (extra_type='dipole', e*bohr as `nxplugin ipi`
sends it) of all beads, plus the positions xyz files for --conformers; the files of one run are
one trajectory of bead-averaged (centroid) values. i-PI stores steps, not times: give --timestep
(i-PI's <timestep> times the trajectory stride) and --temperature. For TRPMD and PA-CMD the
correlation of the bead-averaged dipole approximates the Kubo-transformed quantum one, for which
the harmonic factor x/(1-exp(-x)), x = hbar*omega/kT, is exact: keep --qcf harmonic (the default).

Units: time fs, temperature K, wavenumber cm^-1. IR absorption in km mol^-1 per cm^-1, so that a
band's integral is its intensity in km/mol, comparable with harmonic intensities. Raman activity
in Angstrom^4 amu^-1 per cm^-1 (isotropic 45 a'^2 + anisotropic 7 gamma'^2 per band), from the
polarizability (Angstrom^3) stored with each frame.

CSV columns: wavenumber_cm-1, intensity_km_mol-1_cm, stderr (IR) or wavenumber_cm-1,
activity_A4_amu-1_cm, stderr, isotropic_A4_amu-1_cm, isotropic_stderr, anisotropic_A4_amu-1_cm,
anisotropic_stderr (Raman); with --conformers also trans_<unit>, trans_stderr, gauche_<unit>,
gauche_stderr from the trans and gauche segments.

Conformer mixtures (--conformers): the all-frames spectrum is the population-weighted sum of the
trans and gauche spectra. The populations are the equilibrium estimate `nxplugin md` wrote next to
the trajectories (populations.json, from its equilibration), or with --populations frames (or without
that file) the fraction of frames in each conformer; the command prints which, and where from.
Line widths: when `nxplugin md`'s summary.json says the production ran under Langevin, the command
states the Lorentzian FWHM gamma/(2 pi c) the thermostat adds to every band (53 cm^-1 at 0.01/fs)
and warns when it exceeds the window's resolution.

example:
  nxplugin spectrum run*.extxyz --depth 1000 --conformers --plot spectrum.png --harmonic harmonic.csv
  nxplugin spectrum trpmd.dip_* trpmd.pos_*.xyz --timestep 1 --temperature 300 --conformers
"""
import warnings

from nxplugin.commands._options import (OptionError, float_at_least, nonnegative_float, nonnegative_int,
                                        positive_float, positive_int)

UNIT_SUFFIX = {"ir": "km_mol-1_cm", "raman": "A4_amu-1_cm"}
#: with one file and no --blocks: this many blocks when each is longer than twice the depth
DEFAULT_BLOCKS = 4
#: shortest correlation depth (fs) used for a conformer whose segments are shorter than --depth
MIN_CONFORMER_DEPTH_FS = 250.0


def add_arguments(parser):
    add = parser.add_argument
    add("files", nargs="+", metavar="FILES", help="trajectory files, Newton-X folders or i-PI output files")
    add("--timestep", type=positive_float("fs"), metavar="FS",
        help="time between frames in fs (needed when the files store no time; checked otherwise)")
    add("--temperature", type=positive_float("K"), metavar="K",
        help="temperature in K for the quantum correction (default: info['temperature_K'] of the files)")
    add("--window", choices=["hann", "gaussian", "boxcar"], default="hann",
        help="one-sided lag window, 1 at t = 0 (default: hann)")
    add("--qcf", choices=["harmonic", "standard", "schofield"], default="harmonic",
        help="quantum correction factor (default: harmonic, exact for harmonic modes, and the exact "
             "Kubo-to-quantum factor for the centroid dipoles of TRPMD/PA-CMD runs)")
    add("--depth", type=positive_float("fs"), default=1000.0, metavar="FS",
        help="correlation depth in fs (default: 1000); sets the resolution, about 1/(c*depth)")
    add("--padding", type=float_at_least(1), default=4.0, metavar="N",
        help="zero-padding factor of the correlation function (default: 4)")
    add("--blocks", type=positive_int(), metavar="N",
        help=f"cut each file into N blocks for the error bars (default: 1 with several files; "
             f"{DEFAULT_BLOCKS} with one file when the blocks are longer than twice the depth)")
    add("--raman", action="store_true",
        help="Raman activity from the polarizability (Angstrom^3) instead of IR from the dipole")
    add("--conformers", action="store_true",
        help="trans/gauche populations, transitions and spectra of the trans and gauche segments "
             "(X-CH2-CH2-X molecules)")
    add("--dihedral", type=nonnegative_int(), nargs=4, metavar=("I", "J", "K", "L"),
        help="0-based atom indices of the X-C-C-X dihedral (default: inferred from the bonds)")
    add("--harmonic", metavar="CSV",
        help="overlay harmonic sticks (columns conformer, wavenumber_cm-1, intensity_km_mol-1) on the plot")
    add("--range", "--xlim", dest="range", type=nonnegative_float("cm^-1"), nargs=2, metavar=("MIN", "MAX"),
        help="wavenumber range of the plot and of the printed band integral, cm^-1 (default: where the "
             "spectrum has intensity)")
    add("--populations", choices=["auto", "frames"], default="auto",
        help="with --conformers, how the all-frames spectrum weights the conformers: auto (default) uses the "
             "equilibrium populations 'nxplugin md' wrote next to the trajectories (populations.json), else the "
             "fraction of frames; frames always uses the fraction of frames")
    add("--out", default="spectrum.csv", metavar="CSV", help="output CSV (default: spectrum.csv)")
    add("--plot", metavar="PNG", help="also draw the spectrum to this image file")
    add("--quiet", action="store_true", help="no progress bar")


def _common_settings(trajectories, temperature_K):
    from nxplugin.errors import DataFileError

    first = trajectories[0]
    temperatures = []
    for trajectory in trajectories:
        if abs(trajectory.timestep_fs - first.timestep_fs) > 1e-6 * first.timestep_fs:
            raise DataFileError(f"{trajectory.source}: frames are {trajectory.timestep_fs:g} fs apart, but "
                                f"those of {first.source} are {first.timestep_fs:g} fs apart")
        if trajectory.temperature_K is None and temperature_K is None:
            raise DataFileError(f"{trajectory.source}: no temperature stored (info['temperature_K']); "
                                f"give --temperature K")
        temperatures.append(temperature_K if temperature_K is not None else trajectory.temperature_K)
    return first.timestep_fs, temperatures


def _n_blocks(args, trajectories, timestep_fs):
    if args.blocks is not None:
        return args.blocks
    if len(trajectories) > 1:
        return 1
    long_enough = trajectories[0].n_frames // DEFAULT_BLOCKS > 2 * args.depth / timestep_fs
    return DEFAULT_BLOCKS if long_enough else 1


def _conformer_labels(args, trajectories):
    from nxplugin.analysis import conformers
    from nxplugin.errors import DataFileError

    labels, found = [], []
    for trajectory in trajectories:
        if trajectory.positions is None:
            raise DataFileError(f"{trajectory.source}: the number of atoms changes between frames")
        # inferred per file: files from different sources may list the atoms in different orders
        indices = args.dihedral or conformers.find_dihedral(trajectory.numbers, trajectory.positions[0])
        found.append(tuple(indices))
        labels.append(conformers.classify(conformers.dihedral_series(trajectory.positions, indices)))
    return found[0] if len(set(found)) == 1 else "per file " + ", ".join(map(str, found)), labels


def _conformer_spectrum(conformer, series, masks, options):
    """Spectrum of one conformer's segments and a note when --depth had to be shortened (or None).

    Segments shorter than the depth give no spectrum; the depth is then shortened to the longest
    segment (at least MIN_CONFORMER_DEPTH_FS). Returns (None, note) when even that is not possible.
    The note is (printed text, short text for the plot).
    """
    from nxplugin.analysis import spectra
    from nxplugin.analysis.conformers import longest_run

    try:
        return spectra.ensemble_spectrum(series, masks=masks, what=conformer, **options), None
    except spectra.SegmentsTooShortError:
        pass
    dt = options["timestep_fs"]
    longest = max(longest_run(mask[part]) for mask in masks
                  for part in spectra.split_blocks(len(mask), options["n_blocks"]))
    # the derivative loses a frame at each end of a segment: M lags need M + 3 frames
    depth = (longest - 3) * dt
    longest_fs = max(longest - 1, 0) * dt
    if depth < MIN_CONFORMER_DEPTH_FS:
        return None, (f"{conformer}: no {conformer} segment is longer than {longest_fs:g} fs, too short for a "
                      f"spectrum (at least {MIN_CONFORMER_DEPTH_FS + 2 * dt:g} fs); no {conformer} spectrum, "
                      f"the all-frames spectrum stands",
                      f"no {conformer} panel: {conformer} segments <= {longest_fs:g} fs, too short")
    resolution = 1 / (spectra.LIGHT_SPEED_CM_PER_FS * depth)
    note = (f"{conformer}: the longest {conformer} segment is {longest_fs:g} fs, shorter than --depth "
            f"{options['depth_fs']:g} fs; its spectrum uses depth {depth:g} fs (resolution about "
            f"{resolution:.0f} cm^-1)",
            f"depth {depth:g} fs (resolution ~{resolution:.0f} cm^-1): {conformer} segments <= {longest_fs:g} fs")
    return spectra.ensemble_spectrum(series, masks=masks, what=conformer, **dict(options, depth_fs=depth)), note


def _weighted_by_populations(args, spectrum, conformer_spectra, fractions):
    """The all-frames spectrum as the population-weighted sum of the conformer spectra, with the
    populations of ``nxplugin md``'s equilibration when there are some (printed with their source)."""
    import numpy as np

    from nxplugin.analysis.mixture import mixture, read_run_files
    from nxplugin.analysis.spectra import Spectrum

    estimate = read_run_files(args.files, "populations.json") if args.populations == "auto" else None
    if estimate is None:
        print("populations: the fraction of frames in each conformer (" + ", ".join(
            f"{c} {p:.3f}" for c, (p, _) in fractions.items()) + "): where the trajectories happened to be, "
            "not an equilibrium estimate" + ("" if args.populations == "frames" else
                                             " (no populations.json from 'nxplugin md' next to the files)"))
        return spectrum
    populations = {c: tuple(v) for c, v in estimate["populations"].items()}
    print("populations: " + ", ".join(f"{c} {p:.3f} ± {e:.3f}" for c, (p, e) in populations.items())
          + f" from {estimate.get('source', 'populations.json')} ({estimate.get('method', '')}, "
          f"{estimate.get('transitions', '?')} transitions); the all-frames spectrum is their weighted sum")
    missing = [c for c, (p, _) in populations.items() if p > 0 and c not in conformer_spectra]
    if missing:
        print(f"note: no spectrum of {', '.join(missing)} in these trajectories: the all-frames spectrum "
              "stays the frame average")
        return spectrum
    grid = spectrum.wavenumber
    parts = {c: Spectrum(grid, {k: np.interp(grid, part.wavenumber, v) for k, v in part.mean.items()},
                         {k: np.interp(grid, part.wavenumber, v) for k, v in part.stderr.items()}, part.n_samples)
             for c, part in conformer_spectra.items()}
    return mixture(parts, populations)


def _report_thermostat(args):
    """Say what a thermostatted production adds to the line widths (from md's summary.json)."""
    from nxplugin.analysis.mixture import read_run_files, thermostat_broadening, window_resolution

    summary = read_run_files(args.files, "summary.json")
    settings = (summary or {}).get("settings") or {}
    broadening = thermostat_broadening(settings)
    if not settings or not broadening:
        if settings:
            print(f"production: {settings.get('thermostat')} (no line broadening from a local thermostat)")
        return
    resolution = window_resolution(args.depth, args.window)
    print(f"production: Langevin, friction {settings['friction_per_fs']:g}/fs: every band is broadened by a "
          f"Lorentzian of FWHM {broadening:.0f} cm^-1 (gamma / 2 pi c); the window's resolution is "
          f"{resolution:.0f} cm^-1")
    if broadening > resolution:
        warnings.warn(f"the Langevin production broadens every band by {broadening:.0f} cm^-1, more than the "
                      f"{args.window} window's resolution ({resolution:.0f} cm^-1 at --depth {args.depth:g} fs): "
                      "the thermostat, not the molecule, sets the line shapes; run the production NVE "
                      "(nxplugin md --thermostat nve)", stacklevel=2)


def _write_csv(path, kind, spectrum, conformer_spectra):
    import numpy as np

    names = ["intensity"] if kind == "ir" else ["activity", "isotropic", "anisotropic"]
    suffix = UNIT_SUFFIX[kind]
    header, columns = ["wavenumber_cm-1"], [spectrum.wavenumber]
    for name in names:
        header += [f"{name}_{suffix}", "stderr" if name == names[0] else f"{name}_stderr"]
        columns += [spectrum.mean[name], spectrum.stderr[name]]
    for conformer, part in conformer_spectra.items():
        header += [f"{conformer}_{suffix}", f"{conformer}_stderr"]
        # a conformer with a shorter depth has a coarser grid: interpolated onto the total's
        columns += [np.interp(spectrum.wavenumber, part.wavenumber, part.mean[names[0]]),
                    np.interp(spectrum.wavenumber, part.wavenumber, part.stderr[names[0]])]
    np.savetxt(path, np.column_stack(columns), delimiter=",", header=",".join(header), comments="",
               fmt="%.8g")


def run(args):
    from nxplugin.analysis import conformers
    from nxplugin.analysis import spectra
    from nxplugin.analysis import timeseries as trajio

    import os

    from nxplugin.analysis.plots import auto_range

    kind = "raman" if args.raman else "ir"
    if args.range and not args.range[0] < args.range[1]:
        raise OptionError(f"--range {args.range[0]:g} {args.range[1]:g}: MIN must be below MAX (cm^-1)")
    if args.harmonic and not os.path.isfile(args.harmonic):
        raise OptionError(f"--harmonic {args.harmonic}: no such file (make it with: nxplugin harmonic "
                          f"MODEL.npz --out {args.harmonic})")
    harmonic = trajio.read_harmonic_csv(args.harmonic) if args.harmonic else None
    if harmonic and kind == "raman":
        warnings.warn("--harmonic sticks are IR intensities (km/mol); not drawn on a Raman spectrum", stacklevel=2)
        harmonic = None
    from tqdm import tqdm

    with tqdm(desc="reading", unit="file", disable=True if args.quiet or len(args.files) < 2 else None) as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        trajectories = trajio.read_timeseries_files(
            args.files, progress=progress, timestep_fs=args.timestep, temperature_K=args.temperature,
            dipoles=kind == "ir", polarizabilities=kind == "raman")
    timestep_fs, temperatures = _common_settings(trajectories, args.temperature)
    n_blocks = _n_blocks(args, trajectories, timestep_fs)
    options = dict(timestep_fs=timestep_fs, temperature_K=temperatures, kind=kind, n_blocks=n_blocks,
                   sources=[t.source for t in trajectories], depth_fs=args.depth, window=args.window,
                   qcf=args.qcf, padding=args.padding)
    series = [t.dipoles if kind == "ir" else t.polarizabilities for t in trajectories]
    spectrum = spectra.ensemble_spectrum(series, **options)
    name = "intensity" if kind == "ir" else "activity"
    print(f"{len(trajectories)} trajectories, {sum(t.n_frames for t in trajectories)} frames of "
          f"{timestep_fs:g} fs; {spectrum.n_samples} samples for the error bars")
    conformer_spectra, notes = {}, {}
    if args.conformers:
        indices, labels = _conformer_labels(args, trajectories)
        fractions = conformers.populations(labels, n_blocks=n_blocks)
        transitions = sum(conformers.count_transitions(label) for label in labels)
        total_ps = sum(t.n_frames - 1 for t in trajectories) * timestep_fs / 1000
        print(f"dihedral atoms {indices}: " + ", ".join(
            f"{c} {f:.3f} ± {e:.3f}" for c, (f, e) in fractions.items()) +
            f"; {transitions} transitions in {total_ps:g} ps")
        for code, conformer in enumerate(conformers.CONFORMERS):
            part, note = _conformer_spectrum(conformer, series, [label == code for label in labels], options)
            if note:
                notes[conformer] = note[1]
                print(f"note: {note[0]}")
            if part is not None:
                conformer_spectra[conformer] = part
        spectrum = _weighted_by_populations(args, spectrum, conformer_spectra, fractions)
    _report_thermostat(args)
    low, high = args.range or auto_range(spectrum, name, harmonic)
    unit = "km/mol" if kind == "ir" else "Angstrom^4/amu"
    for label, part in [("all", spectrum)] + list(conformer_spectra.items()):
        integral = spectra.band_integral(part.wavenumber, part.mean[name], low, high)
        print(f"band integral {low:g}-{high:g} cm^-1 ({label}): {integral:.4g} {unit}")
    _write_csv(args.out, kind, spectrum, conformer_spectra)
    print(f"wrote {args.out}")
    for conformer, (_, intensity) in (harmonic or {}).items():
        print(f"harmonic {conformer}: {len(intensity)} modes, total {intensity.sum():.4g} km/mol")
    if args.plot:
        from nxplugin.analysis.plots import plot_spectrum

        plot_spectrum(spectrum, conformer_spectra=conformer_spectra, harmonic=harmonic,
                      wavenumber_range=(low, high), path=args.plot, notes=notes,
                      title=f"{kind.upper() if kind == 'ir' else 'Raman'} spectrum, {len(trajectories)} "
                            f"trajectories, quantum correction: {args.qcf}, {args.window} window, "
                            f"depth {args.depth:g} fs")
        print(f"wrote {args.plot}")
    return 0
