"""The ``nxplugin`` command: one subcommand per module in :mod:`nxplugin.commands`.

Each command module defines ``add_arguments(parser)`` and ``run(args)`` and keeps its heavy imports
inside ``run``. Library code raises; only this module turns errors into messages and exit codes.
"""
import argparse
import importlib
import sys

# name -> one-line summary; the module nxplugin.commands.<name> holds the command.
COMMANDS = {      # in the order of README's command table
    "sample": "Make labelled reference data (eV, eV/Angstrom, e*Angstrom) with GFN2-xTB or PySCF",
    "train": "Train an RPR (or direct) kernel model from labelled frames (eV, eV/Angstrom, e*Angstrom)",
    "learn": "Active learning from start geometries: seed set, then model MD, uncertain picks, labels",
    "models": "List the shipped models (name, molecule, level, size, accuracy on held-out data)",
    "info": "Print the metadata of a model file",
    "md": "Molecular dynamics with a model file (K, fs, ps); one extxyz per trajectory",
    "harmonic": "Harmonic IR spectrum (cm^-1, km/mol) of the trans and gauche conformers with a model",
    "spectrum": "IR or Raman spectrum from trajectories with dipoles (e*Angstrom), absolute km/mol units",
    "ipi": "i-PI force client: energy, forces, dipole (e*bohr) and polarizability extras in atomic units",
    "newtonx": "Newton-X CS interface: step program (Hartree, Bohr) and run setup",
    "diagnose": "Jacobian conditioning of descriptor, frames and dipole along trajectories (CSV, plot)",
    "symmetry": "Exact (RPR) vs learned rotational covariance of the dipole: errors, cost, IR intensities",
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="nxplugin",
        description="Machine-learned rotate-predict-rotate dipoles for ASE and Newton-X dynamics. "
        "Units: energies eV, lengths Angstrom, dipoles e*Angstrom, time fs unless a flag says otherwise.",
    )
    parser.add_argument("-T", "--traceback", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        module = importlib.import_module(f"nxplugin.commands.{name}")
        p = sub.add_parser(name, help=summary, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module, _parser=p)
    return parser


def _format_warning(message, category, filename, lineno, line=None):
    return f"nxplugin: warning: {message}\n"


def main(argv=None):
    import warnings
    warnings.formatwarning = _format_warning
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:          # --help (0) or a refused option (2, message already printed)
        return stop.code
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return args._module.run(args) or 0
    except KeyboardInterrupt:
        print("nxplugin: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                 # output piped into head or less and closed early
        sys.stderr.close()
        return 0
    except Exception as err:  # the one place that turns exceptions into an exit code
        if args.traceback:
            raise
        from nxplugin.errors import NxPluginError
        kind = "" if isinstance(err, (NxPluginError, OSError)) else f"{type(err).__name__}: "
        print(f"nxplugin {args.command}: error: {kind}{err}", file=sys.stderr)
        print("  (run with -T for a traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
