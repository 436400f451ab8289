"""Per-frame conditioning diagnostics of a rotate-predict-rotate model along trajectories.

Units: positions Angstrom, time fs, dihedrals degrees, descriptor singular values 1/Angstrom, Eckart
singular values amu*Angstrom**2, frame sensitivities rad/Angstrom, dipole sensitivities e
(e*Angstrom per Angstrom).

For each geometry: the singular values of the descriptor Jacobian (:mod:`nxplugin.model.jacobians`;
rank beyond the six rigid motions, smallest one), the Eckart frame's matrix singular values, ratio and
sensitivity, the inertia frame's relative moment gaps and sensitivity, and the model's dipole
sensitivity with the part carried by the frame's rotation. :func:`diagnose_geometry` does one
geometry, :func:`diagnose_frames` a stack, :func:`summarize` finds the worst frames, and
:func:`plot_diagnostics` draws the time series with conformers marked.
"""
import numpy as np

from nxplugin.model import descriptors, jacobians

#: Default thresholds of :func:`summarize`: Eckart singular ratio below, inertia gap below,
#: internal frame sensitivity above (rad/Angstrom).
THRESHOLDS = {"eckart_singular_ratio": 0.01, "inertia_min_gap": 0.02, "frame_sensitivity_rad_per_A": 2.0}

COLUMNS = (
    "trajectory", "frame", "time_fs", "dihedral_deg", "conformer",
    "descriptor_rank", "descriptor_min_singular_value_per_A",
    "eckart_s1_amu_A2", "eckart_s2_amu_A2", "eckart_s3_amu_A2", "eckart_singular_ratio",
    "eckart_sensitivity_rad_per_A", "eckart_internal_sensitivity_rad_per_A",
    "inertia_gap_12", "inertia_gap_23", "inertia_sensitivity_rad_per_A",
    "inertia_internal_sensitivity_rad_per_A",
    "dipole_sensitivity_e", "dipole_frame_part_e", "ood_score",
)


def diagnose_geometry(model, positions, *, rtol=jacobians.RANK_RTOL, step=1e-4, dipole_jacobian=None):
    """Diagnostics of one geometry for a fitted model.

    Parameters
    ----------
    model : nxplugin.model.estimator.RPRModel
    positions : array-like of shape (n_atoms, 3), Angstrom, atoms in the model's order
    rtol : float
        Relative tolerance of the descriptor rank (singular values below ``rtol`` times the largest
        count as zero).
    step : float, Angstrom
        Finite-difference step of the model's dipole derivative.
    dipole_jacobian : ndarray of shape (3N, 3), e, optional
        The model's dipole derivative here, when computed already (batched by :func:`diagnose_frames`).

    Returns
    -------
    dict
        The numeric columns of :data:`COLUMNS` (scalars) plus ``descriptor_singular_values``
        (descending, 1/Angstrom).
    """
    positions = np.asarray(positions, dtype=float)
    model.check_geometry(model.numbers_, positions)
    desc = jacobians.descriptor_singular_values(positions, model.reference_distances_, rtol=rtol)
    eck = jacobians.eckart_frame_jacobian(positions, model.masses_, model.reference_)
    ine = jacobians.inertia_frame_jacobian(positions, model.masses_, model.reference_)
    dip = jacobians.dipole_sensitivity(model, positions, step=step, jacobian=dipole_jacobian)
    s = eck["singular_values"]
    return {
        "descriptor_rank": desc["rank"], "descriptor_min_singular_value_per_A": desc["smallest"],
        "descriptor_singular_values": desc["singular_values"],
        "eckart_s1_amu_A2": s[0], "eckart_s2_amu_A2": s[1], "eckart_s3_amu_A2": s[2],
        "eckart_singular_ratio": eck["singular_ratio"],
        "eckart_sensitivity_rad_per_A": eck["sensitivity_rad_per_A"],
        "eckart_internal_sensitivity_rad_per_A": eck["internal_sensitivity_rad_per_A"],
        "inertia_gap_12": ine["relative_gaps"][0], "inertia_gap_23": ine["relative_gaps"][1],
        "inertia_sensitivity_rad_per_A": ine["sensitivity_rad_per_A"],
        "inertia_internal_sensitivity_rad_per_A": ine["internal_sensitivity_rad_per_A"],
        "dipole_sensitivity_e": dip["dipole_sensitivity_e"], "dipole_frame_part_e": dip["frame_part_e"],
        "ood_score": float(model.predict(positions, forces=False)["ood_score"]),
    }


