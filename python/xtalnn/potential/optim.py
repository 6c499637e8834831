"""Optimiser and learning-rate schedule from a :class:`~xtalnn.potential.config.TrainConfig`
(the seed paper's choices: SGD, Adadelta, Adagrad, RMSprop, Adam, Adamax, ASGD, Rprop, L-BFGS)."""

from __future__ import annotations

import torch

from xtalnn.potential.config import OPTIMIZERS, TrainConfig


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
