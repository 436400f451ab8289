"""Active learning: the model's own uncertainty, diverse batch selection, and the learn loop.

Layer: uses the numpy core (:mod:`nxplugin.model`), the reference engines and sampling
(:mod:`nxplugin.reference`) and batched model MD (:mod:`nxplugin.md`); nothing imports it but the
``learn`` command and, for the per-frame uncertainty, the calculator and ``nxplugin md``.
"""
