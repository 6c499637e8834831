"""Behler–Parrinello atom-centred symmetry functions (J. Chem. Phys. 134, 074711 (2011)).

    G2_i = Σ_j exp(−η (r_ij − R_s)²) f_c(r_ij)                                   one block per element of j
    G4_i = 2^{1−ζ} Σ_{j<k} (1 + λ cos θ_ijk)^ζ e^{−η (r_ij² + r_ik² + r_jk²)} f_c(r_ij) f_c(r_ik) f_c(r_jk)
    G5_i = 2^{1−ζ} Σ_{j<k} (1 + λ cos θ_ijk)^ζ e^{−η (r_ij² + r_ik²)} f_c(r_ij) f_c(r_ik)

G4/G5 have one block per unordered element pair of (j, k), and each unordered neighbour pair is
counted once (dscribe's convention). η in Å⁻², R_s and the cutoff in Å, ζ ≥ 1, λ = ±1.

Feature order: G2 blocks by element (model order), each over its (η, R_s); then G4 blocks by
element pair (0,0), (0,1), …, (0,n−1), (1,1), …, each over its (η, ζ, λ); then G5 likewise.
"""

from __future__ import annotations

from itertools import combinations_with_replacement

import numpy as np
import torch

from xtalnn.descriptors.base import CUTOFF_FUNCTIONS, Descriptor, cutoff_function, triplets


def _as_rows(params, width: int, name: str) -> np.ndarray:
    rows = np.asarray(params if params is not None else [], dtype=float).reshape(-1, width)
    if not np.all(np.isfinite(rows)):
        raise ValueError(f"{name} parameters contain NaN or inf")
    return rows


