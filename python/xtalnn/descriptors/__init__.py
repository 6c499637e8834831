"""Atomic-environment descriptors: compiled ops with analytic derivatives, and pure-torch twins.

* :class:`ACSF` — Behler–Parrinello symmetry functions G2 / G4 / G5.
* :class:`Chebyshev` — aenet's Chebyshev expansion (structural + type-weighted channels).

Both map ``(species, edge_index, edge_vec, n_local)`` to ``G [n_local, F]``. Imported lazily, so
``xtalnn --help`` does not pay for torch.
"""

import importlib

_EXPORTS = {"ACSF": "acsf", "Chebyshev": "chebyshev", "Descriptor": "base"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"xtalnn.descriptors.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'xtalnn.descriptors' has no attribute {name!r}")
