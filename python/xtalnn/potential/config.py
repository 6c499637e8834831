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

    elements: list = field(default_factory=list)
    # descriptor
    descriptor: str = "acsf"              # "acsf" | "chebyshev"
    cutoff: float = 6.5                   # ACSF cutoff; Chebyshev radial cutoff (Å)
    angular_cutoff: float | None = None   # Chebyshev angular cutoff (Å); default = cutoff
    radial_order: int = 16                # Chebyshev
    angular_order: int = 4                # Chebyshev
    acsf_radial: int = 12                 # ACSF.default(n_radial=…)
    acsf_angular_eta: int = 4             # ACSF.default(n_angular_eta=…)
    acsf_angular: str = "g5"              # "g4" | "g5" | "both"
    # network
    hidden: list = field(default_factory=lambda: [32, 32])
    activation: str = "tanh"
    # optimisation
    optimizer: str = "lbfgs"
    lr: float = 1.0
    weight_decay: float = 0.0
    batch_size: int | str = "full"        # 1, 8, 16, 32, … or "full"
    epochs: int = 2000
    schedule: str = "none"                # see SCHEDULES
    lr_factor: float = 0.5                # plateau/step/exponential factor
    lr_patience: int = 15                 # plateau patience / step size (epochs)
    min_lr: float = 1e-5
    patience: int = 60                    # early stopping (epochs without validation improvement)
    force_weight: float = 0.2             # w_F (eV/atom per eV/Å); 0 trains on energies only
    force_fraction: float = 1.0           # share of training structures whose forces enter the loss
    cache_derivatives: bool = True        # keep ∂G/∂x of small-cell force structures (memory N²·F·3 doubles each)
    lbfgs_iterations: int = 20            # L-BFGS iterations per epoch (optimizer "lbfgs")
    split: list = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = 0
    threads: int | None = None
    limit: int | None = None              # read at most this many structures per data path
    max_time: float | None = None         # stop after this many minutes (keeps the best model)

    def __post_init__(self):
        self.elements = list(self.elements)
        self.hidden = [int(h) for h in self.hidden]
        self.split = [float(x) for x in self.split]
        self.optimizer = self.optimizer.lower()
        if isinstance(self.batch_size, str) and self.batch_size != "full":
            self.batch_size = int(self.batch_size)

    def validate(self) -> None:
        if not self.elements:
            raise ValueError("give the model's elements (--elements Ti O)")
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
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


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