class ACSF(Descriptor):
    """ACSF descriptor.

    Parameters
    ----------
    elements : element symbols in model order.
    cutoff : cutoff radius r_c (Å).
    g2 : rows (η [Å⁻²], R_s [Å]).
    g4, g5 : rows (η [Å⁻²], ζ, λ).
    cutoff_function : ``"cosine"`` (default) or ``"polynomial"``.
    """

    op_name = "acsf"

    def __init__(self, elements, cutoff: float, g2=None, g4=None, g5=None, cutoff_function: str = "cosine"):
        super().__init__(elements, cutoff_function)
        if not (np.isfinite(cutoff) and cutoff > 0):
            raise ValueError(f"cutoff must be a positive number of Å, got {cutoff}")
        self._cutoff = float(cutoff)
        self.g2 = _as_rows(g2, 2, "g2")
        self.g4 = _as_rows(g4, 3, "g4")
        self.g5 = _as_rows(g5, 3, "g5")
        for name, rows in (("g2", self.g2[:, :1]), ("g4", self.g4[:, :1]), ("g5", self.g5[:, :1])):
            if np.any(rows < 0):
                raise ValueError(f"{name}: η must be >= 0")
        for name, rows in (("g4", self.g4), ("g5", self.g5)):
            if len(rows) and np.any(rows[:, 1] < 1):
                raise ValueError(f"{name}: ζ must be >= 1")
            if len(rows) and not np.all(np.isin(rows[:, 2], (-1.0, 1.0))):
                raise ValueError(f"{name}: λ must be +1 or -1")
        if len(self.g2) + len(self.g4) + len(self.g5) == 0:
            raise ValueError("ACSF needs at least one G2, G4 or G5 function")
        self.register_buffer("_spec", self._build_spec(), persistent=False)

    @classmethod
    def default(
        cls,
        elements,
        cutoff: float = 6.5,
        n_radial: int = 8,
        n_angular_eta: int = 3,
        zetas=(1.0, 2.0, 4.0),
        angular: str = "g5",
        r_min: float = 0.8,
        cutoff_function: str = "cosine",
    ) -> "ACSF":
        """A sensible parameter set from the cutoff alone.

        Radial: ``n_radial`` Gaussians with centres R_s evenly spaced on [r_min, r_c − Δ] and width
        σ = Δ (η = 1/(2Δ²)), Δ the spacing. Angular (``g4``, ``g5`` or ``both``): centred
        Gaussians with σ = r_c / k, k = 1 … n_angular_eta, each with every ζ in ``zetas`` and λ = ±1.
        For Ti/O at 6.5 Å the defaults give 2·8 + 3·18 = 70 features.
        """
        if angular not in ("g4", "g5", "both"):
            raise ValueError(f"angular must be 'g4', 'g5' or 'both', got {angular!r}")
        spacing = (cutoff - r_min) / n_radial
        centres = r_min + spacing * np.arange(n_radial)
        g2 = [(1.0 / (2.0 * spacing**2), rs) for rs in centres]
        etas = [1.0 / (2.0 * (cutoff / k) ** 2) for k in range(1, n_angular_eta + 1)]
        ang = [(eta, zeta, lam) for eta in etas for zeta in zetas for lam in (1.0, -1.0)]
        return cls(
            elements,
            cutoff,
            g2=g2,
            g4=ang if angular in ("g4", "both") else None,
            g5=ang if angular in ("g5", "both") else None,
            cutoff_function=cutoff_function,
        )

    # -- description ---------------------------------------------------------------------------
    @property
    def cutoff(self) -> float:
        return self._cutoff

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(combinations_with_replacement(range(len(self.elements)), 2))

    @property
    def n_features(self) -> int:
        n = len(self.elements)
        return n * len(self.g2) + len(self.pairs) * (len(self.g4) + len(self.g5))

    def feature_labels(self) -> list[str]:
        el = self.elements
        labels = [f"G2[{e}](eta={eta:g},rs={rs:g})" for e in el for eta, rs in self.g2]
        for kind, rows in (("G4", self.g4), ("G5", self.g5)):
            labels += [
                f"{kind}[{el[a]}-{el[b]}](eta={eta:g},zeta={zeta:g},lambda={lam:+g})"
                for a, b in self.pairs
                for eta, zeta, lam in rows
            ]
        return labels

    def _build_spec(self) -> torch.Tensor:
        head = [len(self.elements), self._cutoff, CUTOFF_FUNCTIONS[self.cutoff_function],
                len(self.g2), len(self.g4), len(self.g5)]
        body = np.concatenate([self.g2.ravel(), self.g4.ravel(), self.g5.ravel()])
        return torch.tensor(np.concatenate([head, body]), dtype=torch.float64)

    def spec(self) -> torch.Tensor:
        return self._spec

    # -- the pure-torch twin -------------------------------------------------------------------
    def torch_forward(self, species, edge_index, edge_vec, n_local: int) -> torch.Tensor:
        dtype, device = edge_vec.dtype, edge_vec.device
        n_el, F = len(self.elements), self.n_features
        n2, n4, n5 = len(self.g2), len(self.g4), len(self.g5)
        off4 = n_el * n2
        off5 = off4 + len(self.pairs) * n4
        rc = self._cutoff
        G = torch.zeros(n_local * F, dtype=dtype, device=device)

        r = torch.linalg.norm(edge_vec, dim=1)
        mask = r < rc
        centre, neighbour = edge_index[0], edge_index[1]
        fc = torch.where(mask, cutoff_function(torch.where(mask, r, 0.0), rc, self.cutoff_function), 0.0)
        s_j = species[neighbour]

        if n2:
            g2 = torch.as_tensor(self.g2, dtype=dtype, device=device)
            val = torch.exp(-g2[:, 0] * (r[:, None] - g2[:, 1]) ** 2) * fc[:, None]  # [E, n2]
            col = (s_j * n2)[:, None] + torch.arange(n2, device=device)
            G.index_add_(0, (centre[:, None] * F + col).flatten(), val.flatten())

        if n4 + n5:
            a, b = triplets(edge_index, mask, n_local)
            ra, rb = r[a], r[b]
            cos = (edge_vec[a] * edge_vec[b]).sum(1) / (ra * rb)
            sa, sb = torch.minimum(s_j[a], s_j[b]), torch.maximum(s_j[a], s_j[b])
            channel = sa * n_el - sa * (sa - 1) // 2 + (sb - sa)
            ci = centre[a]
            for rows, offset, with_rjk in ((self.g4, off4, True), (self.g5, off5, False)):
                if not len(rows):
                    continue
                p = torch.as_tensor(rows, dtype=dtype, device=device)
                eta, zeta, lam = p[:, 0], p[:, 1], p[:, 2]
                r2 = ra**2 + rb**2
                radial = fc[a] * fc[b]
                if with_rjk:
                    rab = torch.linalg.norm(edge_vec[b] - edge_vec[a], dim=1)
                    inside = rab < rc
                    fcab = torch.where(inside, cutoff_function(torch.where(inside, rab, 0.0), rc,
                                                               self.cutoff_function), 0.0)
                    r2 = r2 + rab**2
                    radial = radial * fcab
                base = (1.0 + lam * cos[:, None]).clamp(min=0.0)  # collinear triplets: rounding past ±1
                val = (2.0 ** (1.0 - zeta)) * base**zeta \
                    * torch.exp(-eta * r2[:, None]) * radial[:, None]
                col = offset + (channel * len(rows))[:, None] + torch.arange(len(rows), device=device)
                G.index_add_(0, (ci[:, None] * F + col).flatten(), val.flatten())
        return G.view(n_local, F)
