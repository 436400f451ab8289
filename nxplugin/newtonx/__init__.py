"""Newton-X CS layer: its input files (:mod:`.files`) and RESULTS/ files (:mod:`.results`), both numpy
only, and the step program, persistent server, run setup and trajectory reader (:mod:`.interface`).

May import :mod:`nxplugin.model` and numpy; the step path imports neither ASE nor scipy.
"""
