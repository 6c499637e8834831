"""Training data for potentials: checked structures, graphs, batches, reference energies, scaling, split.

A :class:`Graph` holds what never changes for a fixed structure (species, neighbour edges, the
periodic part of every edge vector) so training only recomputes ``edge_vec = x_j − x_i + S·cell``
from positions that carry gradients. Energies in eV, forces in eV/Å, lengths in Å.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from xtalnn.neighbors import check_atoms, check_no_overlap, neighbor_list_tensors


class DataError(ValueError):
    """A training structure cannot be used; the message names the file and the problem."""


def source_of(atoms, fallback: str) -> str:
    return str(atoms.info.get("source", fallback))


def read_training_structures(paths, elements, limit: int | None = None, require_energy: bool = True) -> list:
    """Read every structure of ``paths`` and check it: energy present, elements in ``elements``.

    Raises :class:`DataError` / ``FileNotFoundError`` naming the file (and structure) at fault.
    """
    from xtalnn.io.structures import read_structures

    if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__"):
        paths = [paths]
    if not paths:
        raise DataError("no data path given")
    structures = []
    for path in paths:
        try:
            found = read_structures(path, limit)
        except FileNotFoundError:
            raise
        except DataError:
            raise
        except ValueError as err:
            raise DataError(str(err) if str(path) in str(err) else f"{path}: {err}") from err
        except Exception as err:  # unreadable file of any kind
            raise DataError(f"{path}: cannot read structures ({type(err).__name__}: {err})") from err
        for k, atoms in enumerate(found):
            name = source_of(atoms, "")
            if not name.startswith(str(path)):  # e.g. an extxyz frame carrying an older 'source'
                name = f"{path}[{k}]" + (f" (from {name})" if name else "")
            atoms.info["source"] = name
            check_structure(atoms, elements, name, require_energy)
            structures.append(atoms)
    return structures


def check_structure(atoms, elements, name: str, require_energy: bool = True) -> None:
    """Raise :class:`DataError` if ``atoms`` cannot be a training structure for ``elements``."""
    try:
        check_atoms(atoms)
        check_no_overlap(atoms)
    except ValueError as err:
        raise DataError(f"{name}: {err}") from err
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise DataError(f"{name}: element(s) {unknown} not in --elements {list(elements)}")
    if require_energy and reference_energy(atoms) is None:
        raise DataError(f"{name}: no energy (a training structure needs its total energy in eV)")
    forces = reference_forces(atoms)
    if forces is not None and (forces.shape != (len(atoms), 3) or not np.all(np.isfinite(forces))):
        raise DataError(f"{name}: forces must be finite and of shape ({len(atoms)}, 3)")
    try:
        stress = reference_stress(atoms)
    except ValueError:
        stress = np.full(1, np.nan)
    if stress is not None and (stress.shape != (3, 3) or not np.all(np.isfinite(stress))):
        raise DataError(f"{name}: stress must be 6 Voigt components or a 3×3 matrix of finite numbers (eV/Å³)")
    energy = reference_energy(atoms)
    if energy is not None and not np.isfinite(energy):
        raise DataError(f"{name}: energy is not finite ({energy})")
    try:
        weight = structure_weight(atoms)
    except (TypeError, ValueError):
        weight = float("nan")
    if not (np.isfinite(weight) and weight >= 0):
        raise DataError(f"{name}: info['weight'] must be a finite number >= 0, got {atoms.info.get('weight')!r}")


def reference_energy(atoms) -> float | None:
    """The stored total energy (eV), or None."""
    calc = atoms.calc
    if calc is not None and getattr(calc, "results", None):
        for key in ("energy", "free_energy"):
            if calc.results.get(key) is not None:
                return float(calc.results[key])
    for key in ("energy", "total_energy", "free_energy"):
        if key in atoms.info:
            return float(atoms.info[key])
    return None


def reference_forces(atoms) -> np.ndarray | None:
    """The stored forces (eV/Å) [N, 3], or None."""
    calc = atoms.calc
    if calc is not None and getattr(calc, "results", None) and calc.results.get("forces") is not None:
        return np.asarray(calc.results["forces"], dtype=float)
    if "forces" in atoms.arrays:
        return np.asarray(atoms.arrays["forces"], dtype=float)
    return None


def reference_stress(atoms) -> np.ndarray | None:
    """The stored stress (eV/Å³, ASE's sign: σ = (1/V) ∂E/∂ε, positive under tension) as [3, 3], or None
    (also for cells without a volume)."""
    calc = atoms.calc
    stress = None
    if calc is not None and getattr(calc, "results", None) and calc.results.get("stress") is not None:
        stress = calc.results["stress"]
    elif "stress" in atoms.info:
        stress = atoms.info["stress"]
    if stress is None or not atoms.pbc.all() or atoms.get_volume() <= 0:
        return None
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (6,):
        xx, yy, zz, yz, xz, xy = stress
        stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    return stress


def composition_matrix(structures, elements) -> np.ndarray:
    """Counts [n_structures, n_elements] (columns in model order)."""
    index = {s: k for k, s in enumerate(elements)}
    counts = np.zeros((len(structures), len(elements)))
    for row, atoms in enumerate(structures):
        for symbol in atoms.get_chemical_symbols():
            counts[row, index[symbol]] += 1
    return counts


def fit_reference_energies(structures, elements) -> np.ndarray:
    """Per-element energies e (eV, float64) minimising Σ_s (E_s − Σ_el n_s,el e_el)² (least squares).

    With compositions that do not determine every element separately (e.g. all TiO2) the minimum-norm
    solution is used; the network learns what remains.
    """
    counts = composition_matrix(structures, elements)
    energies = np.array([reference_energy(a) for a in structures], dtype=np.float64)
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return solution


def split_indices(n: int, fractions=(0.8, 0.1, 0.1), seed: int = 0,
                  groups=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/validation/test index arrays, a permutation of range(n) fixed by ``seed``.

    Every split with a positive fraction gets at least one structure when n allows it. ``groups``
    (one label per structure, e.g. the frames of one relaxation) keeps each group in one split, so
    near-copies of a training structure never validate or test it; split sizes then count
    structures, whole groups at a time.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or np.any(fractions < 0) or fractions.sum() <= 0:
        raise ValueError(f"split fractions must be three non-negative numbers, got {fractions.tolist()}")
    fractions = fractions / fractions.sum()
    labels = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    n_groups = int(labels.max()) + 1 if n else 0
    by_group = np.argsort(labels, kind="stable")  # members of each group, in index order
    members = np.split(by_group, np.cumsum(np.bincount(labels, minlength=n_groups))[:-1])
    order = np.random.default_rng(seed).permutation(n_groups)
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if fractions[1] > 0 and n_groups >= 3:
        n_val = max(n_val, 1)
    if fractions[2] > 0 and n_groups >= 3:
        n_test = max(n_test, 1)
    # whole groups from the end of the seeded order: test, then validation, the rest train (for
    # single-structure groups: train = order[:n_train], val = the next n_val, test = the last n_test)
    parts: list[list[int]] = [[], [], []]  # val, test, train
    for g in order[::-1]:
        k = 1 if len(parts[1]) < n_test else (0 if len(parts[0]) < n_val else 2)
        parts[k] += members[g].tolist()
    if not parts[2]:
        raise ValueError(f"{n} structures ({n_groups} groups) are too few for a split with fractions "
                         f"{fractions.tolist()}")
    return np.sort(parts[2]), np.sort(parts[0]), np.sort(parts[1])


def fingerprint(structures) -> str:
    """SHA-256 over species, positions, cells and energies: identifies the training data."""
    h = hashlib.sha256()
    for atoms in structures:
        h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
        h.update(np.round(atoms.get_positions(), 6).tobytes())
        h.update(np.round(np.asarray(atoms.get_cell()), 6).tobytes())
        e = reference_energy(atoms)
        h.update(np.float64(np.nan if e is None else e).tobytes())
    return h.hexdigest()


@dataclass
class Graph:
    """One structure's fixed neighbour graph and its reference labels (float64 tensors)."""

    species: torch.Tensor      # int64 [N], indices into the model's elements
    edge_index: torch.Tensor   # int64 [2, E]
    offsets: torch.Tensor      # [E, 3] = shifts @ cell (Å)
    positions: torch.Tensor    # [N, 3] (Å)
    energy: float              # E − Σ reference energies (eV); nan if unknown
    forces: torch.Tensor | None  # [N, 3] (eV/Å)
    name: str
    weight: float = 1.0        # the structure's weight in the loss (``atoms.info["weight"]``)
    use_forces: bool = True    # whether the forces enter the training loss
    stress: torch.Tensor | None = None  # [3, 3] (eV/Å³, ASE's sign), periodic cells only
    volume: float = float("nan")  # Å³ (periodic cells)
    G: torch.Tensor | None = None  # cached descriptors [N, F] for energy-only loss terms
    J: torch.Tensor | None = None  # cached ∂G/∂x [N·3, N·F] (see train.cache_jacobians)

    @property
    def n_atoms(self) -> int:
        return len(self.species)


def build_graph(atoms, elements, cutoff: float, reference_energies=None, dtype=torch.float64, name: str = "") -> Graph:
    index = {s: k for k, s in enumerate(elements)}
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(index))
    if unknown:
        raise DataError(f"{name or 'structure'}: element(s) {unknown} not in the model's elements {list(elements)}")
    species = torch.tensor([index[s] for s in symbols], dtype=torch.int64)
    positions = torch.tensor(atoms.get_positions(), dtype=dtype)
    cell = torch.tensor(np.asarray(atoms.get_cell()), dtype=dtype)
    pbc = torch.tensor(np.asarray(atoms.get_pbc(), dtype=bool))
    edge_index, shifts = neighbor_list_tensors(positions, cell, pbc, cutoff)
    energy = reference_energy(atoms)
    if energy is None:
        energy = float("nan")
    elif reference_energies is not None:
        energy -= float(np.sum(np.asarray(reference_energies)[species.numpy()]))
    forces = reference_forces(atoms)
    stress = reference_stress(atoms)
    return Graph(species, edge_index, shifts.to(dtype) @ cell, positions, float(energy),
                 None if forces is None else torch.tensor(forces, dtype=dtype), name or source_of(atoms, ""),
                 structure_weight(atoms), stress=None if stress is None else torch.tensor(stress, dtype=dtype),
                 volume=float(atoms.get_volume()) if atoms.pbc.all() else float("nan"))


