"""The composition-model file (TorchScript) and :class:`CompositionModel`, its Python front end.

File contract: one ``torch.jit.save`` archive whose module maps ``fractions: float32[N, n_elements]``
(columns in the order of ``elements``) to ``float32[N, K]`` formation enthalpies in eV/atom, one column
per ensemble member. The extra file ``xtalnn_composition.json`` holds everything else a caller needs::

    {"format": "xtalnn-composition", "format_version": 1, "units": "eV/atom",
     "elements": [...],            # input column order (by atomic number)
     "trained_elements": [...],    # elements present in the training data; others are refused
     "arch": "default", "config": {...}, "n_train": 51255, "created": "...", ...}

No Python class of ours is needed to load the file: ``torch.jit.load(path)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
import torch
from torch import nn

from xtalnn.io.atomic import atomic_write

from .data import CompositionDataError, parse_formula

METADATA_FILE = "xtalnn_composition.json"
FORMAT = "xtalnn-composition"
FORMAT_VERSION = 1


def save_enthalpy_model(module: nn.Module, path: str | os.PathLike, metadata: dict) -> None:
    """Script ``module`` and write it with ``metadata`` to ``path`` atomically.

    The archive is written to a temporary file in the same directory and renamed, so an interrupted
    run never leaves a half-written model file.
    """
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "units": "eV/atom",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **metadata}  # fmt: skip
    for key in ("elements", "trained_elements"):
        if key not in meta:
            raise ValueError(f"model metadata needs {key!r}")
    scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module.eval())
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files={METADATA_FILE: json.dumps(meta)}))


class CompositionModel:
    """Formation enthalpy (eV/atom) of compositions from a trained (TorchScript or eager) network.

    >>> model = CompositionModel.load("comp.pt")            # doctest: +SKIP
    >>> model.predict(["TiO2", "CaTiO3"])                    # doctest: +SKIP
    array([-3.4..., -3.6...])
    """

    def __init__(self, module: nn.Module, metadata: dict):
        self.module = module.eval()
        self.metadata = dict(metadata)
        self.elements: list[str] = list(metadata["elements"])
        self.trained_elements: set[str] = set(metadata["trained_elements"])
        self._column = {symbol: i for i, symbol in enumerate(self.elements)}

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CompositionModel":
        """Load a model file written by :func:`save_enthalpy_model` (or ``xtalnn composition train``)."""
        from xtalnn.io.archive import verify_zip

        verify_zip(path, "composition model file")  # exists, a zip archive, every member's CRC-32
        extra = {METADATA_FILE: ""}
        try:
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except RuntimeError as err:
            raise ValueError(f"{path}: not a TorchScript model file ({err})") from None
        if not extra[METADATA_FILE]:
            raise ValueError(f"{path}: not an xtalnn composition model (no {METADATA_FILE})")
        metadata = json.loads(extra[METADATA_FILE])
        if metadata.get("format") != FORMAT or metadata.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported model format {metadata.get('format')!r} "
                             f"version {metadata.get('format_version')!r}")  # fmt: skip
        return cls(module, metadata)

    def save(self, path: str | os.PathLike) -> None:
        """Write this model to ``path`` (TorchScript + metadata, atomic)."""
        save_enthalpy_model(self.module, path, self.metadata)

    def fractions(self, formulas: Sequence[str], first_row: int = 1) -> np.ndarray:
        """Element-fraction matrix ``[N, n_elements]`` for ``formulas``.

        Raises :class:`CompositionDataError` naming the row and formula for an unparseable formula or
        an element the model was not trained on.
        """
        out = np.zeros((len(formulas), len(self.elements)), dtype=np.float32)
        for r, formula in enumerate(formulas):
            row = r + first_row
            for symbol, fraction in parse_formula(formula, row).items():
                if symbol not in self.trained_elements or symbol not in self._column:
                    raise CompositionDataError(
                        f"row {row}: formula {formula!r} contains {symbol}, an element this model "
                        f"was never trained on"
                    )
                out[r, self._column[symbol]] = fraction
        return out

    def predict_fractions(self, fractions: np.ndarray, batch_size: int = 16384) -> np.ndarray:
        """Member predictions ``[N, K]`` (eV/atom) for a fraction matrix."""
        x = torch.as_tensor(np.ascontiguousarray(fractions, dtype=np.float32))
        outs = []
        with torch.inference_mode():
            for start in range(0, x.shape[0], batch_size):
                outs.append(self.module(x[start : start + batch_size]))
        if not outs:
            return np.zeros((0, 1), dtype=np.float32)
        return torch.cat(outs).numpy()

    def predict_with_uncertainty(
        self, formulas: Sequence[str], batch_size: int = 16384
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean prediction and ensemble standard deviation (``None`` for one network), eV/atom."""
        if isinstance(formulas, str):
            formulas = [formulas]
        means, stds = [], []
        for start in range(0, len(formulas), batch_size):
            out = self.predict_fractions(self.fractions(formulas[start : start + batch_size], start + 1))
            means.append(out.mean(axis=1))
            stds.append(out.std(axis=1))
        if not means:
            return np.zeros(0), None
        mean = np.concatenate(means).astype(np.float64)
        k = self.n_members
        return mean, (np.concatenate(stds).astype(np.float64) if k > 1 else None)

    def predict(self, formulas: Sequence[str], batch_size: int = 16384) -> np.ndarray:
        """Formation enthalpy in eV/atom for each formula (ensemble mean)."""
        return self.predict_with_uncertainty(formulas, batch_size)[0]

    @property
    def n_members(self) -> int:
        """Number of ensemble members (columns of the network output)."""
        return int(self.metadata.get("ensemble", 1))
