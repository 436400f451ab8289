"""The spectroscopist's MD protocol: canonical equilibration, conformer populations, production starts.

Units: temperature K, time fs (settings in :class:`nxplugin.md.settings.MDSettings`), positions
Angstrom, momenta ASE units, dihedrals degrees.

1. **Equilibration** (:func:`equilibrate`): an ensemble of thermostatted replicas (Langevin with
   ``FixCom`` by default), started alternately from the conformer minima, written to
   ``OUT/equilibration/`` (not part of the production files; resumable like any ensemble).
2. **Populations** (:func:`two_state_populations`): conformer populations at T from the
   equilibration frames, by a two-state Markov model of the trans/gauche labels
   (:mod:`nxplugin.analysis.conformers`): the maximum-likelihood rates ``k_ab = n_ab / t_a``
   (transitions out of ``a`` per time spent in ``a``) give ``pi_gauche = k_tg / (k_tg + k_gt)``.
   Unlike the fraction of frames, this does not remember where the replicas started (the issue of
   short runs from the minima). Errors by bootstrap over replicas.
3. **Production starts** (:func:`production_starts`): positions and momenta of equilibration frames
   from the second half, drawn per conformer in proportion to the populations (at least one per
   conformer), so that production is canonical; the production itself runs NVE by default.
"""
import os

import numpy as np

EQUILIBRATION_DIR = "equilibration"
POPULATIONS_FILE = "populations.json"


def equilibrate(model, starts, out_dir, settings, **ensemble_options):
    """Run the equilibration ensemble into ``out_dir/equilibration`` (see :func:`nxplugin.md.ensemble.run_ensemble`).

    Parameters
    ----------
    model : RPRModel
    starts : list of ase.Atoms
        One per replica, with momenta (:func:`nxplugin.md.dynamics.initial_conditions`).
    out_dir : str
    settings : MDSettings
        Its thermostat must not be ``"nve"``.
    **ensemble_options
        ``engine``, ``jobs``, ``scheduler``, ``scheduler_file``, ``chunk_size``, ``resume``, ``progress``.

    Returns
    -------
    list of dict
        Per replica summaries.
    """
    from nxplugin.md.ensemble import run_ensemble

    if settings.thermostat == "nve":
        raise ValueError("the equilibration needs a thermostat (langevin or bussi), not nve")
    return run_ensemble(model, starts, os.path.join(os.fspath(out_dir), EQUILIBRATION_DIR), settings,
                        **ensemble_options)


def read_equilibration(out_dir, n_replicas):
    """Frames of the equilibration replicas: list (per replica) of lists of ``ase.Atoms``."""
    import ase.io

    from nxplugin.md.trajfile import trajectory_path
    folder = os.path.join(os.fspath(out_dir), EQUILIBRATION_DIR)
    return [ase.io.read(trajectory_path(folder, k), ":") for k in range(n_replicas)]


def conformer_labels(replicas, dihedral=None):
    """Trans (0) / gauche (1) label of every frame, or None for a molecule without an X-C-C-Y torsion.

    Returns
    -------
    labels : list of ndarray of int, or None
    dihedral : tuple of 4 int or None
    """
    from nxplugin.analysis import conformers

    first = replicas[0][0]
    if dihedral is None:
        try:
            dihedral = conformers.find_dihedral(first.numbers, first.positions)
        except ValueError:
            return None, None
    labels = [conformers.classify(conformers.dihedral_series(np.array([f.positions for f in frames]), dihedral))
              for frames in replicas]
    return labels, tuple(dihedral)


def _two_state_counts(label_series):
    """Transitions t->g, g->t and frames spent in t and g (excluding each series' last frame)."""
    counts = np.zeros((2, 2))
    for labels in label_series:
        labels = np.asarray(labels)
        np.add.at(counts, (labels[:-1], labels[1:]), 1)
    return counts


