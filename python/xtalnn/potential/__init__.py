"""Neural-network potentials: per-element MLPs on ACSF/Chebyshev descriptors, one TorchScript model file.

- :mod:`.data` — checked training structures, graphs and batches, reference energies, scaling, split;
- :mod:`.model` — the scriptable :class:`Potential` (its ``forward`` is the model-file contract);
- :mod:`.config` — :class:`TrainConfig` and presets (no torch);
- :mod:`.train` — :func:`train` (energy + force loss, checkpoints, resume);
- :mod:`.export` — writing/reading the model file (format version check);
- :mod:`.plots` — learning curve and parity PNGs; :mod:`.cli` — ``xtalnn train/eval/predict/export``.
"""

import importlib

_EXPORTS = {"ModelFormatError": "export", "load_model": "export", "read_metadata": "export",
            "save_model": "export", "FORMAT_VERSION": "model", "Potential": "model",
            "TrainConfig": "config", "train": "train"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    """Submodules load on first use, so ``xtalnn --help`` does not pay for torch."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"xtalnn.potential.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'xtalnn.potential' has no attribute {name!r}")
