"""Benchmark of the composition model on the OQMD 51k set → the `## Composition model` section of
benchmarks/RESULTS.md.

Measures, in one run: 10-fold cross-validation (MAE, RMSE, 80/90 % |error| quantiles, training time per
fold) of the seed architecture, of the default architecture and of a scikit-learn baseline
(HistGradientBoostingRegressor, absolute-error loss) on the same features (element fractions +
fraction-weighted statistics of the element properties), and prediction throughput (formulas/s) for
1,000,000 formulas through `CompositionModel.predict` (parsing included) and through the network alone.

    PYTHONPATH=python nice python benchmarks/composition.py            # full run (hours on 2 shared cores)
    PYTHONPATH=python python benchmarks/composition.py --phases seed baseline throughput   # a part

Per-fold results are cached in --work-dir (default benchmarks/composition_out/) so an interrupted run
resumes; --fresh ignores the cache. PNGs (parity, error CDF) and a JSON summary go to the same directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import write_section  # noqa: E402

from xtalnn.enthalpy.modelfile import CompositionModel, save_enthalpy_model
from xtalnn.enthalpy.features import element_property_table, elements_present
from xtalnn.enthalpy.plots import error_cdf_plot, parity_plot
from xtalnn.enthalpy.training import EnthalpyTrainConfig, kfold_indices, metrics, predict_array, train
from xtalnn.enthalpy.workflow import load_dataset

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/work/shared/data/oqmd_formation_enthalpy_51k.csv.gz"
SECTION = "## Composition model"
PHASES = ("seed", "default", "baseline", "throughput")


def stat_features(x: np.ndarray, props: np.ndarray) -> np.ndarray:
    """Fractions + fraction-weighted mean, std, max, min of the element properties (baseline input)."""
    mean = x @ props
    std = np.sqrt(np.clip(x @ props**2 - mean**2, 0, None))
    present = x > 0
    big = 1e4
    pmax = np.where(present[:, :, None], props[None], -big).max(axis=1)
    pmin = np.where(present[:, :, None], props[None], big).min(axis=1)
    return np.hstack([x, mean, std, pmax, pmin]).astype(np.float32)


def run_network_cv(arch, data, props, folds, seed, work, fresh, log, only_folds=None):
    """k-fold CV of one architecture with per-fold caching; returns (predictions, fold results).

    With ``only_folds``, other folds are taken from the cache if present and otherwise skipped
    (then the returned predictions are ``None``): lets several processes share one CV.
    """
    config = EnthalpyTrainConfig.for_arch(arch)
    parts = kfold_indices(len(data.y), folds, seed)
    pred = np.full(len(data.y), np.nan)
    results = []
    for f, test in enumerate(parts):
        cache = os.path.join(work, f"cv_{arch}_fold{f}.npz")
        if only_folds is not None and f not in only_folds and not os.path.exists(cache):
            continue
        if os.path.exists(cache) and not fresh:
            z = np.load(cache)
            pred[test] = z["pred"]
            seconds, epochs = float(z["seconds"]), int(z["epochs"])
        else:
            train_idx = np.setdiff1d(np.arange(len(data.y)), test)
            from tqdm import tqdm

            bar = tqdm(total=config.max_epochs, desc=f"{arch} fold {f}", unit="epoch", file=sys.stderr)

            def progress(rec, bar=bar):
                bar.update(1)
                bar.set_postfix(val=f"{rec['val_mae']:.4f}", best=f"{rec['best']:.4f}")

            model, info = train(config, data.x[train_idx], data.y[train_idx], props, seed + f, progress)
            bar.close()
            out = predict_array(model, torch.as_tensor(data.x[test]))
            pred[test] = out.mean(axis=1)
            seconds = info["seconds"]
            epochs = sum(len(m["history"]) for m in info["members"])
            if f == 0:  # kept for the throughput measurement
                meta = {"elements": data.elements, "trained_elements": elements_present(data.x[train_idx], data.elements),
                        "arch": arch, "ensemble": config.ensemble, "config": config.to_dict()}  # fmt: skip
                save_enthalpy_model(model, os.path.join(work, f"{arch}_fold0.pt"), meta)
            np.savez(cache, pred=pred[test], seconds=seconds, epochs=epochs)
        m = metrics(data.y[test], pred[test])
        results.append({"fold": f, **m, "train_seconds": seconds, "epochs": epochs})
        log(f"{arch} fold {f}: MAE {m['mae']:.4f} RMSE {m['rmse']:.4f} ({seconds:.0f} s, {epochs} epochs)")
    return (pred if len(results) == folds or (only_folds is not None and not only_folds) else None), results


def run_baseline_cv(data, props, folds, seed, work, fresh, log, only_folds=None):
    """k-fold CV of HistGradientBoostingRegressor on fractions + element-property statistics.

    ``only_folds`` works as in :func:`run_network_cv` (and sets the order in which folds are fitted).
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    feats = stat_features(data.x, props)
    parts = kfold_indices(len(data.y), folds, seed)
    pred = np.full(len(data.y), np.nan)
    results = []
    order = list(only_folds) + [f for f in range(folds) if f not in only_folds] if only_folds else range(folds)
    for f in order:
        test = parts[f]
        cache = os.path.join(work, f"cv_baseline_fold{f}.npz")
        if only_folds is not None and f not in only_folds and not os.path.exists(cache):
            continue
        if os.path.exists(cache) and not fresh:
            z = np.load(cache)
            pred[test], seconds = z["pred"], float(z["seconds"])
        else:
            train_idx = np.setdiff1d(np.arange(len(data.y)), test)
            reg = HistGradientBoostingRegressor(loss="absolute_error", max_iter=1000, learning_rate=0.1,
                                                max_leaf_nodes=63, early_stopping=True,
                                                validation_fraction=0.1, n_iter_no_change=30,
                                                random_state=seed + f)  # fmt: skip
            start = time.perf_counter()
            reg.fit(feats[train_idx], data.y[train_idx])
            seconds = time.perf_counter() - start
            pred[test] = reg.predict(feats[test])
            np.savez(cache, pred=pred[test], seconds=seconds)
        m = metrics(data.y[test], pred[test])
        results.append({"fold": f, **m, "train_seconds": seconds})
        log(f"baseline fold {f}: MAE {m['mae']:.4f} ({seconds:.0f} s)")
    results.sort(key=lambda r: r["fold"])
    return (pred if len(results) == folds or (only_folds is not None and not only_folds) else None), results


