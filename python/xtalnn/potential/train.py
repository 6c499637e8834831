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
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from xtalnn.potential import data as D
from xtalnn.potential.config import OPTIMIZERS, SCHEDULES, TrainConfig, preset  # noqa: F401 (re-exported)
from xtalnn.potential.model import Potential

CHECKPOINT_VERSION = 1

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


def dense_position_jacobian(edge_index: torch.Tensor, J: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """∂G_i/∂x_k of one structure as a matrix [n·3, n·F] (row k·3 + c, column i·F + f) from the edge
    derivatives J [E, F, 3] = ∂G_centre/∂edge_vec, with edge_vec = x_j − x_i + S·cell: every edge
    i→j adds J_e to ∂G_i/∂x_j and subtracts it from ∂G_i/∂x_i (periodic images of one pair add up)."""
    centre, neighbour = edge_index
    n, F = n_atoms, J.shape[1]
    K = torch.zeros(n * n, F, 3, dtype=J.dtype)
    K.index_add_(0, centre * n + neighbour, J)
    K.index_add_(0, centre * n + centre, -J)
    return K.view(n, n, F, 3).permute(1, 3, 0, 2).reshape(n * 3, n * F)


def cache_jacobians(model, graphs: list, chunk: int = 32, max_bytes: float = 4e9) -> int:
    """Store G and the dense position Jacobian ∂G/∂x [n·3, n·F] (:func:`dense_position_jacobian`) of
    each graph whose dense form is no larger than its edge form (n² ≤ edges: small periodic cells,
    where one atom pair has many images); forces then cost one matrix-vector product per structure
    and no descriptor call: F = −(∂E/∂G)·∂G/∂x. The edge derivatives come from the op's backward,
    one vector-Jacobian product per feature. At most ``max_bytes`` are kept. Returns the number of
    graphs cached; the others keep ``J = None`` and go through the op's double backward."""
    todo, total = [], 0
    n_features = int(model.n_features)
    for g in graphs:
        size = 8 * 3 * n_features * g.n_atoms ** 2
        if g.n_atoms ** 2 <= g.edge_index.shape[1] and total + size <= max_bytes:
            todo.append(g)
            total += size
    for k in range(0, len(todo), chunk):
        part = todo[k:k + chunk]
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
            g.G, g.J = g_block.clone(), dense_position_jacobian(g.edge_index, j_block, g.n_atoms)
    return len(todo)


@dataclass
class _CachedSet:
    """Graphs with cached descriptors, concatenated once: energy inputs for all, and the force
    structures grouped by atom count so their Jacobians stack into one batched product per size."""

    species: torch.Tensor
    G: torch.Tensor
    structure: torch.Tensor
    energy: torch.Tensor
    n_atoms: torch.Tensor
    groups: list  # (atom rows [B·n], Jacobians [B, n·3, n·F], reference forces [B·n, 3])

    @classmethod
    def build(cls, graphs: list, use_forces) -> "_CachedSet":
        counts = torch.tensor([g.n_atoms for g in graphs], dtype=torch.int64)
        start = (torch.cumsum(counts, 0) - counts).tolist()
        by_size: dict = {}
        for g, s in zip(graphs, start):
            if use_forces(g):
                by_size.setdefault(g.n_atoms, []).append((g, s))
        groups = []
        for n, members in sorted(by_size.items()):
            rows = torch.cat([torch.arange(s, s + n) for _, s in members])
            stacked = torch.stack([g.J for g, _ in members])
            for b, (g, _) in enumerate(members):
                g.J = stacked[b]  # a view: the stacked copy is the only one kept
            groups.append((rows, stacked, torch.cat([g.forces for g, _ in members])))
        return cls(torch.cat([g.species for g in graphs]), torch.cat([g.G for g in graphs]),
                   torch.repeat_interleave(torch.arange(len(graphs)), counts),
                   torch.tensor([g.energy for g in graphs], dtype=torch.float64), counts.to(torch.float64), groups)

    def loss_terms(self, model):
        """(Σ (ΔE/n)², Σ ΔF² or None, n_force_components) with forces from the cached Jacobians."""
        G = self.G.detach().requires_grad_(bool(self.groups))
        atomic = model.network_energies(self.species, G)
        energy = torch.zeros(len(self.energy), dtype=torch.float64).index_add(0, self.structure, atomic)
        e2 = (((energy - self.energy) / self.n_atoms) ** 2).sum()
        if not self.groups:
            return e2, None, 0
        (dE_dG,) = torch.autograd.grad(atomic.sum(), G, create_graph=True)
        f2, n_f = torch.zeros((), dtype=torch.float64), 0
        for rows, J, reference in self.groups:
            d = dE_dG[rows].reshape(J.shape[0], J.shape[2], 1)
            forces = -torch.bmm(J, d).reshape(-1, 3)  # this layout's products run ~2× faster than d·J
            f2 = f2 + ((forces - reference) ** 2).sum()
            n_f += reference.numel()
        return e2, f2, n_f


def graphs_loss(model, graphs: list, force_weight: float, descriptor_fn=None, cache: dict | None = None):
    """:func:`batch_loss` over ``graphs``. Graphs with cached descriptors (and, if their forces enter
    the loss, cached Jacobians: :func:`cache_jacobians`) need no descriptor call; the others go
    through the op (its double backward for force structures), or ``descriptor_fn`` if given.
    ``cache`` (a dict) keeps the concatenated inputs between calls (full-batch training)."""

    def use_forces(g):
        return force_weight > 0 and g.forces is not None and g.use_forces

    cached, direct_f, direct_e = [], [], []
    for g in graphs:
        if descriptor_fn is None and g.G is not None and (g.J is not None or not use_forces(g)):
            cached.append(g)
        else:
            (direct_f if use_forces(g) else direct_e).append(g)
    e2 = torch.zeros((), dtype=torch.float64)
    f2, n_f = None, 0

    def remember(key, make):
        if cache is None:
            return make()
        if key not in cache:
            cache[key] = make()
        return cache[key]

    if cached:
        part = remember(("cached",) + tuple(id(g) for g in cached), lambda: _CachedSet.build(cached, use_forces))
        e2_c, f2_c, n_f = part.loss_terms(model)
        e2 = e2 + e2_c
        f2 = f2_c
    if direct_f:
        batch = remember(("f",) + tuple(id(g) for g in direct_f), lambda: D.collate(direct_f))
        energy, forces = predict(model, batch, forces=True, create_graph=True, descriptor_fn=descriptor_fn)
        e2_d, _, f2_d, n_d = loss_terms(batch, energy, forces)
        e2 = e2 + e2_d
        f2 = f2_d if f2 is None else f2 + f2_d
        n_f += n_d
    if direct_e:
        batch = remember(("e",) + tuple(id(g) for g in direct_e), lambda: D.collate(direct_e))
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
        # frames that share a uid (an oracle relaxation: xtalnn campaign) stay in one split
        uids = [a.info.get("uid") for a in structures]
        groups = uids if all(u is not None for u in uids) else None
        train_idx, val_idx, test_idx = D.split_indices(len(structures), config.split, config.seed, groups)
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


def warm_start_model(prepared: Prepared, previous) -> Potential:
    """The model in ``previous`` (a model file or a training checkpoint) as the start of a new run:
    its weights, scaling and reference energies unchanged (it predicts what it predicted before),
    its descriptor range widened to cover the new training split. Elements, descriptor and network
    shape must match ``prepared.config``; a mismatch is a ValueError naming it."""
    previous = Path(previous)
    if not previous.is_file():
        raise FileNotFoundError(f"{previous}: no model file or checkpoint to start from")
    if previous.suffix == ".ckpt":
        ckpt = torch.load(previous, weights_only=False)
        elements, state = list(ckpt["model_args"]["elements"]), ckpt["best_state"]
    else:
        from xtalnn.potential.export import load_model

        module, _ = load_model(previous)
        elements, state = list(module.elements), module.state_dict()
    fresh = build_model(prepared)
    if elements != list(fresh.elements):
        raise ValueError(f"{previous}: elements {elements} differ from this run's {list(fresh.elements)}")
    for key, value in fresh.state_dict().items():
        if key not in state or tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(f"{previous}: {key} has shape {tuple(state[key].shape) if key in state else None}, "
                             f"this run's network needs {tuple(value.shape)} (same descriptor, hidden sizes "
                             "and activation required)")
    if not torch.equal(state["spec"], fresh.spec):
        raise ValueError(f"{previous}: its descriptor parameters differ from this run's")
    state = {k: v.clone() for k, v in state.items()}
    state["descriptor_min"] = torch.minimum(state["descriptor_min"], fresh.descriptor_min)
    state["descriptor_max"] = torch.maximum(state["descriptor_max"], fresh.descriptor_max)
    fresh.load_state_dict(state)
    return fresh


def train(config: TrainConfig, data_paths, output, resume: bool = False, progress: bool = True,
          epochs: int | None = None, log=None, max_time: float | None = None, init_from=None) -> TrainResult:
    """Train, write ``output`` (the model file) and its side files; see :func:`output_paths`.

    ``init_from`` (a model file or checkpoint) starts from that model's weights, scaling and
    reference energies (:func:`warm_start_model`) instead of fresh ones.

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
    elif init_from is not None:
        init_from = str(init_from)
        model = warm_start_model(prepared, init_from)
        say(f"starting from the weights of {init_from}")
    else:
        model = build_model(prepared)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    history: list = []
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    best_loss, best_epoch, bad_epochs, start_epoch, elapsed0 = math.inf, 0, 0, 0, 0.0
    if checkpoint:
        init_from = checkpoint.get("init_from")  # a resumed warm start keeps its origin in the metadata
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
        force_graphs = [g for g in train_graphs if g.use_forces and g.forces is not None]
        n_cached = cache_jacobians(model, force_graphs)
        megabytes = sum(g.J.numel() * 8 for g in force_graphs if g.J is not None) / 1e6
        say(f"cached ∂G/∂x of {n_cached} of {len(force_graphs)} force structures ({megabytes:.0f} MB); "
            "the others use the op's double backward")
    w = config.force_weight
    full_cache = {} if batch_size >= len(train_graphs) else None

    def save_checkpoint(epoch: int) -> None:
        _atomic_torch_save({
            "version": CHECKPOINT_VERSION, "config": asdict(config), "model_args": model.init_args(),
            "last_state": model.state_dict(), "best_state": best_state, "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None, "epoch": epoch,
            "history": history, "best_loss": best_loss, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
            "split": prepared.split, "fingerprint": prepared.fingerprint, "sources": prepared.sources,
            "descriptor": prepared.descriptor_settings, "init_from": init_from,
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
                       "n_val": len(val_graphs), "n_test": len(test_graphs), "sources": prepared.sources,
                       "init_from": str(init_from) if init_from is not None else None},
        config=asdict(config),
        metrics={"test": test_metrics, "best_epoch": best_epoch, "epochs_run": len(history),
                 "best_val_loss": best_loss, "train_time_s": train_time},
    )
    if test_metrics:
        paths["metrics"].write_text(json.dumps({"test": test_metrics, "best_epoch": best_epoch,
                                                "epochs_run": len(history), "train_time_s": train_time}, indent=2))
    return TrainResult(model, metadata, history, test_metrics, paths, interrupted, stopped_early)
