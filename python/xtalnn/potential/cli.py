"""``xtalnn train / eval / predict / export``: a thin layer over :mod:`xtalnn.potential`."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    from xtalnn.potential.config import ACTIVATIONS, OPTIMIZERS, SCHEDULES, TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a potential on energies (and forces) of structures",
                       description="Train per-element networks; writes MODEL.pt, MODEL.ckpt, MODEL.history.csv, "
                                   "MODEL.learning_curve.png, MODEL.parity.png. Defaults reach the TiO2 target "
                                   "recorded in benchmarks/RESULTS.md.")
    p.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="XSF file/folder/tar.gz, ASE db or any ASE-readable file (repeatable)")
    p.add_argument("--elements", nargs="+", help="element symbols in model order (required unless in --config)")
    p.add_argument("-o", "--output", default="model.pt", help="model file (default: model.pt)")
    p.add_argument("--config", help="JSON or TOML file of training settings (keys as TrainConfig fields)")
    p.add_argument("--preset", choices=("default", "seed"),
                   help="seed: the seed paper's ACSF 2×10 tanh Adam 1e-4 batch 1 (with --descriptor chebyshev: "
                        "Adamax 1e-3 batch 8)")
    p.add_argument("--resume", action="store_true", help="continue from MODEL.ckpt (a committee: from each member's MODEL.member<m>.ckpt)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing MODEL.pt and its side files (MODEL.ckpt, history, plots) with a new run")
    p.add_argument("--init-from", metavar="MODEL", help="start from this model file's (or checkpoint's) weights, "
                                                         "scaling and reference energies (warm start)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("descriptor")
    g.add_argument("--descriptor", choices=("acsf", "chebyshev"), help=f"default {d.descriptor}")
    g.add_argument("--cutoff", type=float, help=f"ACSF cutoff / Chebyshev radial cutoff, Å (default {d.cutoff})")
    g.add_argument("--angular-cutoff", type=float, help="Chebyshev angular cutoff, Å (default: --cutoff)")
    g.add_argument("--radial-order", type=int, help=f"Chebyshev (default {d.radial_order})")
    g.add_argument("--angular-order", type=int, help=f"Chebyshev (default {d.angular_order})")
    g.add_argument("--acsf-radial", type=int, help=f"ACSF radial functions per element (default {d.acsf_radial})")
    g.add_argument("--acsf-angular-eta", type=int, help=f"ACSF angular widths (default {d.acsf_angular_eta})")
    g.add_argument("--acsf-angular", choices=("g4", "g5", "both"), help=f"default {d.acsf_angular}")
    g.add_argument("--descriptor-file", nargs="+", metavar="FILE",
                   help="take the descriptor's parameters from an n2p2 input.nn (symfunction_short lines) or from "
                        "aenet .stp setups (one per element; Behler2011 functions or BASIS type=Chebyshev)")
    g.add_argument("--descriptor-file-unit", type=float, metavar="ANGSTROM",
                   help="the n2p2 file's length unit in Å (default 1; Bohr: 0.529177210903)")
    g = p.add_argument_group("network and optimisation")
    g.add_argument("--hidden", type=int, nargs="+", help=f"hidden layer sizes (default {' '.join(map(str, d.hidden))})")
    g.add_argument("--activation", choices=ACTIVATIONS,
                   help=f"default {d.activation}")
    g.add_argument("--optimizer", type=str.lower, choices=sorted(OPTIMIZERS),
                   help=f"default {d.optimizer}")
    g.add_argument("--lr", type=float, help=f"learning rate (default {d.lr})")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--batch-size", help=f"structures per step: 1, 8, 16, 32, … or full (default {d.batch_size})")
    g.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    g.add_argument("--schedule", choices=SCHEDULES, help=f"learning-rate schedule (default {d.schedule})")
    g.add_argument("--lr-factor", type=float, help=f"schedule factor (default {d.lr_factor})")
    g.add_argument("--lr-patience", type=int, help=f"plateau patience / step size, epochs (default {d.lr_patience})")
    g.add_argument("--min-lr", type=float, help=f"default {d.min_lr}")
    g.add_argument("--patience", type=int, help=f"early stopping patience, epochs (default {d.patience}; 0 = off)")
    g.add_argument("--force-weight", type=float, help=f"w_F in E_RMSE/atom + w_F·F_RMSE (default {d.force_weight}; "
                                                      "0 = energies only)")
    g.add_argument("--stress-weight", type=float,
                   help=f"w_S: the virial per atom (σV/n, eV/atom) in the loss where the data have stresses "
                        f"(default {d.stress_weight}; 0 = off)")
    g.add_argument("--force-fraction", type=float,
                   help=f"share of training structures whose forces enter the loss (default {d.force_fraction})")
    g.add_argument("--cache-derivatives", action=argparse.BooleanOptionalAction,
                   help="keep ∂G/∂x of small-cell force structures in memory (n² ≤ edges; faster, same loss; "
                        f"default {d.cache_derivatives})")
    g.add_argument("--lbfgs-iterations", type=int, help=f"L-BFGS iterations per epoch (default {d.lbfgs_iterations})")
    g.add_argument("--split", type=float, nargs=3, metavar=("TRAIN", "VAL", "TEST"),
                   help=f"fractions (default {' '.join(map(str, d.split))})")
    g.add_argument("--seed", type=int, help=f"split, initial weights and shuffling (default {d.seed})")
    g.add_argument("--committee", type=int, metavar="N",
                   help=f"train N networks over one descriptor pass into one model file (member m: seed + m; "
                        f"the calculator and pair_style xtalnn report their spread; default {d.committee})")
    g.add_argument("--committee-bootstrap", action=argparse.BooleanOptionalAction,
                   help="each committee member trains on a bootstrap resample of the training split")
    g.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    g.add_argument("--limit", type=int, help="read at most this many structures per --data path")
    g.add_argument("--max-time", type=float, help="stop after this many minutes of training in all, keeping the best "
                   f"model (default: {d.max_time:g}; with --resume: a new limit)")
    p.set_defaults(func=run_train)

    p = sub.add_parser("eval", help="energy/force errors of a model on structures (one JSON object)")
    p.add_argument("model")
    p.add_argument("--data", action="append", required=True, metavar="PATH")
    p.add_argument("--limit", type=int)
    p.add_argument("--parity", metavar="PNG", help="write a parity plot")
    p.add_argument("--per-structure", metavar="CSV",
                   help="write each structure's errors, worst first: file, atoms, energy error (meV/atom), "
                        "force RMSE (eV/Å), extrapolating atoms")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --parity / --per-structure file")
    p.add_argument("--batch-size", type=int, default=16)
    p.set_defaults(func=run_eval)

    p = sub.add_parser("predict", help="energies and forces of structures with a model")
    p.add_argument("model")
    p.add_argument("files", nargs="+", metavar="FILE", help="structure files (any source read by --data)")
    p.add_argument("-o", "--output", default="predictions.extxyz",
                   help="extxyz with energy, forces, stress, per-atom energies (default predictions.extxyz); "
                        "a structure that cannot be predicted is written with its reason in info['error']")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--strict", action="store_true", help="exit 1 if any structure could not be predicted")
    p.set_defaults(func=run_predict)

    p = sub.add_parser("export", help="write the model file from a training checkpoint (best state)")
    p.add_argument("checkpoint", nargs="+", help="MODEL.ckpt written by `xtalnn train`; several (e.g. a committee's "
                                                   "MODEL.member0.ckpt MODEL.member1.ckpt …): one committee model file")
    p.add_argument("-o", "--output", required=True, help="model file to write (.pt)")
    p.add_argument("--last", action="store_true", help="export the last state instead of the best")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.set_defaults(func=run_export)


_TRAIN_KEYS = ("force_fraction", "cache_derivatives", "lbfgs_iterations", "descriptor", "cutoff", "angular_cutoff", "radial_order", "angular_order", "acsf_radial",
               "acsf_angular_eta", "acsf_angular", "hidden", "activation", "optimizer", "lr", "weight_decay",
               "batch_size", "epochs", "schedule", "lr_factor", "lr_patience", "min_lr", "patience",
               "force_weight", "split", "seed", "threads", "limit", "max_time", "committee", "stress_weight", "descriptor_file", "descriptor_file_unit",
               "committee_bootstrap")


def read_config_file(path: str) -> dict:
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    text = p.read_text()
    try:
        if p.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except Exception as err:
        raise ValueError(f"{path}: not a valid {'TOML' if p.suffix == '.toml' else 'JSON'} config ({err})") from err


def config_from_args(args):
    """TrainConfig from (lowest to highest priority) defaults, --preset, --config, explicit options."""
    from xtalnn.potential.config import TrainConfig, preset

    from xtalnn.io.settings import check_types

    values: dict = {}
    file_values = read_config_file(args.config) if args.config else {}
    if not isinstance(file_values, dict):
        raise ValueError(f"{args.config}: a training config is a table of TrainConfig keys")
    check_types(TrainConfig, file_values, f"{args.config}: ")
    descriptor = args.descriptor or file_values.get("descriptor", "acsf")
    if args.preset:
        values.update(preset(args.preset, descriptor))
    values.update(file_values)
    for key in _TRAIN_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    if args.elements:
        values["elements"] = args.elements
    config = TrainConfig.from_dict(values)
    config.validate()
    return config


def run_train(args) -> int:
    from xtalnn.io.outputs import check_output_file, check_output_files
    from xtalnn.potential.checkpoint import output_paths
    from xtalnn.potential.train import TrainConfig, train

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    inputs = [*args.data, args.init_from, args.config]
    paths = output_paths(args.output)
    if args.resume:  # the run's own files are replaced as it goes on
        check_output_file(paths["model"], inputs, overwrite=True)
    else:
        check_output_files(paths.values(), inputs, args.overwrite, flag="--overwrite (or --resume to continue)")
    config = TrainConfig() if args.resume else config_from_args(args)
    result = train(config, args.data, args.output, resume=args.resume, progress=not args.quiet,
                   epochs=args.epochs if args.resume else None, log=log,
                   max_time=args.max_time if args.resume else None, init_from=args.init_from)
    summary = {"model": str(result.paths["model"]), "epochs_run": len(result.history),
               "interrupted": result.interrupted, "stopped_early": result.stopped_early, "test": result.test_metrics}
    print(json.dumps(summary))
    return 130 if result.interrupted else 0


def _graphs(meta, paths, limit=None, require_energy=True):
    import numpy as np

    from xtalnn.potential import data as D

    structures = D.read_training_structures(paths, meta["elements"], limit, require_energy=require_energy)
    ref = np.array([meta["reference_energies"][e] for e in meta["elements"]])
    return [D.build_graph(a, meta["elements"], meta["cutoff"], ref, name=D.source_of(a, f"#{k}"))
            for k, a in enumerate(structures)]


def run_eval(args) -> int:
    from xtalnn.io.outputs import check_output_file
    from xtalnn.potential.evaluate import evaluate
    from xtalnn.potential.modelfile import load_model

    for output in (args.parity, args.per_structure):
        if output:
            check_output_file(output, [args.model, *args.data], args.overwrite)
    model, meta = load_model(args.model)
    graphs = _graphs(meta, args.data, args.limit)
    ev = evaluate(model, graphs, batch_size=args.batch_size, stress=True,
                  extrapolation_tolerance=1e-6 if args.per_structure else None)
    metrics = ev.metrics()
    if args.per_structure:
        from xtalnn.potential.evaluate import per_structure_errors, write_per_structure_csv

        write_per_structure_csv(per_structure_errors(ev), args.per_structure)
        print(f"per-structure errors of {len(graphs)} structures (worst first) → {args.per_structure}",
              file=sys.stderr)
    if args.parity:
        from xtalnn.potential.plots import parity

        parity(*ev.relative_energies(), ev.forces_ref, ev.forces_pred, args.parity,
               title=f"{args.model} on {len(graphs)} structures")
    # structures without forces: force errors are null (JSON has no NaN)
    print(json.dumps({k: (None if isinstance(v, float) and v != v else v) for k, v in metrics.items()}))
    return 0


def _predicted(calc, atoms, where: str):
    """A copy of ``atoms`` with the model's energy, forces, stress (periodic cells) and per-atom energies
    (``arrays['energies']``, eV) and its count of extrapolating atoms; ValueError if it cannot be
    predicted (elements outside the model, overlapping atoms, a non-finite result)."""
    import warnings

    import numpy as np
    from ase.calculators.singlepoint import SinglePointCalculator

    from xtalnn.neighbors import check_atoms, check_no_overlap

    check_atoms(atoms)
    check_no_overlap(atoms)
    atoms = atoms.copy()
    props = ["energy", "forces", "energies"] + (["stress"] if atoms.pbc.all() else [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calc.calculate(atoms, props)
    for w in caught:
        print(f"{where}: {w.message}", file=sys.stderr)
    results = dict(calc.results)
    bad = [k for k in ("energy", "forces", "stress") if k in results and not np.all(np.isfinite(results[k]))]
    if bad:
        raise ValueError(f"the model's {' and '.join(bad)} are not finite")
    atoms.arrays["energies"] = results["energies"]
    atoms.info["n_extrapolating"] = results["n_extrapolating"]
    for key in ("energy_std", "max_force_deviation"):  # committee model files: the members' spread
        if key in results:
            atoms.info[key] = results[key]
    if "force_deviation" in results:
        atoms.arrays["force_deviation"] = results["force_deviation"]
    atoms.calc = SinglePointCalculator(atoms, **{k: results[k] for k in ("energy", "free_energy", "forces",
                                                                           "stress") if k in results})
    return atoms


def _unpredicted(atoms, reason: str):
    """A copy of ``atoms`` without any energy, marked with ``info['error'] = reason``."""
    atoms = atoms.copy()
    for key in ("energy", "free_energy", "n_extrapolating"):
        atoms.info.pop(key, None)
    atoms.info["error"] = reason
    return atoms


def run_predict(args) -> int:
    from ase.io import write

    from xtalnn.io.atomic import atomic_write
    from xtalnn.io.outputs import check_output_file, report_skipped
    from xtalnn.io.structures import read_structures
    from xtalnn.potential.calculator import XtalnnCalculator

    check_output_file(args.output, [args.model, *args.files], args.overwrite)
    calc = XtalnnCalculator(args.model)
    inputs = [(path, k, atoms) for path in args.files for k, atoms in enumerate(read_structures(path))]
    out, skipped = [], []
    for path, k, atoms in inputs:
        name = f"{path}[{k}]"
        try:
            atoms = _predicted(calc, atoms, name)
        except (ValueError, RuntimeError) as err:  # this structure only: the others are still predicted
            reason = str(err).splitlines()[0]
            skipped.append(f"{name}: {reason}")
            out.append(_unpredicted(atoms, reason))
            continue
        e = atoms.get_potential_energy()
        print(f"{name}\t{len(atoms)} atoms\tE = {e:.6f} eV\t{e / len(atoms):.6f} eV/atom\t"
              f"extrapolating atoms {atoms.info['n_extrapolating']}")
        out.append(atoms)
    atomic_write(args.output, lambda tmp: write(tmp, out, format="extxyz"), suffix=".extxyz")
    print(f"{len(out) - len(skipped)} structures predicted → {args.output}", file=sys.stderr)
    report_skipped(skipped, len(out), "structures", "info['error']")
    return 1 if skipped and args.strict else 0


def run_export(args) -> int:
    from xtalnn.io.outputs import check_output_file
    from xtalnn.potential.checkpoint import load_checkpoint
    from xtalnn.potential.model import Potential
    from xtalnn.potential.modelfile import save_model

    check_output_file(args.output, args.checkpoint, args.overwrite)
    members = []
    for path in args.checkpoint:
        ckpt = load_checkpoint(path)
        member = Potential(**ckpt["model_args"])
        member.load_state_dict(ckpt["last_state" if args.last else "best_state"])
        members.append(member)
    model = members[0] if len(members) == 1 else Potential.committee(members)  # ckpt: the last one's
    h = ckpt.get("history", [])
    save_model(model, args.output, descriptor=ckpt["descriptor"],
               training_data={"fingerprint": ckpt["fingerprint"], "n_train": len(ckpt["split"]["train"]),
                              "n_val": len(ckpt["split"]["val"]), "n_test": len(ckpt["split"]["test"]),
                              "sources": ckpt["sources"]},
               config=ckpt["config"],
               metrics={"best_epoch": ckpt["best_epoch"], "epochs_run": len(h), "best_val_loss": ckpt["best_loss"],
                        "train_time_s": h[-1]["time_s"] if h else 0.0, "exported_state": "last" if args.last else "best"},
               **({"committee": {"members": len(members), "checkpoints": list(args.checkpoint)}} if len(members) > 1
                  else {}))
    print(f"{' '.join(args.checkpoint)} ({'last' if args.last else 'best'} state, epoch "
          f"{ckpt['epoch'] if args.last else ckpt['best_epoch']}) → {args.output}"
          + (f" (a committee of {len(members)})" if len(members) > 1 else ""), file=sys.stderr)
    return 0