def diagnose_frames(model, positions, *, times_fs=None, frame_numbers=None, trajectory="", progress=None, batch=16,
                    **options):
    """Diagnostics of every geometry of a trajectory.

    Parameters
    ----------
    model : RPRModel
    positions : array-like of shape (n_frames, n_atoms, 3), Angstrom
    times_fs : array-like of shape (n_frames,), fs, optional
        Frame times (NaN in the table when not given).
    frame_numbers : array-like of int of shape (n_frames,), optional
        Written in the ``frame`` column (default 0, 1, ...), e.g. when every k-th frame was read.
    trajectory : str
        Label written in the ``trajectory`` column.
    progress : callable or None
        Called once per frame.
    batch : int, default=16
        Frames whose displaced geometries share one model prediction call.
    **options
        Passed to :func:`diagnose_geometry`.

    Returns
    -------
    dict of str to ndarray of shape (n_frames,)
        Columns :data:`COLUMNS`; ``conformer`` is "trans"/"gauche" for X-CH2-CH2-X molecules, else "".
    """
    from nxplugin.analysis import conformers

    positions = np.asarray(positions, dtype=float)
    if positions.ndim != 3 or positions.shape[1:] != (len(model.numbers_), 3):
        raise ValueError(f"positions must have shape (n_frames, {len(model.numbers_)}, 3), got {positions.shape}")
    model.check_geometry(model.numbers_, positions)
    rows = []
    for start in range(0, len(positions), batch):
        block = positions[start:start + batch]
        dipole_jac = jacobians.dipole_jacobian(model, block, step=options.get("step", 1e-4))
        for x, jac in zip(block, dipole_jac):
            rows.append(diagnose_geometry(model, x, dipole_jacobian=jac, **options))
            if progress is not None:
                progress()
    table = {key: np.array([row[key] for row in rows]) for key in COLUMNS if key in rows[0]}
    n = len(positions)
    table["trajectory"] = np.array([trajectory] * n, dtype=object)
    table["frame"] = np.arange(n) if frame_numbers is None else np.asarray(frame_numbers, dtype=int)
    table["time_fs"] = np.full(n, np.nan) if times_fs is None else np.asarray(times_fs, dtype=float)
    try:
        dihedral = conformers.find_dihedral(model.numbers_, positions[0])
    except ValueError:
        table["dihedral_deg"] = np.full(n, np.nan)
        table["conformer"] = np.array([""] * n, dtype=object)
    else:
        table["dihedral_deg"] = conformers.dihedral_series(positions, dihedral)
        labels = conformers.classify(table["dihedral_deg"])
        table["conformer"] = np.array(conformers.CONFORMERS, dtype=object)[labels]
    return {key: table[key] for key in COLUMNS}


def concatenate(tables):
    """One table from several :func:`diagnose_frames` tables (rows appended)."""
    return {key: np.concatenate([t[key] for t in tables]) for key in COLUMNS}


