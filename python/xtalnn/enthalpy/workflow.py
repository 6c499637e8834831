"""End-to-end jobs behind the CLI: table → cross-validation report (+ PNGs) → final model file."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from .data import parse_formulas, read_table
from .modelfile import save_enthalpy_model
from .features import default_elements, element_property_table, elements_present, fraction_matrix
from .plots import error_cdf_plot, parity_plot
from .training import CrossValidation, EnthalpyTrainConfig, cross_validate, train


@dataclass
class Dataset:
    """Fractions ``x [N, E]`` (columns = ``elements``), targets ``y [N]`` in eV/atom, formulas."""

    formulas: list[str]
    x: np.ndarray
    y: np.ndarray
    elements: list[str]


def load_dataset(path: str, formula_column: str = "formula", target_column: str = "target") -> Dataset:
    """Read and featurise a training table (see :func:`xtalnn.enthalpy.data.read_table`)."""
    table = read_table(path, formula_column, target_column)
    elements = default_elements()
    x = fraction_matrix(parse_formulas(table.formulas), elements)
    return Dataset(table.formulas, x, table.targets, elements)


def _tqdm_progress(max_epochs: int, runs: int, desc: str, enabled: bool):
    """One bar over the whole job: ``runs`` trainings (the CV folds, then the final one) of at most
    ``max_epochs`` each (every ensemble member is one), so its elapsed and remaining times are the job's (remaining: an upper bound,
    early stopping ends trainings sooner). Returns (update callback, close)."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=runs * max_epochs, desc=desc, unit="epoch", file=sys.stderr)
    run = [-1]

    def update(record: dict) -> None:
        if record["epoch"] == 0:  # the next training starts: skip what early stopping left of the last
            run[0] += 1
            bar.n = run[0] * max_epochs
            label = f"fold {record['fold']}" if "fold" in record else "final model"
            bar.set_description(f"{desc}: {label} ({run[0] + 1}/{runs})")
        bar.update(1)
        bar.set_postfix(val=f"{record['val_mae']:.4f}", best=f"{record['best']:.4f}")

    return update, bar.close


def write_cv_report(cv: CrossValidation, data: Dataset, prefix: str, label: str) -> dict[str, str]:
    """Write ``PREFIX_cv.json`` (metrics), ``PREFIX_cv.csv`` (out-of-fold predictions) and the
    parity / error-CDF PNGs. Returns the written paths."""
    done = cv.fold_of_row >= 0
    paths = {k: f"{prefix}_cv{ext}" for k, ext in
             (("json", ".json"), ("csv", ".csv"), ("parity", "_parity.png"), ("cdf", "_error_cdf.png"))}  # fmt: skip
    with open(paths["json"], "w") as fh:
        json.dump({"label": label, "overall": cv.overall, "folds": cv.folds}, fh, indent=2)
    with open(paths["csv"], "w") as fh:
        fh.write("formula,target,prediction,uncertainty,fold\n")
        for i in np.nonzero(done)[0]:
            fh.write(f"{data.formulas[i]},{data.y[i]:.6f},{cv.predictions[i]:.6f},"
                     f"{cv.uncertainty[i]:.6f},{cv.fold_of_row[i]}\n")  # fmt: skip
    parity_plot(data.y[done], cv.predictions[done], paths["parity"], title=label)
    error_cdf_plot({label: cv.predictions[done] - data.y[done]}, paths["cdf"], title=f"{label}: cross-validation")
    return paths


def train_and_save(
    data_path: str,
    output: str,
    arch: str = "default",
    folds: int = 0,
    seed: int = 0,
    formula_column: str = "formula",
    target_column: str = "target",
    progress: bool = True,
    threads: int | None = None,
    **overrides,
) -> dict:
    """Optionally cross-validate (``folds`` ≥ 2), then train on all rows and write the model file.

    Cross-validation results go next to ``output`` (``<output stem>_cv.json`` etc.). Returns a summary
    dict with the CV metrics (eV/atom) and training time (s).
    """
    if threads:
        torch.set_num_threads(threads)
    config = EnthalpyTrainConfig.for_arch(arch, **overrides)
    data = load_dataset(data_path, formula_column, target_column)
    features = element_property_table(data.elements)
    summary: dict = {"arch": arch, "config": config.to_dict(), "n": len(data.y)}
    prefix = os.path.splitext(output)[0]
    update, close = _tqdm_progress(config.max_epochs, (folds + 1) * config.ensemble, arch, progress)
    if folds:
        cv = cross_validate(config, data.x, data.y, features, folds, seed, update)
        summary["cv"] = {"overall": cv.overall, "folds": cv.folds}
        summary["cv_files"] = write_cv_report(cv, data, prefix, f"{arch} ({folds}-fold CV)")
    start = time.perf_counter()
    model, info = train(config, data.x, data.y, features, seed, update)
    close()
    summary["train_seconds"] = time.perf_counter() - start
    metadata = {
        "elements": data.elements,
        "trained_elements": elements_present(data.x, data.elements),
        "arch": arch,
        "ensemble": config.ensemble,
        "config": config.to_dict(),
        "n_train": len(data.y),
        "training_data": os.path.basename(data_path),
        "seed": seed,
    }
    if "cv" in summary:
        metadata["cv"] = summary["cv"]["overall"]
    save_enthalpy_model(model, output, metadata)
    summary["output"] = output
    return summary

