"""Training a :class:`~xtalnn.potential.model.Potential` on energies (and forces).

loss = RMSE(ΔE / n_atoms) [eV/atom] + w_F · RMSE(ΔF) [eV/Å]; forces are −∂E/∂x by autograd through
the descriptor op (``create_graph=True``: the op's double backward gives the weight gradient of the
force term). Every epoch writes the history CSV and a checkpoint (``<output>.ckpt``: last and best
state, optimiser, scheduler, split) atomically, so Ctrl-C or ``kill`` never loses the best model and
``resume=True`` continues where the run stopped.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from xtalnn.potential import data as D
from xtalnn.potential.model import ACTIVATIONS, Potential

OPTIMIZERS = {name.lower(): name for name in
              ("SGD", "Adadelta", "Adagrad", "RMSprop", "Adam", "Adamax", "ASGD", "Rprop", "LBFGS")}
SCHEDULES = ("plateau", "cosine", "step", "exponential", "none")
CHECKPOINT_VERSION = 1


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
    acsf_radial: int = 8                  # ACSF.default(n_radial=…)
    acsf_angular_eta: int = 3             # ACSF.default(n_angular_eta=…)
    acsf_angular: str = "g5"              # "g4" | "g5" | "both"
    # network
    hidden: list = field(default_factory=lambda: [32, 32])
    activation: str = "tanh"
    # optimisation
    optimizer: str = "lbfgs"
    lr: float = 1.0
    weight_decay: float = 0.0
    batch_size: int | str = "full"        # 1, 8, 16, 32, … or "full"
    epochs: int = 400
    schedule: str = "none"                # see SCHEDULES
    lr_factor: float = 0.5                # plateau/step/exponential factor
    lr_patience: int = 15                 # plateau patience / step size (epochs)
    min_lr: float = 1e-5
    patience: int = 40                    # early stopping (epochs without validation improvement)
    force_weight: float = 0.05            # w_F (eV/atom per eV/Å); 0 trains on energies only
    force_fraction: float = 0.125         # share of training structures whose forces enter the loss
    cache_derivatives: bool = False       # keep ∂G/∂edge_vec of the training structures (memory E·F·3 doubles)
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


def make_descriptor(config: TrainConfig):
    """``(descriptor module, its constructor settings for the metadata)``."""
    from xtalnn.descriptors import ACSF, Chebyshev

    if config.descriptor == "acsf":
        settings = dict(kind="acsf", cutoff=config.cutoff, n_radial=config.acsf_radial,
                        n_angular_eta=config.acsf_angular_eta, angular=config.acsf_angular)
        descriptor = ACSF.default(config.elements, config.cutoff, n_radial=config.acsf_radial,
                                  n_angular_eta=config.acsf_angular_eta, angular=config.acsf_angular)
        settings.update(g2=descriptor.g2.tolist(), g4=descriptor.g4.tolist(), g5=descriptor.g5.tolist(),
                        cutoff_function=descriptor.cutoff_function)
    else:
        angular = config.angular_cutoff or config.cutoff
        descriptor = Chebyshev(config.elements, config.cutoff, config.radial_order, angular, config.angular_order)
        settings = dict(kind="chebyshev", radial_cutoff=config.cutoff, radial_order=config.radial_order,
                        angular_cutoff=angular, angular_order=config.angular_order,
                        type_spins=descriptor.type_spins, cutoff_function=descriptor.cutoff_function)
    settings["n_features"] = descriptor.n_features
    settings["feature_labels"] = descriptor.feature_labels()
    return descriptor, settings


# -- prediction and loss -----------------------------------------------------------------------

def predict(model, batch: D.Batch, forces: bool = True, create_graph: bool = False, descriptor_fn=None):
    """Structure energies without reference energies (eV, float64 [B]) and forces (eV/Å) or None."""
    positions = batch.positions.detach().clone().requires_grad_(forces)
    edge_vec = batch.edge_vec(positions)
    fn = descriptor_fn if descriptor_fn is not None else model.descriptors
    G = fn(batch.species, batch.edge_index, edge_vec, int(batch.species.shape[0]))
    atomic = model.network_energies(batch.species, G)
    energy = torch.zeros(batch.n_structures, dtype=torch.float64).index_add(0, batch.structure, atomic)
    F = None
    if forces:
        (grad,) = torch.autograd.grad(energy.sum(), positions, create_graph=create_graph)
        F = -grad
    return energy, F


def loss_terms(batch: D.Batch, energy, forces):
    """(Σ (ΔE/n)², n_structures, Σ ΔF², n_force_components) for one batch."""
    e2 = (((energy - batch.energy) / batch.n_atoms) ** 2).sum()
    if forces is None or batch.forces is None:
        return e2, batch.n_structures, None, 0
    f2 = ((forces - batch.forces) ** 2).sum()
    return e2, batch.n_structures, f2, forces.numel()


def batch_loss(model, batch, force_weight: float, descriptor_fn=None):
    """``(loss, e2, n_e, f2, n_f)`` with loss = RMSE(ΔE/n) + w_F·RMSE(ΔF)."""
    use_forces = force_weight > 0 and batch.forces is not None
    energy, forces = predict(model, batch, forces=use_forces, create_graph=use_forces, descriptor_fn=descriptor_fn)
    e2, n_e, f2, n_f = loss_terms(batch, energy, forces)
    loss = torch.sqrt(e2 / n_e + 1e-14)
    if f2 is not None:
        loss = loss + force_weight * torch.sqrt(f2 / n_f + 1e-14)
    return loss, e2.detach(), n_e, (None if f2 is None else f2.detach()), n_f


def cache_jacobians(model, graphs: list, chunk: int = 32) -> None:
    """Store G and J = ∂G_centre/∂edge_vec [E, F, 3] of each graph, from the op's backward (one
    vector-Jacobian product per feature). A descriptor row depends only on the edges of its centre,
    so J is exact and E·F·3 numbers; forces then need no descriptor call: F = Σ_e ±(∂E/∂G_c · J_e)."""
    for k in range(0, len(graphs), chunk):
        part = graphs[k:k + chunk]
        b = D.collate(part)
        vec = b.edge_vec(b.positions).detach().requires_grad_(True)
        G = model.descriptors(b.species, b.edge_index, vec, int(b.species.shape[0]))
        J = torch.empty(vec.shape[0], G.shape[1], 3, dtype=torch.float64)
        for f in range(G.shape[1]):
            seed = torch.zeros_like(G)
            seed[:, f] = 1.0
            (J[:, f, :],) = torch.autograd.grad(G, vec, seed, retain_graph=f < G.shape[1] - 1)
        G = G.detach()
        for g, g_block, j_block in zip(part, torch.split(G, [x.n_atoms for x in part]),
                                       torch.split(J, [x.edge_index.shape[1] for x in part])):
            g.G, g.J = g_block.clone(), j_block.clone()


def predict_cached(model, batch: D.Batch, G: torch.Tensor, J: torch.Tensor, create_graph: bool = True):
    """Energies and forces from cached descriptors G and derivatives J (same values as :func:`predict`)."""
    G = G.detach().requires_grad_(True)
    atomic = model.network_energies(batch.species, G)
    energy = torch.zeros(batch.n_structures, dtype=torch.float64).index_add(0, batch.structure, atomic)
    (dE_dG,) = torch.autograd.grad(atomic.sum(), G, create_graph=create_graph)
    centre, neighbour = batch.edge_index[0], batch.edge_index[1]
    g = torch.einsum("ef,efc->ec", dE_dG[centre], J)  # ∂E/∂edge_vec
    forces = torch.zeros_like(batch.positions).index_add(0, centre, g).index_add(0, neighbour, -g)
    return energy, forces


def graphs_loss(model, graphs: list, force_weight: float, descriptor_fn=None, cache: dict | None = None):
    """:func:`batch_loss` over ``graphs``: structures with ``use_forces`` go through the op's double
    backward (or their cached derivatives, see :func:`cache_jacobians`); the others contribute energies
    only, from cached descriptors where present. ``cache`` (a dict) keeps collated batches between calls
    (full-batch training)."""
    with_f = [g for g in graphs if force_weight > 0 and g.forces is not None and g.use_forces]
    without = [g for g in graphs if not (force_weight > 0 and g.forces is not None and g.use_forces)]
    e2 = torch.zeros((), dtype=torch.float64)
    f2, n_f = None, 0
    if with_f:
        key = ("f",) + tuple(id(g) for g in with_f)
        if cache is not None and key in cache:
            batch, G, J = cache[key]
        else:
            batch, G, J = D.collate(with_f), None, None
            if descriptor_fn is None and all(g.J is not None for g in with_f):
                G = torch.cat([g.G for g in with_f])
                J = torch.cat([g.J for g in with_f]) if len(with_f) > 1 else with_f[0].J
            if cache is not None:
                cache[key] = (batch, G, J)
        if J is not None:
            energy, forces = predict_cached(model, batch, G, J)
        else:
            energy, forces = predict(model, batch, forces=True, create_graph=True, descriptor_fn=descriptor_fn)
        e2, _, f2, n_f = loss_terms(batch, energy, forces)
    if without:
        key = ("e",) + tuple(id(g) for g in without)
        batch = cache.get(key) if cache is not None else None
        if batch is None:
            batch = D.collate(without)
            if cache is not None:
                cache[key] = batch
        if descriptor_fn is None and all(g.G is not None for g in without):
            atomic = model.network_energies(batch.species, torch.cat([g.G for g in without]))
            energy = torch.zeros(batch.n_structures, dtype=torch.float64).index_add(0, batch.structure, atomic)
        else:
            energy, _ = predict(model, batch, forces=False, descriptor_fn=descriptor_fn)
        e2 = e2 + loss_terms(batch, energy, None)[0]
    loss = torch.sqrt(e2 / len(graphs) + 1e-14)
    if f2 is not None:
        loss = loss + force_weight * torch.sqrt(f2 / n_f + 1e-14)
    return loss, e2.detach(), len(graphs), (None if f2 is None else f2.detach()), n_f


def mark_force_structures(graphs: list, fraction: float, seed: int) -> None:
    """Let the forces of a seeded ``fraction`` of ``graphs`` enter the loss (at least one if > 0)."""
    n = len(graphs)
    k = 0 if fraction <= 0 else max(1, int(round(min(fraction, 1.0) * n)))
    chosen = set(np.random.default_rng([seed, 7]).permutation(n)[:k].tolist())
    for i, g in enumerate(graphs):
        g.use_forces = i in chosen


def cache_descriptors(model, graphs: list, chunk: int = 64) -> None:
    """Store the descriptors of energy-only graphs (they do not change while the weights do)."""
    todo = [g for g in graphs if not g.use_forces or g.forces is None]
    with torch.no_grad():
        for k in range(0, len(todo), chunk):
            part = todo[k:k + chunk]
            b = D.collate(part)
            G = model.descriptors(b.species, b.edge_index, b.edge_vec(b.positions), int(b.species.shape[0]))
            for g, block in zip(part, torch.split(G, [g.n_atoms for g in part])):
                g.G = block.clone()


@dataclass
class Evaluation:
    """Predictions on a set of graphs (per-structure energies in eV include the reference energies)."""

    names: list
    n_atoms: np.ndarray
    energy_ref: np.ndarray
    energy_pred: np.ndarray
    forces_ref: np.ndarray | None
    forces_pred: np.ndarray | None
    offset: np.ndarray | None = None  # Σ reference energies per structure (eV)

    def relative_energies(self):
        """(reference, predicted) (E − Σ e_ref) / n_atoms in eV/atom: what the networks learn."""
        offset = self.offset if self.offset is not None else 0.0
        return (self.energy_ref - offset) / self.n_atoms, (self.energy_pred - offset) / self.n_atoms

    def metrics(self) -> dict:
        de = (self.energy_pred - self.energy_ref) / self.n_atoms
        out = {
            "energy_rmse_meV_per_atom": float(np.sqrt(np.mean(de**2)) * 1000) if len(de) else float("nan"),
            "energy_mae_meV_per_atom": float(np.mean(np.abs(de)) * 1000) if len(de) else float("nan"),
            "force_rmse_eV_per_A": float("nan"),
            "force_mae_eV_per_A": float("nan"),
            "n_structures": int(len(de)),
        }
        if self.forces_ref is not None and len(self.forces_ref):
            df = self.forces_pred - self.forces_ref
            out["force_rmse_eV_per_A"] = float(np.sqrt(np.mean(df**2)))
            out["force_mae_eV_per_A"] = float(np.mean(np.abs(df)))
        return out


def evaluate(model, graphs: list, batch_size: int = 32, forces: bool = True, descriptor_fn=None) -> Evaluation:
    """Energies (and forces, where the graphs have them) of ``graphs`` with ``model``."""
    energies, f_ref, f_pred = [], [], []
    for k in range(0, len(graphs), batch_size):
        batch = D.collate(graphs[k:k + batch_size])
        with_f = forces and batch.forces is not None
        with torch.set_grad_enabled(with_f):
            energy, F = predict(model, batch, forces=with_f, descriptor_fn=descriptor_fn)
        energies.append(energy.detach())
        if with_f:
            f_ref.append(batch.forces)
            f_pred.append(F.detach())
    ref_per_structure = []
    for g in graphs:
        ref_per_structure.append(float(model.reference_energies[g.species].sum()))
    offset = np.array(ref_per_structure)
    pred = torch.cat(energies).numpy() + offset if energies else np.zeros(0)
    ref = np.array([g.energy for g in graphs]) + offset
    return Evaluation(
        names=[g.name for g in graphs],
        n_atoms=np.array([g.n_atoms for g in graphs], dtype=float),
        energy_ref=ref,
        energy_pred=pred,
        forces_ref=torch.cat(f_ref).numpy() if f_ref else None,
        forces_pred=torch.cat(f_pred).numpy() if f_pred else None,
        offset=offset,
    )


# -- optimiser and schedule --------------------------------------------------------------------

def make_optimizer(config: TrainConfig, params):
    cls = getattr(torch.optim, OPTIMIZERS[config.optimizer])
    kwargs = {"lr": config.lr}
    if config.weight_decay and config.optimizer not in ("lbfgs", "rprop"):
        kwargs["weight_decay"] = config.weight_decay
    if config.optimizer == "lbfgs":
        kwargs.update(max_iter=int(config.lbfgs_iterations), history_size=50, line_search_fn="strong_wolfe",
                      tolerance_grad=1e-12, tolerance_change=1e-15)
    return cls(params, **kwargs)


def make_scheduler(config: TrainConfig, optimizer):
    S = torch.optim.lr_scheduler
    if config.schedule == "plateau":
        return S.ReduceLROnPlateau(optimizer, factor=config.lr_factor, patience=config.lr_patience,
                                   min_lr=config.min_lr)
    if config.schedule == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=config.min_lr)
    if config.schedule == "step":
        return S.StepLR(optimizer, step_size=max(1, config.lr_patience), gamma=config.lr_factor)
    if config.schedule == "exponential":
        return S.ExponentialLR(optimizer, gamma=config.lr_factor)
    return None


# -- files -------------------------------------------------------------------------------------

def output_paths(output) -> dict:
    """Files written next to the model file ``output`` (``model.pt`` → ``model.ckpt``, …)."""
    base = Path(output)
    stem = base.with_suffix("") if base.suffix == ".pt" else base
    return {
        "model": base,
        "checkpoint": Path(f"{stem}.ckpt"),
        "history": Path(f"{stem}.history.csv"),
        "learning_curve": Path(f"{stem}.learning_curve.png"),
        "parity": Path(f"{stem}.parity.png"),
        "metrics": Path(f"{stem}.metrics.json"),
    }


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


HISTORY_FIELDS = ["epoch", "lr", "train_loss", "val_loss", "train_energy_rmse_meV_per_atom",
                  "val_energy_rmse_meV_per_atom", "train_force_rmse_eV_per_A", "val_force_rmse_eV_per_A",
                  "time_s"]


def write_history(history: list, path: Path) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


class _Interrupts:
    """SIGINT (Ctrl-C) and SIGTERM (``kill``) become KeyboardInterrupt while training, except inside
    ``critical()`` (an epoch's bookkeeping: history, best state, checkpoint), where the interrupt is
    held until the block ends, so the checkpoint always matches the model that gets exported."""

    def __init__(self):
        self.pending = None
        self.depth = 0
        self.previous = {}

    def _handler(self, signum, frame):
        if self.depth:
            self.pending = signum
        else:
            raise KeyboardInterrupt(f"signal {signum}")

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: leave the signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False

    @contextlib.contextmanager
    def critical(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if self.pending is not None and not self.depth:
            signum, self.pending = self.pending, None
            raise KeyboardInterrupt(f"signal {signum}")


# -- the run -----------------------------------------------------------------------------------

@dataclass
class TrainResult:
    model: Potential
    metadata: dict
    history: list
    test_metrics: dict
    paths: dict
    interrupted: bool = False
    stopped_early: bool = False


@dataclass
class Prepared:
    """Data ready for training: graphs per split, reference energies, descriptor settings."""

    config: TrainConfig
    descriptor: object
    descriptor_settings: dict
    structures: list
    graphs: list
    split: dict
    reference_energies: np.ndarray
    fingerprint: str
    sources: list


def prepare(config: TrainConfig, data_paths, split=None) -> Prepared:
    """Read and check the structures, split them, fit reference energies, build all graphs."""
    config.validate()
    structures = D.read_training_structures(data_paths, config.elements, config.limit)
    if split is None:
        train_idx, val_idx, test_idx = D.split_indices(len(structures), config.split, config.seed)
        split = {"train": train_idx.tolist(), "val": val_idx.tolist(), "test": test_idx.tolist()}
    train_structures = [structures[i] for i in split["train"]]
    reference = D.fit_reference_energies(train_structures, config.elements)
    descriptor, settings = make_descriptor(config)
    graphs = [D.build_graph(a, config.elements, descriptor.cutoff, reference, name=D.source_of(a, f"#{k}"))
              for k, a in enumerate(structures)]
    return Prepared(config, descriptor, settings, structures, graphs, split, reference,
                    D.fingerprint(train_structures), [str(p) for p in data_paths])


def build_model(prepared: Prepared) -> Potential:
    """A fresh model whose scaling and range come from the training split (seeded weights)."""
    config = prepared.config
    train_graphs = [prepared.graphs[i] for i in prepared.split["train"]]
    descriptor = prepared.descriptor
    mean, std, lo, hi = D.descriptor_statistics(
        lambda s, e, v, n: descriptor(s, e, v, n), train_graphs, len(config.elements))
    torch.manual_seed(config.seed)
    return Potential(config.elements, descriptor.op_name, descriptor.spec(), descriptor.cutoff, config.hidden,
                     config.activation, shift=mean, scale=std, reference_energies=prepared.reference_energies,
                     descriptor_min=lo, descriptor_max=hi)


def train(config: TrainConfig, data_paths, output, resume: bool = False, progress: bool = True,
          epochs: int | None = None, log=None, max_time: float | None = None) -> TrainResult:
    """Train, write ``output`` (the model file) and its side files; see :func:`output_paths`.

    ``resume=True`` continues from ``<output>.ckpt`` (same data required); ``epochs`` then may raise
    the epoch limit and ``max_time`` (minutes of training in all, resumed runs included) the time
    limit. Ctrl-C / SIGTERM stop the run: the best model so far is exported and the
    checkpoint kept. Returns the trained model (best validation state) and the test-split metrics.
    """
    from tqdm import tqdm

    from xtalnn.potential import plots
    from xtalnn.potential.export import save_model

    paths = output_paths(output)
    out_dir = paths["model"].resolve().parent
    if not out_dir.is_dir():
        raise FileNotFoundError(f"{output}: output directory {out_dir} does not exist")
    checkpoint = None
    if resume:
        if not paths["checkpoint"].is_file():
            raise FileNotFoundError(f"{paths['checkpoint']}: no checkpoint to resume from")
        checkpoint = torch.load(paths["checkpoint"], weights_only=False)
        config = TrainConfig.from_dict(checkpoint["config"])
        if epochs is not None:
            config.epochs = int(epochs)
        if max_time is not None:
            config.max_time = float(max_time)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    say = log or (lambda msg: None)

    prepared = prepare(config, data_paths, split=checkpoint["split"] if checkpoint else None)
    if checkpoint and checkpoint["fingerprint"] != prepared.fingerprint:
        raise ValueError(f"{paths['checkpoint']}: the training data differ from the run being resumed")
    graphs = prepared.graphs
    train_graphs = [graphs[i] for i in prepared.split["train"]]
    val_graphs = [graphs[i] for i in prepared.split["val"]]
    test_graphs = [graphs[i] for i in prepared.split["test"]]
    say(f"{len(graphs)} structures: {len(train_graphs)} train, {len(val_graphs)} validation, "
        f"{len(test_graphs)} test; descriptor {prepared.descriptor_settings['kind']} "
        f"({prepared.descriptor.n_features} features, cutoff {prepared.descriptor.cutoff} Å)")
    if config.force_weight > 0 and not any(g.forces is not None for g in train_graphs):
        say("no training structure has forces: training on energies only")

    if checkpoint:
        model = Potential(**checkpoint["model_args"])
        model.load_state_dict(checkpoint["last_state"])
    else:
        model = build_model(prepared)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    history: list = []
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    best_loss, best_epoch, bad_epochs, start_epoch, elapsed0 = math.inf, 0, 0, 0, 0.0
    if checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None and checkpoint.get("scheduler") is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        history = checkpoint["history"]
        best_state = checkpoint["best_state"]
        best_loss, best_epoch = checkpoint["best_loss"], checkpoint["best_epoch"]
        bad_epochs, start_epoch = checkpoint["bad_epochs"], checkpoint["epoch"]
        elapsed0 = history[-1]["time_s"] if history else 0.0
        say(f"resuming after epoch {start_epoch} (best validation loss {best_loss:.5g} at epoch {best_epoch})")

    batch_size = len(train_graphs) if config.batch_size == "full" else int(config.batch_size)
    mark_force_structures(train_graphs, config.force_fraction if config.force_weight > 0 else 0.0, config.seed)
    cache_descriptors(model, train_graphs)
    if config.cache_derivatives and config.force_weight > 0:
        say("caching descriptor derivatives of the training structures")
        cache_jacobians(model, [g for g in train_graphs if g.use_forces and g.forces is not None])
    w = config.force_weight
    full_cache = {} if batch_size >= len(train_graphs) else None

    def save_checkpoint(epoch: int) -> None:
        _atomic_torch_save({
            "version": CHECKPOINT_VERSION, "config": asdict(config), "model_args": model.init_args(),
            "last_state": model.state_dict(), "best_state": best_state, "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None, "epoch": epoch,
            "history": history, "best_loss": best_loss, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
            "split": prepared.split, "fingerprint": prepared.fingerprint, "sources": prepared.sources,
            "descriptor": prepared.descriptor_settings,
        }, paths["checkpoint"])

    def epoch_loss(e_rmse, f_rmse):
        return e_rmse / 1000 + (w * f_rmse if w > 0 and np.isfinite(f_rmse) else 0.0)

    interrupted = stopped_early = False
    t0 = time.perf_counter() - elapsed0
    bar = tqdm(range(start_epoch, config.epochs), desc="train", unit="epoch", disable=not progress,
               initial=start_epoch, total=config.epochs, dynamic_ncols=True)
    try:
        with _Interrupts() as interrupts:
            for epoch in bar:
                model.train()
                order = np.random.default_rng([config.seed, epoch]).permutation(len(train_graphs)) \
                    if batch_size < len(train_graphs) else np.arange(len(train_graphs))
                se2 = sf2 = 0.0
                ne = nf = 0
                for k in range(0, len(order), batch_size):
                    part = [train_graphs[i] for i in order[k:k + batch_size]]
                    if config.optimizer == "lbfgs":
                        def closure():
                            optimizer.zero_grad()
                            loss = graphs_loss(model, part, w, cache=full_cache)[0]
                            loss.backward()
                            return loss
                        optimizer.step(closure)
                        _, e2, n_e, f2, n_f = graphs_loss(model, part, w, cache=full_cache)
                    else:
                        optimizer.zero_grad(set_to_none=True)
                        loss, e2, n_e, f2, n_f = graphs_loss(model, part, w, cache=full_cache)
                        loss.backward()
                        optimizer.step()
                    se2 += float(e2)
                    ne += n_e
                    if f2 is not None:
                        sf2 += float(f2)
                        nf += n_f
                train_e = math.sqrt(se2 / max(ne, 1)) * 1000
                train_f = math.sqrt(sf2 / nf) if nf else float("nan")
                model.eval()
                if val_graphs:
                    m = evaluate(model, val_graphs, forces=w > 0).metrics()
                    val_e, val_f = m["energy_rmse_meV_per_atom"], m["force_rmse_eV_per_A"]
                else:
                    val_e, val_f = train_e, train_f
                val_loss = epoch_loss(val_e, val_f)
                with interrupts.critical():
                    lr = optimizer.param_groups[0]["lr"]
                    history.append({
                        "epoch": epoch + 1, "lr": lr, "train_loss": epoch_loss(train_e, train_f), "val_loss": val_loss,
                        "train_energy_rmse_meV_per_atom": train_e, "val_energy_rmse_meV_per_atom": val_e,
                        "train_force_rmse_eV_per_A": train_f, "val_force_rmse_eV_per_A": val_f,
                        "time_s": time.perf_counter() - t0,
                    })
                    if scheduler is not None:
                        if config.schedule == "plateau":
                            scheduler.step(val_loss)
                        else:
                            scheduler.step()
                    if val_loss < best_loss:
                        best_loss, best_epoch, bad_epochs = val_loss, epoch + 1, 0
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    else:
                        bad_epochs += 1
                    save_checkpoint(epoch + 1)
                    write_history(history, paths["history"])
                bar.set_postfix_str(f"E {train_e:.1f}/{val_e:.1f} meV/atom  F {train_f:.3f}/{val_f:.3f} eV/Å  "
                                    f"lr {lr:.1e}  best@{best_epoch}")
                if config.patience and bad_epochs >= config.patience:
                    stopped_early = True
                    say(f"early stop: no validation improvement for {bad_epochs} epochs")
                    break
                if config.max_time and time.perf_counter() - t0 > 60 * config.max_time:
                    say(f"time limit of {config.max_time} min reached")
                    break
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: exporting the best model so far; `--resume` continues")
    finally:
        bar.close()

    model.load_state_dict(best_state)
    model.eval()
    test_metrics: dict = {}
    if test_graphs and not interrupted:
        ev = evaluate(model, test_graphs, forces=True)
        test_metrics = ev.metrics()
        plots.parity(*ev.relative_energies(), ev.forces_ref, ev.forces_pred,
                     paths["parity"], title=f"test split ({len(test_graphs)} structures)")
    if history:
        plots.learning_curve(history, paths["learning_curve"])
    train_time = history[-1]["time_s"] if history else 0.0
    metadata = save_model(
        model, paths["model"],
        descriptor=prepared.descriptor_settings,
        training_data={"fingerprint": prepared.fingerprint, "n_train": len(train_graphs),
                       "n_val": len(val_graphs), "n_test": len(test_graphs), "sources": prepared.sources},
        config=asdict(config),
        metrics={"test": test_metrics, "best_epoch": best_epoch, "epochs_run": len(history),
                 "best_val_loss": best_loss, "train_time_s": train_time},
    )
    if test_metrics:
        paths["metrics"].write_text(json.dumps({"test": test_metrics, "best_epoch": best_epoch,
                                                "epochs_run": len(history), "train_time_s": train_time}, indent=2))
    return TrainResult(model, metadata, history, test_metrics, paths, interrupted, stopped_early)
