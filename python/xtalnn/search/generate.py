"""Random symmetric starting structures from pyxtal, one crystal system at a time."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from ase import Atoms

from xtalnn.search.formula import Composition
from xtalnn.search.dedup import Deduplicator, fixed_site_key
from xtalnn.search.systems import RHOMBOHEDRAL_GROUPS, SPACE_GROUPS, angles_ok, impose


def min_distance_ok(atoms: Atoms, dmin: dict[tuple[str, str], float]) -> bool:
    """True when every pair (periodic images included) is at least d_min(A, B) apart (Å)."""
    from ase.neighborlist import neighbor_list

    cutoff = max(dmin.values())
    i, j, d = neighbor_list("ijd", atoms, cutoff, self_interaction=False)
    if len(d) == 0:
        return True
    sym = atoms.get_chemical_symbols()
    need = np.array([dmin[(sym[a], sym[b])] for a, b in zip(i, j)])
    # a single atom can also sit too close to its own image
    return bool(np.all(d >= need))


def random_structure(
    composition: Composition,
    system: str,
    rng: np.random.Generator,
    dmin: dict[tuple[str, str], float],
    volume_per_atom: float | None = None,
    max_attempts: int = 40,
) -> tuple[Atoms, int] | None:
    """A random structure of ``system`` from pyxtal, in the system's standard cell.

    Space groups are drawn uniformly from the system; pyxtal's compatibility errors (Wyckoff
    multiplicities that cannot add up to the composition) and too-short distances are retried
    with another group. With ``volume_per_atom`` (Å³/atom) the cell is rescaled to it.
    Returns (atoms, space-group number drawn) or None after ``max_attempts`` failures.
    """
    groups = list(SPACE_GROUPS[system])
    for _ in range(max_attempts):
        group = int(rng.choice(groups))
        atoms = _pyxtal_structure(composition, system, group, rng, dmin, volume_per_atom)
        if atoms is not None:
            return atoms, group
    return None


@lru_cache(maxsize=1)
def _tolerances():
    """pyxtal's default atomic tolerance matrix, built once (building it costs ~7 ms a draw)."""
    from pyxtal.tolerance import Tol_matrix

    return Tol_matrix(prototype="atomic", factor=1.0)


def _pyxtal_structure(
    composition: Composition,
    system: str,
    group: int,
    rng: np.random.Generator,
    dmin: dict[tuple[str, str], float],
    volume_per_atom: float | None,
    sites: list[list[str]] | None = None,
) -> Atoms | None:
    """One pyxtal draw in ``group`` (optionally on the given Wyckoff ``sites`` per element),
    standardised to ``system``; None when pyxtal fails or the result breaks the checks. A random draw
    in a rhombohedral group is made in the 3-fold centred hexagonal cell with three times the atoms and
    returned as its primitive rhombohedral cell (``composition``'s atoms)."""
    from pyxtal import pyxtal

    primitive = group in RHOMBOHEDRAL_GROUPS and sites is None
    numbers = [3 * n for n in composition.numbers] if primitive else composition.numbers
    crystal = pyxtal()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            crystal.from_random(
                3,
                group,
                composition.elements,
                numbers,
                sites=sites,
                random_state=int(rng.integers(2**31 - 1)),
                max_count=20,
                tm=_tolerances(),
            )
    except Exception:  # pyxtal's Comp_CompatibilityError, generation failures, …
        return None
    if not getattr(crystal, "valid", True):
        return None
    atoms = crystal.to_ase()
    if primitive:
        atoms = _primitive_cell(atoms)
    if len(atoms) != composition.n_atoms:  # a conventional cell with a different count
        return None
    order = np.argsort([composition.elements.index(s) for s in atoms.get_chemical_symbols()], kind="stable")
    atoms = atoms[order]
    if volume_per_atom is not None:
        factor = (volume_per_atom * len(atoms) / atoms.get_volume()) ** (1 / 3)
        atoms.set_cell(atoms.cell * factor, scale_atoms=True)
    atoms = impose(atoms, system)
    if angles_ok(atoms) and min_distance_ok(atoms, dmin):
        return atoms
    return None


def _primitive_cell(atoms: Atoms) -> Atoms:
    """The primitive cell of ``atoms`` (spglib, 10⁻³ Å), atoms not moved: for an R group, the
    rhombohedral cell."""
    import spglib

    cell, scaled, numbers = spglib.standardize_cell((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers),
                                                    to_primitive=True, no_idealize=True, symprec=1e-3)
    return Atoms(numbers=numbers, cell=cell, scaled_positions=scaled, pbc=True)


@dataclass(frozen=True)
class Prototype:
    """A space group and one Wyckoff combination (per element) that holds the composition.

    ``order``: multiplicity of the group's general position (symmetry operations per
    conventional cell); ``dof``: free fractional coordinates of the combination.
    """

    group: int
    sites: tuple[tuple[str, ...], ...]
    order: int
    dof: int

    @property
    def n_orbits(self) -> int:
        """Symmetry-distinct atoms (occupied Wyckoff sites)."""
        return sum(len(s) for s in self.sites)


