"""Training, cross-validation and error metrics for composition models (targets in eV/atom)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from . import ARCHITECTURES
from .models import AttentionNet, Ensemble, SeedNet



@dataclass
class EnthalpyTrainConfig:
    """Hyper-parameters of one training run.

    ``optimizer`` is ``"rmsprop"`` (the seed) or ``"adamw"``; ``schedule`` is ``"constant"`` or
    ``"cosine"`` (one warm-up epoch, then cosine decay to 1 % over ``max_epochs``). Training stops
    after ``patience`` epochs without a better validation MAE, and the best epoch's weights are kept.
    ``ensemble`` > 1 trains that many members with different seeds.
    """

    arch: str = "default"
    max_epochs: int = 60
    patience: int = 15
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "cosine"
    val_fraction: float = 0.1
    ensemble: int = 1
    model_kwargs: dict = field(default_factory=dict)

    @classmethod
    def for_arch(cls, arch: str, **overrides) -> "EnthalpyTrainConfig":
        """Defaults for ``arch`` ("seed" or "default") with keyword overrides."""
        if arch == "seed":
            base = cls(arch="seed", max_epochs=400, patience=25, batch_size=128, lr=1e-3,
                       weight_decay=0.0, optimizer="rmsprop", schedule="constant")  # fmt: skip
        elif arch == "default":
            base = cls(arch="default")
        else:
            raise ValueError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHITECTURES)})")
        for key, value in overrides.items():
            if value is not None:
                setattr(base, key, value)
        return base

    def to_dict(self) -> dict:
        return asdict(self)


def build_network(config: EnthalpyTrainConfig, n_elements: int, element_features: np.ndarray | None) -> nn.Module:
    """An untrained network of ``config.arch``."""
    if config.arch == "seed":
        return SeedNet(n_elements, **config.model_kwargs)
    if config.arch == "default":
        if element_features is None:
            raise ValueError("the default architecture needs the element property table")
        return AttentionNet(torch.as_tensor(element_features), **config.model_kwargs)
    raise ValueError(f"unknown architecture {config.arch!r} (choose from {', '.join(ARCHITECTURES)})")


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and the 50/80/90 % quantiles of |error| (all eV/atom)."""
    err = np.abs(np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64))
    return {
        "mae": float(err.mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "q50": float(np.quantile(err, 0.5)),
        "q80": float(np.quantile(err, 0.8)),
        "q90": float(np.quantile(err, 0.9)),
        "n": int(err.size),
    }


def kfold_indices(n: int, folds: int, seed: int = 0) -> list[np.ndarray]:
    """Disjoint test-index arrays covering ``range(n)``, one per fold, from a seeded permutation."""
    if folds < 2:
        raise ValueError(f"need at least 2 folds, got {folds}")
    if n < folds:
        raise ValueError(f"cannot split {n} rows into {folds} folds")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(perm, folds)]


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into training and early-stopping validation indices."""
    perm = np.random.default_rng(seed + 7919).permutation(n)
    n_val = max(1, int(round(n * val_fraction))) if n > 1 else 0
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def predict_array(model: nn.Module, x: Tensor, batch_size: int = 8192) -> np.ndarray:
    """Model output ``[N, K]`` (eV/atom) for fraction rows ``x``, in evaluation mode, no gradients."""
    was_training = model.training
    model.eval()
    outs = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            outs.append(model(x[start : start + batch_size]))
    model.train(was_training)
    return torch.cat(outs).numpy() if outs else np.zeros((0, 1), dtype=np.float32)


def _lr_factor(epoch_progress: float, config: EnthalpyTrainConfig) -> float:
    if config.schedule == "constant":
        return 1.0
    if epoch_progress < 1.0:
        return max(epoch_progress, 0.05)
    t = min(1.0, (epoch_progress - 1.0) / max(1, config.max_epochs - 1))
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))


def train_single(
    config: EnthalpyTrainConfig,
    x: np.ndarray,
    y: np.ndarray,
    element_features: np.ndarray | None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
) -> tuple[nn.Module, dict]:
    """Train one network on fractions ``x [N, E]`` and targets ``y [N]`` (eV/atom).

    Returns the model with the best validation-MAE weights (eval mode) and a history dict.
    ``progress`` is called after every epoch with ``{"epoch", "train_mae", "val_mae", "best"}``.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tr, va = train_val_split(len(y), config.val_fraction, seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    model = build_network(config, x.shape[1], element_features)
    mean, std = float(np.mean(y[tr])), float(np.std(y[tr])) or 1.0
    model.scale.mean.fill_(mean)
    model.scale.std.fill_(std)
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(tr) / config.batch_size))
    best_mae, best_state, best_epoch, waited = math.inf, None, -1, 0
    history: list[dict] = []
    start_time = time.perf_counter()
    for epoch in range(config.max_epochs):
        model.train()
        order = tr[rng.permutation(len(tr))]
        total = 0.0
        for step in range(steps_per_epoch):
            for group in opt.param_groups:
                group["lr"] = config.lr * _lr_factor(epoch + step / steps_per_epoch, config)
            idx = torch.as_tensor(order[step * config.batch_size : (step + 1) * config.batch_size])
            # loss on the standardised scale: MAE / std
            pred = model(xt[idx]).squeeze(1)
            loss = torch.nn.functional.l1_loss(pred, yt[idx]) / std
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * std * len(idx)
        train_mae = total / len(tr)
        val_mae = float(np.mean(np.abs(predict_array(model, xt[va])[:, 0] - y[va]))) if len(va) else train_mae
        improved = val_mae < best_mae
        if improved:
            best_mae, best_epoch, waited = val_mae, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
        record = {"epoch": epoch, "train_mae": train_mae, "val_mae": val_mae, "best": best_mae}
        history.append(record)
        if progress is not None:
            progress(record)
        if waited >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    info = {"history": history, "best_epoch": best_epoch, "best_val_mae": best_mae,
            "seconds": time.perf_counter() - start_time}  # fmt: skip
    return model, info


