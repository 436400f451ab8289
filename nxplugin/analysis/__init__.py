"""Analysis of trajectories: time series read from files, spectra, conformers and torsion
transitions, harmonic IR, plots.

May import ASE, scipy and matplotlib (plots only); never :mod:`nxplugin.md` or the CLI.
"""
