"""Networks mapping element-fraction vectors to formation enthalpy (eV/atom).

Every model takes ``fractions: float32[N, n_elements]`` (rows sum to 1, columns ordered as the model's
element list) and returns ``float32[N, K]``: K predictions in eV/atom per composition (K = 1 for a single
network, K = number of members for an :class:`Ensemble`). All are TorchScript-compatible.

- :class:`SeedNet`: the seed paper's dense network (128, 128, dropout, 64, 64, 32, 1; ReLU).
- :class:`AttentionNet`: the default. Each element present is a token (learned embedding + projected
  physical properties + fraction encoding); fraction-weighted multi-head self-attention (as in Roost,
  attention weights w_j exp(e_ij) / Σ_k w_k exp(e_ik)) updates the tokens; a fraction-weighted attention
  pooling plus fraction-weighted statistics of the physical properties feed a residual MLP head.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TargetScale(nn.Module):
    """Affine map from a network's standardised output to eV/atom."""

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean


class SeedNet(nn.Module):
    """Dense network on element fractions: 128, 128, dropout, 64, 64, 32, 1 with ReLU."""

    def __init__(self, n_elements: int, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_elements, 128), nn.ReLU(),
            nn.Linear(128, 128), nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, 64), nn.ReLU(),
            nn.Linear(64, 64), nn.ReLU(),
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, 1),
        )  # fmt: skip
        self.scale = TargetScale()

    def forward(self, fractions: Tensor) -> Tensor:
        return self.scale(self.net(fractions))


def composition_tokens(fractions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Element indices ``[N, M]``, fractions ``[N, M]`` and mask ``[N, M]`` of the present elements.

    M is the largest number of elements in any row; padding slots have fraction 0 and mask False.
    """
    m = int((fractions > 0).sum(dim=1).max().item()) if fractions.shape[0] > 0 else 1
    m = max(m, 1)
    weights, index = torch.topk(fractions, m, dim=1)
    mask = weights > 0
    return index, weights, mask


class WeightedSelfAttention(nn.Module):
    """Multi-head self-attention whose softmax is weighted by the partner's atomic fraction."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, h: Tensor, log_w: Tensor) -> Tensor:
        n, m, d = h.shape
        qkv = self.qkv(h).view(n, m, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [N, H, M, hd]
        logits = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        attn = torch.softmax(logits + log_w[:, None, None, :], dim=-1)
        y = torch.matmul(attn, v).transpose(1, 2).reshape(n, m, d)
        return self.out(y)


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer: weighted self-attention and a feed-forward block, both residual."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WeightedSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, h: Tensor, log_w: Tensor) -> Tensor:
        h = h + self.attn(self.norm1(h), log_w)
        return h + self.ff(self.norm2(h))


class ResidualBlock(nn.Module):
    """x + W2 σ(W1 LN(x))."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class AttentionNet(nn.Module):
    """Roost-style attention over element tokens (the default architecture).

    ``element_features`` is the standardised ``[n_elements, P]`` property table
    (:func:`xtalnn.enthalpy.features.element_property_table`); it is stored in the model.
    """

    def __init__(
        self,
        element_features: Tensor,
        dim: int = 64,
        heads: int = 4,
        layers: int = 3,
        head_dim: int = 256,
        head_blocks: int = 2,
        dropout: float = 0.05,
    ):
        super().__init__()
        n_elements, n_props = element_features.shape
        self.register_buffer("element_features", element_features.float().clone())
        self.embedding = nn.Embedding(n_elements, dim)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.property_proj = nn.Linear(n_props, dim)
        self.fraction_enc = nn.Sequential(nn.Linear(2, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.layers = nn.ModuleList([EncoderLayer(dim, heads, 2 * dim) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.gate = nn.Linear(dim, 1)
        self.value = nn.Linear(dim, dim)
        n_in = 2 * dim + 4 * n_props
        self.head_in = nn.Linear(n_in, head_dim)
        self.head = nn.Sequential(*[ResidualBlock(head_dim, dropout) for _ in range(head_blocks)])
        self.head_out = nn.Sequential(nn.LayerNorm(head_dim), nn.SiLU(), nn.Linear(head_dim, 1))
        self.scale = TargetScale()

    def forward(self, fractions: Tensor) -> Tensor:
        index, w, mask = composition_tokens(fractions)
        log_w = torch.log(w.clamp_min(1e-12)).masked_fill(~mask, -1e9)
        props = self.element_features[index]  # [N, M, P]
        frac_in = torch.stack([w, torch.log(w.clamp_min(1e-6)) / 5.0], dim=-1)
        h = self.embedding(index) + self.property_proj(props) + self.fraction_enc(frac_in)
        for layer in self.layers:
            h = layer(h, log_w)
        h = self.norm(h)
        # fraction-weighted attention pooling and fraction-weighted mean
        a = torch.softmax(self.gate(h).squeeze(-1) + log_w, dim=1)
        pooled = (a.unsqueeze(-1) * self.value(h)).sum(dim=1)
        wsum = w.unsqueeze(-1)
        mean_h = (wsum * h).sum(dim=1)
        # fraction-weighted statistics of the physical properties
        p_mean = (wsum * props).sum(dim=1)
        p_std = torch.sqrt(((wsum * (props - p_mean.unsqueeze(1)) ** 2).sum(dim=1)).clamp_min(1e-8))
        big = 1e4
        p_max = props.masked_fill(~mask.unsqueeze(-1), -big).max(dim=1).values
        p_min = props.masked_fill(~mask.unsqueeze(-1), big).min(dim=1).values
        x = torch.cat([pooled, mean_h, p_mean, p_std, p_max, p_min], dim=1)
        y = self.head_out(self.head(self.head_in(x)))
        return self.scale(y)


class Ensemble(nn.Module):
    """Several members evaluated together; output ``[N, K]``, one column per member (eV/atom)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, fractions: Tensor) -> Tensor:
        outs: list[Tensor] = []
        for member in self.members:
            outs.append(member(fractions))
        return torch.cat(outs, dim=1)
