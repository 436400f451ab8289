"""Shared fixtures: a small GFN2-xTB data set of 1,2-dichloroethane made with tblite (seeded, cached
per session) and a model fitted to it."""
import numpy as np
import pytest

# Approximate trans-DCE (C, C, Cl, Cl, H, H, H, H), Angstrom; fixtures relax it with GFN2-xTB.
TRANS_DCE = np.array([
    [0.000, 0.000, 0.766], [0.000, 0.000, -0.756], [0.000, 1.650, 1.370], [0.000, -1.655, -1.381],
    [0.891, -0.515, 1.148], [-0.891, -0.510, 1.142], [0.896, 0.507, -1.144], [-0.895, 0.510, -1.146]])


def _dce_data(n, seed):
    from ase import Atoms
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    rng = np.random.default_rng(seed)
    atoms = Atoms("C2Cl2H4", positions=TRANS_DCE)
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    BFGS(atoms, logfile=None).run(fmax=0.005)
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
    from nxplugin.models import RPRModel
    d = dce_data
    return RPRModel().fit(d["numbers"], d["positions"][:250], energies=d["energies"][:250],
                          dipoles=d["dipoles"][:250], reference=d["reference"])
