"""Reference data: molecules and their geometries, labelling engines (tblite GFN2-xTB, PySCF),
sampling of labelled frames, and data sets as arrays.

May import ASE and the engines; never the CLI.
"""
