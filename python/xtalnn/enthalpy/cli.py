"""``xtalnn composition train / predict / rank``: a thin layer over the composition library."""

from __future__ import annotations

import argparse
import csv
import sys

from . import ARCHITECTURES


def register(subparsers) -> None:
    """Add the ``composition`` command and its sub-commands to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "composition", help="formation enthalpy (eV/atom) from composition alone",
        description="Formation-enthalpy model on composition alone: train, predict, rank stoichiometries.",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="composition_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: _help(parser))

    p = sub.add_parser("train", help="train (and optionally cross-validate) a model on a CSV table")
    p.add_argument("--data", required=True, help="CSV or CSV.gz with formula and target (eV/atom) columns")
    p.add_argument("-o", "--output", required=True, help="model file to write (TorchScript .pt)")
    p.add_argument("--arch", choices=ARCHITECTURES, default="default", help="network (default: default)")
    p.add_argument("--folds", type=int, default=0,
                   help="k-fold cross-validation before the final fit (0: none; e.g. 10)")  # fmt: skip
    p.add_argument("--formula-column", default="formula")
    p.add_argument("--target-column", default="target")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (architecture default)")
    p.add_argument("--ensemble", type=int, default=None, help="ensemble members (architecture default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = sub.add_parser("predict", help="predict formation enthalpies (eV/atom) for formulas")
    p.add_argument("model", help="model file written by `xtalnn composition train`")
    p.add_argument("formulas", nargs="*", help="formulas, e.g. TiO2 CaTiO3 (or use --data)")
    p.add_argument("--data", help="CSV or CSV.gz with a formula column")
    p.add_argument("--formula-column", default="formula")
    p.add_argument("-o", "--output", help="CSV to write (default: stdout)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("rank", help="rank the stoichiometries of a chemical system")
    p.add_argument("model", help="model file written by `xtalnn composition train`")
    p.add_argument("--elements", nargs="+", required=True, help="element symbols, e.g. Ti O")
    p.add_argument("--max-atoms", type=int, default=24, help="largest formula unit (atoms)")
    p.add_argument("--sort", choices=("hull", "enthalpy"), default="hull",
                   help="order by distance to the hull of the predictions (default) or by enthalpy")  # fmt: skip
    p.add_argument("--top", type=int, default=None, help="list only the first N")
    p.add_argument("-o", "--output", help="CSV to write (default: stdout)")
    p.set_defaults(func=_rank)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _open_out(path: str | None):
    return open(path, "w", newline="") if path else _NoClose(sys.stdout)


class _NoClose:
    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        return self.stream

    def __exit__(self, *exc):
        self.stream.flush()


def _train(args: argparse.Namespace) -> int:
    from .workflow import train_and_save

    summary = train_and_save(
        args.data, args.output, arch=args.arch, folds=args.folds, seed=args.seed,
        formula_column=args.formula_column, target_column=args.target_column,
        progress=not args.quiet, threads=args.threads, max_epochs=args.epochs, ensemble=args.ensemble,
    )  # fmt: skip
    if "cv" in summary:
        o = summary["cv"]["overall"]
        print(f"{args.folds}-fold CV ({args.arch}): MAE {o['mae']:.4f}  RMSE {o['rmse']:.4f}  "
              f"|err| 80% {o['q80']:.4f}  90% {o['q90']:.4f} eV/atom  "
              f"(report: {summary['cv_files']['json']})")  # fmt: skip
    print(f"wrote {args.output} ({summary['train_seconds']:.0f} s training)")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .data import read_table
    from .modelfile import CompositionModel

    if bool(args.data) == bool(args.formulas):
        raise ValueError("give either formulas as arguments or --data CSV (not both)")
    formulas = args.formulas or read_table(args.data, args.formula_column, None, require_target=False).formulas
    model = CompositionModel.load(args.model)
    mean, std = model.predict_with_uncertainty(formulas)
    with _open_out(args.output) as out:
        writer = csv.writer(out)
        writer.writerow(["formula", "prediction"] + (["uncertainty"] if std is not None else []))
        for i, formula in enumerate(formulas):
            writer.writerow([formula, f"{mean[i]:.6f}"] + ([f"{std[i]:.6f}"] if std is not None else []))
    return 0


def _rank(args: argparse.Namespace) -> int:
    from .modelfile import CompositionModel
    from .rank import rank_compositions

    model = CompositionModel.load(args.model)
    rows = rank_compositions(model, args.elements, args.max_atoms, args.sort)
    if args.top is not None:
        rows = rows[: args.top]
    with _open_out(args.output) as out:
        writer = csv.writer(out)
        writer.writerow(["rank", "formula", "atoms", "enthalpy_eV_per_atom", "uncertainty", "e_above_hull_eV_per_atom"])
        for i, c in enumerate(rows, start=1):
            writer.writerow([i, c.formula, c.atoms, _num(c.enthalpy), _num(c.uncertainty), _num(c.e_above_hull)])
    return 0


def _num(value: float) -> str:
    """Six decimals, or an empty cell for NaN (no uncertainty / no hull)."""
    return "" if value != value else f"{value:.6f}"
