"""Predictions of a model on a set of graphs, and their error metrics (eV/atom, eV/Å)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xtalnn.potential import data as D
from xtalnn.potential.loss import predict


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
    weights: np.ndarray | None = None  # the structures' loss weights (None: all 1)

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
        if self.weights is not None and len(de) and np.any(self.weights != 1.0):
            w = self.weights
            out["weighted_energy_rmse_meV_per_atom"] = float(np.sqrt(np.sum(w * de**2) / max(np.sum(w), 1e-12)) * 1000)
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
        weights=np.array([g.weight for g in graphs], dtype=float),
    )
