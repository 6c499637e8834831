"""Random symmetric starting structures from pyxtal, one crystal system at a time."""

from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms

from xtalnn.search.composition import Composition
from xtalnn.search.systems import SPACE_GROUPS, angles_ok, impose


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
    from pyxtal import pyxtal

    groups = list(SPACE_GROUPS[system])
    for _ in range(max_attempts):
        group = int(rng.choice(groups))
        crystal = pyxtal()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(
                    3,
                    group,
                    composition.elements,
                    composition.numbers,
                    random_state=int(rng.integers(2**31 - 1)),
                    max_count=20,
                )
        except Exception:  # pyxtal's Comp_CompatibilityError, generation failures, …
            continue
        if not getattr(crystal, "valid", True):
            continue
        atoms = crystal.to_ase()
        if len(atoms) != composition.n_atoms:  # a conventional cell with a different count
            continue
        order = np.argsort(
            [composition.elements.index(s) for s in atoms.get_chemical_symbols()], kind="stable"
        )
        atoms = atoms[order]
        if volume_per_atom is not None:
            factor = (volume_per_atom * len(atoms) / atoms.get_volume()) ** (1 / 3)
            atoms.set_cell(atoms.cell * factor, scale_atoms=True)
        atoms = impose(atoms, system)
        if angles_ok(atoms) and min_distance_ok(atoms, dmin):
            return atoms, group
    return None