def summarize(table, *, n_atoms, thresholds=None, n_worst=5):
    """Worst frames and the fractions of frames beyond conditioning thresholds.

    Parameters
    ----------
    table : dict of ndarray
        From :func:`diagnose_frames` or :func:`concatenate`.
    n_atoms : int
        For the expected descriptor rank ``3 * n_atoms - 6``.
    thresholds : dict, optional
        Overrides of :data:`THRESHOLDS`.

    Returns
    -------
    dict
        ``n_frames``, ``thresholds``, ``fractions`` (of frames with descriptor rank below 3N - 6,
        Eckart singular ratio below, smallest inertia gap below, internal Eckart / inertia frame
        sensitivity above the thresholds), ``worst`` (per criterion, a list of
        (trajectory, frame, value)), and the ``median`` of each numeric column.
    """
    limits = dict(THRESHOLDS, **(thresholds or {}))
    n = len(table["frame"])
    min_gap = np.minimum(table["inertia_gap_12"], table["inertia_gap_23"])
    criteria = {
        "descriptor_min_singular_value_per_A": (table["descriptor_min_singular_value_per_A"], 1),
        "eckart_singular_ratio": (table["eckart_singular_ratio"], 1),
        "eckart_internal_sensitivity_rad_per_A": (table["eckart_internal_sensitivity_rad_per_A"], -1),
        "inertia_min_gap": (min_gap, 1),
        "inertia_internal_sensitivity_rad_per_A": (table["inertia_internal_sensitivity_rad_per_A"], -1),
        "dipole_sensitivity_e": (table["dipole_sensitivity_e"], -1),
    }
    worst = {}
    for name, (values, sign) in criteria.items():
        order = np.argsort(sign * values, kind="stable")[:n_worst]
        worst[name] = [(str(table["trajectory"][i]), int(table["frame"][i]), float(values[i])) for i in order]
    fractions = {
        "descriptor_rank_below_3N-6": float(np.mean(table["descriptor_rank"] < 3 * n_atoms - 6)),
        f"eckart_singular_ratio_below_{limits['eckart_singular_ratio']:g}":
            float(np.mean(table["eckart_singular_ratio"] < limits["eckart_singular_ratio"])),
        f"inertia_min_gap_below_{limits['inertia_min_gap']:g}": float(np.mean(min_gap < limits["inertia_min_gap"])),
        f"eckart_internal_sensitivity_above_{limits['frame_sensitivity_rad_per_A']:g}_rad_per_A":
            float(np.mean(table["eckart_internal_sensitivity_rad_per_A"] > limits["frame_sensitivity_rad_per_A"])),
        f"inertia_internal_sensitivity_above_{limits['frame_sensitivity_rad_per_A']:g}_rad_per_A":
            float(np.mean(table["inertia_internal_sensitivity_rad_per_A"] > limits["frame_sensitivity_rad_per_A"])),
    }
    numeric = [k for k in COLUMNS if k not in ("trajectory", "frame", "conformer", "time_fs")]
    return {"n_frames": n, "thresholds": limits, "fractions": fractions, "worst": worst,
            "median": {k: float(np.nanmedian(table[k].astype(float))) for k in numeric}}


def write_csv(table, path):
    """Write a table as CSV (one row per frame, :data:`COLUMNS`), atomically."""
    import csv
    import io

    from nxplugin.fileio import atomic_write

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for i in range(len(table["frame"])):
        writer.writerow([_format(table[key][i]) for key in COLUMNS])
    atomic_write(path, buffer.getvalue())


def _format(value):
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return str(value)