def random_formulas(elements: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` formulas of 2-4 random elements with integer amounts 1-8 (for throughput only)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(2, 5, size=n)
    amounts = rng.integers(1, 9, size=(n, 4))
    picks = np.argsort(rng.random((n, len(elements))), axis=1)[:, :4]
    els = np.asarray(elements)
    return ["".join(f"{els[picks[i, j]]}{amounts[i, j]}" for j in range(k[i])) for i in range(n)]


def run_throughput(work, data, n, log):
    """Formulas/s of CompositionModel.predict (parsing included) and of the network alone."""
    out = {}
    formulas = None
    for arch in ("seed", "default"):
        path = os.path.join(work, f"{arch}_fold0.pt")
        if not os.path.exists(path):
            log(f"throughput: {path} missing (run the {arch} phase first)")
            continue
        model = CompositionModel.load(path)
        if formulas is None:
            formulas = random_formulas(sorted(model.trained_elements), n)
        start = time.perf_counter()
        x = model.fractions(formulas)
        parse_s = time.perf_counter() - start
        start = time.perf_counter()
        model.predict_fractions(x, batch_size=16384)
        net_s = time.perf_counter() - start
        start = time.perf_counter()
        pred = model.predict(formulas)
        total_s = time.perf_counter() - start
        assert pred.shape == (n,) and np.isfinite(pred).all()
        out[arch] = {"n": n, "end_to_end_per_s": n / total_s, "network_per_s": n / net_s,
                     "parse_per_s": n / parse_s, "end_to_end_s": total_s,
                     "load_average": os.getloadavg()[0]}  # fmt: skip
        log(f"throughput {arch}: {n / total_s:,.0f} formulas/s end to end, {n / net_s:,.0f}/s network only")
    return out


def machine_info() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            names = re.findall(r"model name\s*:\s*(.*)", fh.read())
            cpu = names[0] if names else cpu
    except OSError:
        pass
    import pymatgen.core
    import sklearn

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, check=False).stdout.strip()  # fmt: skip
    except OSError:
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "pymatgen": pymatgen.core.__version__, "sklearn": sklearn.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "commit": commit,
            "load_average": os.getloadavg()}  # fmt: skip


def _row(label, cv):
    o = cv["overall"]
    if len(cv["folds"]) < cv.get("n_folds", len(cv["folds"])):
        label += f" — {len(cv['folds'])} of {cv['n_folds']} folds only"
    t = np.array([f["train_seconds"] for f in cv["folds"]])
    return (f"| {label} | {o['mae']:.4f} | {o['rmse']:.3f} | {o['q50']:.4f} | {o['q80']:.4f} | {o['q90']:.4f} "
            f"| {np.mean([f['mae'] for f in cv['folds']]):.4f} ± {np.std([f['mae'] for f in cv['folds']]):.4f} "
            f"| {t.mean():.0f} |")  # fmt: skip


def render_section(summary: dict) -> str:
    m = summary["machine"]
    cv = summary["cv"]
    lines = [SECTION, "",
             f"Formation enthalpy from composition alone, `{summary['data']}` ({summary['n']:,} compounds), "
             f"{summary['folds']}-fold cross-validation (seeded split, the same folds for every model; "
             f"out-of-fold errors over all rows, including the {summary['n_outliers']} rows with |target| > 5 eV/atom). "
             f"Measured {summary['date']}.", "",
             f"- Command: `{summary['command']}`",
             f"- Machine: {m['cpu']}, {m['cores']} cores shared with other jobs (load average when this report was written "
             f"{m['load_average'][0]:.1f}), torch threads {m['torch_threads']}",
             f"- Versions: Python {m['python']}, torch {m['torch']}, pymatgen {m['pymatgen']}, "
             f"scikit-learn {m['sklearn']}, numpy {m['numpy']}; xtalnn commit {m['commit']}", "",
             "| model | MAE (eV/atom) | RMSE | 50% abs. error | 80% abs. error | 90% abs. error | fold MAE mean ± sd | train s/fold |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    labels = {"seed": "seed (dense 128-128-64-64-32 on fractions, RMSprop)",
              "default": "default (attention over element tokens + element properties)",
              "baseline": "scikit-learn HistGradientBoosting (fractions + property statistics)"}  # fmt: skip
    for key in ("baseline", "seed", "default"):
        if key in cv:
            lines.append(_row(labels[key], cv[key]))
    lines.append("")
    if "baseline" in cv:
        b = cv["baseline"]["overall"]["mae"]
        for key in ("seed", "default"):
            if key in cv:
                lines.append(f"- {key} MAE / baseline MAE = {cv[key]['overall']['mae'] / b:.3f}")
    if "seed" in cv and "default" in cv:
        lines.append(f"- default MAE / seed MAE = {cv['default']['overall']['mae'] / cv['seed']['overall']['mae']:.3f}")
    if "default" in cv:
        ok = cv["default"]["overall"]["mae"] <= 0.070
        lines.append(f"- Target 10-fold CV MAE ≤ 0.070 eV/atom: {'met' if ok else 'NOT met'} "
                     f"({cv['default']['overall']['mae']:.4f}"
                     f"{'' if len(cv['default']['folds']) == summary['folds'] else ', partial CV: %d of %d folds' % (len(cv['default']['folds']), summary['folds'])})")  # fmt: skip
    tp = summary.get("throughput", {})
    if tp:
        loads = [t["load_average"] for t in tp.values() if "load_average" in t]
        at = f", load average {max(loads):.1f} from other jobs" if loads else ""
        lines += ["", f"Prediction throughput, 1 torch thread (random 2-4 element formulas{at}):", "",
                  "| model | formulas | end to end (parse + network), formulas/s | network only, formulas/s |",
                  "|---|---|---|---|"]  # fmt: skip
        for arch, t in tp.items():
            lines.append(f"| {arch} | {t['n']:,} | {t['end_to_end_per_s']:,.0f} | {t['network_per_s']:,.0f} |")
    lines += ["", "Plots: `benchmarks/composition_out/` (`*_parity.png`, `error_cdf.png`); per-fold numbers in "
              "`benchmarks/composition_out/summary.json`. Training time is wall time per fold on a shared "
              "machine: the folds of this run trained 2–4 at a time beside other jobs (load average 5–10), so it varies with load.", ""]  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DATA)
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    p.add_argument("--throughput-n", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work-dir", default=os.path.join(HERE, "composition_out"))
    p.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    p.add_argument("--only-folds", type=int, nargs="+", default=None,
                   help="train only these folds of the network CVs (others from the cache)")
    p.add_argument("--partial", action="store_true",
                   help="report the network CVs over the folds already cached (no training)")
    p.add_argument("--fresh", action="store_true", help="ignore cached per-fold results")
    p.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.work_dir, exist_ok=True)

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    data = load_dataset(args.data)
    props = element_property_table(data.elements)
    summary_path = os.path.join(args.work_dir, "summary.json")
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) and not args.fresh else {"cv": {}}
    summary.update({"data": os.path.basename(args.data), "n": len(data.y), "n_outliers": int((np.abs(data.y) > 5).sum()), "folds": args.folds, "date": time.strftime("%Y-%m-%d"),
                    "machine": machine_info(),
                    "command": "PYTHONPATH=python nice python benchmarks/composition.py"})  # fmt: skip
    preds = {}
    for arch in ("seed", "default"):
        if arch in args.phases:
            only = [] if args.partial else args.only_folds
            pred, folds = run_network_cv(arch, data, props, args.folds, args.seed, args.work_dir, args.fresh, log,
                                         only)  # fmt: skip
            if pred is None:
                log(f"{arch}: {len(folds)} of {args.folds} folds done; no summary yet")
                continue
            done = np.isfinite(pred)
            if not done.all():
                log(f"{arch}: partial CV, {len(folds)} of {args.folds} folds")
            preds[arch] = pred
            summary["cv"][arch] = {"overall": metrics(data.y[done], pred[done]), "folds": folds, "n_folds": args.folds}
            parity_plot(data.y[done], pred[done], os.path.join(args.work_dir, f"{arch}_parity.png"), f"{arch} ({args.folds}-fold CV)")
    if "baseline" in args.phases:
        only = [] if args.partial else args.only_folds
        pred, folds = run_baseline_cv(data, props, args.folds, args.seed, args.work_dir, args.fresh, log, only)
        if pred is None:
            log(f"baseline: {len(folds)} of {args.folds} folds done; no summary yet")
        else:
            done = np.isfinite(pred)
            preds["baseline"] = pred
            summary["cv"]["baseline"] = {"overall": metrics(data.y[done], pred[done]), "folds": folds, "n_folds": args.folds}
            parity_plot(data.y[done], pred[done], os.path.join(args.work_dir, "baseline_parity.png"), "HistGradientBoosting")
    if preds:
        error_cdf_plot({k: (v - data.y)[np.isfinite(v)] for k, v in preds.items()}, os.path.join(args.work_dir, "error_cdf.png"),
                       f"OQMD 51k, {args.folds}-fold CV")  # fmt: skip
    if "throughput" in args.phases:
        summary["throughput"] = run_throughput(args.work_dir, data, args.throughput_n, log)
    if os.path.exists(summary_path) and not args.fresh:  # merge with results of concurrent partial runs
        latest = json.load(open(summary_path))
        summary["cv"] = {**latest.get("cv", {}), **summary["cv"]}
        if "throughput" not in summary and "throughput" in latest:
            summary["throughput"] = latest["throughput"]
    tmp = summary_path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(summary, fh, indent=2)
    os.replace(tmp, summary_path)
    section = render_section(summary)
    print(section)
    if not args.no_write:
        write_section(SECTION[3:], section.split("\n", 1)[1], Path(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