def prototype_levels(composition: Composition, system: str) -> Iterator[list[Prototype]]:
    """The (space group, Wyckoff combination) pairs of ``system`` that fit ``composition``, one
    list per group order (general-position multiplicity), highest order first; within a list
    sorted by the number of occupied Wyckoff sites (fewest first: Pauling's parsimony), then by
    free coordinates (fewest first); ties keep pyxtal's order. At most 2,000 combinations per
    group (pyxtal's ``Nmax``). Lazy: a level is listed only when it is asked for.
    """
    from pyxtal.symmetry import Group

    groups = [Group(n) for n in SPACE_GROUPS[system]]
    for order in sorted({len(g[0]) for g in groups}, reverse=True):
        level = []
        for group in (g for g in groups if len(g[0]) == order):
            dof = {w.get_label(): int(w.get_dof()) for w in group.Wyckoff_positions}
            combos, _, _ = group.list_wyckoff_combinations(list(composition.numbers), Nmax=2000)
            for combo in combos:
                sites = tuple(tuple(per_element) for per_element in combo)
                n_free = sum(dof[label] for per_element in sites for label in per_element)
                level.append(Prototype(group.number, sites, order, n_free))
        if level:
            level.sort(key=lambda p: (p.n_orbits, p.dof))
            yield level


def symmetric_prototypes(composition: Composition, system: str) -> list[Prototype]:
    """All levels of :func:`prototype_levels` in one list: highest symmetry first."""
    return [p for level in prototype_levels(composition, system) for p in level]


def prototype_structure(
    prototype: Prototype,
    composition: Composition,
    system: str,
    rng: np.random.Generator,
    dmin: dict[tuple[str, str], float],
    volume_per_atom: float | None = None,
    max_attempts: int = 4,
) -> Atoms | None:
    """A structure of ``prototype`` from pyxtal (random lattice and free coordinates), in the
    system's standard cell, or None when pyxtal or the distance check fail ``max_attempts`` times."""
    for _ in range(max_attempts):
        atoms = _pyxtal_structure(composition, system, prototype.group, rng, dmin, volume_per_atom,
                                  sites=[list(s) for s in prototype.sites])
        if atoms is not None:
            return atoms
    return None


class StartingStructures:
    """The distinct starting structures of one run, in evaluation order (deterministic in ``rng``).

    A share ``symmetric_share`` (0–1) of them, spread evenly and starting with the first, come
    from :func:`prototype_levels` (highest symmetry first; prototypes of equal rank in random
    order), the others from :func:`random_structure` (with 0.5 they alternate: prototype,
    random, prototype, …; when the prototypes run out, random draws take their place). Every
    structure made only of fixed Wyckoff sites is compared with the earlier ones *before* it is
    relaxed (:func:`.dedup.fixed_site_key`, then pymatgen ``StructureMatcher`` with volume
    scaling); a duplicate is skipped without costing an evaluation. ``get(k)`` returns the k-th structure as ``(atoms, origin, extra)`` or None when
    no new structure turned up in ``max_attempts`` draws.
    """

    def __init__(
        self,
        composition: Composition,
        system: str,
        rng: np.random.Generator,
        dmin: dict[tuple[str, str], float],
        volume_per_atom: float | None = None,
        symmetric_share: float = 0.0,
        max_attempts: int = 40,
    ):
        if not 0.0 <= symmetric_share <= 1.0:
            raise ValueError(f"symmetric_share must lie in [0, 1], got {symmetric_share}")
        self.composition, self.system, self.rng, self.dmin = composition, system, rng, dmin
        self.volume_per_atom, self.share, self.max_attempts = volume_per_atom, symmetric_share, max_attempts
        self.made: list[tuple[Atoms, str, dict] | None] = []
        self._seen = Deduplicator(key=fixed_site_key)
        self._levels: Iterator[list[Prototype]] | None = None
        self._queue: list[Prototype] = []

    def get(self, k: int) -> tuple[Atoms, str, dict] | None:
        while len(self.made) <= k:
            self.made.append(self._next())
        return self.made[k]

    def _next_prototype(self) -> Prototype | None:
        """The next prototype in rank order; equal ranks in random order."""
        if self._levels is None:
            self._levels = prototype_levels(self.composition, self.system)
        while not self._queue:
            level = next(self._levels, None)
            if level is None:
                return None
            ties = self.rng.random(len(level))
            rank = sorted(range(len(level)), key=lambda i: (level[i].n_orbits, level[i].dof, ties[i]))
            self._queue = [level[i] for i in rank]
        return self._queue.pop(0)

    def _next(self) -> tuple[Atoms, str, dict] | None:
        k = len(self.made)
        symmetric = math.ceil((k + 1) * self.share - 1e-9) > math.ceil(k * self.share - 1e-9)
        for _ in range(self.max_attempts):
            proto = self._next_prototype() if symmetric else None
            if proto is not None:
                atoms = prototype_structure(proto, self.composition, self.system, self.rng, self.dmin,
                                            self.volume_per_atom)
                made = None if atoms is None else (
                    atoms, "prototype",
                    {"drawn_group": proto.group, "sites": [list(s) for s in proto.sites]})
            else:
                drawn = random_structure(self.composition, self.system, self.rng, self.dmin,
                                         self.volume_per_atom)
                made = None if drawn is None else (drawn[0], "random", {"drawn_group": drawn[1]})
            if made is not None and self._is_new(made[0]):
                return made
        return None

    def _is_new(self, atoms: Atoms) -> bool:
        """False when ``atoms`` has only fixed Wyckoff sites and duplicates an earlier start with the
        same :func:`.dedup.fixed_site_key`. Structures with free coordinates are always new (random
        draws practically never coincide; the archive of relaxed structures catches what relaxes to
        the same minimum)."""
        return self._seen.add(atoms) is None
