"""The training step: one potential per cycle, started from the previous cycle's weights.

Files of cycle c in ``DIR/models/cycle-NNN/``: ``train.extxyz`` (the training set, written once,
atomically), ``model.pt`` / ``model.ckpt`` / history / plots (:func:`xtalnn.potential.train.train`),
and ``done.json`` (written last, atomically). Only a model with ``done.json`` is ever used, so a run
killed while training never hands a half-trained model to the GA; restarting continues from the
checkpoint.

Warm start: :func:`xtalnn.potential.train.train` has no ``init_from`` option yet, so
:func:`warm_start_checkpoint` writes an epoch-0 checkpoint holding the previous model's network
weights and scaling, and the training *resumes* from it. The previous per-element reference energies
are folded into the output biases, so the warm model predicts exactly what the previous one did.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass



@dataclass
class TrainTask:
    """One cycle's training: settings (TrainConfig keys), elements, data file, output folder,
    the previous cycle's folder (warm start) or ``""``."""

    settings: dict
    elements: list
    data: str
    folder: str
    previous: str = ""


def model_path(folder: str) -> str:
    return os.path.join(folder, "model.pt")


def is_done(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "done.json"))


def read_done(folder: str) -> dict:
    with open(os.path.join(folder, "done.json")) as fh:
        return json.load(fh)


def write_atomic_json(path: str, value) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(value, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def warm_start_checkpoint(config, data_paths, output, previous_checkpoint: str) -> bool:
    """Write ``<output>.ckpt`` (epoch 0) holding the previous model's weights; False when the previous
    model has another shape (other descriptor or network), then training starts from scratch."""
    import torch

    from xtalnn.potential import train as T
    from xtalnn.potential.model import Potential

    prev = torch.load(previous_checkpoint, weights_only=False)
    prepared = T.prepare(config, data_paths)
    fresh = T.build_model(prepared)
    old_args = dict(prev["model_args"])
    new_args = fresh.init_args()
    same = (old_args["elements"] == new_args["elements"] and old_args["hidden"] == new_args["hidden"]
            and old_args["activation"] == new_args["activation"]
            and torch.equal(torch.as_tensor(old_args["spec"]), new_args["spec"]))
    if not same:
        return False
    args = dict(new_args, shift=old_args["shift"], scale=old_args["scale"])
    model = Potential(**args)
    state = {k: v for k, v in prev["best_state"].items() if k.startswith("nets.")}
    model.load_state_dict(state, strict=False)
    # reference energies change with the training set: keep E_i = net + e_ref unchanged
    delta = torch.as_tensor(old_args["reference_energies"]) - new_args["reference_energies"]
    with torch.no_grad():
        for k, net in enumerate(model.nets):
            net[-1].bias += delta[k]
    optimizer = T.make_optimizer(config, model.parameters())
    scheduler = T.make_scheduler(config, optimizer)
    paths = T.output_paths(output)
    T._atomic_torch_save({
        "version": T.CHECKPOINT_VERSION, "config": asdict(config), "model_args": model.init_args(),
        "last_state": model.state_dict(), "best_state": {k: v.clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None, "epoch": 0,
        "history": [], "best_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "split": prepared.split,
        "fingerprint": prepared.fingerprint, "sources": prepared.sources,
        "descriptor": prepared.descriptor_settings,
    }, paths["checkpoint"])
    return True


def run_training(task: TrainTask) -> dict:
    """Train (or finish training) the model of one cycle; returns the ``done.json`` content:
    ``n_structures``, ``val_rmse`` (eV/atom, at the best epoch), ``test`` metrics, ``warm_start``."""
    import torch

    from xtalnn.potential.train import TrainConfig, output_paths, train

    if is_done(task.folder):
        return read_done(task.folder)
    torch.set_num_threads(int(task.settings.get("threads") or 1))
    config = TrainConfig.from_dict({**task.settings, "elements": list(task.elements)})
    output = model_path(task.folder)
    ckpt = output_paths(output)["checkpoint"]
    warm = False
    if ckpt.is_file():
        resume = True
        warm = bool(task.previous)
    elif task.previous:
        prev_ckpt = output_paths(model_path(task.previous))["checkpoint"]
        warm = warm_start_checkpoint(config, [task.data], output, str(prev_ckpt))
        resume = warm
    else:
        resume = False
    result = train(config, [task.data], output, resume=resume, progress=False)
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
    write_atomic_json(os.path.join(task.folder, "done.json"), done)
    return done


def write_training_set(frames, path: str) -> None:
    """The training structures as extxyz, atomically (a reader never sees half a file)."""
    import ase.io

    tmp = f"{path}.tmp.extxyz"
    ase.io.write(tmp, frames, format="extxyz")
    os.replace(tmp, path)

