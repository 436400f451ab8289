"""Shared fixtures: a small GFN2-xTB data set of 1,2-dichloroethane made with tblite (seeded, cached
per session) and a model fitted to it."""
import numpy as np
import pytest

from nxplugin.reference.molecules import dce

# GFN2-xTB trans-DCE (C, C, Cl, Cl, H, H, H, H), Angstrom, in the atom order the shipped model uses.
TRANS_DCE = dce("trans").positions


def _dce_data(n, seed):
    from tblite.ase import TBLite

    rng = np.random.default_rng(seed)
    atoms = dce("trans")
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    eq = atoms.positions.copy()
    out = {"numbers": atoms.numbers.copy(), "reference": eq, "positions": [], "energies": [],
           "forces": [], "dipoles": []}
    for k in range(n):
        geo = atoms.copy()
        geo.calc = atoms.calc
        geo.positions = eq
        geo.set_dihedral(2, 0, 1, 3, 180 + rng.uniform(-40, 40), mask=[0, 1, 0, 1, 0, 0, 1, 1])
        geo.positions += rng.normal(scale=0.04, size=eq.shape)
        geo.rotate(rng.uniform(0, 360), rng.normal(size=3), center="COM")
        out["positions"].append(geo.positions.copy())
        out["energies"].append(geo.get_potential_energy())
        out["forces"].append(geo.get_forces())
        out["dipoles"].append(geo.get_dipole_moment())
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="session")
def dce_data():
    """300 GFN2-xTB labelled DCE geometries around trans (eV, eV/Angstrom, e*Angstrom)."""
    return _dce_data(300, seed=7)


@pytest.fixture(scope="session")
def dce_model(dce_data):
    from nxplugin.model.estimator import RPRModel
    d = dce_data
    # lam fixed at 1e-8: the search on so few, so similar points picks near-singular fits
    return RPRModel(lam=1e-8).fit(d["numbers"], d["positions"][:250], energies=d["energies"][:250],
                          dipoles=d["dipoles"][:250], reference=d["reference"])


def sigkill_and_resume(cmd, out, n_traj, rng, attempts, pause):
    """Run ``cmd --out out`` (then with ``--resume``), SIGKILL it after a random pause (s, range
    ``pause``) until every trajectory's checkpoint says finished or ``attempts`` runs are used, then
    finish with one uninterrupted ``--resume``. Returns the number of kills."""
    import os
    import signal
    import subprocess
    import time

    from nxplugin.md.trajfile import read_checkpoint, trajectory_path

    kills = 0
    for attempt in range(attempts):
        proc = subprocess.Popen(cmd + ["--out", str(out)] + (["--resume"] if attempt else []),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(*pause))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        states = [read_checkpoint(trajectory_path(out, k)) for k in range(n_traj)]
        if all(s is not None and s["meta"]["finished"] for s in states):
            break
    subprocess.run(cmd + ["--out", str(out), "--resume"], check=True, capture_output=True)
    return kills
