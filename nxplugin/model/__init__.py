"""The numpy core: descriptors, molecular frames, kernels and kernel sums, the estimator and its file.

Everything here is pure numpy (scipy only inside training); importing it loads no ASE. The layers
above (:mod:`nxplugin.calculator`, :mod:`nxplugin.md`, :mod:`nxplugin.newtonx`) turn ASE objects and
engine files into the arrays these functions take.
"""
