"""Composition features: element-fraction vectors and physical element properties.

The model input is the element-fraction vector ordered by atomic number (H ... Pu, Z = 1-94 by default);
element properties come from pymatgen's periodic-table data and are standardised (zero mean, unit
variance over the element list) so a network can use them directly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
from pymatgen.core.periodic_table import Element

from .data import CompositionDataError

#: Highest atomic number in the default element list (Pu).
DEFAULT_MAX_Z = 94

#: Scalar pymatgen ``Element`` properties used as physical element features (units as in pymatgen).
ELEMENT_PROPERTIES: tuple[str, ...] = (
    "Z",
    "row",
    "group",
    "X",  # Pauling electronegativity
    "atomic_mass",  # amu
    "atomic_radius",  # Å
    "average_ionic_radius",  # Å
    "van_der_waals_radius",  # Å
    "mendeleev_no",
    "melting_point",  # K
    "boiling_point",  # K
    "molar_volume",  # cm³/mol
    "electron_affinity",  # eV
    "ionization_energy",  # eV
    "min_oxidation_state",
    "max_oxidation_state",
)
_BLOCKS = ("s", "p", "d", "f")


def default_elements(max_z: int = DEFAULT_MAX_Z) -> list[str]:
    """Element symbols ordered by atomic number, Z = 1 ... ``max_z``."""
    return [Element.from_Z(z).symbol for z in range(1, max_z + 1)]


def _property(element: Element, name: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = getattr(element, name)
            value = float(value) if value is not None else math.nan
        except (AttributeError, TypeError, ValueError):
            value = math.nan
    return value


def _valence_counts(element: Element) -> list[float]:
    """Valence electrons in the outer s, p, d (n-1) and f (n-2) subshells."""
    shells = element.full_electronic_structure
    n_max = max(n for n, _, _ in shells)
    target = {"s": n_max, "p": n_max, "d": n_max - 1, "f": n_max - 2}
    counts = dict.fromkeys(_BLOCKS, 0.0)
    for n, orbital, count in shells:
        if orbital in target and n == target[orbital]:
            counts[orbital] += count
    return [counts[b] for b in _BLOCKS]


def element_property_table(elements: Sequence[str]) -> np.ndarray:
    """Standardised physical features ``[len(elements), P]`` (float32).

    Columns: the scalar properties of :data:`ELEMENT_PROPERTIES`, log molar volume, valence electrons
    per s/p/d/f subshell and a one-hot block. Missing values (e.g. the electronegativity of noble gases)
    are replaced by the column mean before standardising.
    """
    rows = []
    for symbol in elements:
        element = Element(symbol)
        values = [_property(element, name) for name in ELEMENT_PROPERTIES]
        values.append(math.log(values[ELEMENT_PROPERTIES.index("molar_volume")]))
        values += _valence_counts(element)
        values += [1.0 if element.block == b else 0.0 for b in _BLOCKS]
        rows.append(values)
    table = np.asarray(rows, dtype=np.float64)
    column_mean = np.nanmean(table, axis=0)
    missing = np.isnan(table)
    table[missing] = np.take(column_mean, np.nonzero(missing)[1])
    std = table.std(axis=0)
    std[std == 0] = 1.0
    return ((table - table.mean(axis=0)) / std).astype(np.float32)


def fraction_matrix(
    compositions: Iterable[dict[str, float]], elements: Sequence[str], first_row: int = 1
) -> np.ndarray:
    """Element-fraction vectors ``[N, len(elements)]`` (float32, rows sum to 1).

    An element outside ``elements`` (one the model never saw) raises :class:`CompositionDataError`
    naming the row, rather than being silently dropped.
    """
    index = {symbol: i for i, symbol in enumerate(elements)}
    rows = list(compositions)
    out = np.zeros((len(rows), len(elements)), dtype=np.float32)
    for r, comp in enumerate(rows):
        for symbol, fraction in comp.items():
            column = index.get(symbol)
            if column is None:
                raise CompositionDataError(
                    f"row {r + first_row}: element {symbol!r} is not in the model's element list "
                    f"({elements[0]}...{elements[-1]}, {len(elements)} elements)"
                )
            out[r, column] = fraction
    return out


def elements_present(fractions: np.ndarray, elements: Sequence[str]) -> list[str]:
    """Symbols of the elements with a non-zero fraction somewhere in ``fractions``."""
    return [elements[i] for i in np.nonzero(fractions.sum(axis=0) > 0)[0]]
