"""Neural-network potentials: per-element MLPs on ACSF/Chebyshev descriptors, one TorchScript model file.

- :mod:`.config` — :class:`TrainConfig` and presets (no torch);
- :mod:`.data` — checked training structures, graphs and batches, reference energies, scaling, split;
- :mod:`.model` — the scriptable :class:`Potential` (its ``forward`` is the model-file contract);
- :mod:`.modelfile` — writing/reading the model file (the one reader; format version check);
- :mod:`.loss` — the energy + force loss and its derivative caches; :mod:`.evaluate` — errors;
- :mod:`.optim` — optimisers and schedules; :mod:`.checkpoint` — checkpoints, history, interrupts;
- :mod:`.train` — :func:`train` (prepare → epochs → export; resume);
- :mod:`.calculator` — the ASE calculator; :mod:`.plots` — learning curve and parity PNGs;
  :mod:`.cli` — ``xtalnn train/eval/predict/export``.
"""

import importlib

_EXPORTS = {"ModelFormatError": "modelfile", "load_model": "modelfile", "read_metadata": "modelfile",
            "save_model": "modelfile", "FORMAT_VERSION": "model", "Potential": "model",
            "TrainConfig": "config", "train": "train", "XtalnnCalculator": "calculator"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    """Submodules load on first use, so ``xtalnn --help`` does not pay for torch."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"xtalnn.potential.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'xtalnn.potential' has no attribute {name!r}")
