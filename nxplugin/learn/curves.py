"""Learning curves: the CSV of the rounds, the random-sampling baseline, and the plot.

Units: errors are RMSEs in kcal/mol (energy), kcal/mol/Angstrom (forces), Debye (dipole) and
Angstrom**3 (polarizability), as :func:`nxplugin.reference.datasets.model_errors` returns them;
wall times in s.
"""
import csv
import io

import numpy as np

from nxplugin.fileio import atomic_write

QUANTITIES = (("energy_kcal_mol", "energy RMSE / kcal mol$^{-1}$"),
              ("forces_kcal_mol_A", "forces RMSE / kcal mol$^{-1}$ Å$^{-1}$"),
              ("dipole_D", "dipole RMSE / D"),
              ("polarizability_A3", "polarizability RMSE / Å$^3$"))


def write_csv(path, rows):
    """Rows (dicts) as CSV with the union of their keys as columns (first-seen order), atomically."""
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, text.getvalue())


def read_csv(path):
    """Rows of a CSV written by :func:`write_csv` (numbers as float, empty cells dropped)."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            parsed = {}
            for key, value in row.items():
                if value == "":
                    continue
                try:
                    parsed[key] = float(value)
                except ValueError:
                    parsed[key] = value
            rows.append(parsed)
    return rows


def random_baseline(pool, counts, *, validation, reference, test=None, seed=0, progress=None):
    """Errors of models trained on nested random subsets of a pool of labelled frames.

    Parameters
    ----------
    pool : dict
        A data set (:func:`nxplugin.reference.datasets.read_dataset`), e.g. frames of blind engine MD.
    counts : sequence of int
        Training-set sizes (the learner's ``n_train`` of each round).
    validation : dict
        The learner's validation set (the same frames the learner is judged on).
    reference : ndarray of shape (n_atoms, 3), Angstrom
        The learner's reference geometry (same atom order as ``pool``).
    test : dict, optional
        Independent test set.
    seed : int
        Subset ``n`` is the first ``n`` frames of ``default_rng(seed).permutation``.
    progress : callable, optional
        Called with no argument after each model.

    Returns
    -------
    list of dict
        Per count: ``n_train``, ``val_*`` and ``test_*`` errors and ``fit_s``.
    """
    import time

    from nxplugin.learn.loop import fit_model
    from nxplugin.model.atommap import AtomMapper, map_dataset
    from nxplugin.reference.datasets import model_errors, subset

    n = len(pool["positions"])
    if max(counts) > n:
        raise ValueError(f"the random pool has {n} frames, fewer than the {max(counts)} needed")
    from ase.data import atomic_masses
    numbers = validation["numbers"]
    pool = map_dataset(AtomMapper(numbers, reference, atomic_masses[numbers]), pool)
    order = np.random.default_rng(seed).permutation(n)
    rows = []
    for count in counts:
        t0 = time.perf_counter()
        model = fit_model(subset(pool, order[:int(count)]), reference, seed=seed)
        row = {"n_train": int(count), "fit_s": round(time.perf_counter() - t0, 2)}
        row.update({f"val_{k}": v for k, v in model_errors(model, validation).items() if k != "n"})
        if test is not None:
            row.update({f"test_{k}": v for k, v in model_errors(model, test).items() if k != "n"})
        rows.append(row)
        if progress is not None:
            progress()
    return rows


def plot(path, rows, random_rows=None, *, targets=None, title=None):
    """Errors against engine labels used, active learning (and random sampling), one panel per quantity.

    Test-set errors are drawn when the rows have them, else validation errors; ``targets`` (dict of
    ``energy``/``forces``/``dipole``/``polarizability`` to RMSE) as dotted lines. Written atomically (PNG).
    """
    from nxplugin.learn.loop import TARGET_KEYS
    bounds = {TARGET_KEYS[q]: v for q, v in (targets or {}).items() if v is not None}
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prefix = "test_" if any(k.startswith("test_") for k in rows[-1]) else "val_"
    shown = [(key, label) for key, label in QUANTITIES if prefix + key in rows[-1]]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], shown):
        x = [r["n_labels"] for r in rows]
        ax.plot(x, [r[prefix + key] for r in rows], "o-", label="active learning")
        if random_rows:
            ax.plot([r["n_labels"] for r in random_rows], [r[prefix + key] for r in random_rows], "s--",
                    label="random MD frames")
        if key in bounds:
            ax.axhline(bounds[key], color="k", ls=":", lw=1, label="target")
        ax.set_xlabel("engine labels (seed + validation + learned)")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.suptitle(title or f"{'test' if prefix == 'test_' else 'validation'} errors")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
