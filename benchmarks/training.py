"""Potential benchmark: accuracy on held-out TiO2 structures, training time, and training throughput
(energy + force loss) of the compiled op next to the pure-torch twin, measured in the same run.

    python benchmarks/training.py                       # train with the CLI defaults (long), then measure
    python benchmarks/training.py --model tio2.pt       # report finished `xtalnn train` runs (repeatable)
    python benchmarks/training.py --throughput-only     # only the op vs twin throughput

Writes the ``## Potential`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))

from report import machine, write_section  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data" / "tio2_aenet_800.tar.gz"


def throughput(data: Path, threads: int, steps: int, twin_steps: int = 3, batch_size: int = 8, seed: int = 0) -> dict:
    """Structures/s of Adam steps on energy + force loss (every structure with forces): the compiled
    op (double backward), the op's cached derivatives, and the pure-torch twin, on the same batches."""
    from xtalnn.potential.loss import cache_jacobians, graphs_loss
    from xtalnn.potential.train import TrainConfig, build_model, prepare

    torch.set_num_threads(threads)
    config = TrainConfig(elements=["Ti", "O"], seed=seed)
    prepared = prepare(config, [data])
    model = build_model(prepared)
    train_graphs = [prepared.graphs[i] for i in prepared.split["train"]]
    used = [train_graphs[(step * batch_size) % len(train_graphs):][:batch_size] for step in range(steps)]
    for part in used:
        for g in part:
            g.use_forces, g.G, g.J = True, None, None
    twin = prepared.descriptor
    out = {}

    def run(name, fn=None, n_steps=steps):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        n_structures = 0
        t0 = time.perf_counter()
        for part in used[:n_steps]:
            optimizer.zero_grad()
            loss = graphs_loss(model, part, 0.1, descriptor_fn=fn)[0]
            loss.backward()
            optimizer.step()
            n_structures += len(part)
        elapsed = time.perf_counter() - t0
        out[name] = {"structures_per_s": n_structures / elapsed, "steps": n_steps, "seconds": elapsed}

    run("compiled op (double backward)")
    run("pure-torch twin (autograd)", lambda s, e, v, n: twin(s, e, v, n, backend="torch"), min(twin_steps, steps))
    t0 = time.perf_counter()
    unique = list({id(g): g for part in used for g in part}.values())
    cache_jacobians(model, unique)
    prep = time.perf_counter() - t0
    run("compiled op, cached derivatives")
    out["compiled op, cached derivatives"]["cache_seconds"] = prep
    out["compiled op, cached derivatives"]["cached_structures"] = len(unique)
    return out


