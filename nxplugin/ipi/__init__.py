"""i-PI layer: nxplugin models as an i-PI force client (:mod:`.client`) over i-PI's socket
protocol (:mod:`.protocol`, batched requests included).

Atomic units on the wire (bohr, Hartree, e*bohr), ASE units towards the model. May import
:mod:`nxplugin.model`, :mod:`nxplugin.calculator`, numpy, ASE's unit constants and threadpoolctl;
never i-PI itself (the client needs no i-PI installed) or :mod:`nxplugin.md`. Reading the files
i-PI writes is analysis: :mod:`nxplugin.analysis.ipi_files`.
"""
from nxplugin.ipi.client import IPIClient  # noqa: F401
from nxplugin.ipi.protocol import IPIProtocolError  # noqa: F401
