"""Subcommands of the ``nxplugin`` command line, one module each."""
