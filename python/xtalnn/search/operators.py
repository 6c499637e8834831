"""GA operators that keep a crystal system's lattice constraints.

All inputs and outputs are in the system's standard orientation (see :mod:`.systems`), where the
constraints are linear in the cell matrix: a weighted average of two parents' cells and a strain
from :func:`.systems.strain_basis` keep them; :func:`.systems.impose` removes round-off.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from xtalnn.search.formula import Composition
from xtalnn.search.generate import min_distance_ok
from xtalnn.search.systems import angles_ok, impose, strain_basis


def cut_and_splice(
    a: Atoms, b: Atoms, composition: Composition, system: str, rng: np.random.Generator
) -> Atoms:
    """Cut-and-splice crossover in fractional coordinates (Deaven–Ho, periodic form).

    Each parent is shifted by a random fractional translation; atoms of ``a`` below a random
    plane ``f_k = cut`` and of ``b`` above it are combined; per element, atoms farthest from the
    cut (deepest in their half) are kept first, and missing ones are taken from the other halves
    nearest the cut. The lattice is ``cut · cell_a + (1 − cut) · cell_b``.
    """
    axis = int(rng.integers(3))
    cut = float(rng.uniform(0.25, 0.75))
    fa = (a.get_scaled_positions() + rng.random(3)) % 1.0
    fb = (b.get_scaled_positions() + rng.random(3)) % 1.0
    sa, sb = np.array(a.get_chemical_symbols()), np.array(b.get_chemical_symbols())
    symbols: list[str] = []
    frac: list[np.ndarray] = []
    for element, count in composition.counts:
        ia, ib = np.flatnonzero(sa == element), np.flatnonzero(sb == element)
        # (priority, fractional position): inside own half, depth from the cut plane
        inside = [(-min(fa[i, axis], cut - fa[i, axis]), fa[i]) for i in ia if fa[i, axis] < cut]
        inside += [(-min(fb[i, axis] - cut, 1 - fb[i, axis]), fb[i]) for i in ib if fb[i, axis] >= cut]
        outside = [(abs(fa[i, axis] - cut), fa[i]) for i in ia if fa[i, axis] >= cut]
        outside += [(abs(fb[i, axis] - cut), fb[i]) for i in ib if fb[i, axis] < cut]
        inside.sort(key=lambda t: t[0])
        outside.sort(key=lambda t: t[0])
        chosen = (inside + outside)[:count]
        symbols += [element] * len(chosen)
        frac += [p for _, p in chosen]
    cell = cut * np.array(a.cell) + (1.0 - cut) * np.array(b.cell)
    child = Atoms(symbols, scaled_positions=np.array(frac), cell=cell, pbc=True)
    return impose(child, system, keep_volume=True)


def strain(atoms: Atoms, system: str, rng: np.random.Generator, sigma: float = 0.1) -> Atoms:
    """Random symmetric strain within the system's allowed strains (Gaussian, ``sigma``)."""
    basis = strain_basis(system, atoms.cell)
    eps = np.einsum("k,kij->ij", rng.normal(0.0, sigma, len(basis)), basis)
    out = atoms.copy()
    out.set_cell(np.array(atoms.cell) @ (np.eye(3) + eps), scale_atoms=True)
    return impose(out, system, keep_volume=False)


def swap(atoms: Atoms, rng: np.random.Generator) -> Atoms | None:
    """Exchange the positions of two atoms of different elements (None for an element)."""
    symbols = np.array(atoms.get_chemical_symbols())
    if len(set(symbols)) < 2:
        return None
    i = int(rng.integers(len(atoms)))
    others = np.flatnonzero(symbols != symbols[i])
    j = int(rng.choice(others))
    out = atoms.copy()
    pos = out.get_positions()
    pos[[i, j]] = pos[[j, i]]
    out.set_positions(pos)
    return out


def rattle(atoms: Atoms, rng: np.random.Generator, sigma: float = 0.3) -> Atoms:
    """Gaussian displacement of every atom (``sigma`` in Å); the cell is unchanged."""
    out = atoms.copy()
    out.set_positions(out.get_positions() + rng.normal(0.0, sigma, (len(out), 3)))
    out.wrap()
    return out


MUTATIONS = ("strain", "swap", "rattle")


def mutate(atoms: Atoms, system: str, rng: np.random.Generator) -> tuple[Atoms, str]:
    """Apply one mutation drawn uniformly from those that apply; returns (atoms, its name)."""
    names = [m for m in MUTATIONS if m != "swap" or len(set(atoms.get_chemical_symbols())) > 1]
    name = str(rng.choice(names))
    if name == "strain":
        return strain(atoms, system, rng), name
    if name == "swap":
        return swap(atoms, rng), name
    return rattle(atoms, rng), name


def make_child(
    parents: list[Atoms],
    composition: Composition,
    system: str,
    rng: np.random.Generator,
    dmin: dict[tuple[str, str], float],
    mutation_probability: float = 0.05,
    max_attempts: int = 30,
) -> tuple[Atoms, str, tuple[int, int]] | None:
    """One child: crossover of two distinct parents, then a mutation with the given probability.

    Children with too-short distances or cell angles out of range are retried. Returns
    (child, origin such as ``"crossover+rattle"``, parent indices) or None.
    """
    n = len(parents)
    for _ in range(max_attempts):
        i, j = (int(x) for x in rng.choice(n, size=2, replace=False)) if n > 1 else (0, 0)
        child = cut_and_splice(parents[i], parents[j], composition, system, rng)
        origin = "crossover"
        if rng.random() < mutation_probability:
            child, name = mutate(child, system, rng)
            origin += "+" + name
        if angles_ok(child) and min_distance_ok(child, dmin):
            return child, origin, (i, j)
    return None
