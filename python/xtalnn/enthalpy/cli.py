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
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.set_defaults(func=_train)

    p = sub.add_parser("predict", help="predict formation enthalpies (eV/atom) for formulas")
    p.add_argument("model", help="model file written by `xtalnn composition train`")
    p.add_argument("formulas", nargs="*", help="formulas, e.g. TiO2 CaTiO3 (or use --data)")
    p.add_argument("--data", help="CSV or CSV.gz with a formula column")
    p.add_argument("--formula-column", default="formula")
    p.add_argument("-o", "--output", help="CSV to write (default: stdout); a row that cannot be predicted keeps "
                                          "an empty prediction and its reason in the error column")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--strict", action="store_true", help="exit 1 if any row could not be predicted")
    p.set_defaults(func=_predict)

    p = sub.add_parser("rank", help="rank the stoichiometries of a chemical system")
    p.add_argument("model", help="model file written by `xtalnn composition train`")
    p.add_argument("--elements", nargs="+", required=True, help="element symbols, e.g. Ti O")
    p.add_argument("--max-atoms", type=int, default=24, help="largest formula unit (atoms)")
    p.add_argument("--sort", choices=("hull", "enthalpy"), default="hull",
                   help="order by distance to the hull of the predictions (default) or by enthalpy")  # fmt: skip
    p.add_argument("--top", type=int, default=None, help="list only the first N")
    p.add_argument("-o", "--output", help="CSV to write (default: stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_rank)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _write_csv(path: str | None, header: list, rows) -> None:
    """CSV rows to ``path`` (atomically) or to stdout."""
    if not path:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.flush()
        return
    from xtalnn.io.atomic import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)

    atomic_write(path, write)


def _train(args: argparse.Namespace) -> int:
    from xtalnn.io.outputs import check_output_file

    from .workflow import train_and_save

    check_output_file(args.output, [args.data], args.overwrite)
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


def predict_rows(model, formulas: list[str]) -> tuple:
    """Per formula: the prediction and ensemble spread (eV/atom; NaN for a row that cannot be predicted)
    and the reason it cannot ("" when it can): unparseable, an element the model never saw, a
    non-finite result. Rows are numbered from 1 in the reasons. Returns ``(mean, std or None, reasons)``."""
    import numpy as np

    from .data import CompositionDataError

    errors = [""] * len(formulas)
    x = np.zeros((len(formulas), len(model.elements)), dtype=np.float32)
    for r, formula in enumerate(formulas):
        try:
            x[r] = model.fractions([formula], first_row=r + 1)[0]
        except CompositionDataError as err:
            errors[r] = str(err)
    good = np.array([not e for e in errors], dtype=bool)
    members = model.predict_fractions(x[good]).astype(np.float64)
    mean = np.full(len(formulas), np.nan)
    std = np.full(len(formulas), np.nan)
    mean[good] = members.mean(axis=1) if len(members) else []
    std[good] = members.std(axis=1) if len(members) else []
    for r in np.where(good & ~(np.isfinite(mean) & np.isfinite(std)))[0]:
        errors[r] = f"row {r + 1}: the prediction for {formulas[r]!r} is not finite"
        mean[r] = std[r] = np.nan
    return mean, (std if model.n_members > 1 else None), errors


def _predict(args: argparse.Namespace) -> int:
    from xtalnn.io.outputs import check_output_file, report_skipped

    from .data import read_table
    from .modelfile import CompositionModel

    if bool(args.data) == bool(args.formulas):
        raise ValueError("give either formulas as arguments or --data CSV (not both)")
    if args.output:
        check_output_file(args.output, [args.model, args.data], args.overwrite)
    formulas = args.formulas or read_table(args.data, args.formula_column, None, require_target=False).formulas
    model = CompositionModel.load(args.model)
    mean, std, errors = predict_rows(model, formulas)
    header = ["formula", "prediction"] + (["uncertainty"] if std is not None else []) + ["error"]
    rows = ([formula, _num(mean[i])] + ([_num(std[i])] if std is not None else []) + [errors[i]]
            for i, formula in enumerate(formulas))
    _write_csv(args.output, header, rows)
    skipped = [e for e in errors if e]
    report_skipped(skipped, len(formulas), "rows", "the error column")
    return 1 if skipped and args.strict else 0


def _rank(args: argparse.Namespace) -> int:
    from xtalnn.io.outputs import check_output_file

    from .modelfile import CompositionModel
    from .rank import rank_compositions

    if args.output:
        check_output_file(args.output, [args.model], args.overwrite)
    model = CompositionModel.load(args.model)
    rows = rank_compositions(model, args.elements, args.max_atoms, args.sort)
    if args.top is not None:
        rows = rows[: args.top]
    _write_csv(args.output, ["rank", "formula", "atoms", "enthalpy_eV_per_atom", "uncertainty",
                             "e_above_hull_eV_per_atom"],
               ([i, c.formula, c.atoms, _num(c.enthalpy), _num(c.uncertainty), _num(c.e_above_hull)]
                for i, c in enumerate(rows, start=1)))
    return 0


def _num(value: float) -> str:
    """Six decimals, or an empty cell for NaN (no uncertainty / no hull)."""
    return "" if value != value else f"{value:.6f}"
