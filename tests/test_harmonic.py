import csv

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from nxplugin.cli import main
from nxplugin.analysis.harmonic import harmonic_ir, optimise


class Dimer(Calculator):
    """Harmonic bond k (eV/Angstrom^2) at r0 with a dipole q * r along it: an analytic IR answer."""
    implemented_properties = ["energy", "forces", "dipole"]

    def __init__(self, k=30.0, r0=1.1, q=0.4):
        super().__init__()
        self.k, self.r0, self.q = k, r0, q

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = atoms.positions[1] - atoms.positions[0]
        r = np.linalg.norm(d)
        f = -self.k * (r - self.r0) * d / r
        self.results = {"energy": 0.5 * self.k * (r - self.r0) ** 2, "forces": np.array([-f, f]),
                        "dipole": self.q * d}


def test_harmonic_ir_matches_analytic_diatomic():
    from ase import units
    atoms = optimise(Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.0]]), Dimer(), fmax=1e-8)
    wavenumbers, intensities = harmonic_ir(atoms, delta=0.001)
    assert len(wavenumbers) == 1                                          # 3N - 5 for a linear molecule
    masses = atoms.get_masses()
    mu = masses.prod() / masses.sum()
    omega = np.sqrt(30.0 / mu * units._e / units._amu * 1e20)            # rad/s
    expected = omega / (2 * np.pi * units._c * 100)                       # cm^-1
    assert abs(wavenumbers[-1] - expected) < 0.5
    # |dmu/dQ|^2 = q^2 / mu  (e^2/amu) -> (D/Angstrom)^2/amu -> km/mol with ASE's factor
    expected_km = (0.4 / units.Debye) ** 2 / mu * 42.255
    assert abs(intensities[-1] / expected_km - 1) < 1e-3


def test_harmonic_cli_writes_promised_columns(tmp_path):
    out = tmp_path / "h.csv"        # the shipped model (the test model knows trans only: gauche breaks apart)
    assert main(["harmonic", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["conformer", "wavenumber_cm-1", "intensity_km_mol-1"]
    trans = [r for r in rows if r["conformer"] == "trans"]
    assert len(trans) == 18 and {r["conformer"] for r in rows} == {"trans", "gauche"}
    w = np.array([float(r["wavenumber_cm-1"]) for r in trans])
    assert w.min() > 50 and 2900 < w.max() < 3300
