"""Model files: one ``.npz`` of plain numeric arrays plus JSON metadata, never pickle.

Layout: every learned array of :class:`nxplugin.model.estimator.RPRModel` under its own name, and
``metadata``, a 0-d unicode array holding JSON with

- ``format`` (``"nxplugin-model"``) and ``schema_version``;
- ``species`` and ``numbers`` (atom order), ``units``, ``frame``, ``outputs``, ``hyperparameters``;
- ``equilibrium_geometry`` (Angstrom), free-form ``training`` information (data digest, errors);
- optional ``bonds_`` (bonded atom pairs of the reference) and ``automorphisms_`` (every relabelling of
  like atoms that keeps them, :mod:`nxplugin.model.symmetry`); files without them (written before
  they were stored) get them derived from the reference geometry on load;
- optionally ``conformers``: conformer minima by name (Angstrom, the model's atom order), the start
  geometries of ``md`` and ``harmonic`` (``RPRModel.conformers_``; files without it load as before);
- ``checksum``: SHA-256 over the name, dtype, shape and bytes of every array, in sorted order.

:func:`load_model` reads with ``allow_pickle=False`` and checks format, version, keys, shapes and the
checksum, so a pickled, truncated, tampered or foreign file raises :class:`ModelFileError` and
loading can never execute code. Files are written atomically (temporary file, then rename).
"""
import hashlib
import json
import os
import zipfile

import numpy as np

from nxplugin.model.elements import SYMBOLS
from nxplugin.errors import ModelFileError
from nxplugin.fileio import atomic_write
from nxplugin.model.estimator import FRAMES, GROUPS, RPRModel

FORMAT = "nxplugin-model"
SCHEMA_VERSION = 1
ARRAYS = ("numbers_", "masses_", "reference_", "reference_distances_", "offset_", "coef_",
          "train_descriptors_", "charges_", "pair_permutations_")
SYMMETRY_ARRAYS = ("bonds_", "automorphisms_")   # optional: derived on load when missing
UNITS = {"positions": "Angstrom", "energy": "eV", "forces": "eV/Angstrom", "dipole": "e*Angstrom",
         "polarizability": "Angstrom**3", "masses": "amu"}


