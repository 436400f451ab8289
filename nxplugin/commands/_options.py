"""Argument types that check ranges, the model option and the --out check, shared by the commands.

argparse calls a type with the text of the option and reports an ``argparse.ArgumentTypeError`` as
``argument --dt: must be > 0 fs (got 0)``: the option is named by argparse, the allowed range and
the unit by the type. Out-of-range values therefore stop the command with exit code 2 before any
file is written.

    parser.add_argument("--dt", type=positive_float("fs"), metavar="FS")
"""
import argparse
import math
import os

from nxplugin.errors import NxPluginError

class OptionError(NxPluginError, ValueError):
    """Options that are each valid but do not fit together or with the files (e.g. --out exists)."""


def _number(kind, unit, *, low=None, high=None, low_inclusive=True, name):
    """A type converting to ``kind`` (int or float) and checking ``low <(=) value <= high``."""
    unit = f" {unit}" if unit else ""
    if low is None:
        rule = f"<= {high:g}{unit}"
    else:
        rule = f"{'>=' if low_inclusive else '>'} {low:g}{unit}" + (f" and <= {high:g}{unit}" if high is not None else "")

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}; "
                                             f"allowed: {rule}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number {rule} (got {text})")
        too_low = low is not None and (value < low if low_inclusive else value <= low)
        if too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {rule} (got {text})")
        return value

    convert.__name__ = name
    convert.rule = rule
    return convert


def positive_float(unit=""):
    """Float > 0 (a time step, a length, a width)."""
    return _number(float, unit, low=0, low_inclusive=False, name="positive number")


def nonnegative_float(unit=""):
    """Float >= 0 (a temperature, a friction, an equilibration time)."""
    return _number(float, unit, low=0, name="non-negative number")


def float_at_least(low, unit=""):
    """Float >= ``low``."""
    return _number(float, unit, low=low, name="number")


def positive_int(unit=""):
    """Integer >= 1 (a count, an interval in steps)."""
    return _number(int, unit, low=1, name="positive integer")


def nonnegative_int(unit=""):
    """Integer >= 0 (a seed, an atom index, a count that may be zero)."""
    return _number(int, unit, low=0, name="non-negative integer")


def int_at_least(low, unit=""):
    """Integer >= ``low``."""
    return _number(int, unit, low=low, name="integer")


def int_between(low, high, unit=""):
    """Integer with ``low <= value <= high`` (a port number)."""
    return _number(int, unit, low=low, high=high, name="integer")


MODEL_HELP = "model file or shipped model name (default: dce-gfn2xtb, the shipped DCE model)"


def model_path(value):
    """The model file for ``value`` (a path or a shipped model's name; None: the shipped default)."""
    from nxplugin.shipped import model_path as shipped_model_path
    return shipped_model_path(value)


def refuse_existing_run(out, resume, *, markers=("summary.json", "populations.json", "equilibration"),
                        patterns=("traj_",)):
    """Raise :class:`OptionError` when ``out`` already holds a run and ``resume`` is false.

    A run is recognised by any of ``markers`` (file names) or files starting with ``patterns``.
    """
    if resume or not os.path.isdir(out):
        return
    found = sorted(f for f in os.listdir(out) if f in markers or f.startswith(tuple(patterns)))
    if found:
        raise OptionError(f"--out {out} already holds a run ({', '.join(found[:3])}"
                          f"{', ...' if len(found) > 3 else ''}); add --resume to continue it, "
                          f"or choose a new folder")
