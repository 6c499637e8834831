"""What every descriptor shares: species mapping, the op/twin switch, ``compute(atoms)``."""

from __future__ import annotations

import numpy as np
import torch
from ase.data import atomic_numbers

from xtalnn.neighbors import check_atoms, edge_vectors, neighbor_list_tensors
from xtalnn.ops import load_library

CUTOFF_FUNCTIONS = {"cosine": 0, "polynomial": 1}


def cutoff_function(r: torch.Tensor, cutoff: float, kind: str) -> torch.Tensor:
    """f_c(r) for r < cutoff (Å): ``cosine`` ½[cos(πr/r_c)+1] or ``polynomial`` 1−10x³+15x⁴−6x⁵."""
    if kind == "cosine":
        return 0.5 * (torch.cos(r * (torch.pi / cutoff)) + 1.0)
    x = r / cutoff
    return 1.0 + x**3 * (-10.0 + x * (15.0 - 6.0 * x))


class Descriptor(torch.nn.Module):
    """Base class: ``forward(species, edge_index, edge_vec, n_local) -> G [n_local, F]``.

    ``species`` are indices into ``elements`` (model order) for all N atoms; ``edge_index[0]`` are
    centres (< n_local), ``edge_index[1]`` neighbours; ``edge_vec = x_j - x_i (+ shift)`` in Å.
    CPU tensors go through the compiled op (analytic first and second derivatives); other devices,
    or ``backend="torch"``, through the pure-torch twin (autograd).
    """

    op_name: str = ""

    def __init__(self, elements, cutoff_function: str = "cosine"):
        super().__init__()
        elements = list(elements)
        if not elements:
            raise ValueError("a descriptor needs at least one element")
        for symbol in elements:
            if symbol not in atomic_numbers:
                raise ValueError(f"unknown element {symbol!r}")
        if len(set(elements)) != len(elements):
            raise ValueError(f"elements must be distinct, got {elements}")
        if cutoff_function not in CUTOFF_FUNCTIONS:
            raise ValueError(f"cutoff_function must be one of {sorted(CUTOFF_FUNCTIONS)}, got {cutoff_function!r}")
        self.elements = elements
        self.cutoff_function = cutoff_function

    # -- to be provided by subclasses --------------------------------------------------------
    @property
    def cutoff(self) -> float:
        """Largest cutoff radius (Å): the neighbour list must reach it."""
        raise NotImplementedError

    @property
    def n_features(self) -> int:
        raise NotImplementedError

    def feature_labels(self) -> list[str]:
        raise NotImplementedError

    def spec(self) -> torch.Tensor:
        """float64 parameter vector understood by the compiled op."""
        raise NotImplementedError

    def torch_forward(self, species, edge_index, edge_vec, n_local: int) -> torch.Tensor:
        """The pure-torch twin."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def forward(self, species, edge_index, edge_vec, n_local: int, backend: str = "auto") -> torch.Tensor:
        if backend == "torch" or (backend == "auto" and edge_vec.device.type != "cpu"):
            return self.torch_forward(species, edge_index, edge_vec, n_local)
        if backend not in ("auto", "op"):
            raise ValueError(f"backend must be 'auto', 'op' or 'torch', got {backend!r}")
        load_library()
        op = getattr(torch.ops.xtalnn, self.op_name)
        return op(species, edge_index, edge_vec, int(n_local), self.spec())

    def species_of(self, atoms) -> torch.Tensor:
        """Indices of the atoms' elements in ``self.elements``; ValueError for others."""
        index = {symbol: k for k, symbol in enumerate(self.elements)}
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(index))
        if unknown:
            raise ValueError(f"element(s) {unknown} not in this descriptor's elements {self.elements}")
        return torch.tensor([index[s] for s in symbols], dtype=torch.int64)

    def graph(self, atoms, dtype=torch.float64):
        """``(species, edge_index, shifts, positions, cell)`` tensors of a structure."""
        check_atoms(atoms)
        species = self.species_of(atoms)
        positions = torch.tensor(atoms.get_positions(), dtype=dtype)
        cell = torch.tensor(np.asarray(atoms.get_cell()), dtype=dtype)
        pbc = torch.tensor(np.asarray(atoms.get_pbc(), dtype=bool))
        edge_index, shifts = neighbor_list_tensors(positions, cell, pbc, self.cutoff)
        return species, edge_index, shifts, positions, cell

    def compute(self, atoms, backend: str = "auto") -> np.ndarray:
        """Descriptors of every atom, float64 numpy array [N, F]."""
        species, edge_index, shifts, positions, cell = self.graph(atoms)
        vec = edge_vectors(positions, cell, edge_index, shifts)
        with torch.no_grad():
            G = self.forward(species, edge_index, vec, len(atoms), backend=backend)
        return G.numpy()

    def extra_repr(self) -> str:
        return f"elements={self.elements}, cutoff={self.cutoff}, n_features={self.n_features}"


def triplets(edge_index: torch.Tensor, mask: torch.Tensor, n_local: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs (a, b), a < b, of selected edges sharing a centre (each unordered pair once).

    Returns two index tensors into the edge list. Memory is O(number of pairs).
    """
    edges = torch.nonzero(mask).flatten()
    centre = edge_index[0, edges]
    order = torch.argsort(centre, stable=True)
    edges, centre = edges[order], centre[order]
    counts = torch.bincount(centre, minlength=n_local)
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(len(edges), device=edges.device) - start[centre]
    n_after = counts[centre] - 1 - local
    first = torch.repeat_interleave(torch.arange(len(edges), device=edges.device), n_after)
    seg_start = torch.cumsum(n_after, 0) - n_after
    offset = torch.arange(len(first), device=edges.device) - torch.repeat_interleave(seg_start, n_after)
    second = first + 1 + offset
    return edges[first], edges[second]
