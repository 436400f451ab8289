"""Shipped models, found by name: ``shipped_model("dce-gfn2xtb")`` after a plain or an editable install.

A shipped model is a folder ``calculators/NAME/`` with ``model.npz`` and ``MODEL_CARD.md``: in the
source tree (editable install, or running from a checkout), or under ``sys.prefix/share/nxplugin``
where a plain ``pip install`` puts the data files (``setup.cfg``'s ``data_files``; setuptools
writes the folder names there with ``_`` for ``-``, so both spellings are looked up).
"""
import os
import sys

DEFAULT_MODEL = "dce-gfn2xtb"


def _roots():
    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [os.path.join(source, "calculators"), os.path.join(sys.prefix, "share", "nxplugin", "calculators")]


def shipped_models():
    """Names of the shipped models that are installed, sorted."""
    names = set()
    for root in _roots():
        if os.path.isdir(root):
            names.update(n.replace("_", "-") for n in os.listdir(root)
                         if os.path.isfile(os.path.join(root, n, "model.npz")))
    return sorted(names)


def shipped_model(name=DEFAULT_MODEL):
    """Path of the shipped model ``name`` (``model.npz``).

    Raises
    ------
    FileNotFoundError
        No shipped model of that name is installed; the message lists those that are.
    """
    for root in _roots():
        for folder in (name, name.replace("-", "_")):
            path = os.path.join(root, folder, "model.npz")
            if os.path.isfile(path):
                return path
    raise FileNotFoundError(f"no shipped model named {name!r}; installed: {', '.join(shipped_models()) or 'none'}. "
                            "Give a model file path instead")


def model_path(name_or_path):
    """A model file path for a path or a shipped model's name (a path that exists wins); None gives
    the default shipped model."""
    if name_or_path is None:
        return shipped_model()
    if os.path.exists(name_or_path) or os.sep in os.fspath(name_or_path) or os.fspath(name_or_path).endswith(".npz"):
        return os.fspath(name_or_path)
    return shipped_model(os.fspath(name_or_path))