def plot_diagnostics(table, path, *, title=None):
    """Time series of the conditioning measures, one column of panels per trajectory.

    Panels: dihedral (with trans/gauche frames coloured), descriptor smallest singular value, Eckart
    singular ratio and inertia smallest gap, internal frame sensitivities, dipole sensitivity.
    Written to ``path`` (png/pdf/svg by extension).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(table["trajectory"]))
    fig = Figure(figsize=(5.0 * len(names) + 1.0, 10.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(5, len(names), sharex="col", squeeze=False)
    colours = {"trans": "tab:blue", "gauche": "tab:orange", "": "grey"}
    for col, name in enumerate(names):
        rows = table["trajectory"] == name
        t = table["time_fs"][rows]
        x, xlabel = (t / 1000.0, "time (ps)") if np.all(np.isfinite(t)) else (table["frame"][rows], "frame")
        ax = axes[0, col]
        for conformer, colour in colours.items():
            pick = table["conformer"][rows] == conformer
            if pick.any():
                ax.scatter(x[pick], table["dihedral_deg"][rows][pick], s=3, color=colour, label=conformer or None)
        ax.set_ylabel("Cl-C-C-Cl dihedral (deg)")
        ax.set_title(str(name).rsplit("/", 1)[-1])
        if col == 0:
            ax.legend(loc="lower right", markerscale=3, fontsize="small")
        gauche = table["conformer"][rows] == "gauche"
        for ax in axes[1:, col]:
            _shade(ax, x, gauche)
        axes[1, col].plot(x, table["descriptor_min_singular_value_per_A"][rows], lw=0.8, color="k")
        axes[1, col].set_ylabel("descriptor σ$_{3N-6}$ (1/Å)")
        axes[2, col].plot(x, table["eckart_singular_ratio"][rows], lw=0.8, label="Eckart (s2+s3)/(s1+s2)")
        axes[2, col].plot(x, np.minimum(table["inertia_gap_12"], table["inertia_gap_23"])[rows], lw=0.8,
                          label="inertia min gap ΔI/I3")
        axes[2, col].set_yscale("log")
        axes[2, col].set_ylabel("frame conditioning")
        axes[3, col].plot(x, table["eckart_internal_sensitivity_rad_per_A"][rows], lw=0.8, label="Eckart")
        axes[3, col].plot(x, table["inertia_internal_sensitivity_rad_per_A"][rows], lw=0.8, label="inertia")
        axes[3, col].set_yscale("log")
        axes[3, col].set_ylabel("‖∂R/∂x‖ internal (rad/Å)")
        axes[4, col].plot(x, table["dipole_sensitivity_e"][rows], lw=0.8, color="k", label="‖∂μ/∂x‖")
        axes[4, col].plot(x, table["dipole_frame_part_e"][rows], lw=0.8, color="tab:red", label="frame part")
        axes[4, col].set_ylabel("dipole sensitivity (e)")
        axes[4, col].set_xlabel(xlabel)
        if col == 0:
            for row in (2, 3, 4):
                axes[row, col].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _shade(ax, x, mask):
    """Grey bands where ``mask`` (gauche frames) holds."""
    if not mask.any():
        return
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        ax.axvspan(x[start], x[min(stop, len(x) - 1)], color="tab:orange", alpha=0.12, lw=0)


def pair_labels(numbers):
    """Names ``"C0-Cl2"`` of the descriptor's pairs, for reading a Jacobian."""
    from ase.data import chemical_symbols

    i, j = descriptors.pair_indices(len(numbers))
    return [f"{chemical_symbols[numbers[a]]}{a}-{chemical_symbols[numbers[b]]}{b}" for a, b in zip(i, j)]


def dihedral_scan(model, dihedrals_deg, *, conformer="trans", **options):
    """Diagnostics along a rigid Cl-C-C-Cl torsion of DCE (all other internal coordinates fixed).

    Parameters
    ----------
    model : RPRModel of DCE (atom order of :func:`nxplugin.reference.molecules.dce`)
    dihedrals_deg : sequence of float, degrees
    conformer : {"trans", "gauche"}
        Starting geometry whose CH2Cl group on C1 is turned.

    Returns
    -------
    dict of ndarray: ``dihedral_deg`` and the numeric columns of :func:`diagnose_geometry`.
    """
    from nxplugin.reference.molecules import DCE_DIHEDRAL, dce

    start = dce(conformer)
    geometries = []
    for phi in dihedrals_deg:
        atoms = start.copy()
        atoms.set_dihedral(*DCE_DIHEDRAL, phi, mask=[0, 1, 0, 1, 0, 0, 1, 1])
        geometries.append(atoms.positions)
    rows = [diagnose_geometry(model, x, **options) for x in geometries]
    out = {"dihedral_deg": np.asarray(dihedrals_deg, dtype=float)}
    out.update({key: np.array([row[key] for row in rows]) for key in rows[0] if key != "descriptor_singular_values"})
    return out
