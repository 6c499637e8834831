"""The training step: one potential per cycle, started from the previous cycle's weights.

Files of cycle c in ``DIR/models/cycle-NNN/``: ``train.extxyz`` (the training set, written once,
atomically), ``model.pt`` / ``model.ckpt`` / history / plots (:func:`xtalnn.potential.train.train`),
and ``done.json`` (written last, atomically). Only a model with ``done.json`` is ever used, so a run
killed while training never hands a half-trained model to the GA; restarting continues from the
checkpoint.

Warm start: ``train(..., init_from=<previous model.ckpt>)`` (:func:`xtalnn.potential.train.warm_start_model`)
keeps the previous model's weights, scaling and reference energies, so the new run starts from exactly
what the previous model predicted; a previous model of another shape (descriptor or network changed in
the config) is not used and training starts from scratch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from xtalnn.io.atomic import write_json

@dataclass
class TrainTask:
    """One cycle's training: settings (TrainConfig keys), elements, data file, output folder,
    the previous cycle's folder (warm start) or ``""``."""

    settings: dict
    elements: list
    data: str
    folder: str
    previous: str = ""


def is_potential(name) -> bool:
    """True for the name of a trained cycle model (``cycle-NNN``); False for the start fitness (``empirical``,
    ``start-<spec>``) that ranks before the first one."""
    return str(name or "").startswith("cycle-")


def model_path(folder: str) -> str:
    return os.path.join(folder, "model.pt")


def is_done(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "done.json"))


def read_done(folder: str) -> dict:
    with open(os.path.join(folder, "done.json")) as fh:
        return json.load(fh)


def run_training(task: TrainTask) -> dict:
    """Train (or finish training) the model of one cycle; returns the ``done.json`` content:
    ``n_structures``, ``val_rmse`` (eV/atom, at the best epoch), ``test`` metrics, ``warm_start``."""
    import torch

    from xtalnn.potential.checkpoint import output_paths
    from xtalnn.potential.config import TrainConfig
    from xtalnn.potential.train import train

    if is_done(task.folder):
        return read_done(task.folder)
    torch.set_num_threads(int(task.settings.get("threads") or 1))
    config = TrainConfig.from_dict({**task.settings, "elements": list(task.elements)})
    output = model_path(task.folder)
    ckpt = output_paths(output)["checkpoint"]
    resume = ckpt.is_file()
    init_from = output_paths(model_path(task.previous))["checkpoint"] if task.previous else None
    try:
        result = train(config, [task.data], output, resume=resume, progress=False, init_from=init_from)
    except ValueError:
        if init_from is None or resume:
            raise
        init_from = None  # the previous model has another shape (descriptor or network changed): from scratch
        result = train(config, [task.data], output, progress=False)
    warm = init_from is not None
    history = result.history
    best = result.metadata.get("metrics", {}).get("best_epoch", 0)
    row = next((h for h in history if h["epoch"] == best), history[-1] if history else {})
    val_mev = float(row.get("val_energy_rmse_meV_per_atom", float("nan")))
    n = result.metadata.get("training_data", {})
    done = {"n_structures": int(n.get("n_train", 0) + n.get("n_val", 0) + n.get("n_test", 0)),
            "n_train": int(n.get("n_train", 0)), "n_val": int(n.get("n_val", 0)),
            "val_rmse": val_mev / 1000.0, "test": result.test_metrics, "epochs": len(history),
            "best_epoch": int(best), "warm_start": warm, "interrupted": bool(result.interrupted),
            "train_seconds": float(history[-1]["time_s"]) if history else 0.0}
    if result.interrupted:
        raise KeyboardInterrupt("training interrupted")
    write_json(os.path.join(task.folder, "done.json"), done)
    return done