def structure_weight(atoms) -> float:
    """The structure's weight in the training loss: ``atoms.info["weight"]`` (≥ 0, default 1)."""
    return float(atoms.info.get("weight", 1.0))


@dataclass
class Batch:
    """Several graphs as one: atoms concatenated, edges offset, ``structure`` maps atom → structure."""

    species: torch.Tensor
    edge_index: torch.Tensor
    offsets: torch.Tensor
    positions: torch.Tensor
    structure: torch.Tensor     # int64 [N_total]
    n_atoms: torch.Tensor       # float64 [B]
    energy: torch.Tensor        # float64 [B] (eV, reference energies removed)
    forces: torch.Tensor | None  # [N_total, 3] or None if any graph lacks forces
    n_structures: int
    weight: torch.Tensor        # float64 [B]: each structure's weight in the loss
    stress: torch.Tensor | None = None  # [B, 3, 3] (eV/Å³) or None if any graph lacks a stress
    volume: torch.Tensor | None = None  # float64 [B] (Å³; NaN for non-periodic structures)

    def edge_vec(self, positions: torch.Tensor, strain: torch.Tensor | None = None) -> torch.Tensor:
        """x_j − x_i + S·cell per edge (Å); with ``strain`` [B, 3, 3] (symmetric, per structure) the
        homogeneously deformed vectors v·(1 + ε), so ∂E/∂ε is the strain derivative of each structure."""
        vec = positions[self.edge_index[1]] - positions[self.edge_index[0]] + self.offsets
        if strain is None:
            return vec
        return vec + torch.bmm(vec.unsqueeze(1), strain[self.structure[self.edge_index[0]]]).squeeze(1)


