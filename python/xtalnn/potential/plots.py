"""PNG figures of a training run: learning curve and parity plots (matplotlib, Agg backend)."""

from __future__ import annotations

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curve(history: list[dict], path) -> None:
    """Train/validation energy RMSE (meV/atom) and force RMSE (eV/Å) per epoch, log scale."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    has_forces = any(np.isfinite(h.get("train_force_rmse_eV_per_A", np.nan)) for h in history)
    fig, axes = plt.subplots(1, 2 if has_forces else 1, figsize=(10 if has_forces else 5.5, 4), squeeze=False)
    panels = [("energy_rmse_meV_per_atom", "energy RMSE (meV/atom)")]
    if has_forces:
        panels.append(("force_rmse_eV_per_A", "force RMSE (eV/Å)"))
    for ax, (key, label) in zip(axes[0], panels):
        for split, style in (("train", "-"), ("val", "--")):
            values = [h.get(f"{split}_{key}", np.nan) for h in history]
            if np.any(np.isfinite(values)):
                ax.plot(epochs, values, style, label=split)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parity(energy_ref, energy_pred, forces_ref=None, forces_pred=None, path="parity.png", title: str = "") -> None:
    """Predicted vs reference energy per atom (eV/atom; pass it without the reference energies so the
    spread the networks learn is visible) and force components (eV/Å)."""
    plt = _pyplot()
    with_forces = forces_ref is not None and len(forces_ref) > 0
    fig, axes = plt.subplots(1, 2 if with_forces else 1, figsize=(10 if with_forces else 5, 4.6), squeeze=False)
    panels = [(np.asarray(energy_ref), np.asarray(energy_pred), "(E − Σ e_ref) / n (eV/atom)", 1000.0, "meV/atom")]
    if with_forces:
        panels.append((np.ravel(forces_ref), np.ravel(forces_pred), "force component (eV/Å)", 1.0, "eV/Å"))
    for ax, (ref, pred, label, factor, unit) in zip(axes[0], panels):
        rmse = float(np.sqrt(np.mean((pred - ref) ** 2))) * factor
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.scatter(ref, pred, s=6, alpha=0.6)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"predicted {label}")
        ax.set_title(f"RMSE {rmse:.3g} {unit} ({len(ref)} points)")
        ax.set_aspect("equal", adjustable="datalim")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
