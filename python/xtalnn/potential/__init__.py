"""Neural-network potentials: per-element MLPs on ACSF/Chebyshev descriptors, one TorchScript model file.

- :mod:`.data` — checked training structures, graphs and batches, reference energies, scaling, split;
- :mod:`.model` — the scriptable :class:`Potential` (its ``forward`` is the model-file contract);
- :mod:`.train` — :class:`TrainConfig`, :func:`train` (energy + force loss, checkpoints, resume);
- :mod:`.export` — writing/reading the model file (format version check);
- :mod:`.plots` — learning curve and parity PNGs; :mod:`.cli` — ``xtalnn train/eval/predict/export``.
"""

from xtalnn.potential.export import ModelFormatError, load_model, read_metadata, save_model
from xtalnn.potential.model import FORMAT_VERSION, Potential
from xtalnn.potential.train import TrainConfig, train

__all__ = ["FORMAT_VERSION", "ModelFormatError", "Potential", "TrainConfig", "load_model", "read_metadata",
           "save_model", "train"]
