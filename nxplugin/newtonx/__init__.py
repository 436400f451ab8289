"""Newton-X CS layer: its file formats (:mod:`.files`, numpy only), the step program and server
(:mod:`.step`), run setup and the trajectory reader (:mod:`.setup`, :mod:`.reader`).

May import :mod:`nxplugin.model` and numpy; the step path imports neither ASE nor scipy.
"""
