"""Write the start geometries of the shipped X-CH2-CH2-X models (ideal geometries from
``nxplugin.reference.molecules.xcch2ch2y``; ``nxplugin sample --start`` optimises them with GFN2-xTB).

The DBE files list their atoms in one shuffled order (seed 13), as files from elsewhere would; the
data, and so the DBE model, keep that order.

    python calculators/make_starts.py
"""
import os

import numpy as np
from ase.io import write

from nxplugin.reference.molecules import xcch2ch2y

HERE = os.path.dirname(os.path.abspath(__file__))
MOLECULES = {"dbe-gfn2xtb": "Br", "dfe-gfn2xtb": "F"}

for folder, halogen in MOLECULES.items():
    for conformer in ("trans", "gauche"):
        atoms = xcch2ch2y(halogen, halogen, conformer)
        if halogen == "Br":
            atoms = atoms[np.random.default_rng(13).permutation(len(atoms))]
        write(os.path.join(HERE, folder, f"start-{conformer}.xyz"), atoms, format="xyz",
              comment=f"ideal {conformer} {halogen}CH2CH2{halogen} (nxplugin.reference.molecules.xcch2ch2y)")