def train_default(data: Path, run_dir: Path, threads: int) -> Path:
    from xtalnn.potential.train import TrainConfig, train

    run_dir.mkdir(parents=True, exist_ok=True)
    output = run_dir / "tio2.pt"
    train(TrainConfig(elements=["Ti", "O"], threads=threads), [data], output, log=print)
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", type=Path, action="append",
                        help="report a finished `xtalnn train` run (its model file) instead of training (repeatable)")
    parser.add_argument("--describe", action="append", default=[],
                        help="text for the table row of the --model at the same position (default: its settings)")
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40, help="Adam steps (batches of 8) for the op paths")
    parser.add_argument("--twin-steps", type=int, default=3, help="the first this many of those batches for the twin")
    parser.add_argument("--throughput-json", type=Path, default=HERE / "training_out" / "throughput.json",
                        help="where the throughput measurement is saved")
    parser.add_argument("--reuse-throughput", action="store_true",
                        help="report the saved throughput measurement instead of measuring again")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--note", default="", help="text added to the section (e.g. machine load)")
    args = parser.parse_args(argv)

    from xtalnn.potential.modelfile import read_metadata
    from xtalnn.potential.train import TrainConfig

    lines = []
    if not args.throughput_only:
        models = args.model or [train_default(args.data, HERE / "training_out", args.threads)]
        defaults = TrainConfig(elements=["Ti", "O"])
        rows, first = [], None
        for position, model in enumerate(models):
            meta = read_metadata(model)
            test, m, cfg = meta["metrics"]["test"], meta["metrics"], meta["config"]
            first = first or meta
            changed = {k: v for k, v in cfg.items() if k not in ("elements", "threads", "max_time")
                       and getattr(defaults, k, None) != v}
            command = "defaults" + (f" with `{json.dumps(changed)}`" if changed else "")
            if meta["training_data"].get("init_from"):
                command += f", started from `{Path(meta['training_data']['init_from']).name}` (`--init-from`)"
            if cfg.get("max_time"):
                command += f", `--max-time {cfg['max_time']:g}`"
            if position < len(args.describe) and args.describe[position]:
                command = args.describe[position]
            stop = ("time limit" if cfg.get("max_time") and m["train_time_s"] >= 60 * cfg["max_time"]
                    else "early stopping" if m["epochs_run"] < cfg["epochs"] else "epoch limit")
            target = test["energy_rmse_meV_per_atom"] <= 4.0 and test["force_rmse_eV_per_A"] <= 0.15
            rows.append(f"| `{Path(model).name}`: {command} | {test['energy_rmse_meV_per_atom']:.2f} | "
                        f"{test['energy_mae_meV_per_atom']:.2f} | {test['force_rmse_eV_per_A']:.3f} | "
                        f"{test['force_mae_eV_per_A']:.3f} | {'yes' if target else 'no'} | "
                        f"{m['train_time_s'] / 60:.1f} min, {m['epochs_run']} epochs (best {m['best_epoch']}; {stop}) |")
        cfg = first["config"]
        lines += [
            f"Data: `{args.data.name}` (800 structures), split {cfg['split']} by seed {cfg['seed']}: "
            f"{first['training_data']['n_train']} train, {first['training_data']['n_val']} validation "
            f"(early stopping / best epoch), {first['training_data']['n_test']} test (never seen). "
            "Target: ≤ 4 meV/atom and ≤ 0.15 eV/Å on the test split.",
            "",
            "Command: `xtalnn train --data ../shared/data/tio2_aenet_800.tar.gz --elements Ti O -o tio2.pt` "
            "(+ the options in the first column).",
            "",
            f"Default settings: {first['descriptor']['n_features']} features, " + ", ".join(
                f"{k}={getattr(defaults, k)}" for k in (
                    "descriptor", "cutoff", "acsf_radial", "acsf_angular_eta", "acsf_angular", "hidden", "activation",
                    "optimizer", "lr", "batch_size", "lbfgs_iterations", "force_weight", "force_fraction",
                    "cache_derivatives", "epochs", "patience")) + ".",
            "",
            "| run (test split, 80 structures) | energy RMSE (meV/atom) | energy MAE (meV/atom) | force RMSE (eV/Å) "
            "| force MAE (eV/Å) | target met | training (wall, 1 thread, shared machine) |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    if args.reuse_throughput:
        saved = json.loads(args.throughput_json.read_text())
        tp, args.threads, args.steps, args.twin_steps = saved["results"], saved["threads"], saved["steps"], saved["twin_steps"]
    else:
        tp = throughput(args.data, args.threads, args.steps, args.twin_steps)
        args.throughput_json.parent.mkdir(parents=True, exist_ok=True)
        args.throughput_json.write_text(json.dumps({"results": tp, "threads": args.threads, "steps": args.steps,
                                                    "twin_steps": args.twin_steps, "machine": machine("torch")},
                                                   indent=2))
    lines += [
        "",
        f"Training throughput, energy + force loss on every structure (Adam, batch 8, {args.threads} threads, "
        f"same run, same batches: {args.steps} steps for the op paths, the first {min(args.twin_steps, args.steps)} for the twin):",
        "",
        "| descriptor path | structures/s | steps | seconds |",
        "|---|---|---|---|",
    ] + [f"| {name} | {v['structures_per_s']:.2f} | {v['steps']} | {v['seconds']:.1f} |" for name, v in tp.items()] + [
        "",
        f"The compiled op is {tp['compiled op (double backward)']['structures_per_s'] / tp['pure-torch twin (autograd)']['structures_per_s']:.1f}× "
        "the twin. Cached derivatives (`cache_derivatives`: the dense ∂G/∂x of each small cell, from one op backward "
        f"per feature; identical loss and gradients) cost {tp['compiled op, cached derivatives']['cache_seconds']:.1f} s once for "
        f"{tp['compiled op, cached derivatives']['cached_structures']} structures.",
    ]
    if args.note:
        lines += ["", args.note]
    lines += ["", machine("torch", "ase")]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("Potential", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
