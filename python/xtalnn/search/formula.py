"""Compositions: parsing, validation and the packing check against minimum distances.

A composition is given as a formula (``"Si8"``, ``"Ti4O8"``, ``"Ca1Ti1O3"``; the counts are the
atoms in the cell) or as a mapping ``{"Ti": 1, "O": 2}`` with ``formula_units``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers, covalent_radii

_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")

MAX_PACKING = 0.74
"""Densest packing fraction of equal spheres (fcc/hcp): spheres of diameter d_min cannot fill more."""


@dataclass(frozen=True)
class Composition:
    """Atoms per cell, element symbols in order of first appearance."""

    counts: tuple[tuple[str, int], ...]

    @property
    def symbols(self) -> list[str]:
        """One symbol per atom (the order used for generated structures)."""
        return [s for s, n in self.counts for _ in range(n)]

    @property
    def elements(self) -> list[str]:
        return [s for s, _ in self.counts]

    @property
    def numbers(self) -> list[int]:
        return [n for _, n in self.counts]

    @property
    def n_atoms(self) -> int:
        return sum(self.numbers)

    @property
    def formula(self) -> str:
        return "".join(f"{s}{n}" for s, n in self.counts)

    def __str__(self) -> str:
        return self.formula


def parse_composition(
    composition: str | Mapping[str, int] | Composition, formula_units: int = 1
) -> Composition:
    """Parse a formula or a mapping into a :class:`Composition` (counts × ``formula_units``).

    Raises ValueError on an unknown element, a malformed formula or non-positive counts.
    """
    if isinstance(composition, Composition):
        items = list(composition.counts)
    elif isinstance(composition, str):
        text = composition.replace(" ", "")
        if not text or _TOKEN.sub("", text):
            raise ValueError(f"cannot parse composition {composition!r} (expected e.g. Si8, Ti4O8)")
        items = [(sym, int(num) if num else 1) for sym, num in _TOKEN.findall(text)]
    elif isinstance(composition, Mapping):
        items = [(str(k), int(v)) for k, v in composition.items()]
    else:
        raise ValueError(f"composition must be a formula or a mapping, got {composition!r}")
    if int(formula_units) < 1:
        raise ValueError(f"formula_units must be >= 1, got {formula_units}")
    merged: dict[str, int] = {}
    for sym, num in items:
        if sym not in atomic_numbers or sym == "X":
            raise ValueError(f"unknown element {sym!r} in composition {composition!r}")
        if num < 1:
            raise ValueError(f"count of {sym} must be >= 1 in composition {composition!r}")
        merged[sym] = merged.get(sym, 0) + num * int(formula_units)
    if not merged:
        raise ValueError(f"empty composition {composition!r}")
    return Composition(tuple(merged.items()))


def min_distances(
    composition: Composition, ratio: float = 0.7, overrides: Mapping | None = None
) -> dict[tuple[str, str], float]:
    """Minimum allowed distance (Å) per element pair: ``ratio × (r_cov,A + r_cov,B)``.

    ``overrides`` maps ``(A, B)`` (or ``"A-B"``) to a distance in Å and wins over the default.
    """
    out: dict[tuple[str, str], float] = {}
    for a in composition.elements:
        for b in composition.elements:
            ra, rb = covalent_radii[atomic_numbers[a]], covalent_radii[atomic_numbers[b]]
            out[(a, b)] = ratio * (ra + rb)
    for key, value in (overrides or {}).items():
        a, b = key.split("-") if isinstance(key, str) else key
        if (a, b) not in out:
            raise ValueError(f"minimum distance given for {a}-{b}, not in {composition}")
        out[(a, b)] = out[(b, a)] = float(value)
    return out


def default_volume_per_atom(composition: Composition) -> float:
    """A starting volume per atom (Å³/atom): spheres of the covalent radii at 34% packing
    (the diamond packing fraction; open enough for covalent and ionic solids)."""
    vols = [
        4 / 3 * np.pi * covalent_radii[atomic_numbers[s]] ** 3 * n for s, n in composition.counts
    ]
    return float(sum(vols) / composition.n_atoms / 0.34)


def check_packing(
    composition: Composition, volume_per_atom: float, dmin: Mapping[tuple[str, str], float]
) -> None:
    """Raise ValueError when spheres of diameter d_min(A, A) cannot fit in the volume.

    The test is necessary, not sufficient: the spheres would exceed the densest packing (74%).
    """
    if not volume_per_atom > 0:
        raise ValueError(f"volume per atom must be positive, got {volume_per_atom}")
    sphere = sum(4 / 3 * np.pi * (dmin[(s, s)] / 2) ** 3 * n for s, n in composition.counts)
    fraction = sphere / (volume_per_atom * composition.n_atoms)
    if fraction > MAX_PACKING:
        raise ValueError(
            f"impossible composition {composition} for the minimum distances: spheres of "
            f"diameter d_min fill {fraction:.0%} of {volume_per_atom:.2f} Å³/atom (densest "
            f"packing is {MAX_PACKING:.0%}); raise the volume or lower the minimum distances"
        )