def collate(graphs: list[Graph]) -> Batch:
    counts = torch.tensor([g.n_atoms for g in graphs], dtype=torch.int64)
    start = torch.cumsum(counts, 0) - counts
    edge_index = torch.cat([g.edge_index + s for g, s in zip(graphs, start.tolist())], dim=1)
    has_forces = all(g.forces is not None for g in graphs)
    has_stress = all(g.stress is not None for g in graphs)
    return Batch(
        species=torch.cat([g.species for g in graphs]),
        edge_index=edge_index,
        offsets=torch.cat([g.offsets for g in graphs]),
        positions=torch.cat([g.positions for g in graphs]),
        structure=torch.repeat_interleave(torch.arange(len(graphs)), counts),
        n_atoms=counts.to(torch.float64),
        energy=torch.tensor([g.energy for g in graphs], dtype=torch.float64),
        forces=torch.cat([g.forces for g in graphs]) if has_forces else None,
        n_structures=len(graphs),
        weight=torch.tensor([g.weight for g in graphs], dtype=torch.float64),
        stress=torch.stack([g.stress for g in graphs]) if has_stress else None,
        volume=torch.tensor([g.volume for g in graphs], dtype=torch.float64),
    )


def descriptor_statistics(descriptor_fn, graphs: list[Graph], n_elements: int, chunk: int = 64):
    """Per-element mean, std, min and max of every descriptor over ``graphs`` (float64 [n_el, F]).

    ``descriptor_fn(species, edge_index, edge_vec, n_local) -> G``. Elements absent from the data get
    mean 0, std 1 and an empty range (min = +inf, max = −inf).
    """
    sums = sq = lo = hi = None
    counts = torch.zeros(n_elements, dtype=torch.float64)
    with torch.no_grad():
        for k in range(0, len(graphs), chunk):
            b = collate(graphs[k:k + chunk])
            G = descriptor_fn(b.species, b.edge_index, b.edge_vec(b.positions), len(b.species)).double()
            if sums is None:
                F = G.shape[1]
                sums = torch.zeros(n_elements, F, dtype=torch.float64)
                sq = torch.zeros_like(sums)
                lo = torch.full_like(sums, float("inf"))
                hi = torch.full_like(sums, float("-inf"))
            for e in range(n_elements):
                g = G[b.species == e]
                if len(g):
                    counts[e] += len(g)
                    sums[e] += g.sum(0)
                    sq[e] += (g * g).sum(0)
                    lo[e] = torch.minimum(lo[e], g.min(0).values)
                    hi[e] = torch.maximum(hi[e], g.max(0).values)
    n = counts.clamp(min=1)[:, None]
    mean = sums / n
    std = (sq / n - mean**2).clamp(min=0).sqrt()
    std = torch.where(std > 1e-8 * (1 + mean.abs()), std, torch.ones_like(std))
    return mean, std, lo, hi
