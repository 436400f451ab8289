"""Render a model folder's MODEL_CARD.md from the measurements in its card.json and its
card_config.json (both read by ``python calculators/make_card.py MODEL_DIR``; ``--replot`` only
re-renders)."""


def _errors_table(card):
    lines = ["| model | test set | conformer | frames | energy (kcal/mol) | forces (kcal/mol/Å) | dipole (D) | polarizability (Å³) |",
             "|---|---|---|---|---|---|---|---|"]
    names = {"eckart": "RPR Eckart (shipped)", "inertia": "RPR inertia frame", "lab": "direct lab frame"}
    for frame, sets in card["errors"].items():
        for test, groups in sets.items():
            for conformer, e in groups.items():
                lines.append(f"| {names[frame]} | {test} | {conformer} | {e['n']} | {e['energy_kcal_mol']:.4f} | "
                             f"{e['forces_kcal_mol_A']:.3f} | {e['dipole_D']:.4f} | {e.get('polarizability_A3', float('nan')):.4f} |")
    return "\n".join(lines)


def _band_table(card, name):
    lines = ["| conformer | GFN2-xTB (cm⁻¹) | model (cm⁻¹) | GFN2-xTB (km/mol) | model (km/mol) | intensity error | within targets |",
             "|---|---|---|---|---|---|---|"]
    for conformer, bands in card["band_check"][name].items():
        for b in bands:
            lines.append(f"| {conformer} | {b['gfn2_cm-1']:.1f} | {b['model_cm-1']:.1f} | {b['gfn2_km_mol']:.1f} | "
                         f"{b['model_km_mol']:.1f} | {100 * b['intensity_error']:+.1f} % | {'yes' if b['ok'] else 'NO'} |")
    return "\n".join(lines)


def _numbering_section(card, config):
    if "numbering" not in card:
        return ""
    num = card["numbering"]
    rows = []
    for test in ("test500", "test300"):
        for name, e in num[test].items():
            if isinstance(e, dict):
                rows.append(f"| {test} | {name} | {e['n']} | {e['energy_kcal_mol']:.4f} | {e['forces_kcal_mol_A']:.3f} "
                            f"| {e['dipole_D']:.4f} | {e['polarizability_A3']:.4f} |")
    classes = lambda c: "one class" if len(c) == 1 else "both classes"
    return f"""
## Any atom numbering (labelling classes)
With the hydrogens numbered, {config['short']} has two labelling classes that no rotation, reflection or torsion
turns into each other (the sign of the product of the two carbons' handedness). Training frames:
{classes(num['train_classes'])}; test frames: {classes(num['test500']['class_of_stored_frames'])}; both reference
geometries: {classes(num['reference_classes'])}. Every input is mapped onto the model's labelling
(bond-graph isomorphism in the model's class, `nxplugin.model.atommap`); the model averages every
output over the class-preserving automorphisms, so the choice among them changes nothing. Rows:
frames as stored; the same frames in the other class (the two hydrogens of the second carbon of the
torsion swapped); each frame with its atoms in
a random order of its own (every fourth one hydrogens first), in either class; and the other class
*unmapped*, as nxplugin predicted before the mapping. Measured by
`python calculators/make_card.py calculators/{config['name']} --numbering` on the shipped `model.npz`
(also part of the full run).{(" " + config["numbering_note"]) if config.get("numbering_note") else ""}

| test set | numbering | frames | energy (kcal/mol) | forces (kcal/mol/Å) | dipole (D) | polarizability (Å³) |
|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"


def _capitalised(name):
    """'1,2-dichloroethane' -> '1,2-Dichloroethane' (the first letter, wherever it is)."""
    first = next((i for i, c in enumerate(name) if c.isalpha()), 0)
    return name[:first] + name[first:first + 1].upper() + name[first + 1:]


def _dft_section(card, config):
    if "dft" not in card:
        return ""
    rows = "\n".join(f"| {label} | {r['gauche_minus_trans_eV']:+.4f} | {r['gauche_minus_trans_kcal_mol']:+.2f} | "
                     f"{r['gauche_dihedral_deg']:.1f} |" for label, r in card["dft"].items())
    torsion = card["reference"]["torsion_label"]
    return f"""
## Conformers: GFN2-xTB against DFT

Energy of the gauche minimum relative to trans (each at its own minimum; negative: gauche lower) and
the gauche {torsion} dihedral. DFT: PySCF with D3(BJ) dispersion (pyscf-dispersion), `{config['dft']}`
written by `dft_conformers.py` in this folder; "this model": both minima relaxed with the model.

