"""nxplugin: rotate-predict-rotate (RPR) machine-learned dipoles for ASE and Newton-X dynamics.

Importing the package is cheap and has no side effects: ASE-facing names are loaded on first
use, so the Newton-X step program never pays for an ASE import.
"""
import importlib

__version__ = "0.1.0"

_LAZY = {
    "RPRCalculator": "nxplugin.calculator",
    "DipoleCalculator": "nxplugin.calculator",
    "RPRModel": "nxplugin.model.estimator",
    "load_model": "nxplugin.model.modelfile",
    "save_model": "nxplugin.model.modelfile",
    "shipped_model": "nxplugin.shipped",
    "shipped_models": "nxplugin.shipped",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nxplugin' has no attribute {name!r}")
