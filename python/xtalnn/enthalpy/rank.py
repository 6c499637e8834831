"""Ranking candidate stoichiometries of a chemical system by predicted formation enthalpy.

Candidates are all reduced compositions of the given elements with at most ``max_atoms`` atoms per
formula unit. Their predicted formation enthalpies (eV/atom) build a convex hull with pymatgen's
``PhaseDiagram`` (the pure elements at 0 eV/atom), and each candidate gets its distance above that hull.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from .data import CompositionDataError, parse_formula
from .modelfile import CompositionModel


@dataclass(frozen=True)
class RankedComposition:
    """One ranked stoichiometry. Energies in eV/atom; ``e_above_hull`` is NaN if no hull was built."""

    formula: str
    atoms: int
    enthalpy: float
    uncertainty: float
    e_above_hull: float


def candidate_formulas(elements: Sequence[str], max_atoms: int, min_elements: int = 2) -> list[str]:
    """Reduced formulas (e.g. ``TiO2``) of all compositions of ``elements`` with ≤ ``max_atoms`` atoms.

    Only compositions containing at least ``min_elements`` distinct elements are listed; each
    stoichiometry appears once (``Ti2O4`` is ``TiO2``).
    """
    symbols = list(dict.fromkeys(elements))
    if not symbols:
        raise CompositionDataError("no elements given")
    for symbol in symbols:
        parse_formula(symbol)  # raises for unknown elements
    if max_atoms < 1:
        raise CompositionDataError(f"max atoms must be positive, got {max_atoms}")
    seen: dict[tuple[int, ...], str] = {}
    for counts in itertools.product(range(max_atoms + 1), repeat=len(symbols)):
        total = sum(counts)
        if total == 0 or total > max_atoms or sum(c > 0 for c in counts) < min_elements:
            continue
        g = math.gcd(*counts)
        key = tuple(c // g for c in counts)
        if key not in seen:
            seen[key] = "".join(f"{s}{c if c > 1 else ''}" for s, c in zip(symbols, key) if c)
    return list(seen.values())


def hull_distances(formulas: Sequence[str], enthalpies: np.ndarray, elements: Sequence[str]) -> np.ndarray:
    """Energy above the convex hull (eV/atom) of the given formation enthalpies (eV/atom).

    The pure elements are added at 0 eV/atom, so the hull is that of the predictions themselves.
    """
    entries = [PDEntry(Composition(el), 0.0) for el in dict.fromkeys(elements)]
    compositions = [Composition(f) for f in formulas]
    entries += [PDEntry(c, float(h) * c.num_atoms) for c, h in zip(compositions, enthalpies)]
    diagram = PhaseDiagram(entries)
    start = len(set(elements))
    return np.array([diagram.get_e_above_hull(e, allow_negative=True) for e in entries[start:]])


def rank_compositions(
    model: CompositionModel, elements: Sequence[str], max_atoms: int = 24, sort: str = "hull"
) -> list[RankedComposition]:
    """Candidates of the ``elements`` system ranked by distance to the hull of the predictions
    (``sort="hull"``; ties and single-element systems fall back to enthalpy) or by predicted
    formation enthalpy (``sort="enthalpy"``), lowest first.
    """
    if sort not in ("hull", "enthalpy"):
        raise ValueError(f"sort must be 'hull' or 'enthalpy', got {sort!r}")
    symbols = list(dict.fromkeys(elements))
    formulas = candidate_formulas(symbols, max_atoms, min_elements=2 if len(symbols) > 1 else 1)
    mean, std = model.predict_with_uncertainty(formulas)
    if std is None:
        std = np.full(len(formulas), np.nan)
    above = hull_distances(formulas, mean, symbols) if len(symbols) > 1 else np.full(len(formulas), np.nan)
    atoms = [int(Composition(f).num_atoms) for f in formulas]
    rows = [RankedComposition(f, a, float(m), float(s), float(e)) for f, a, m, s, e in zip(formulas, atoms, mean, std, above)]
    if sort == "hull" and len(symbols) > 1:
        rows.sort(key=lambda c: (round(c.e_above_hull, 6), c.enthalpy))
    else:
        rows.sort(key=lambda c: c.enthalpy)
    return rows
