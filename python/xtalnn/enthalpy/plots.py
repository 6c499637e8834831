"""PNG plots of cross-validation results: parity plot and cumulative distribution of |error|."""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def parity_plot(y_true: np.ndarray, y_pred: np.ndarray, path: str | os.PathLike, title: str = "") -> None:
    """Predicted vs reference formation enthalpy (eV/atom), hexbin density, written as PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    lo, hi = np.quantile(np.concatenate([y_true, y_pred]), [0.0005, 0.9995])
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    hb = ax.hexbin(y_true, y_pred, gridsize=120, bins="log", extent=(lo, hi, lo, hi), cmap="viridis", mincnt=1)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("reference formation enthalpy (eV/atom)")
    ax.set_ylabel("predicted formation enthalpy (eV/atom)")
    mae = float(np.mean(np.abs(y_pred - y_true)))
    ax.set_title(f"{title}  MAE {mae:.3f} eV/atom".strip())
    fig.colorbar(hb, ax=ax, label="compounds")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def error_cdf_plot(errors: dict[str, np.ndarray], path: str | os.PathLike, title: str = "") -> None:
    """Cumulative fraction of compounds below each |error| (eV/atom), one curve per model, PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for label, err in errors.items():
        e = np.sort(np.abs(np.asarray(err, dtype=np.float64)))
        ax.plot(e, np.arange(1, e.size + 1) / e.size, label=label)
    for q in (0.8, 0.9):
        ax.axhline(q, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 3)
    ax.set_ylim(0, 1)
    ax.set_xlabel("|error| (eV/atom)")
    ax.set_ylabel("fraction of compounds")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