def checksum(arrays):
    """SHA-256 hex digest of a dict of arrays (names, dtypes, shapes and bytes, sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def save_model(model, path, *, training=None):
    """Write a fitted model to ``path`` (``.npz``) atomically.

    Parameters
    ----------
    model : RPRModel
        A fitted model.
    path : str or path-like
    training : dict, optional
        JSON-serialisable facts about training (data file, digest, held-out errors, timings).
    """
    arrays = {name: np.asarray(getattr(model, name)) for name in ARRAYS}
    mapper = model.atom_mapper
    arrays["bonds_"], arrays["automorphisms_"] = mapper.bonds, mapper.automorphisms
    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "species": [SYMBOLS[int(z)] for z in model.numbers_],
        "numbers": [int(z) for z in model.numbers_],
        "units": UNITS,
        "frame": model.frame,
        "outputs": list(model.outputs_),
        "hyperparameters": model.hyperparameters_,
        "ood_scale": model.ood_scale_,
        "symmetry_images": int(len(model.pair_permutations_)),
        "automorphisms": int(len(mapper.automorphisms)),
        "class_preserving_automorphisms": int(len(mapper.class_preserving)),
        "charges_e": np.round(model.charges_, 6).tolist(),
        "n_train": int(len(model.coef_)),
        "equilibrium_geometry": np.round(model.reference_, 10).tolist(),
        "training": training or getattr(model, "training_", {}),
        "checksum": checksum(arrays),
    }
    if getattr(model, "conformers_", None):
        meta["conformers"] = {str(name): np.round(np.asarray(x, dtype=float), 10).tolist()
                              for name, x in model.conformers_.items()}
    atomic_write(path, lambda handle: np.savez(handle, metadata=np.array(json.dumps(meta)), **arrays))


def _check_is_archive(path):
    """Raise :class:`ModelFileError` naming what ``path`` is when it is not a zip (``.npz``) archive."""
    if os.path.isdir(path):
        inside = os.path.join(path, "model.npz")
        hint = f"; did you mean {inside}?" if os.path.isfile(inside) else "; give the model's .npz file"
        raise ModelFileError(f"{path}: is a folder, not a model file{hint}")
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such model file")
    if zipfile.is_zipfile(path):
        return
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        what = "an empty file"
    elif head.startswith(b"\x93NUMPY"):
        what = "a single .npy array"
    elif head[:1] == b"\x80" and head[1:2] in bytes(range(2, 6)):
        what = "a pickled Python object (nxplugin never loads pickles)"
    elif head.startswith(b"PK"):
        what = "a truncated or corrupt zip archive"
    else:
        try:
            first = head.decode("utf-8").splitlines()[0].strip()
            what = f"a text file (first line: {first[:40]!r})"
        except (UnicodeDecodeError, IndexError):
            what = f"a binary file (starts with {head[:8].hex()})"
    raise ModelFileError(f"{path}: not an nxplugin model: it is {what}, and a model is a .npz (zip) "
                         f"archive written by nxplugin train or nxplugin.save_model")


def read_metadata(path):
    """Metadata dict and arrays of a model file, fully validated; raises :class:`ModelFileError`."""
    path = os.fspath(path)
    _check_is_archive(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            files = set(data.files)
            if "metadata" not in files:
                raise ModelFileError(f"{path}: not an nxplugin model (no 'metadata' entry; "
                                     f"it holds {sorted(files)[:8]})")
            meta = json.loads(str(data["metadata"][()]))
            arrays = {name: data[name] for name in ARRAYS + SYMMETRY_ARRAYS if name in files}
    except ModelFileError:
        raise
    except ValueError as err:
        if "pickle" in str(err):
            raise ModelFileError(f"{path}: contains pickled objects, which nxplugin never loads") from err
        raise ModelFileError(f"{path}: unreadable model file ({err})") from err
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path}: truncated or corrupt model file ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an nxplugin model (format={meta.get('format')!r})"
                             if isinstance(meta, dict) else f"{path}: metadata is not a JSON object")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ModelFileError(f"{path}: schema version {meta.get('schema_version')!r}, this nxplugin reads "
                             f"version {SCHEMA_VERSION}; upgrade nxplugin or retrain the model")
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise ModelFileError(f"{path}: missing arrays {missing}")
    if checksum(arrays) != meta.get("checksum"):
        raise ModelFileError(f"{path}: checksum mismatch: the arrays were modified after saving")
    return meta, arrays


def load_model(path):
    """Load a model file written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        For a missing, pickled, truncated, tampered, foreign or inconsistent file.
    """
    meta, arrays = read_metadata(path)
    n_atoms = len(meta["numbers"])
    n_train, n_out = arrays["coef_"].shape if arrays["coef_"].ndim == 2 else (0, 0)
    expected = {"numbers_": (n_atoms,), "masses_": (n_atoms,), "reference_": (n_atoms, 3),
                "reference_distances_": (n_atoms * (n_atoms - 1) // 2,), "offset_": (n_out,),
                "charges_": (n_atoms,),
                "train_descriptors_": (n_train, n_atoms * (n_atoms - 1) // 2)}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ModelFileError(f"{path}: array {name} has shape {arrays[name].shape}, expected {shape}")
    perms = arrays["pair_permutations_"]
    n_pairs = n_atoms * (n_atoms - 1) // 2
    if perms.ndim != 2 or perms.shape[1] != n_pairs or perms.dtype.kind not in "iu" or \
            not all(np.array_equal(np.sort(p), np.arange(n_pairs)) for p in perms):
        raise ModelFileError(f"{path}: pair_permutations_ is not a list of permutations of {n_pairs} pairs")
    outputs = meta.get("outputs", [])
    if meta.get("frame") not in FRAMES or not set(outputs) <= set(GROUPS) or \
            n_out != sum(GROUPS[g].stop - GROUPS[g].start for g in outputs):
        raise ModelFileError(f"{path}: inconsistent frame/outputs in metadata")
    model = RPRModel(frame=meta["frame"])
    for name in ARRAYS:
        setattr(model, name, arrays[name])
    model.outputs_ = list(outputs)
    model.hyperparameters_ = meta["hyperparameters"]
    model.ood_scale_ = float(meta["ood_scale"])
    model.training_ = meta.get("training", {})
    model.conformers_ = {}
    for name, x in (meta.get("conformers") or {}).items():
        x = np.asarray(x, dtype=float)
        if x.shape != (n_atoms, 3) or not np.all(np.isfinite(x)):
            raise ModelFileError(f"{path}: conformer {name!r} is not {n_atoms} finite positions")
        model.conformers_[name] = x
    _load_symmetry(model, arrays, path)
    return model


def _load_symmetry(model, arrays, path):
    """Set the stored bond graph (or derive it) and check the stored automorphisms against it."""
    n_atoms = len(model.numbers_)
    bonds = arrays.get("bonds_")
    if bonds is not None:
        if bonds.ndim != 2 or bonds.shape[1] != 2 or bonds.dtype.kind not in "iu" or \
                (bonds.size and (bonds.min() < 0 or bonds.max() >= n_atoms)):
            raise ModelFileError(f"{path}: bonds_ is not a list of atom pairs of {n_atoms} atoms")
        model.bonds_ = bonds
    try:
        mapper = model.atom_mapper
    except ValueError as err:
        raise ModelFileError(f"{path}: no bond graph for the reference geometry ({err})") from err
    stored = arrays.get("automorphisms_")
    if stored is not None and not np.array_equal(stored, mapper.automorphisms):
        raise ModelFileError(f"{path}: automorphisms_ do not match the bond graph bonds_")
    model.bonds_ = mapper.bonds
