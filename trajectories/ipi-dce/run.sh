#!/bin/sh
# Run the four i-PI simulations of this example, two at a time, then the spectra (from this folder).
# Each run: i-pi in its folder, and `nxplugin ipi` serving the shipped model on its unix socket.
# NXPLUGIN="python -m nxplugin.cli" runs a source checkout (PYTHONPATH=repository root).
set -e
run() {
    (cd "$1" && i-pi input.xml > ipi.log 2>&1) &
    ${NXPLUGIN:-nxplugin} ipi --unix "nxplugin-$1" --wait 120 > "$1/client.log" 2>&1
    wait
}
python make_inputs.py "${STEPS:-20000}"
for kind in classical trpmd; do
    run "$kind-trans" & run "$kind-gauche" & wait
done
for kind in classical trpmd; do
    ${NXPLUGIN:-nxplugin} spectrum $kind-trans/$kind.dip_* $kind-trans/$kind.pos_*.xyz $kind-gauche/$kind.dip_* \
        $kind-gauche/$kind.pos_*.xyz --timestep 2 --temperature 300 --depth 500 --conformers \
        --out spectrum-$kind.csv --quiet | tee spectrum-$kind.txt
done
python plot_side_by_side.py
