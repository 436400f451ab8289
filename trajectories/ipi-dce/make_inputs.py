"""Write the i-PI inputs of this example (run from this folder): classical and 8-bead TRPMD, 300 K,
PILE-L (tau 100 fs; TRPMD: pile_lambda 0.5 on the internal modes), 0.5 fs steps, 10 ps, one run
from the trans and one from the gauche minimum, each in its own folder (i-PI writes RESTART there)."""
import os
import sys

from nxplugin.ipi import inputs
from nxplugin.reference.molecules import dce

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 20000           # 10 ps of 0.5 fs

for conformer in ("trans", "gauche"):
    inputs.write_xyz(f"{conformer}.xyz", dce(conformer))
    for kind, beads in (("classical", 1), ("trpmd", 8)):
        name = f"{kind}-{conformer}"
        os.makedirs(name, exist_ok=True)
        with open(os.path.join(name, "input.xml"), "w") as handle:
            handle.write(inputs.simulation_xml(
                address=f"nxplugin-{name}", steps=STEPS, timestep_fs=0.5, temperature_K=300.0, beads=beads,
                batch_size=beads, thermostat="pile_l", tau_fs=100.0, pile_lambda=0.5,
                positions=f"../{conformer}.xyz", prefix=kind, stride=4, properties_stride=20, flush=250,
                seed=1 + ("trans", "gauche").index(conformer)))
