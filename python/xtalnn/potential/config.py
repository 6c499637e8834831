"""Training settings (:class:`TrainConfig`) and named presets; no torch import, so the CLI can build
its parser (and ``xtalnn --help`` answer) without loading torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

#: activation names; :data:`xtalnn.potential.model.ACTIVATIONS` maps each to its torch module
ACTIVATIONS = ("sigmoid", "tanh", "relu", "elu", "prelu", "silu")
OPTIMIZERS = {name.lower(): name for name in
              ("SGD", "Adadelta", "Adagrad", "RMSprop", "Adam", "Adamax", "ASGD", "Rprop", "LBFGS")}
SCHEDULES = ("plateau", "cosine", "step", "exponential", "none")


@dataclass
class TrainConfig:
    """All settings of a training run (lengths in Å, learning rate per optimiser step).

    The defaults are the settings recorded in benchmarks/RESULTS.md (## Potential) for the TiO2 set.
    """

    elements: list = field(default_factory=list)  # element symbols in model order
    # descriptor
    descriptor: str = "acsf"              # "acsf" | "chebyshev"
    cutoff: float = 6.5                   # ACSF cutoff; Chebyshev radial cutoff (Å)
    angular_cutoff: float | None = None   # Chebyshev angular cutoff (Å); default = cutoff
    radial_order: int = 16                # Chebyshev
    angular_order: int = 4                # Chebyshev
    acsf_radial: int = 12                 # ACSF.default(n_radial=…)
    acsf_angular_eta: int = 4             # ACSF.default(n_angular_eta=…)
    acsf_angular: str = "g5"              # "g4" | "g5" | "both"
    descriptor_file: list | str | None = None  # n2p2 input.nn or aenet .stp file(s): their ACSF/Chebyshev parameters
    descriptor_file_unit: float = 1.0     # the n2p2 file's length unit in Å (0.529177210903 for Bohr)
    # network
    hidden: list = field(default_factory=lambda: [32, 32])  # hidden layer sizes of each element's network
    activation: str = "tanh"             # see ACTIVATIONS
    # optimisation
    optimizer: str = "lbfgs"             # a torch.optim name, see OPTIMIZERS
    lr: float = 1.0                       # learning rate per optimiser step
    weight_decay: float = 0.0             # the optimiser's weight decay (L2 penalty)
    batch_size: int | str = "full"        # 1, 8, 16, 32, … or "full"
    epochs: int = 2000                    # at most this many epochs
    schedule: str = "none"                # see SCHEDULES
    lr_factor: float = 0.5                # plateau/step/exponential factor
    lr_patience: int = 15                 # plateau patience / step size (epochs)
    min_lr: float = 1e-5                  # learning-rate floor of the plateau and cosine schedules
    patience: int = 60                    # early stopping (epochs without validation improvement)
    force_weight: float = 0.2             # w_F (eV/atom per eV/Å); 0 trains on energies only
    force_fraction: float = 1.0           # share of training structures whose forces enter the loss
    stress_weight: float = 0.0            # w_S (per eV/atom of virial σV/n) where the data have stresses; 0 = off
    cache_derivatives: bool = True        # keep ∂G/∂x of small-cell force structures (memory N²·F·3 doubles each)
    lbfgs_iterations: int = 20            # L-BFGS iterations per epoch (optimizer "lbfgs")
    split: list = field(default_factory=lambda: [0.8, 0.1, 0.1])  # train, validation, test fractions
    seed: int = 0                         # split, initial weights and shuffling
    split_seed: int | None = None         # seed of the train/val/test split (default: seed)
    # committee: N networks over one descriptor pass (one model file), member m trained with seed + m
    committee: int = 1
    committee_bootstrap: bool = False     # each member trains on a seeded bootstrap resample of the training split
    threads: int | None = None            # torch threads (default: torch's)
    limit: int | None = None              # read at most this many structures per data path
    max_time: float | None = 15.0         # time budget in minutes of training (the best model is kept); None: no limit

    def __post_init__(self):
        from xtalnn.io.settings import check_instance_types, check_items

        check_instance_types(self)  # before any conversion: hidden = "16" must not become [1, 6]
        check_items("elements", self.elements, str)
        check_items("hidden", self.hidden, int)
        check_items("split", self.split, (int, float))
        self.elements = list(self.elements)
        self.hidden = list(self.hidden)
        self.split = [float(x) for x in self.split]
        if isinstance(self.descriptor_file, str):
            self.descriptor_file = [self.descriptor_file]
        if self.descriptor_file is not None:
            check_items("descriptor_file", self.descriptor_file, str)
            self.descriptor_file = list(self.descriptor_file)
        self.optimizer = self.optimizer.lower()
        if isinstance(self.batch_size, str) and self.batch_size != "full":
            try:
                self.batch_size = int(self.batch_size)
            except ValueError:
                raise ValueError(f"batch_size must be a positive integer or 'full', got {self.batch_size!r}") from None

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work (before any data is read)."""
        from ase.data import atomic_numbers

        if not self.elements:
            raise ValueError("give the model's elements (--elements Ti O)")
        unknown = [e for e in self.elements if e not in atomic_numbers or e == "X"]
        if unknown or len(set(self.elements)) != len(self.elements):
            raise ValueError(f"elements must be distinct element symbols, got {self.elements}")
        for name in ("cutoff", "angular_cutoff", "max_time"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and value < float("inf")):
                raise ValueError(f"{name} must be a positive number{' (Å)' if 'cutoff' in name else ''}, got {value}")
        for name, low in (("radial_order", 1), ("angular_order", 0), ("acsf_radial", 1), ("acsf_angular_eta", 1),
                          ("lr_patience", 0), ("patience", 0), ("lbfgs_iterations", 1), ("threads", 1),
                          ("limit", 1)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must list positive layer sizes, got {self.hidden}")
        if self.acsf_angular not in ("g4", "g5", "both"):
            raise ValueError(f"acsf_angular must be 'g4', 'g5' or 'both', got {self.acsf_angular!r}")
        if len(self.split) != 3 or min(self.split) < 0 or not self.split[0] > 0:
            raise ValueError(f"split must be three fractions >= 0 (train > 0), got {self.split}")
        if not 0 <= self.force_fraction <= 1:
            raise ValueError(f"force_fraction must lie in [0, 1], got {self.force_fraction}")
        if not 0 < self.lr_factor <= 1 or self.min_lr < 0 or self.weight_decay < 0:
            raise ValueError(f"lr_factor must lie in (0, 1], min_lr and weight_decay be >= 0; got {self.lr_factor}, "
                             f"{self.min_lr}, {self.weight_decay}")
        if self.descriptor not in ("acsf", "chebyshev"):
            raise ValueError(f"descriptor must be 'acsf' or 'chebyshev', got {self.descriptor!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS.values())}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.batch_size != "full" and int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer or 'full', got {self.batch_size!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.force_weight < 0:
            raise ValueError(f"force_weight must be >= 0, got {self.force_weight}")
        if self.stress_weight < 0:
            raise ValueError(f"stress_weight must be >= 0, got {self.stress_weight}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if int(self.committee) < 1:
            raise ValueError(f"committee must be >= 1 (networks in the model file), got {self.committee}")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        return cls(**values)  # types checked in __post_init__


def preset(name: str, descriptor: str = "acsf") -> dict:
    """Named settings. ``seed``: the seed paper's choices — ACSF, 2×10 tanh, Adam 1e-4, batch 1;
    with the Chebyshev descriptor Adamax 1e-3, batch 8 (aenet-like 8.0/6.5 Å, orders 16/4)."""
    if name == "seed":
        if descriptor == "chebyshev":
            return dict(descriptor="chebyshev", cutoff=8.0, angular_cutoff=6.5, radial_order=16, angular_order=4,
                        hidden=[10, 10], activation="tanh", optimizer="adamax", lr=1e-3, batch_size=8,
                        schedule="none", force_fraction=1.0)
        return dict(descriptor="acsf", cutoff=6.5, hidden=[10, 10], activation="tanh", optimizer="adam",
                    lr=1e-4, batch_size=1, schedule="none", force_fraction=1.0)
    if name == "default":
        return {}
    raise ValueError(f"unknown preset {name!r} (known: seed, default)")


