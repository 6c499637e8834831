"""Reading composition tables and parsing chemical formulas.

A table is a CSV file (plain or gzip-compressed) with one formula column and, for training, one target
column holding the formation enthalpy in eV/atom. Formulas are parsed with pymatgen's ``Composition``;
every error names the row (1-based data row, header excluded) and the offending value.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Composition


class CompositionDataError(ValueError):
    """Bad input data: unparseable formula, unknown element, non-numeric target, empty file."""


@dataclass(frozen=True)
class Table:
    """Formulas and (optional) targets read from a CSV file.

    ``targets`` is the formation enthalpy in eV/atom, or ``None`` when the table has no target column.
    """

    formulas: list[str]
    targets: np.ndarray | None


def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return open(path, newline="", encoding="utf-8")


def read_table(
    path: str | os.PathLike,
    formula_column: str = "formula",
    target_column: str | None = "target",
    require_target: bool = True,
) -> Table:
    """Read formulas and targets (eV/atom) from a CSV or CSV.gz file.

    If ``require_target`` is false and the target column is absent, ``Table.targets`` is ``None``.
    Raises :class:`CompositionDataError` for an empty file, a missing column or a non-numeric target.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise CompositionDataError(f"{path}: is a directory, not a CSV table")
    try:
        return _read_table(path, formula_column, target_column, require_target)
    except (EOFError, OSError, UnicodeDecodeError, csv.Error) as err:  # truncated .gz, binary file, bad quoting
        raise CompositionDataError(f"{path}: not a readable CSV table ({type(err).__name__}: {err})") from None


def _read_table(path, formula_column: str, target_column: str | None, require_target: bool) -> Table:
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        if not header:
            raise CompositionDataError(f"{path}: empty file (no header row)")
        header = [h.strip() for h in header]
        reader.fieldnames = header
        if formula_column not in header:
            raise CompositionDataError(
                f"{path}: no formula column {formula_column!r} (columns: {', '.join(header)})"
            )
        use_target = target_column is not None and target_column in header
        if require_target and not use_target:
            raise CompositionDataError(
                f"{path}: no target column {target_column!r} (columns: {', '.join(header)})"
            )
        formulas: list[str] = []
        targets: list[float] = []
        for row_number, row in enumerate(reader, start=1):
            formula = (row.get(formula_column) or "").strip()
            formulas.append(formula)
            if use_target:
                targets.append(parse_target(row.get(target_column), row_number))
    if not formulas:
        raise CompositionDataError(f"{path}: empty file (header but no data rows)")
    return Table(formulas, np.asarray(targets, dtype=np.float64) if use_target else None)


def parse_target(value: str | None, row: int) -> float:
    """A finite float from a table cell, or :class:`CompositionDataError` naming row and value."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CompositionDataError(f"row {row}: target {value!r} is not a number") from None
    if not math.isfinite(number):
        raise CompositionDataError(f"row {row}: target {value!r} is not finite")
    return number


def parse_formula(formula: str, row: int | None = None) -> dict[str, float]:
    """Atomic fractions ``{symbol: fraction}`` (summing to 1) of a formula such as ``La1Pb1Re2``.

    Fractional amounts are allowed. Raises :class:`CompositionDataError` naming the row (if given)
    and the value when the formula is empty, cannot be parsed, contains an unknown element or has a
    non-positive amount.
    """
    where = f"row {row}: " if row is not None else ""
    text = formula.strip() if isinstance(formula, str) else formula
    if not text:
        raise CompositionDataError(f"{where}empty formula {formula!r}")
    try:
        comp = Composition(text)
    except Exception as err:  # pymatgen raises ValueError / KeyError / CompositionError
        raise CompositionDataError(f"{where}cannot parse formula {formula!r}: {err}") from None
    amounts: dict[str, float] = {}
    for element, amount in comp.items():
        symbol = getattr(element, "symbol", str(element))
        if getattr(element, "Z", 0) <= 0 or type(element).__name__ == "DummySpecies":
            raise CompositionDataError(f"{where}unknown element {symbol!r} in formula {formula!r}")
        if not amount > 0:
            raise CompositionDataError(f"{where}non-positive amount of {symbol} in formula {formula!r}")
        amounts[symbol] = amounts.get(symbol, 0.0) + float(amount)
    if not amounts:
        raise CompositionDataError(f"{where}formula {formula!r} contains no elements")
    total = sum(amounts.values())
    fractions = {symbol: amount / total for symbol, amount in amounts.items()}
    if not (math.isfinite(total) and all(math.isfinite(f) for f in fractions.values())):
        raise CompositionDataError(f"{where}amounts in formula {formula!r} are too large to be numbers")
    return fractions


def parse_formulas(formulas: list[str], first_row: int = 1) -> list[dict[str, float]]:
    """:func:`parse_formula` for a list; rows are numbered from ``first_row`` in error messages."""
    return [parse_formula(f, row) for row, f in enumerate(formulas, start=first_row)]
