"""Predictions of a model on a set of graphs, and their error metrics (eV/atom, eV/Å, GPa)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xtalnn.potential import data as D
from xtalnn.potential.loss import predict_with_stress

EV_PER_A3_IN_GPA = 160.21766208  # 1 eV/Å³ in GPa


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
    stress_ref: np.ndarray | None = None   # [K, 3, 3] eV/Å³ of the K structures with a stress
    stress_pred: np.ndarray | None = None
    stress_per_atom: np.ndarray | None = None  # [K] V/n (Å³/atom): σ → virial per atom
    force_rmse_per_structure: np.ndarray | None = None  # [B] eV/Å (NaN without forces)
    extrapolating_per_structure: np.ndarray | None = None  # [B] atoms outside the training range (-1: not checked)

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
        if self.stress_ref is not None and len(self.stress_ref):
            ds = self.stress_pred - self.stress_ref
            dp = -np.trace(ds, axis1=1, axis2=2) / 3
            out["stress_rmse_GPa"] = float(np.sqrt(np.mean(ds**2)) * EV_PER_A3_IN_GPA)
            out["pressure_rmse_GPa"] = float(np.sqrt(np.mean(dp**2)) * EV_PER_A3_IN_GPA)
            out["virial_rmse_meV_per_atom"] = float(np.sqrt(np.mean((ds * self.stress_per_atom[:, None, None])**2)) * 1000)
            out["n_stress_structures"] = int(len(ds))
        if self.weights is not None and len(de) and np.any(self.weights != 1.0):
            w = self.weights
            out["weighted_energy_rmse_meV_per_atom"] = float(np.sqrt(np.sum(w * de**2) / max(np.sum(w), 1e-12)) * 1000)
        return out


def evaluate(model, graphs: list, batch_size: int = 32, forces: bool = True, descriptor_fn=None,
             stress: bool = False, extrapolation_tolerance: float | None = None) -> Evaluation:
    """Energies (and forces, and with ``stress`` the stresses, of the batches whose graphs all have
    them) of ``graphs`` with ``model``; per structure also the force RMSE and, with
    ``extrapolation_tolerance``, the number of atoms outside the training range (the model's own rule)."""
    energies, f_ref, f_pred, s_ref, s_pred, s_scale = [], [], [], [], [], []
    f_rmse = np.full(len(graphs), np.nan)
    outside = np.full(len(graphs), -1, dtype=int)
    for k in range(0, len(graphs), batch_size):
        batch = D.collate(graphs[k:k + batch_size])
        if extrapolation_tolerance is not None:
            with torch.no_grad():
                G = model.descriptors(batch.species, batch.edge_index, batch.edge_vec(batch.positions),
                                      int(batch.species.shape[0]))
                flags = model.extrapolating(batch.species, G, float(extrapolation_tolerance))
            outside[k:k + batch.n_structures] = torch.zeros(batch.n_structures, dtype=torch.int64).index_add(
                0, batch.structure, flags.to(torch.int64)).numpy()
        with_f = forces and batch.forces is not None
        with_s = stress and batch.stress is not None
        with torch.set_grad_enabled(with_f or with_s):
            energy, F, S = predict_with_stress(model, batch, with_f, with_s, descriptor_fn=descriptor_fn)
        energies.append(energy.detach())
        if with_f:
            f_ref.append(batch.forces)
            f_pred.append(F.detach())
            se = torch.zeros(batch.n_structures, dtype=torch.float64).index_add(
                0, batch.structure, ((F.detach() - batch.forces) ** 2).sum(1))
            f_rmse[k:k + batch.n_structures] = torch.sqrt(se / (3 * batch.n_atoms)).numpy()
        if with_s:
            s_ref.append(batch.stress)
            s_pred.append(S.detach())
            s_scale.append(batch.volume / batch.n_atoms)
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
        stress_ref=torch.cat(s_ref).numpy() if s_ref else None,
        stress_pred=torch.cat(s_pred).numpy() if s_pred else None,
        stress_per_atom=torch.cat(s_scale).numpy() if s_scale else None,
        force_rmse_per_structure=f_rmse,
        extrapolating_per_structure=outside,
    )


PER_STRUCTURE_FIELDS = ["file", "atoms", "energy_error_meV_per_atom", "force_rmse_eV_per_A", "extrapolating_atoms"]


def per_structure_errors(ev: Evaluation) -> list[dict]:
    """One row per structure (:data:`PER_STRUCTURE_FIELDS`: energy error = predicted − reference, meV/atom;
    force RMSE, eV/Å, empty without forces; atoms outside the training range, empty if not checked),
    worst first: by |energy error per atom|, then force RMSE."""
    rows = []
    for k, name in enumerate(ev.names):
        de = (ev.energy_pred[k] - ev.energy_ref[k]) / ev.n_atoms[k] * 1000
        f = ev.force_rmse_per_structure[k] if ev.force_rmse_per_structure is not None else np.nan
        x = ev.extrapolating_per_structure[k] if ev.extrapolating_per_structure is not None else -1
        rows.append({"file": name, "atoms": int(ev.n_atoms[k]), "energy_error_meV_per_atom": float(de),
                     "force_rmse_eV_per_A": None if np.isnan(f) else float(f),
                     "extrapolating_atoms": None if x < 0 else int(x)})
    return sorted(rows, key=lambda r: (-abs(r["energy_error_meV_per_atom"]), -(r["force_rmse_eV_per_A"] or 0.0)))


def write_per_structure_csv(rows: list[dict], path) -> None:
    """:func:`per_structure_errors` as CSV (atomically); empty cells for missing values."""
    import csv

    from xtalnn.io.atomic import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=PER_STRUCTURE_FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if v is None else f"{v:.6g}" if isinstance(v, float) else v)
                                 for k, v in row.items()})

    atomic_write(path, write)
