"""Chemical symbols by atomic number, without importing ASE (the Newton-X step path stays light)."""

SYMBOLS = (
    "X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br "
    "Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er "
    "Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md "
    "No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
).split()
NUMBERS = {symbol: number for number, symbol in enumerate(SYMBOLS)}


def formula(numbers):
    """Symbols of ``numbers`` in order, e.g. ``"C C Cl Cl H H H H"``."""
    return " ".join(SYMBOLS[int(z)] for z in numbers)


def describe_mismatch(expected, got):
    """Message for atoms that do not match a model's species and order."""
    if len(expected) != len(got):
        return (f"the model is for {len(expected)} atoms ({formula(expected)}), "
                f"got {len(got)} ({formula(got)})")
    wrong = [i for i, (a, b) in enumerate(zip(expected, got)) if a != b]
    detail = ", ".join(f"atom {i} is {SYMBOLS[int(got[i])]}, expected {SYMBOLS[int(expected[i])]}"
                       for i in wrong[:5])
    hint = " (same atoms in another order: reorder them to the model's order)" \
        if sorted(expected) == sorted(got) else ""
    return f"wrong species or atom order for this model: {detail}{hint}; model order: {formula(expected)}"

#: Single-bond covalent radii, Angstrom (Cordero et al., Dalton Trans. 2008, 2832; sp3 carbon), by
#: atomic number, for bond graphs (:mod:`nxplugin.model.symmetry`).
COVALENT_RADII = {
    1: 0.31, 2: 0.28, 3: 1.28, 4: 0.96, 5: 0.84, 6: 0.76, 7: 0.71, 8: 0.66, 9: 0.57, 10: 0.58,
    11: 1.66, 12: 1.41, 13: 1.21, 14: 1.11, 15: 1.07, 16: 1.05, 17: 1.02, 18: 1.06, 19: 2.03,
    20: 1.76, 31: 1.22, 32: 1.20, 33: 1.19, 34: 1.20, 35: 1.20, 36: 1.16, 53: 1.39, 54: 1.40,
}