def two_state_populations(label_series, *, n_boot=500, seed=0):
    """Equilibrium conformer populations from labelled series by a two-state Markov model.

    Parameters
    ----------
    label_series : list of array-like of int
        Labels (0 trans, 1 gauche) of each replica's frames, equally spaced in time.
    n_boot : int, default=500
        Bootstrap resamples of the replicas for the standard errors.
    seed : int, default=0

    Returns
    -------
    dict
        ``populations``: ``{"trans": (p, stderr), "gauche": (p, stderr)}``; ``transitions`` (total
        count), ``frame_fractions`` (the plain fractions of frames, for comparison) and ``method``.
        With no transition in either direction the populations are the frame fractions, and
        ``method`` says so.
    """
    from nxplugin.analysis.conformers import CONFORMERS

    def estimate(series):
        counts = _two_state_counts(series)
        time_in = counts.sum(axis=1)
        if counts[0, 1] == 0 or counts[1, 0] == 0 or time_in.min() == 0:
            return None
        k_tg, k_gt = counts[0, 1] / time_in[0], counts[1, 0] / time_in[1]
        return k_tg / (k_tg + k_gt)

    series = [np.asarray(s, dtype=int) for s in label_series if len(s) > 1]
    fractions = np.mean(np.concatenate(series) == 1)
    counts = _two_state_counts(series)
    transitions = int(counts[0, 1] + counts[1, 0])
    gauche = estimate(series)
    rng = np.random.default_rng(seed)
    if gauche is None:
        method = "fraction of frames (no transition in one direction: the Markov model is undefined)"
        gauche, boots = fractions, [np.mean(np.concatenate([series[i] for i in rng.integers(len(series), size=len(series))]) == 1)
                                    for _ in range(n_boot)]
    else:
        method = "two-state Markov model of the trans/gauche labels (k_ab = n_ab / t_a)"
        boots = [estimate([series[i] for i in rng.integers(len(series), size=len(series))]) for _ in range(n_boot)]
        boots = [b for b in boots if b is not None]
    stderr = float(np.std(boots, ddof=1)) if len(boots) > 1 else float("nan")
    values = {CONFORMERS[0]: (1.0 - float(gauche), stderr), CONFORMERS[1]: (float(gauche), stderr)}
    return {"populations": values, "transitions": transitions,
            "frame_fractions": {CONFORMERS[0]: 1.0 - float(fractions), CONFORMERS[1]: float(fractions)},
            "method": method}


def allocate(populations, n_traj):
    """Production trajectories per conformer: proportional to the populations (largest remainder),
    at least one per conformer with a non-zero population when ``n_traj`` allows."""
    names = list(populations)
    p = np.array([populations[c][0] for c in names], dtype=float)
    present = p > 0
    n = np.zeros(len(p), dtype=int)
    if n_traj >= present.sum():
        n[present] = 1
    rest = n_traj - n.sum()
    share = p / p.sum() * n_traj - n
    share = np.maximum(share, 0)
    if rest > 0 and share.sum() > 0:
        n += np.floor(share / share.sum() * rest).astype(int)
        order = np.argsort(-(share / share.sum() * rest - np.floor(share / share.sum() * rest)))
        for i in order[: n_traj - n.sum()]:
            n[i] += 1
    return {c: int(k) for c, k in zip(names, n)}


def production_starts(replicas, labels, populations, n_traj, *, seed=0, discard_fraction=0.5):
    """Start geometries and momenta for production, drawn from equilibration frames.

    Parameters
    ----------
    replicas : list of list of ase.Atoms
        Equilibration frames (positions, momenta) per replica (:func:`read_equilibration`).
    labels : list of ndarray of int or None
        Their conformer labels (:func:`conformer_labels`); None: draw without regard to conformers.
    populations : dict or None
        ``{"trans": (p, err), "gauche": (p, err)}``.
    n_traj : int
    seed : int, default=0
    discard_fraction : float, default=0.5
        Leading part of each replica not drawn from.

    Returns
    -------
    list of ase.Atoms
        With ``info["conformer"]`` set, and momenta; distinct frames.
    """
    from nxplugin.analysis.conformers import CONFORMERS

    rng = np.random.default_rng([seed, 2])
    pool = [(r, f) for r, frames in enumerate(replicas) for f in range(int(len(frames) * discard_fraction), len(frames))]
    if labels is None or populations is None:
        chosen = [(pool[i], "equilibrated") for i in rng.choice(len(pool), size=n_traj, replace=False)]
    else:
        chosen = []
        for code, (name, count) in enumerate(allocate(populations, n_traj).items()):
            candidates = [rf for rf in pool if labels[rf[0]][rf[1]] == CONFORMERS.index(name)]
            if len(candidates) < count:
                raise ValueError(f"the equilibration has {len(candidates)} {name} frames to start {count} production "
                                 "trajectories from: equilibrate longer or with more replicas")
            chosen += [(candidates[i], name) for i in rng.choice(len(candidates), size=count, replace=False)]
    starts = []
    for (r, f), name in chosen:
        atoms = replicas[r][f].copy()
        atoms.set_momenta(replicas[r][f].get_momenta())
        atoms.calc = None
        atoms.info = {"conformer": name}
        starts.append(atoms)
    return starts
