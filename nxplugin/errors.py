"""Exceptions raised by nxplugin; the command line turns them into messages and exit codes."""


class NxPluginError(Exception):
    """Base class of every error nxplugin raises on purpose."""


class GeometryError(NxPluginError, ValueError):
    """A geometry the model cannot take: wrong species or order, NaN, overlapping atoms, a cell."""


class ModelFileError(NxPluginError, ValueError):
    """A model file that is not a valid nxplugin model: pickled, truncated, tampered or foreign."""


class DataFileError(NxPluginError, ValueError):
    """An input data or trajectory file that is missing fields, truncated or garbled."""


class NotFittedError(NxPluginError, ValueError, AttributeError):
    """A model used before ``fit`` (or ``load_model``), as scikit-learn's ``NotFittedError``."""


class ModelDomainError(GeometryError):
    """Atoms that are not the model's molecule: other species or counts, or other bonds (a different
    isomer, a broken or an extra bond); the message names what differs."""
