"""Potential benchmark: accuracy on held-out TiO2 structures, training time, and training throughput
(energy + force loss) of the compiled op next to the pure-torch twin, measured in the same run.

    python benchmarks/training.py                       # train with the CLI defaults (long), then measure
    python benchmarks/training.py --model tio2.pt       # report finished `xtalnn train` runs (repeatable)
    python benchmarks/training.py --throughput-only     # only the op vs twin throughput
    python benchmarks/training.py --curve 5 10 15 20    # time to target: the defaults' test errors after
                                                        # 5, 10, … minutes of training (a subsection)
    python benchmarks/training.py --peers tio2.pt       # CHGNet and SevenNet-0 zero-shot beside the model
                                                        # on its test split (a subsection of the section)

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


PEERS_HEADING = "### Universal potentials beside xtalnn (zero-shot)"
CURVE_HEADING = "### Time to target with the defaults"


def curve(data: Path, out_dir: Path, minutes, threads: int = 1) -> dict:
    """Test-split errors of the CLI defaults after each of ``minutes`` (cumulative minutes of training):
    one run, stopped at each budget and resumed (``--resume --max-time``) to the next; the best model so
    far is exported and tested at each stop. Wall minutes include reading and featurising the data at
    each start (not part of the training minutes)."""
    import os

    from xtalnn.potential.train import TrainConfig, train

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / "curve.pt"
    rows, t0, load = [], time.perf_counter(), list(os.getloadavg())
    for k, budget in enumerate(minutes):
        if k == 0:
            result = train(TrainConfig(elements=["Ti", "O"], threads=threads, max_time=budget), [data], output,
                           progress=False)
        else:
            result = train(TrainConfig(), [data], output, resume=True, progress=False, max_time=budget)
        test = result.test_metrics
        rows.append({"budget_min": budget, "train_min": result.history[-1]["time_s"] / 60,
                     "wall_min": (time.perf_counter() - t0) / 60, "epochs": len(result.history),
                     "best_epoch": result.metadata["metrics"]["best_epoch"], **test})
        print(rows[-1], flush=True)
        if result.stopped_early:
            break
    return {"rows": rows, "threads": threads, "load_before": load, "load_after": list(os.getloadavg()),
            "machine_line": machine("torch", "ase")}


def curve_report(c: dict) -> list:
    rows = [f"| {r['budget_min']:g} | {r['train_min']:.1f} | {r['wall_min']:.1f} | {r['epochs']} (best {r['best_epoch']}) | "
            f"{r['energy_rmse_meV_per_atom']:.2f} | {r['force_rmse_eV_per_A']:.3f} | "
            f"{'yes' if r['energy_rmse_meV_per_atom'] <= 4.0 and r['force_rmse_eV_per_A'] <= 0.15 else 'no'} |"
            for r in c["rows"]]
    met = [r for r in c["rows"] if r["energy_rmse_meV_per_atom"] <= 4.0 and r["force_rmse_eV_per_A"] <= 0.15]
    verdict = (f"first met at the {met[0]['budget_min']:g}-minute stop ({met[0]['wall_min']:.1f} min wall)" if met
               else "not met within these budgets")
    return [CURVE_HEADING, "",
            f"The CLI defaults (`xtalnn train … --max-time T`, then `--resume --max-time` the next T: one run), "
            f"{c['threads']} torch thread{'s' if c['threads'] > 1 else ''}, tested at each stop on the 80 test structures. Load average "
            f"{c['load_before'][0]:.0f} before, {c['load_after'][0]:.0f} after on the 2 cores ("
            + ("a quiet machine: nothing else ran" if c["load_before"][0] < 1 else "other jobs: the run gets a "
               "fraction of a core, so minutes here are upper bounds for a quiet machine")
            + "). Target ≤ 4 meV/atom "
            f"and ≤ 0.15 eV/Å: {verdict}.", "",
            "| budget (min of training) | training (min) | wall (min, incl. data preparation at each start) | "
            "epochs | energy RMSE (meV/atom) | force RMSE (eV/Å) | target met |",
            "|---|---|---|---|---|---|---|", *rows, "", c["machine_line"]]


def peers(model: Path, data: Path, n_fit: int = 80) -> dict:
    """Energy and force errors on the model's test split, and µs/atom per call (energy + forces, one
    torch thread), of the xtalnn model and of CHGNet and SevenNet-0 zero-shot. The universal models'
    energies get per-element offsets (least squares on ``n_fit`` structures of the training split:
    their energy zero differs from the DFT data's); xtalnn's need none."""
    import numpy as np

    from xtalnn.calculators import make_calculator
    from xtalnn.potential import data as D
    from xtalnn.potential.calculator import XtalnnCalculator
    from xtalnn.potential.modelfile import read_metadata
    from xtalnn.potential.train import TrainConfig

    torch.set_num_threads(1)
    meta = read_metadata(model)
    cfg = meta["config"]
    config = TrainConfig(elements=meta["elements"], split=cfg["split"], seed=cfg["seed"],
                         split_seed=cfg.get("split_seed"))
    structures = D.read_training_structures([data], config.elements)
    uids = [a.info.get("uid") for a in structures]
    groups = uids if all(u is not None for u in uids) else None
    split_seed = config.seed if config.split_seed is None else config.split_seed
    train_idx, _, test_idx = D.split_indices(len(structures), config.split, split_seed, groups)
    fit = [structures[i] for i in np.random.default_rng(0).choice(train_idx, min(n_fit, len(train_idx)), replace=False)]
    test = [structures[i] for i in test_idx]
    ref_e = np.array([D.reference_energy(a) for a in test])
    ref_f = np.concatenate([D.reference_forces(a) for a in test])
    counts = D.composition_matrix(test, config.elements)
    n_atoms = counts.sum(1)
    out = {"n_test": len(test), "n_fit": len(fit), "model": str(model), "model_note": model_note(meta),
           "load_before": list(__import__("os").getloadavg())}
    for name, make in [("xtalnn", lambda: XtalnnCalculator(model, warn=False)),
                       ("CHGNet 0.3.0", lambda: make_calculator("chgnet")),
                       ("SevenNet-0", lambda: make_calculator("sevennet"))]:
        calc = make()

        def run(frames):
            energies, forces = [], []
            for a in frames:
                a = a.copy()
                a.calc = calc
                energies.append(float(a.get_potential_energy()))
                forces.append(np.asarray(a.get_forces(), dtype=float))
            return np.array(energies), forces

        run(test[:1])  # warm-up
        t0 = time.perf_counter()
        energy, forces = run(test)
        seconds = time.perf_counter() - t0
        offsets = np.zeros(len(config.elements))
        if name != "xtalnn":
            fit_e, _ = run(fit)
            residual = np.array([D.reference_energy(a) for a in fit]) - fit_e
            offsets, *_ = np.linalg.lstsq(D.composition_matrix(fit, config.elements), residual, rcond=None)
        de = (energy + counts @ offsets - ref_e) / n_atoms
        df = np.concatenate(forces) - ref_f
        out[name] = {"energy_rmse_meV_per_atom": float(np.sqrt(np.mean(de**2)) * 1000),
                     "energy_mae_meV_per_atom": float(np.mean(np.abs(de)) * 1000),
                     "force_rmse_eV_per_A": float(np.sqrt(np.mean(df**2))),
                     "force_mae_eV_per_A": float(np.mean(np.abs(df))),
                     "us_per_atom_per_call": seconds / n_atoms.sum() * 1e6}
        print(name, out[name], flush=True)
    return out


def model_note(meta: dict) -> str:
    """How the xtalnn model of the peers table was trained (from its metadata)."""
    m, cfg = meta["metrics"], meta["config"]
    budget = f", time budget {cfg['max_time']:g} min" if cfg.get("max_time") else ""
    return (f"{m['epochs_run']} epochs in {m['train_time_s'] / 60:.1f} min of one thread{budget} (best epoch "
            f"{m['best_epoch']})")


def peers_report(p: dict) -> list:
    rows = [f"| {name} | {v['energy_rmse_meV_per_atom']:.1f} | {v['energy_mae_meV_per_atom']:.1f} | "
            f"{v['force_rmse_eV_per_A']:.3f} | {v['force_mae_eV_per_A']:.3f} | {v['us_per_atom_per_call']:,.0f} |"
            for name, v in p.items() if isinstance(v, dict)]
    x = p["xtalnn"]
    ratios = ", ".join(f"{name} {v['energy_rmse_meV_per_atom'] / x['energy_rmse_meV_per_atom']:.1f}× the energy error, "
                       f"{v['force_rmse_eV_per_A'] / x['force_rmse_eV_per_A']:.1f}× the force error and "
                       f"{v['us_per_atom_per_call'] / x['us_per_atom_per_call']:,.0f}× the time"
                       for name, v in p.items() if isinstance(v, dict) and name != "xtalnn")
    return [PEERS_HEADING, "",
            f"The same {p['n_test']} test structures, one process, one torch thread, energy + forces per call "
            f"(ASE calculators; load average {p['load_before'][0]:.0f} on the 2 cores). xtalnn: `{Path(p['model']).name}`, "
            f"the CLI defaults on this split, {p['model_note']}: on this loaded machine that is short of the 64-min "
            "run in the table above, which reached 3.18 meV/atom and 0.143 eV/Å on the same split. Its per-call time "
            "is the ASE calculator's on these small cells (Python and neighbour-list overhead; in LAMMPS a step "
            "costs ~17 µs/atom, section LAMMPS). CHGNet 0.3.0 (chgnet "
            "0.4.2) and SevenNet-0 as shipped in their wheels, zero-shot, with per-element energy offsets fitted "
            f"by least squares on {p['n_fit']} structures of the training split (their energy zero is not the "
            "data's; all TiO2 here, so the offsets are one shift per atom).", "",
            "| model | energy RMSE (meV/atom) | energy MAE (meV/atom) | force RMSE (eV/Å) | force MAE (eV/Å) | "
            "µs/atom per call |", "|---|---|---|---|---|---|", *rows, "",
            f"Against xtalnn: {ratios}.", "", p["machine_line"]]


def subsections(results: Path) -> dict:
    """``{heading: text}`` of the ``###`` subsections this script adds to the Potential section
    (:data:`CURVE_HEADING`, :data:`PEERS_HEADING`), as they are in ``results``."""
    import re

    text = results.read_text() if results.exists() else ""
    match = re.search(r"^## Potential\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    body = match.group(1) if match else ""
    found = {}
    for heading in (CURVE_HEADING, PEERS_HEADING):
        if heading in body:
            rest = body.split(heading, 1)[1]
            found[heading] = heading + re.split(r"^### ", rest, maxsplit=1, flags=re.M)[0].rstrip()
    return found


def kept_peers(results: Path) -> str:
    """The subsections now in the Potential section (``--curve``, ``--peers`` write them; a rewrite of the
    section keeps them), with leading blank lines, or ''."""
    return "".join("\n\n" + text for text in subsections(results).values())


def write_subsection(heading: str, lines: list, results: Path) -> None:
    """Replace (or add) one of this script's subsections at the end of the Potential section, keeping the
    rest of the section and the other subsection."""
    import re

    text = results.read_text() if results.exists() else ""
    match = re.search(r"^## Potential\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    body = match.group(1) if match else ""
    kept = subsections(results)
    for h in kept:
        body = body.split(h)[0]
    kept[heading] = "\n".join(lines)
    ordered = [kept[h] for h in (CURVE_HEADING, PEERS_HEADING) if h in kept]
    write_section("Potential", body.rstrip() + "".join("\n\n" + t for t in ordered), results)


def write_peers(p: dict, results: Path) -> None:
    write_subsection(PEERS_HEADING, peers_report(p), results)


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
    parser.add_argument("--peers", type=Path, metavar="MODEL",
                        help="only CHGNet and SevenNet-0 zero-shot beside this model on its test split "
                             "(a subsection of the Potential section)")
    parser.add_argument("--peer-fit", type=int, default=80, help="training structures for the peers' energy offsets")
    parser.add_argument("--curve", type=float, nargs="+", metavar="MIN",
                        help="only the time-to-target curve: test errors of the defaults after these minutes")
    args = parser.parse_args(argv)
    if args.curve:
        c = curve(args.data, HERE / "training_out" / "curve", args.curve, threads=args.threads)
        (HERE / "training_out" / "curve.json").write_text(json.dumps(c, indent=1))
        print("\n".join(curve_report(c)))
        if not args.no_write:
            write_subsection(CURVE_HEADING, curve_report(c), HERE / "RESULTS.md")
        return 0
    if args.peers:
        p = {**peers(args.peers, args.data, args.peer_fit), "machine_line": machine("torch", "ase", "chgnet", "sevenn")}
        (HERE / "training_out").mkdir(exist_ok=True)
        (HERE / "training_out" / "peers.json").write_text(json.dumps(p, indent=1))
        print("\n".join(peers_report(p)))
        if not args.no_write:
            write_peers(p, HERE / "RESULTS.md")
        return 0

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
        write_section("Potential", body + kept_peers(HERE / "RESULTS.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