| level | gauche − trans (eV) | gauche − trans (kcal/mol) | gauche dihedral (°) |
|---|---|---|---|
{rows}
"""


def write_card(card, config, path):
    ref = card["reference"]
    short, torsion = config["short"], ref["torsion_label"]
    e = card["errors"]
    ce, ci = card["covariance"]["eckart"], card["covariance"]["inertia"]
    ratio = e["lab"]["test500"]["all"]["dipole_D"] / e["eckart"]["test500"]["all"]["dipole_D"]
    hp = "\n".join(f"- {g}: σ = {h['sigma']:.4g}, λ = {h['lam']:.3g}" for g, h in card["hyperparameters"].items())
    data = "\n".join(f"- `{name}.extxyz.gz`: {d['frames']} frames ({d.get('trans', 0)} trans, {d.get('gauche', 0)} "
                     f"gauche; |{torsion}| ≥ 120° counts as trans), sha256 `{d['sha256'][:16]}…`"
                     for name, d in card["data"].items())
    curve = "\n".join(f"| {p['n_train']} | " + " | ".join(f"{card['learning_curve'][f][k]['errors']['dipole_D']:.4f}"
                                                           for f in ("eckart", "inertia", "lab")) + " |"
                      for k, p in enumerate(card["learning_curve"]["eckart"]))
    bands = ""
    if "band_check" in card:
        counts = {name: sum(b["ok"] for c in card["band_check"][name].values() for b in c) for name in card["band_check"]}
        total = sum(len(c) for c in card["band_check"]["eckart"].values())
        bands = f"""
## Harmonic IR spectrum against GFN2-xTB

GFN2-xTB reference: `ase.vibrations.Infrared` on tblite with `accuracy=0.01`, at its own minimum; model:
`ase.vibrations.Infrared` on `RPRCalculator` at the model's minimum (the same as `nxplugin harmonic`).
Each GFN2-xTB mode is paired with the model mode whose (mass-weighted) eigenvector overlaps it most. Targets for every band of ≥ 5 km/mol: wavenumber within
1.5 % (or 10 cm⁻¹) and intensity within 25 %. Bands within both targets: shipped Eckart-frame model
{counts['eckart']} of {total}; the paper's inertia frame {counts['inertia']} of {total}.

Shipped model (Eckart frame):

{_band_table(card, 'eckart')}

Inertia frame (for comparison):

{_band_table(card, 'inertia')}
"""
    warning = f"\n{config['warning']}\n" if config.get("warning") else ""
    text = f"""# Model card: `{config['name']}`

{_capitalised(config['molecule'])} ({short}; atoms in the order
{', '.join(ref['symbols'])}; the {torsion} torsion is atoms {tuple(ref['torsion'])}) at the
{config['level']} level. Energy and analytic forces, dipole and polarizability by
rotate-predict-rotate kernel ridge regression (KREG: Gaussian kernel on r_eq/r over all atom pairs).
Units: eV, eV/Å, e·Å, Å³ (ASE).
{warning}
Every figure below is measured by `python calculators/make_card.py calculators/{config['name']}`
(which also writes `model.npz`, `card.json` and `learning_curve.png`); the data are made by the
commands in `data/README.md`.

## Frame
The dipole and polarizability are learned in the **Eckart frame** of the molecule relative to the
trans minimum (the orthogonal polar factor of Σ m_i (x_i − c) y_iᵀ, reflections allowed), not in the
principal axes of inertia used by Martinka et al. (2024). The Eckart frame is an analytic function of the
coordinates whenever that matrix is non-singular, so it does not swing when two moments of inertia
nearly coincide (trans {short}: the two larger moments differ by {ref['moments_split_percent']:.0f} %). Both frames are exactly
covariant under rotations, reflections and translations; mirror images get identical labels. The
inertia frame stays available (`nxplugin train --frame inertia`) and is compared here.

Two more choices make the IR intensities right. The dipole is learned on top of a fixed point-charge
dipole Σ q_i (x_i − c) (charges fitted to the training dipoles, zero total charge; exactly covariant),
which carries most of the dipole derivatives; the kernel model learns the smaller remainder in the
Eckart frame. And the energy kernel is averaged over the relabellings of like atoms that are symmetries
of the reference minimum ({ref['symmetry_images']}, found automatically), so the energy is exactly
invariant under them and near-degenerate C–H stretches of different symmetry cannot mix. The
reference geometry is the GFN2-xTB {config['reference']} minimum ({config['reference_note']}).

## Data
{data}

## Hyperparameters
Closed-form leave-one-out search on 1500 points for every output, then the energy width refined on a
10 % hold-out of the full training set.
{hp}

Training time with the search, N = {card['learning_curve']['eckart'][-1]['n_train']}: {card['train_seconds']['eckart']:.1f} s.

## Test errors (RMSE over all Cartesian components, after back-rotation)
Test sets are independent trajectories never used in training (`test500`: 500 K, `test300`: 300 K).

{_errors_table(card)}

RPR (Eckart) dipole RMSE is {ratio:.1f}× lower than the direct lab-frame model on the same data.

Covariance: over 1000 random rotations, reflections and translations of each of 10 test geometries,
the largest deviation of a prediction from the exactly rotated prediction, relative to the test set's
RMS dipole and polarizability: Eckart {ce['dipole']:.1e} (dipole), {ce['polarizability']:.1e}
(polarizability), i.e. at most {ce['dipole_abs_eA']:.1e} e·Å; inertia frame {ci['dipole']:.1e} and
{ci['polarizability']:.1e}. The frames themselves are covariant to 1e-15; the rest is round-off in
the kernel sums.

## Learning curve (dipole RMSE in D on test500)
![learning curve](learning_curve.png)

| N | RPR Eckart | RPR inertia | direct |
|---|---|---|---|
{curve}
{bands}{_numbering_section(card, config)}{_dft_section(card, config)}"""
    with open(path, "w") as handle:
        handle.write(text)
