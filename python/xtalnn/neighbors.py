"""Periodic neighbour lists (compiled cell list) and edge vectors.

Convention (as ``ase.neighborlist.neighbor_list("ijS", atoms, cutoff)``): for every ordered pair
(i, j) and integer cell shift S with ``|x_j - x_i + S @ cell| < cutoff`` there is one edge; both
directions are listed; edges are sorted by i. Lengths in Å.
"""

from __future__ import annotations

import numpy as np
import torch

from xtalnn.ops import load_library


def check_atoms(atoms) -> None:
    """Raise ``ValueError`` naming the problem for structures no descriptor can be computed on."""
    if len(atoms) == 0:
        raise ValueError("the structure has no atoms")
    positions = atoms.get_positions()
    if not np.all(np.isfinite(positions)):
        bad = np.where(~np.isfinite(positions).all(axis=1))[0]
        raise ValueError(f"positions of atoms {bad.tolist()[:10]} are NaN or inf")
    cell = np.asarray(atoms.get_cell(), dtype=float)
    if not np.all(np.isfinite(cell)):
        raise ValueError("the cell contains NaN or inf")
    pbc = np.asarray(atoms.get_pbc(), dtype=bool)
    lengths = np.linalg.norm(cell, axis=1)
    for axis in np.where(pbc)[0]:
        if lengths[axis] == 0.0:
            raise ValueError(f"cell vector {axis} is zero but the structure is periodic along it")
    if pbc.all() and abs(np.linalg.det(cell)) <= 1e-10 * np.prod(lengths):
        raise ValueError("the cell has zero volume (degenerate lattice vectors)")


OVERLAP = 1e-4
"""Å: atoms (or periodic images) closer than this are one atom written twice, not a structure."""


def check_no_overlap(atoms) -> None:
    """Raise ``ValueError`` naming the first pair of atoms closer than :data:`OVERLAP` (Å). For structures
    read from files (one ASE neighbour list); the calculators' per-step path does not pay for it."""
    from ase.neighborlist import neighbor_list

    i, j = neighbor_list("ij", atoms, OVERLAP)
    if len(i):
        raise ValueError(f"atoms {int(i[0])} and {int(j[0])} overlap (closer than {OVERLAP} Å; "
                         f"{len(i) // 2} such pair(s))")


def neighbor_list_tensors(
    positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor, cutoff: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(edge_index [2, E], shifts [E, 3])`` (int64) from the compiled cell list."""
    load_library()
    if not cutoff > 0:
        raise ValueError(f"cutoff must be a positive number of Å, got {cutoff}")
    return torch.ops.xtalnn.neighbor_list(positions, cell, pbc, float(cutoff), False)


def neighbor_list(atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, S)`` numpy arrays, as ``ase.neighborlist.neighbor_list("ijS", atoms, cutoff)``."""
    check_atoms(atoms)
    edge_index, shifts = neighbor_list_tensors(
        torch.from_numpy(atoms.get_positions()),
        torch.from_numpy(np.asarray(atoms.get_cell(), dtype=float)),
        torch.from_numpy(np.asarray(atoms.get_pbc(), dtype=bool)),
        cutoff,
    )
    return edge_index[0].numpy(), edge_index[1].numpy(), shifts.numpy()


def edge_vectors(
    positions: torch.Tensor, cell: torch.Tensor, edge_index: torch.Tensor, shifts: torch.Tensor
) -> torch.Tensor:
    """r_ij = x_j - x_i + S @ cell  [E, 3] (Å); differentiable in positions and cell."""
    return positions[edge_index[1]] - positions[edge_index[0]] + shifts.to(positions.dtype) @ cell
