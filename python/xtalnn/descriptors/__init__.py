"""Atomic-environment descriptors: compiled ops with analytic derivatives, and pure-torch twins.

* :class:`ACSF` — Behler–Parrinello symmetry functions G2 / G4 / G5.
* :class:`Chebyshev` — aenet's Chebyshev expansion (structural + type-weighted channels).

Both map ``(species, edge_index, edge_vec, n_local)`` to ``G [n_local, F]``.
"""

from xtalnn.descriptors.acsf import ACSF
from xtalnn.descriptors.base import Descriptor
from xtalnn.descriptors.chebyshev import Chebyshev

__all__ = ["ACSF", "Chebyshev", "Descriptor"]
