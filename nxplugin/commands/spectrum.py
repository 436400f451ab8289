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

example:
  nxplugin spectrum run*.extxyz --depth 1000 --conformers --plot spectrum.png --harmonic harmonic.csv
  nxplugin spectrum trpmd.dip_* trpmd.pos_*.xyz --timestep 1 --temperature 300 --conformers
"""
import warnings

UNIT_SUFFIX = {"ir": "km_mol-1_cm", "raman": "A4_amu-1_cm"}
#: with one file and no --blocks: this many blocks when each is longer than twice the depth
DEFAULT_BLOCKS = 4


def add_arguments(parser):
    add = parser.add_argument
    add("files", nargs="+", metavar="FILES", help="trajectory files, Newton-X folders or i-PI output files")
    add("--timestep", type=float, metavar="FS",
        help="time between frames in fs (needed when the files store no time; checked otherwise)")
    add("--temperature", type=float, metavar="K",
        help="temperature in K for the quantum correction (default: info['temperature_K'] of the files)")
    add("--window", choices=["hann", "gaussian", "boxcar"], default="hann",
        help="one-sided lag window, 1 at t = 0 (default: hann)")
    add("--qcf", choices=["harmonic", "standard", "schofield"], default="harmonic",
        help="quantum correction factor (default: harmonic, exact for harmonic modes, and the exact "
             "Kubo-to-quantum factor for the centroid dipoles of TRPMD/PA-CMD runs)")
    add("--depth", type=float, default=1000.0, metavar="FS",
        help="correlation depth in fs (default: 1000); sets the resolution, about 1/(c*depth)")
    add("--padding", type=float, default=4.0, metavar="N",
        help="zero-padding factor of the correlation function (default: 4)")
    add("--blocks", type=int, metavar="N",
        help=f"cut each file into N blocks for the error bars (default: 1 with several files; "
             f"{DEFAULT_BLOCKS} with one file when the blocks are longer than twice the depth)")
    add("--raman", action="store_true",
        help="Raman activity from the polarizability (Angstrom^3) instead of IR from the dipole")
    add("--conformers", action="store_true",
        help="trans/gauche populations, transitions and spectra of the trans and gauche segments "
             "(X-CH2-CH2-X molecules)")
    add("--dihedral", type=int, nargs=4, metavar=("I", "J", "K", "L"),
        help="0-based atom indices of the X-C-C-X dihedral (default: inferred from the bonds)")
    add("--harmonic", metavar="CSV",
        help="overlay harmonic sticks (columns conformer, wavenumber_cm-1, intensity_km_mol-1) on the plot")
    add("--range", type=float, nargs=2, metavar=("MIN", "MAX"),
        help="wavenumber range of the plot and of the printed band integral, cm^-1")
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
        columns += [part.mean[names[0]], part.stderr[names[0]]]
    np.savetxt(path, np.column_stack(columns), delimiter=",", header=",".join(header), comments="",
               fmt="%.8g")


def run(args):
    from nxplugin.analysis import conformers
    from nxplugin.analysis import spectra
    from nxplugin.analysis import timeseries as trajio

    kind = "raman" if args.raman else "ir"
    harmonic = trajio.read_harmonic_csv(args.harmonic) if args.harmonic else None
    if harmonic and kind == "raman":
        warnings.warn("--harmonic sticks are IR intensities (km/mol); not drawn on a Raman spectrum", stacklevel=2)
        harmonic = None
    trajectories = trajio.read_trajectories(
        args.files, progress=not args.quiet, timestep_fs=args.timestep, temperature_K=args.temperature,
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
    conformer_spectra = {}
    if args.conformers:
        indices, labels = _conformer_labels(args, trajectories)
        fractions = conformers.populations(labels, n_blocks=n_blocks)
        transitions = sum(conformers.count_transitions(label) for label in labels)
        total_ps = sum(t.n_frames - 1 for t in trajectories) * timestep_fs / 1000
        print(f"dihedral atoms {indices}: " + ", ".join(
            f"{c} {f:.3f} ± {e:.3f}" for c, (f, e) in fractions.items()) +
            f"; {transitions} transitions in {total_ps:g} ps")
        for code, conformer in enumerate(conformers.CONFORMERS):
            conformer_spectra[conformer] = spectra.ensemble_spectrum(
                series, masks=[label == code for label in labels], **options)
    low, high = args.range or (0.0, float(spectrum.wavenumber[-1]))
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
                      wavenumber_range=args.range, path=args.plot,
                      title=f"{kind.upper() if kind == 'ir' else 'Raman'} spectrum, {len(trajectories)} "
                            f"trajectories, {args.qcf} correction, {args.window} window, depth {args.depth:g} fs")
        print(f"wrote {args.plot}")
    return 0
