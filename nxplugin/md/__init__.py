"""Molecular dynamics with a model: settings, trajectory files and checkpoints, ASE runs, batched
replicas and ensembles (joblib, Dask).

May import :mod:`nxplugin.model`, :mod:`nxplugin.calculator` and ASE; never the CLI.
"""
