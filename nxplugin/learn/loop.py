"""The active-learning loop: seed set, then rounds of train -> explore -> select -> label, resumable.

Units: positions Angstrom, energies eV, forces eV/Angstrom, dipoles e*Angstrom, temperatures K,
time fs; errors in kcal/mol, kcal/mol/Angstrom, Debye, Angstrom**3 (:func:`model_errors`).

Files in the output folder ``out``:

- ``run.json``: the settings (a resumed run must use the same ones);
- ``seed.extxyz.gz``, ``validation.extxyz.gz``: labelled engine MD from the starts
  (:func:`nxplugin.reference.sampling.sample`, independent trajectories); the validation frames are
  never trained on;
- ``labels.extxyz`` and its checkpoint ``labels.extxyz.ckpt.npz`` (:mod:`nxplugin.md.trajfile`):
  every frame the learner picked and labelled, one whole record each, with ``info['round']``. The
  checkpoint holds the batch being labelled (``positions``) and in ``meta`` its ``round`` and
  ``batch_done``; it is written after each label, so a killed run resumes by truncating the file to
  the checkpoint's ``bytes`` and labelling the rest of that batch: no label is lost or done twice;
- ``state.json``: one row per round (labels, errors, wall times), written atomically;
- ``model.npz`` (the latest model, errors and label counts in its metadata), ``data.extxyz.gz``
  (seed, validation and learned frames with ``info['round']`` and ``info['set']``) and
  ``learning.csv``, rewritten atomically after every round.

A killed run therefore repeats at most the training and exploration of one round (seeded, so it
picks the same batch again) and never an engine label.
"""
import gzip
import io
import json
import os
import time
import warnings

import numpy as np

from nxplugin.errors import DataFileError
from nxplugin.fileio import atomic_write
from nxplugin.md.trajfile import TrajectoryFile, read_checkpoint
from nxplugin.reference.datasets import model_errors, read_dataset
from nxplugin.reference.sampling import same_settings

TARGET_KEYS = {"energy": "energy_kcal_mol", "forces": "forces_kcal_mol_A", "dipole": "dipole_D",
               "polarizability": "polarizability_A3"}


