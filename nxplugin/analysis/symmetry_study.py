"""The ``nxplugin symmetry`` study: RPR (exact covariance) against direct, augmented and averaged models.

Units: positions Angstrom, dipoles e*Angstrom, errors Debye, IR intensities km/mol, wavenumbers cm^-1,
times s (training) and ms per frame (prediction).

Every model is trained on the same frames. For each: the dipole RMSE on the test set, the
covariance error (:func:`nxplugin.analysis.covariance.covariance_error`) over random rotations and
reflections of test frames, the training time, the prediction time per frame, and the harmonic IR
intensities of the trans and gauche GFN2-xTB minima computed with the reference engine's Hessian
(tblite) and the model's dipole, against the reference engine's own intensities, both in the
orientation of :func:`nxplugin.reference.molecules.dce` and in a randomly rotated one. Frequencies and
normal modes are the reference's in every case, so only the dipole model differs.
"""
import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from nxplugin.analysis import covariance

COLUMNS = ("model", "train_points", "dipole_rmse_D", "covariance_error_D", "train_s", "predict_ms_per_frame",
           "ir_rmse_km_mol", "ir_rmse_rotated_km_mol", "ir_total_error_percent", "ir_total_error_rotated_percent")


class _DipoleOnTop(Calculator):
    """Energy and forces of a base calculator (cached by geometry), dipole from a function."""

    implemented_properties = ["energy", "forces", "dipole"]

    def __init__(self, base, dipole_function, cache):
        Calculator.__init__(self)
        self.base, self.dipole_function, self.cache = base, dipole_function, cache

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        key = self.atoms.positions.tobytes()
        if key not in self.cache:
            probe = self.atoms.copy()
            probe.calc = self.base
            self.cache[key] = (probe.get_potential_energy(), probe.get_forces(), probe.get_dipole_moment())
        energy, forces, reference_dipole = self.cache[key]
        dipole = reference_dipole if self.dipole_function is None else self.dipole_function(self.atoms.positions)
        self.results = {"energy": energy, "forces": forces, "dipole": np.asarray(dipole, dtype=float)}


class HarmonicReference:
    """Harmonic IR of the DCE minima with a reference calculator, re-used for many dipole models.

    Parameters
    ----------
    base_factory : callable
        Returns a fresh ASE calculator with forces and dipole (default: tblite GFN2-xTB).
    seed : int
        Seed of the random rotation of the second orientation.
    """

    def __init__(self, base_factory=None, *, seed=0):
        from nxplugin.reference import molecules

        if base_factory is None:
            def base_factory():
                from tblite.ase import TBLite
                return TBLite(method="GFN2-xTB", verbosity=0)
        self.base = base_factory()
        rotation = covariance.random_orthogonal(1, seed=seed, reflections=False)[0]
        self.geometries = {}
        for conformer in molecules.CONFORMERS:
            atoms = molecules.dce(conformer)
            rotated = atoms.copy()
            rotated.positions = (atoms.positions - atoms.get_center_of_mass()) @ rotation.T
            self.geometries[conformer] = {"original": atoms, "rotated": rotated}
        self.cache = {}
        self.reference = {key: self.intensities(None, key) for key in ("original", "rotated")}

    def intensities(self, dipole_function, orientation):
        """IR intensities (km/mol) of all conformers' modes, concatenated (trans then gauche)."""
        from nxplugin.analysis.harmonic import harmonic_ir

        out = []
        for conformer, forms in self.geometries.items():
            atoms = forms[orientation].copy()
            atoms.calc = _DipoleOnTop(self.base, dipole_function, self.cache)
            out.append(harmonic_ir(atoms)[1])
        return np.concatenate(out)

    def errors(self, dipole_function):
        """RMS error (km/mol) and error of the summed intensity (%) in both orientations."""
        out = {}
        for key, suffix in (("original", ""), ("rotated", "_rotated")):
            model = self.intensities(dipole_function, key)
            ref = self.reference[key]
            out[f"ir_rmse{suffix}_km_mol"] = float(np.sqrt(np.mean((model - ref) ** 2)))
            out[f"ir_total_error{suffix}_percent"] = float(100 * (model.sum() - ref.sum()) / ref.sum())
        return out


