"""Chebyshev descriptors (Artrith, Urban & Ceder, Phys. Rev. B 96, 014112 (2017); aenet).

    R_α = Σ_j      T_α(2 r_ij / R_c^rad − 1) f_c(r_ij)             α = 0 … radial_order
    A_α = Σ_{j<k}  T_α(cos θ_ijk) f_c(r_ij) f_c(r_ik)               α = 0 … angular_order

computed once unweighted (the structure) and once with each neighbour weighted by its element's
type spin w_e (w_j for R_α, w_j·w_k for A_α), so the feature count 2(n_r+1) + 2(n_a+1) does not grow
with the number of elements (a single element has only the unweighted half). Default spins follow
aenet: −⌊n/2⌋ … ⌊n/2⌋, skipping 0 when n is even. Cutoffs in Å.

Feature order: R_0…R_nr, A_0…A_na, then weighted R, weighted A.
"""

from __future__ import annotations

import numpy as np
import torch

from xtalnn.descriptors.base import CUTOFF_FUNCTIONS, Descriptor, cutoff_function, triplets


def default_type_spins(n: int) -> list[float]:
    """aenet's type spins: n = 2 → [−1, 1]; n = 3 → [−1, 0, 1]; n = 4 → [−2, −1, 1, 2]."""
    spins = list(range(-(n // 2), n // 2 + 1))
    if n % 2 == 0:
        spins.remove(0)
    return [float(s) for s in spins]


class Chebyshev(Descriptor):
    """Chebyshev descriptor with separate radial and angular cutoffs (Å) and orders."""

    op_name = "chebyshev"

    def __init__(
        self,
        elements,
        radial_cutoff: float,
        radial_order: int,
        angular_cutoff: float,
        angular_order: int,
        cutoff_function: str = "cosine",
        type_spins=None,
    ):
        super().__init__(elements, cutoff_function)
        for name, rc in (("radial_cutoff", radial_cutoff), ("angular_cutoff", angular_cutoff)):
            if not (np.isfinite(rc) and rc > 0):
                raise ValueError(f"{name} must be a positive number of Å, got {rc}")
        for name, order in (("radial_order", radial_order), ("angular_order", angular_order)):
            if int(order) != order or order < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {order}")
        self.radial_cutoff, self.angular_cutoff = float(radial_cutoff), float(angular_cutoff)
        self.radial_order, self.angular_order = int(radial_order), int(angular_order)
        spins = default_type_spins(len(self.elements)) if type_spins is None else [float(s) for s in type_spins]
        if len(spins) != len(self.elements):
            raise ValueError(f"need one type spin per element, got {len(spins)} for {len(self.elements)}")
        self.type_spins = spins
        self.register_buffer("_spec", self._build_spec(), persistent=False)

    @property
    def cutoff(self) -> float:
        return max(self.radial_cutoff, self.angular_cutoff)

    @property
    def weighted(self) -> bool:
        return len(self.elements) > 1

    @property
    def n_features(self) -> int:
        n = self.radial_order + self.angular_order + 2
        return 2 * n if self.weighted else n

    def feature_labels(self) -> list[str]:
        plain = [f"R{k}" for k in range(self.radial_order + 1)] + [f"A{k}" for k in range(self.angular_order + 1)]
        return plain + ([f"w{label}" for label in plain] if self.weighted else [])

    def _build_spec(self) -> torch.Tensor:
        head = [len(self.elements), self.radial_cutoff, self.radial_order, self.angular_cutoff,
                self.angular_order, CUTOFF_FUNCTIONS[self.cutoff_function]]
        return torch.tensor(head + self.type_spins, dtype=torch.float64)

    def spec(self) -> torch.Tensor:
        return self._spec

    # -- the pure-torch twin -------------------------------------------------------------------
    @staticmethod
    def _polynomials(x: torch.Tensor, order: int) -> torch.Tensor:
        """T_0 … T_order at x: [len(x), order + 1]."""
        T = [torch.ones_like(x), x]
        for _ in range(1, order):
            T.append(2.0 * x * T[-1] - T[-2])
        return torch.stack(T[: order + 1], dim=1)

    def torch_forward(self, species, edge_index, edge_vec, n_local: int) -> torch.Tensor:
        dtype, device = edge_vec.dtype, edge_vec.device
        F, nr, na = self.n_features, self.radial_order + 1, self.angular_order + 1
        spins = torch.tensor(self.type_spins, dtype=dtype, device=device)
        G = torch.zeros(n_local, F, dtype=dtype, device=device)
        centre, neighbour = edge_index[0], edge_index[1]
        r = torch.linalg.norm(edge_vec, dim=1)
        w = spins[species[neighbour]]

        inside = r < self.radial_cutoff
        rr = torch.where(inside, r, 0.0)
        fc = torch.where(inside, cutoff_function(rr, self.radial_cutoff, self.cutoff_function), 0.0)
        radial = self._polynomials(2.0 * rr / self.radial_cutoff - 1.0, self.radial_order) * fc[:, None]
        G[:, :nr].index_add_(0, centre, radial)
        if self.weighted:
            G[:, nr + na: 2 * nr + na].index_add_(0, centre, radial * w[:, None])

        inside = r < self.angular_cutoff
        fca = torch.where(inside, cutoff_function(torch.where(inside, r, 0.0), self.angular_cutoff,
                                                  self.cutoff_function), 0.0)
        a, b = triplets(edge_index, inside, n_local)
        cos = (edge_vec[a] * edge_vec[b]).sum(1) / (r[a] * r[b])
        angular = self._polynomials(cos, self.angular_order) * (fca[a] * fca[b])[:, None]
        G[:, nr: nr + na].index_add_(0, centre[a], angular)
        if self.weighted:
            G[:, 2 * nr + na:].index_add_(0, centre[a], angular * (w[a] * w[b])[:, None])
        return G