def split_count(total, parts):
    """Frames per trajectory so that ``parts`` trajectories give at least ``total`` frames."""
    return max(1, -(-int(total) // int(parts)))


def _read_frames(path):
    """A data set dict (:func:`read_dataset`) of an extxyz file, or None when it has no frames."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    return read_dataset(path)


def _concat(sets):
    sets = [s for s in sets if s is not None]
    out = {"numbers": sets[0]["numbers"], "info": [i for s in sets for i in s["info"]]}
    for key in ("positions", "energies", "forces", "dipoles", "polarizabilities"):
        values = [s[key] for s in sets]
        out[key] = None if any(v is None for v in values) else np.concatenate(values)
    return out


def fit_model(train, reference, *, seed):
    """An :class:`RPRModel` fitted to a data set's energies, forces (when it has them) and dipoles.

    Every frame is first put into the reference's labelling (:func:`nxplugin.model.atommap.map_dataset`,
    as ``nxplugin train`` does): the molecular frame of the dipole needs it (for DCE, without it the
    validation dipole error of 450 frames is 0.085 D instead of 0.014 D).
    """
    from ase.data import atomic_masses

    from nxplugin.model.atommap import AtomMapper, map_dataset
    from nxplugin.model.estimator import RPRModel
    from nxplugin.errors import ModelDomainError
    from nxplugin.reference.datasets import subset
    numbers = train["numbers"]
    mapper = AtomMapper(numbers, reference, atomic_masses[numbers])
    try:
        train = map_dataset(mapper, train)
    except ModelDomainError:   # e.g. a broken bond labelled by an older explorer: kept in the data, not trained on
        ok = []
        for k, x in enumerate(train["positions"]):
            try:
                mapper.order(numbers, x)
                ok.append(k)
            except ModelDomainError:
                pass
        warnings.warn(f"{len(train['positions']) - len(ok)} labelled frames that are not the reference's "
                      f"molecule (another bond graph) are left out of training")
        train = map_dataset(mapper, subset(train, ok))
    model = RPRModel(random_state=seed)
    return model.fit(train["numbers"], train["positions"], energies=train["energies"], dipoles=train["dipoles"],
                     polarizabilities=train["polarizabilities"], forces=train["forces"], reference=reference)


def worst_temperature_errors(model, validation):
    """Per quantity, the largest validation RMSE over the temperatures the frames were sampled at
    (``info["temperature_K"]``; all frames together when they do not say): the targets must hold at
    the hottest temperature too, not only on average."""
    from nxplugin.reference.datasets import subset
    temperatures = np.array([float(i.get("temperature_K", np.nan)) for i in validation["info"]])
    groups = [np.flatnonzero(temperatures == t) for t in np.unique(temperatures)] \
        if np.isfinite(temperatures).all() else [np.arange(len(temperatures))]
    worst = {}
    for index in groups:
        for key, value in model_errors(model, subset(validation, index)).items():
            if key != "n":
                worst[key] = max(worst.get(key, 0.0), value)
    return worst


def met(errors, targets):
    """True when every given target (dict of quantity -> RMSE bound) is met by ``errors``."""
    return bool(targets) and all(errors.get(TARGET_KEYS[q], np.inf) <= bound for q, bound in targets.items())


def learn(out, *, starts, dihedral=None, temperatures_K=(300.0, 500.0), budget=600, targets=None,
          n_seed=100, n_validation=60, batch=50, n_replicas=16, md_steps=400, md_interval=10,
          timestep_fs=0.5, stride=40, equilibration_fs=500.0, stop_uncertainty=5.0, criterion="integrated",
          engine="tblite", method=None, polarizability=False, seed=0,
          test=None, resume=False, progress=None):
    """Actively learn a model from start geometries until the targets are met or the budget is spent.

    Parameters
    ----------
    out : str or path
        Output folder (module docstring).
    starts : dict of str to ase.Atoms
        Start geometries by conformer name, optimised (:func:`nxplugin.reference.starts.read_starts`);
        the first one is the model's reference geometry.
    dihedral : sequence of 4 int, optional
        Torsion stored per seed frame (found from the bonds by default).
    temperatures_K : sequence of float, K
        Temperatures of the seed, validation and exploration MD.
    budget : int
        Most engine labels in total: seed, validation and learned frames.
    targets : dict, optional
        RMSE bounds on the validation frames: ``energy`` kcal/mol, ``forces`` kcal/mol/Angstrom,
        ``dipole`` D, ``polarizability`` Angstrom**3. The loop ends when all are met.
    n_seed, n_validation : int
        Seed and validation frames (rounded up to whole trajectories: one per start and temperature).
    batch : int
        Frames labelled per round.
    n_replicas, md_steps, md_interval : int
        Model MD per round: replicas per temperature, steps each, steps between candidate frames.
    timestep_fs : float, fs
    stop_uncertainty : float
        A model MD replica stops at the first frame whose energy uncertainty exceeds this many times
        the median uncertainty on the validation frames (:func:`nxplugin.learn.explore.explore`).
    criterion : {"integrated", "variance"}
        Batch selection criterion (:func:`nxplugin.learn.selection.select_batch`).
    stride : int
        Engine MD steps between seed / validation frames.
    equilibration_fs : float, fs
        Engine MD before the first seed / validation frame.
    engine, method, polarizability :
        Labels, as :func:`nxplugin.reference.sampling.sample`.
    seed : int
    test : str, optional
        An independent labelled data set; its errors are reported each round (never trained on).
    resume : bool
        Continue an interrupted run in ``out`` (same settings, except ``budget`` and ``targets``,
        which may be changed to continue a finished run).
    progress : callable, optional
        Called as ``progress(event, **info)`` with ``event`` one of ``"stage"`` (``text``),
        ``"label"`` (``round``, ``done``, ``total``) and ``"round"`` (``row``, the round's row).

    Returns
    -------
    rows : list of dict
        One per round: ``round``, ``n_labels`` (all engine labels so far, validation included),
        ``n_train``, ``val_*`` and ``test_*`` errors, ``valmax_*`` (the worst temperature of the
        validation frames, what the targets are checked against), ``fit_s``, ``explore_s``,
        ``label_s``, ``n_candidates``, ``stopped_replicas``, and ``met``.
    """
    from nxplugin.reference.sampling import sample

    targets = {k: float(v) for k, v in (targets or {}).items() if v is not None}
    unknown = set(targets) - set(TARGET_KEYS)
    if unknown:
        raise ValueError(f"targets {sorted(unknown)} are not among {sorted(TARGET_KEYS)}")
    n_traj_sets = len(starts) * len(temperatures_K)
    fixed = (split_count(n_seed, n_traj_sets) + split_count(n_validation, n_traj_sets)) * n_traj_sets
    if fixed >= budget:
        raise ValueError(f"{budget=} labels leave nothing to learn after {fixed} seed and validation frames "
                         f"(whole frames of {n_traj_sets} trajectories each); raise the budget or lower "
                         f"n_seed/n_validation")
    report = progress or (lambda event, **info: None)
    names = list(starts)
    settings = {"starts": {n: np.round(starts[n].positions, 4).tolist() for n in names},
                "numbers": [int(z) for z in starts[names[0]].numbers],
                "temperatures_K": [float(t) for t in temperatures_K], "budget": int(budget), "targets": targets,
                "n_seed": int(n_seed), "n_validation": int(n_validation), "batch": int(batch),
                "n_replicas": int(n_replicas), "md_steps": int(md_steps), "md_interval": int(md_interval),
                "timestep_fs": float(timestep_fs), "stop_uncertainty": float(stop_uncertainty),
                "criterion": criterion, "stride": int(stride),
                "equilibration_fs": float(equilibration_fs), "engine": engine, "method": method,
                "polarizability": bool(polarizability), "seed": int(seed)}
    out = os.fspath(out)
    run_file = os.path.join(out, "run.json")
    if resume:
        if not os.path.exists(run_file):
            raise DataFileError(f"cannot resume: {run_file} is missing (start without --resume)")
        with open(run_file) as handle:
            saved = json.load(handle)
        changed = sorted(k for k in set(saved) | set(settings) if k not in ("targets", "budget")
                         and not same_settings(saved.get(k), settings.get(k), atol=1e-3))
        if changed:
            raise DataFileError(f"cannot resume {out}: settings differ from the first run in {changed}")
    else:
        if os.path.exists(run_file):
            raise FileExistsError(f"{out} already holds a learning run; add --resume or choose another folder")
        os.makedirs(out, exist_ok=True)
        atomic_write(run_file, json.dumps(settings, indent=1).encode())

    # seed and validation sets: engine MD from the starts, independent trajectories
    common = dict(starts=starts, dihedral=dihedral, temperatures_K=temperatures_K, n_traj=1, stride=stride,
                  equilibration_fs=equilibration_fs,
                  timestep_fs=timestep_fs, polarizability=polarizability, engine=engine, method=method)
    sets = {}
    for name, count, offset in (("seed", n_seed, 0), ("validation", n_validation, 1)):
        path = os.path.join(out, f"{name}.extxyz.gz")
        if not os.path.exists(path):
            report("stage", text=f"{name} set: engine MD from {', '.join(names)} at "
                                 f"{', '.join(f'{t:g}' for t in temperatures_K)} K")
            sample(path, n_frames=split_count(count, n_traj_sets), seed=2 * int(seed) + offset,
                   resume=os.path.exists(path + ".work"), progress=None, **common)
        sets[name] = read_dataset(path)
    test_data = read_dataset(test) if test else None

    labels_path = os.path.join(out, "labels.extxyz")
    state_path = os.path.join(out, "state.json")
    rows = []
    if resume and os.path.exists(state_path):
        with open(state_path) as handle:
            rows = json.load(handle)["rows"]
    checkpoint = read_checkpoint(labels_path) if resume else None
    labels = TrajectoryFile(labels_path, dict(settings, timestep_fs=timestep_fs, traj_id=0),
                            resume=checkpoint is not None)
    pending, completed = None, 0             # completed: the last round whose batch is fully labelled
    if checkpoint is not None:
        completed = int(checkpoint["meta"]["round"])
        if checkpoint["meta"]["batch_done"] < len(checkpoint["positions"]):
            pending = (completed, checkpoint["positions"], checkpoint["meta"]["batch_done"])
    labeller = None
    reference = starts[names[0]].positions
    started = time.perf_counter()
    while True:
        if pending is not None:
            labeller = labeller or _labeller(starts[names[0]].numbers, engine, method, polarizability)
            _label_batch(labels, labeller, *pending, progress=report, rows=rows)
            pending = None
        learned = _read_frames(labels_path)
        rnd = completed + 1
        train = _concat([sets["seed"], learned])
        n_labels = len(train["positions"]) + len(sets["validation"]["positions"])
        report("stage", text=f"round {rnd}: training on {len(train['positions'])} frames")
        t0 = time.perf_counter()
        model = fit_model(train, reference, seed=seed)
        fit_s = time.perf_counter() - t0
        row = {"round": rnd, "n_labels": n_labels, "n_train": model.n_train, "fit_s": round(fit_s, 2),
               "sigma_energy": model.hyperparameters_["energy"]["sigma"],
               "lam_energy": model.hyperparameters_["energy"]["lam"]}
        row.update({f"val_{k}": v for k, v in model_errors(model, sets["validation"]).items() if k != "n"})
        if test_data is not None:
            row.update({f"test_{k}": v for k, v in model_errors(model, test_data).items() if k != "n"})
        worst = worst_temperature_errors(model, sets["validation"])
        row.update({f"valmax_{k}": v for k, v in worst.items()})
        row["met"] = met(worst, targets)
        last = row["met"] or n_labels >= budget
        if not last:
            batch_now = min(int(batch), int(budget) - n_labels)
            report("stage", text=f"round {rnd}: model MD, {n_replicas} replicas at each of "
                                 f"{', '.join(f'{t:g}' for t in temperatures_K)} K")
            from nxplugin.learn.explore import explore
            from nxplugin.learn.selection import select_batch
            t0 = time.perf_counter()
            from nxplugin.learn.uncertainty import energy_uncertainty
            typical = float(np.median(energy_uncertainty(model, sets["validation"]["positions"])))
            pool = np.concatenate([np.stack([starts[n].positions for n in names]), train["positions"]])
            candidates, _, stopped = explore(model, pool, temperatures_K=temperatures_K, n_replicas=n_replicas,
                                             n_steps=md_steps, interval=md_interval, timestep_fs=timestep_fs,
                                             max_uncertainty=stop_uncertainty * typical,
                                             energy_window=_energy_window(train, temperatures_K),
                                             seed=[int(seed), rnd])
            batch_now = min(batch_now, len(candidates))
            picks, variances = select_batch(model, candidates, batch_now, criterion=criterion)
            row.update(explore_s=round(time.perf_counter() - t0, 2), n_candidates=int(len(candidates)),
                       median_val_uncertainty_eV=typical,
                       stopped_replicas=int(stopped))
            if batch_now == 0:
                warnings.warn(f"round {rnd}: every model MD replica failed at once; stopping with "
                              f"{n_labels} labels")
                last = True
        rows = [r for r in rows if r["round"] < rnd] + [row]
        _save_round(out, model, rows, sets, labels_path, settings)
        report("round", row=row)
        if last:
            break
        # the batch is saved before its first label: a kill from here on resumes with the same batch
        labels.meta = dict(labels.meta, round=rnd, batch_done=0)
        labels.checkpoint(candidates[picks], np.zeros_like(candidates[picks]), None)
        labeller = labeller or _labeller(starts[names[0]].numbers, engine, method, polarizability)
        _label_batch(labels, labeller, rnd, candidates[picks], 0, progress=report, rows=rows)
        completed = rnd
        atomic_write(state_path, json.dumps({"rows": rows}, indent=1).encode())
    labels.close()
    _finish(out, model, train, rows, time.perf_counter() - started)
    return rows


def _energy_window(train, temperatures_K):
    """Model energies (eV) a replica may visit: the training range widened by 5 kT at the highest
    temperature below and 10 kT above (see ``energy_window`` of :func:`nxplugin.learn.explore.explore`)."""
    from ase import units
    kt = units.kB * max(temperatures_K)
    return float(train["energies"].min() - 5 * kt), float(train["energies"].max() + 10 * kt)


def _labeller(numbers, engine, method, polarizability):
    from nxplugin.learn.explore import Labeller
    return Labeller(numbers, engine=engine, method=method, polarizability=polarizability)


def _label_batch(labels, labeller, rnd, positions, done, *, progress, rows):
    """Label ``positions[done:]`` of round ``rnd``, checkpointing after each record."""
    from ase.calculators.calculator import CalculationFailed
    t0 = time.perf_counter()
    failed = 0
    for k in range(done, len(positions)):
        try:
            record = labeller(positions[k], {"round": int(rnd), "set": "learned", "pick": int(k)})
        except CalculationFailed as err:
            warnings.warn(f"round {rnd}: engine failed on picked geometry {k} ({err}); skipped")
            record, failed = None, failed + 1
        if record is not None:
            labels.write(record)
        labels.meta = dict(labels.meta, round=int(rnd), batch_done=k + 1)
        labels.checkpoint(positions, np.zeros_like(positions), None)
        progress("label", round=rnd, done=k + 1, total=len(positions))
    for row in rows:
        if row["round"] == rnd:
            row["label_s"] = round(row.get("label_s", 0.0) + time.perf_counter() - t0, 2)
            row["engine_failures"] = row.get("engine_failures", 0) + failed


def _save_round(out, model, rows, sets, labels_path, settings):
    """model.npz, learning.csv, state.json and data.extxyz.gz of the rounds so far (each atomic)."""
    from nxplugin.learn.curves import write_csv
    from nxplugin.model.modelfile import save_model
    from nxplugin.reference.datasets import file_digest
    last = rows[-1]
    data_path = os.path.join(out, "data.extxyz.gz")
    _write_data(data_path, sets, labels_path)
    save_model(model, os.path.join(out, "model.npz"), training={
        "method": "active learning (nxplugin learn)", "n_labels": last["n_labels"], "n_train": last["n_train"],
        "data": "data.extxyz.gz (set=seed and set=learned trained on, set=validation not)",
        "data_sha256": file_digest(data_path),
        "validation_errors": {k[4:]: v for k, v in last.items() if k.startswith("val_")},
        "validation_errors_worst_temperature": {k[7:]: v for k, v in last.items() if k.startswith("valmax_")},
        "test_errors": {k[5:]: v for k, v in last.items() if k.startswith("test_")},
        "rounds": len(rows), "settings": {k: v for k, v in settings.items() if k != "starts"}})
    write_csv(os.path.join(out, "learning.csv"), rows)
    atomic_write(os.path.join(out, "state.json"), json.dumps({"rows": rows}, indent=1).encode())


def _write_data(path, sets, labels_path):
    """Every labelled frame (seed and validation: round 0) into one gzipped extxyz, atomically."""
    from ase.io import read, write
    text = io.StringIO()
    for name in ("seed", "validation"):
        with gzip.open(os.path.join(os.path.dirname(path), f"{name}.extxyz.gz"), "rt") as handle:
            frames = read(io.StringIO(handle.read()), ":", format="extxyz")
        for atoms in frames:
            atoms.info.update(round=0, set=name)
        write(text, frames, format="extxyz")
    if os.path.exists(labels_path):
        with open(labels_path) as handle:
            text.write(handle.read())

    def gz(handle):
        with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as zipped:
            zipped.write(text.getvalue().encode())
    atomic_write(path, gz)


def _finish(out, model, train, rows, seconds):
    """The final model with its conformer minima (for ``nxplugin md``) and the total wall time."""
    from nxplugin.analysis.minima import conformer_minima
    from nxplugin.model.modelfile import read_metadata, save_model
    path = os.path.join(out, "model.npz")
    training = read_metadata(path)[0]["training"]
    try:
        model.conformers_ = conformer_minima(model, train["numbers"], train["positions"], train["energies"])
    except Exception as err:       # minima are a convenience for `nxplugin md`, not part of learning
        warnings.warn(f"conformer minima not stored: {err}")
    training["wall_seconds_this_run"] = round(seconds, 1)
    save_model(model, path, training=training)
