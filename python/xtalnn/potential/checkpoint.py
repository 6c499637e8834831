"""Files of a training run: the checkpoint (``<output>.ckpt``: last and best state, optimiser,
scheduler, split), the history CSV, the side files' names, and the signal handling that keeps the
checkpoint consistent with the exported model when a run is interrupted."""

from __future__ import annotations

import contextlib
import csv
import signal
from pathlib import Path

import torch

from xtalnn.io.archive import verify_zip
from xtalnn.io.atomic import atomic_write

CHECKPOINT_VERSION = 1


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


def save_checkpoint(state: dict, path: Path) -> None:
    """Write a checkpoint (a dict of tensors and plain values) atomically, stamped with its version."""
    atomic_write(path, lambda tmp: torch.save({"version": CHECKPOINT_VERSION, **state}, tmp))


CHECKPOINT_KEYS = ("model_args", "best_state", "last_state", "config", "split", "fingerprint", "descriptor",
                   "epoch", "best_epoch", "best_loss", "sources")


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, verified first: the archive's checksums
    (:func:`~xtalnn.io.archive.verify_zip`), its version and its keys. A missing file is
    FileNotFoundError; a damaged, foreign or other-version file a ValueError naming it."""
    verify_zip(path, "training checkpoint")
    try:
        ckpt = torch.load(path, weights_only=False)
    except Exception as err:  # unpickling raises many types for files that are not checkpoints
        raise ValueError(f"{path}: not an xtalnn training checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        version = ckpt.get("version") if isinstance(ckpt, dict) else None
        raise ValueError(f"{path}: not an xtalnn training checkpoint of version {CHECKPOINT_VERSION} "
                         f"(version {version!r})")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: training checkpoint lacks {', '.join(missing)}")
    return ckpt


HISTORY_FIELDS = ["epoch", "lr", "train_loss", "val_loss", "train_energy_rmse_meV_per_atom",
                  "val_energy_rmse_meV_per_atom", "train_force_rmse_eV_per_A", "val_force_rmse_eV_per_A",
                  "time_s"]


def write_history(history: list, path: Path) -> None:
    """The per-epoch history (:data:`HISTORY_FIELDS`) as CSV, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(history)

    atomic_write(path, write)


class Interrupts:
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
