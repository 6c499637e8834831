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


def spring_hessian(atoms: Atoms, bond_scale: float = 1.5, stiffness: float = 3.0) -> np.ndarray:
    """Hessian (3N × 3N, eV/Å² up to a constant) of unstrained springs between every pair of atoms
    (periodic images included) closer than ``bond_scale`` × (r_cov,A + r_cov,B).

    A pair at distance r gets the spring constant exp(−``stiffness`` · (r / (r_cov,A + r_cov,B) − 1)), so
    short bonds are stiff and long ones soft: a simplified form of the bond-stiffness model behind Lyakhov
    et al.'s softmutation (Comput. Phys. Commun. 181, 1623 (2010)) and ase-ga's SoftMutation. Its softest
    modes move weakly bound groups of atoms together: a displacement along one keeps the strong bonds.
    """
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    radii = covalent_radii[atoms.numbers]
    i, j, vec = neighbor_list("ijD", atoms, bond_scale * 2 * float(radii.max()), self_interaction=False)
    r = np.linalg.norm(vec, axis=1)
    bond = radii[i] + radii[j]
    keep = (r < bond_scale * bond) & (i != j)  # an atom and its own image move together: no spring
    i, j, vec, r, bond = i[keep], j[keep], vec[keep], r[keep], bond[keep]
    k = np.exp(-stiffness * (r / bond - 1.0))
    u = vec / r[:, None]
    blocks = 0.5 * k[:, None, None] * u[:, :, None] * u[:, None, :]  # each pair is listed twice
    n = len(atoms)
    hessian = np.zeros((n, 3, n, 3))
    np.add.at(hessian, (i, slice(None), i, slice(None)), blocks)
    np.add.at(hessian, (j, slice(None), j, slice(None)), blocks)
    np.add.at(hessian, (i, slice(None), j, slice(None)), -blocks)
    np.add.at(hessian, (j, slice(None), i, slice(None)), -blocks)
    return hessian.reshape(3 * n, 3 * n)


def soft_mode(atoms: Atoms, rng: np.random.Generator, amplitude: tuple[float, float] = (0.5, 2.0),
              modes: int = 3) -> Atoms:
    """Displace the atoms along one of the ``modes`` softest vibrations of :func:`spring_hessian`
    (uniform choice, random sign) so that the atom that moves most moves a uniform draw from
    ``amplitude`` (Å); the cell is unchanged. Translations (zero modes) are never chosen."""
    n = len(atoms)
    translations = np.kron(np.ones((n, 1)), np.eye(3)) / np.sqrt(n)  # (3N, 3), orthonormal columns
    hessian = spring_hessian(atoms)
    # translations lifted above every vibration, so that the softest modes (floppy ones too) come first
    lift = 2.0 * max(float(np.abs(hessian).sum(axis=1).max()), 1.0)
    values, vectors = np.linalg.eigh(hessian + lift * translations @ translations.T)
    mode = vectors[:, int(rng.integers(min(modes, 3 * n - 3)))].reshape(n, 3)
    mode -= mode.mean(axis=0)  # no net translation (round-off)
    scale = float(rng.uniform(*amplitude)) / max(float(np.linalg.norm(mode, axis=1).max()), 1e-12)
    out = atoms.copy()
    out.set_positions(out.get_positions() + rng.choice([-1.0, 1.0]) * scale * mode)
    out.wrap()
    return out


MUTATIONS = ("strain", "swap", "rattle")
"""The seed paper's mutations (of a crossover child, with ``mutation_probability``)."""

SINGLE_PARENT_MUTATIONS = ("strain", "swap", "rattle", "soft")
"""Mutations that make a child from one parent (``mutation_share``): the seed's and a soft-mode move."""


def mutate(atoms: Atoms, system: str, rng: np.random.Generator,
           names: tuple[str, ...] = MUTATIONS) -> tuple[Atoms | None, str]:
    """Apply one mutation drawn uniformly from ``names`` that apply (swap needs two elements); returns
    (atoms, its name)."""
    names = [m for m in names if m != "swap" or len(set(atoms.get_chemical_symbols())) > 1]
    name = str(rng.choice(names))
    if name == "strain":
        return strain(atoms, system, rng), name
    if name == "swap":
        return swap(atoms, rng), name
    if name == "soft":
        return soft_mode(atoms, rng), name
    return rattle(atoms, rng), name


def make_child(
    parents: list[Atoms],
    composition: Composition,
    system: str,
    rng: np.random.Generator,
    dmin: dict[tuple[str, str], float],
    mutation_probability: float = 0.05,
    max_attempts: int = 30,
    mutation_share: float = 0.0,
) -> tuple[Atoms, str, tuple[int, ...]] | None:
    """One child: with probability ``mutation_share`` one parent changed by one of
    :data:`SINGLE_PARENT_MUTATIONS` (origin ``"mutation+soft"`` …, as ase-ga's mutation operators), else
    a crossover of two distinct parents, then a mutation of :data:`MUTATIONS` with probability
    ``mutation_probability`` (the seed paper's scheme; origin ``"crossover"``, ``"crossover+rattle"`` …).

    Children with too-short distances or cell angles out of range are retried. Returns
    (child, origin, parent indices) or None.
    """
    n = len(parents)
    # one draw per child (the operator does not depend on retries), none without single-parent children:
    # the seed's scheme then draws exactly the random numbers it always did
    single = mutation_share > 0.0 and rng.random() < mutation_share
    for _ in range(max_attempts):
        if single:
            i = int(rng.integers(n))
            child, name = mutate(parents[i], system, rng, SINGLE_PARENT_MUTATIONS)
            if child is not None:  # a parent relaxed with a free cell goes back on the system's lattice
                child = impose(child, system, keep_volume=True)
            origin, used = "mutation+" + name, (i,)
        else:
            i, j = (int(x) for x in rng.choice(n, size=2, replace=False)) if n > 1 else (0, 0)
            child = cut_and_splice(parents[i], parents[j], composition, system, rng)
            origin, used = "crossover", (i, j)
            if rng.random() < mutation_probability:
                child, name = mutate(child, system, rng)
                origin += "+" + name
        if child is not None and angles_ok(child) and min_distance_ok(child, dmin):
            return child, origin, used
    return None
