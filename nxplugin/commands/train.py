"""Train a rotate-predict-rotate kernel model from labelled frames.

DATA is any file ase.io.read reads (extxyz recommended) with ASE's standard keys: energy in eV, forces
in eV/Angstrom, dipole in e*Angstrom (what ase.io.write stores from a SinglePointCalculator), and
optionally info['polarizability'] in Angstrom^3. Kernel widths and regularisation are chosen by
closed-form leave-one-out on a subset; held-out errors are printed in kcal/mol, kcal/mol/Angstrom,
Debye and Angstrom^3 and stored in the model file.
"""
from nxplugin.commands._options import OptionError, int_at_least, nonnegative_int


def add_arguments(parser):
    parser.add_argument("data", metavar="DATA.extxyz", help="labelled frames (eV, eV/Angstrom, e*Angstrom)")
    parser.add_argument("-o", "--output", metavar="MODEL.npz", required=True, help="model file to write")
    parser.add_argument("--n-train", type=int_at_least(2), default=None,
                        help="training frames (default: all but the held-out ones)")
    parser.add_argument("--n-test", type=nonnegative_int(), default=None,
                        help="held-out frames from DATA (default: 10%%, at most 1000; 0 with --test)")
    parser.add_argument("--test", metavar="TEST.extxyz", help="separate held-out data set")
    parser.add_argument("--seed", type=nonnegative_int(), default=0, help="seed of the train/test split (default 0)")
    parser.add_argument("--frame", choices=["eckart", "inertia"], default="eckart",
                        help="molecular frame for RPR (default eckart)")
    parser.add_argument("--direct", action="store_true",
                        help="train the direct lab-frame dipole model instead (not covariant; for comparison)")
    parser.add_argument("--reference", metavar="GEOMETRY",
                        help="equilibrium geometry (any ase-readable file, Angstrom, same atom order) for the "
                        "descriptor and the frame, in any atom order (it sets the model's); default: the trans minimum "
                        "for DCE, else the lowest-energy frame of DATA relaxed with a provisional energy model and "
                        "symmetrised. Frames in any atom order are mapped onto it")
    parser.add_argument("--n-search", type=int_at_least(2), default=1500,
                        help="frames used by the hyperparameter search (default 1500)")
    parser.add_argument("--forces", action="store_true",
                        help="fit the energy to DATA's forces (eV/Angstrom) too, with a displaced copy of each "
                        "training geometry as an extra kernel centre: about 3x lower energy and force errors from the "
                        "same frames, 2x slower prediction (at most 2000 training frames; 24 s for 540 DCE frames)")


def run(args):
    import time

    import numpy as np
    from tqdm import tqdm

    from nxplugin.reference.datasets import file_digest, format_errors, model_errors, read_dataset, subset
    from nxplugin.model.modelfile import save_model
    from nxplugin.model.estimator import MAX_FORCE_FIT, SIGMA_FACTORS, RPRModel

    data = read_dataset(args.data)
    n = len(data["positions"])
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(n)
    n_test = args.n_test if args.n_test is not None else (0 if args.test else min(1000, n // 10))
    n_train = args.n_train if args.n_train is not None else n - n_test
    if n_train + n_test > n or n_train < 2:
        raise OptionError(f"{args.data} has {n} frames: cannot take --n-train {n_train} and {n_test} held out "
                          f"(--n-test); --n-train + --n-test must be at most {n} and --n-train at least 2")
    if args.forces and (data["forces"] is None or n_train > MAX_FORCE_FIT):
        raise OptionError(f"--forces needs forces in {args.data} and at most {MAX_FORCE_FIT} training frames "
                          f"(got {n_train}): use --n-train {MAX_FORCE_FIT} or leave --forces out")
    train = subset(data, order[:n_train])
    test = read_dataset(args.test) if args.test else subset(data, order[n_train:n_train + n_test])
    print(f"{args.data}: {n} frames; training on {n_train}, testing on {len(test['positions'])}"
          + (f" from {args.test}" if args.test else ""))

    reference_numbers = data["numbers"]
    if args.reference:
        import ase.io
        given = ase.io.read(args.reference)
        reference_numbers, reference = given.numbers, given.positions
        print(f"reference geometry: {args.reference}")
    else:
        from nxplugin.reference import molecules
        if sorted(data["numbers"]) == sorted(molecules.dce("trans").numbers):
            dce = molecules.dce("trans")
            reference_numbers, reference = dce.numbers, dce.positions
            print("reference geometry: the GFN2-xTB trans-DCE minimum (nxplugin.reference.molecules.dce)")
        else:
            # the data's frames onto the lowest-energy frame's labelling, then a symmetric minimum
            from ase.data import atomic_masses
            from nxplugin.analysis.minima import symmetric_reference
            from nxplugin.model.atommap import AtomMapper, map_dataset
            lowest = train["positions"][np.argmin(train["energies"])]
            provisional = map_dataset(AtomMapper(data["numbers"], lowest, atomic_masses[data["numbers"]]), train)
            reference, n_ops = symmetric_reference(provisional["numbers"], provisional["positions"],
                                                   provisional["energies"], provisional["dipoles"], seed=args.seed)
            print(f"reference geometry: the lowest-energy frame of the data relaxed with a provisional energy "
                  f"model and symmetrised ({n_ops} point-group operation(s))")
    # every frame, in whatever numbering and labelling class, onto the reference's labelling
    from ase.data import atomic_masses
    from nxplugin.model.atommap import AtomMapper, map_dataset
    mapper = AtomMapper(reference_numbers, reference, atomic_masses[reference_numbers])
    try:
        train, test = map_dataset(mapper, train), map_dataset(mapper, test)
    except ValueError as err:
        raise ValueError(f"{args.data}: {err}") from err
    model = RPRModel(frame="lab" if args.direct else args.frame, n_search=args.n_search, random_state=args.seed)
    start = time.perf_counter()
    with tqdm(total=len(SIGMA_FACTORS), desc="hyperparameter search (kernel widths)", unit="width",
              disable=None) as bar:
        model.fit(train["numbers"], train["positions"], energies=train["energies"], dipoles=train["dipoles"],
                  polarizabilities=train["polarizabilities"], forces=train["forces"] if args.forces else None,
                  reference=reference, progress=bar.update)
    seconds = time.perf_counter() - start
    for group, h in model.hyperparameters_.items():
        print(f"  {group}: sigma={h['sigma']:.4g}, lambda={h['lam']:.3g}"
              + (f", force weight={h['force_weight']:.3g} A^2" if "force_weight" in h else ""))
    if train["energies"] is not None:
        from nxplugin.analysis.minima import conformer_minima
        model.conformers_ = conformer_minima(model, train["numbers"], train["positions"], train["energies"])
        print("conformer minima (stored for md and harmonic): " + (", ".join(model.conformers_) or "none"))
    errors = model_errors(model, test) if len(test["positions"]) else {}
    if errors:
        print("held-out " + format_errors(errors))
    training = {"data": args.data, "data_sha256": file_digest(args.data), "n_train": n_train, "forces": args.forces,
                "seed": args.seed, "test": args.test, "test_errors": errors, "train_seconds": seconds}
    if train["polarizabilities"] is None and data["polarizabilities"] is None:
        training["note"] = "no polarizability in the data"
    save_model(model, args.output, training=training)
    print(f"trained in {seconds:.1f} s; wrote {args.output}")