def run_study(train, test, *, augment=(1, 4, 16), n_rotations=16, n_covariance_frames=100, seed=0,
              harmonic=None, progress=None):
    """Train and evaluate every model of the study.

    Parameters
    ----------
    train, test : dict
        Data sets from :func:`nxplugin.reference.datasets.read_dataset` (positions Angstrom, energies
        eV, dipoles e*Angstrom); ``train`` is used whole.
    augment : sequence of int
        Numbers of rotated copies K of the augmented direct models; the largest one is also averaged
        over the cube group at prediction time.
    n_rotations : int
        Random rotations and reflections of the covariance error.
    n_covariance_frames : int
        Test frames used for the covariance error.
    seed : int
    harmonic : HarmonicReference or None
        When given, IR intensity errors are computed.
    progress : callable or None
        Called with a message before each step.

    Returns
    -------
    list of dict, one per model, keys :data:`COLUMNS`.
    """
    from ase import units

    from nxplugin.model.estimator import RPRModel
    from nxplugin.reference import molecules

    say = progress or (lambda message: None)
    numbers, positions = train["numbers"], train["positions"]
    reference = molecules.dce("trans").positions if len(numbers) == 8 else None
    fit_args = dict(energies=train["energies"], dipoles=train["dipoles"], reference=reference)
    operations = covariance.random_orthogonal(n_rotations, seed=seed + 1)
    rng = np.random.default_rng(seed)
    cov_frames = test["positions"][rng.permutation(len(test["positions"]))[:n_covariance_frames]]
    models = {}
    for name, frame in (("RPR Eckart", "eckart"), ("RPR inertia", "inertia"), ("direct (lab frame)", "lab")):
        say(f"training {name}")
        model, seconds = covariance.timed(RPRModel(frame=frame, random_state=seed).fit, numbers, positions,
                                          **fit_args)
        models[name] = (model, _dipole_function(model), seconds, len(positions))
    lab = models["direct (lab frame)"][0]
    for k in augment:
        say(f"training direct, {k} rotated copies")
        model, seconds = covariance.timed(covariance.fit_augmented, lab, numbers, positions, train["energies"],
                                          train["dipoles"], k, seed=seed + 2, reference=reference)
        models[f"direct, K={k} rotated copies"] = (model, _dipole_function(model), seconds, k * len(positions))
    if augment:
        k = max(augment)
        model, seconds, n_points = models[f"direct, K={k} rotated copies"][0], *models[f"direct, K={k} rotated copies"][2:]
        averaged = covariance.RotationAveraged(model)
        models[f"direct, K={k}, averaged over O_h (48)"] = (averaged, averaged.predict_dipole, seconds, n_points)
    rows = []
    for name, (model, dipole_function, seconds, n_points) in models.items():
        say(f"evaluating {name}")
        dipole_function(test["positions"][:2])          # warm-up (compiled kernel, caches)
        start = _now()
        predicted = dipole_function(test["positions"])
        per_frame_ms = 1000 * (_now() - start) / len(test["positions"])
        row = {"model": name, "train_points": n_points, "train_s": seconds, "predict_ms_per_frame": per_frame_ms,
               "dipole_rmse_D": float(np.sqrt(np.mean((predicted - test["dipoles"]) ** 2))) / units.Debye,
               "covariance_error_D": covariance.covariance_error(dipole_function, cov_frames, operations) / units.Debye}
        if harmonic is not None:
            row.update(harmonic.errors(lambda x, f=dipole_function: f(x[None])[0]))
        rows.append({key: row.get(key, np.nan) for key in COLUMNS})
    return rows


def _now():
    import time
    return time.perf_counter()


def _dipole_function(model):
    return lambda positions: model.predict(positions, forces=False)["dipole"]


def format_markdown(rows):
    """The study's table in Markdown (units in the headers)."""
    headers = ["model", "train points", "dipole RMSE (D)", "covariance error (D)", "train (s)",
               "predict (ms/frame)", "IR RMSE (km/mol)", "IR RMSE rotated (km/mol)", "IR total error (%)",
               "IR total error rotated (%)"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [row["model"], str(row["train_points"])]
        for key in COLUMNS[2:]:
            value = row[key]
            cells.append("n/a" if not np.isfinite(value) else f"{value:.3g}" if abs(value) >= 1e-3 or value == 0
                         else f"{value:.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_study(rows, path):
    """Dipole RMSE and covariance error (log scale, D) per model, with the prediction cost."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.8))
    FigureCanvasAgg(fig)
    ax, ax_ir = fig.subplots(1, 2)
    names = [r["model"] for r in rows]
    y = np.arange(len(rows))
    floor = 1e-17
    ax.barh(y - 0.2, [max(r["dipole_rmse_D"], floor) for r in rows], height=0.4, label="dipole RMSE on test")
    ax.barh(y + 0.2, [max(r["covariance_error_D"], floor) for r in rows], height=0.4,
            label="covariance error |f(Qx) - Q f(x)|")
    ax.set_xscale("log")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("Debye")
    ax.legend(fontsize="small", loc="lower right")
    for yi, r in zip(y, rows):
        ax.annotate(f"{r['predict_ms_per_frame']:.2g} ms/frame", (floor * 10, yi), fontsize="x-small",
                    va="center")
    if all(np.isfinite(r["ir_rmse_km_mol"]) for r in rows):
        ax_ir.barh(y - 0.2, [r["ir_rmse_km_mol"] for r in rows], height=0.4, label="reference orientation")
        ax_ir.barh(y + 0.2, [r["ir_rmse_rotated_km_mol"] for r in rows], height=0.4, label="rotated molecule")
        ax_ir.set_yticks(y, [""] * len(rows))
        ax_ir.invert_yaxis()
        ax_ir.set_xlabel("harmonic IR intensity RMSE vs GFN2-xTB (km/mol)")
        ax_ir.legend(fontsize="small")
    else:
        ax_ir.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