def train(
    config: EnthalpyTrainConfig,
    x: np.ndarray,
    y: np.ndarray,
    element_features: np.ndarray | None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
) -> tuple[nn.Module, dict]:
    """Train ``config.ensemble`` networks (seeds ``seed, seed+1, ...``); an :class:`Ensemble` of them.

    The returned model maps fractions ``[N, E]`` to ``[N, K]`` predictions in eV/atom.
    """
    members, infos = [], []
    for k in range(config.ensemble):
        member, info = train_single(config, x, y, element_features, seed + 1000 * k, progress)
        members.append(member)
        infos.append(info)
    model = Ensemble(members).eval()
    return model, {"members": infos, "seconds": sum(i["seconds"] for i in infos)}


@dataclass
class CrossValidation:
    """Out-of-fold predictions (eV/atom) and per-fold metrics of a k-fold cross-validation."""

    predictions: np.ndarray
    uncertainty: np.ndarray
    fold_of_row: np.ndarray
    folds: list[dict]
    overall: dict


def cross_validate(
    config: EnthalpyTrainConfig,
    x: np.ndarray,
    y: np.ndarray,
    element_features: np.ndarray | None,
    folds: int = 10,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
    only_folds: list[int] | None = None,
) -> CrossValidation:
    """k-fold cross-validation: train on k-1 folds, predict the held-out fold.

    ``only_folds`` restricts the run to some folds (rows of the others get NaN predictions).
    Each fold's dict holds its metrics and the training time in seconds.
    """
    parts = kfold_indices(len(y), folds, seed)
    pred = np.full(len(y), np.nan)
    unc = np.full(len(y), np.nan)
    fold_of_row = np.full(len(y), -1)
    results = []
    for f, test in enumerate(parts):
        if only_folds is not None and f not in only_folds:
            continue
        train_idx = np.setdiff1d(np.arange(len(y)), test)
        model, info = train(config, x[train_idx], y[train_idx], element_features, seed + f,
                            (lambda rec, f=f: progress({**rec, "fold": f})) if progress else None)  # fmt: skip
        out = predict_array(model, torch.as_tensor(x[test]))
        pred[test] = out.mean(axis=1)
        unc[test] = out.std(axis=1) if out.shape[1] > 1 else np.nan
        fold_of_row[test] = f
        results.append({"fold": f, **metrics(y[test], pred[test]), "train_seconds": info["seconds"]})
    done = fold_of_row >= 0
    return CrossValidation(pred, unc, fold_of_row, results, metrics(y[done], pred[done]))
