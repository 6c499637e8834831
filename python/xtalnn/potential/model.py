"""The potential as one TorchScript-able module: descriptor op → per-element scaling → per-element MLP.

Contract of the scripted module (what ``xtalnn.potential.calculator`` and the LAMMPS pair style call)::

    forward(species: int64[N], edge_index: int64[2, E], edge_vec: float64[E, 3], n_local: int)
        -> atomic_energy: float64[n_local]   (eV, reference energies included; E = Σ_i atomic_energy[i])

- ``species``: indices into ``model.elements`` for all N atoms (local atoms first, then ghosts);
- ``edge_index[0]`` centres (< n_local), ``edge_index[1]`` neighbours (< N); every neighbour within
  ``model.cutoff`` (Å) of a local centre must be listed (full list, both directions for local pairs);
- ``edge_vec = x_j − x_i (+ S·cell)`` in Å, float64. Forces and virial follow by autograd:
  F = −∂E/∂x, and for LAMMPS g_e = ∂E/∂edge_vec_e gives f_i += g_e, f_j −= g_e, virial −Σ_e edge_vec_e ⊗ g_e.

Also exported: ``descriptors(species, edge_index, edge_vec, n_local) -> G[n_local, F]``,
``atomic_energies(species_local, G)`` and ``extrapolating(species_local, G, tolerance) -> bool[n_local]``
(the one extrapolation rule: ``G`` outside ``descriptor_min`` / ``descriptor_max``, per element
[n_elements, F], the training-set range), so callers flag extrapolating atoms without a second op call.
The ASE calculator and the LAMMPS pair style read the module's attributes and call these methods,
both the same way.
Attributes: ``elements`` (List[str]), ``cutoff`` (Å), ``format_version``, ``descriptor_kind``
("acsf" | "chebyshev"), ``n_members``; buffers ``spec`` (the op's float64 parameter vector),
``shift``/``scale`` (G_scaled = (G − shift) / scale, per element), ``reference_energies`` (eV per
element, float64).

Committees (``n_members`` = M > 1, ``xtalnn train --committee M``): M networks per element over one
descriptor pass, their weights stacked ([M, out, in] per layer) so the M members of one element run as
one matrix product per layer. ``atomic_energies``/``forward`` give the committee mean;
``member_energies(species_local, G) -> [M, n_local]`` (eV) each member's atomic energies, from which
callers take the spread (energy standard deviation, DP-GEN's force deviation). A single model is a
committee of one; files written before committees (no ``n_members``, no ``member_energies``) are
read as one member. The contract above is unchanged, so readers that know nothing of committees
get the mean.
"""


from typing import List

import torch
from torch import nn

FORMAT_VERSION = 2  # 2: the extrapolation rule is a method of the file (``extrapolating``)

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "prelu": nn.PReLU,
    "silu": nn.SiLU,
}


class MemberLinear(nn.Module):
    """M independent ``nn.Linear`` layers applied at once: ``weight`` [M, out, in], ``bias`` [M, out].

    Input [n, in] (the same scaled descriptors for every member: one [n, in] × [in, M·out] product) or
    [M, n, in] (one batched product); output [M, n, out].
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        M, n_out, n_in = self.weight.shape
        if x.dim() == 2:
            y = torch.mm(x, self.weight.reshape(M * n_out, n_in).t()).view(x.shape[0], M, n_out)
            return (y + self.bias).transpose(0, 1)
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class MemberPReLU(nn.Module):
    """``nn.PReLU`` with one slope per member: ``weight`` [M, 1]; input and output [M, n, h]."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, self.weight.unsqueeze(-1) * x)


def stack_members(networks) -> nn.Sequential:
    """One network of M members from M ``nn.Sequential`` MLPs of the same shape (see :func:`mlp`)."""
    layers: list[nn.Module] = []
    for parts in zip(*networks):
        first = parts[0]
        if isinstance(first, nn.Linear):
            layers.append(MemberLinear(torch.stack([p.weight.detach() for p in parts]),
                                       torch.stack([p.bias.detach() for p in parts])))
        elif isinstance(first, nn.PReLU):
            layers.append(MemberPReLU(torch.stack([p.weight.detach() for p in parts])))
        else:
            layers.append(type(first)())
    return nn.Sequential(*layers).double()


def mlp(n_in: int, hidden, activation: str) -> nn.Sequential:
    """n_in → hidden[0] → … → 1, the activation after every hidden layer (float64)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        if int(h) < 1:
            raise ValueError(f"hidden layer sizes must be positive integers, got {list(hidden)}")
        layers += [nn.Linear(width, int(h)), ACTIVATIONS[activation]()]
        width = int(h)
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers).double()


class Potential(nn.Module):
    """E = Σ_i [ MLP_{s_i}((G_i − shift_{s_i}) / scale_{s_i}) + e_ref(s_i) ], all in float64; with
    ``n_members`` = M > 1 the MLP term is the mean of M member networks (a committee)."""

    format_version: int
    elements: List[str]
    cutoff: float
    descriptor_kind: str
    n_members: int

    def __init__(self, elements, descriptor_kind: str, spec, cutoff: float, hidden=(10, 10),
                 activation: str = "tanh", shift=None, scale=None, reference_energies=None,
                 descriptor_min=None, descriptor_max=None, n_features: int | None = None, n_members: int = 1):
        super().__init__()
        if descriptor_kind not in ("acsf", "chebyshev"):
            raise ValueError(f"descriptor_kind must be 'acsf' or 'chebyshev', got {descriptor_kind!r}")
        n_el = len(elements)
        spec = torch.as_tensor(spec, dtype=torch.float64)
        F = int(n_features if n_features is not None else torch.as_tensor(shift).shape[1])

        def table(value, fill):
            if value is None:
                return torch.full((n_el, F), fill, dtype=torch.float64)
            return torch.as_tensor(value, dtype=torch.float64).clone().reshape(n_el, F)

        self.format_version = FORMAT_VERSION
        self.elements = list(elements)
        self.cutoff = float(cutoff)
        self.descriptor_kind = descriptor_kind
        self.hidden = [int(h) for h in hidden]
        self.activation = activation
        self.register_buffer("spec", spec.clone())
        self.register_buffer("shift", table(shift, 0.0))
        self.register_buffer("scale", table(scale, 1.0))
        self.register_buffer("descriptor_min", table(descriptor_min, float("-inf")))
        self.register_buffer("descriptor_max", table(descriptor_max, float("inf")))
        ref = torch.zeros(n_el, dtype=torch.float64) if reference_energies is None else \
            torch.as_tensor(reference_energies, dtype=torch.float64).clone()
        self.register_buffer("reference_energies", ref)
        if int(n_members) < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}")
        self.n_members = int(n_members)
        self.nets = nn.ModuleList([stack_members([mlp(F, self.hidden, activation) for _ in range(self.n_members)])
                                   for _ in range(n_el)])

    @property
    def n_features(self) -> int:
        return int(self.shift.shape[1])

    @torch.jit.export
    def descriptors(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor,
                    n_local: int) -> torch.Tensor:
        """G [n_local, F] from the compiled op."""
        if self.descriptor_kind == "acsf":
            return torch.ops.xtalnn.acsf(species, edge_index, edge_vec, n_local, self.spec)
        return torch.ops.xtalnn.chebyshev(species, edge_index, edge_vec, n_local, self.spec)

    @torch.jit.export
    def member_network_energies(self, species: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """Each member's atomic energies without the reference energies (eV, float64 [M, n]).

        Each element's rows of G are gathered once and scaled with that element's [F] shift and scale
        (broadcast), rather than gathering an [n, F] table of shifts and scales for every atom: on a
        6,000-atom box this halves the network's share of an MD step (it is memory traffic, not flops).
        All M members of an element run as one product per layer (:class:`MemberLinear`).
        """
        out = torch.zeros(self.n_members, species.shape[0], dtype=torch.float64, device=G.device)
        for k, net in enumerate(self.nets):
            index = torch.nonzero(species == k).flatten()
            if index.numel() > 0:
                x = (G.index_select(0, index).to(torch.float64) - self.shift[k]) / self.scale[k]
                out = out.index_add(1, index, net(x).squeeze(-1))
        return out

    @torch.jit.export
    def network_energies(self, species: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """Σ-able atomic energies without the reference energies (eV, float64 [n]): the committee mean."""
        members = self.member_network_energies(species, G)
        return members[0] if self.n_members == 1 else members.mean(0)

    @torch.jit.export
    def atomic_energies(self, species: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """Atomic energies (eV, float64 [n]) including the per-element reference energies (committee mean)."""
        return self.network_energies(species, G) + self.reference_energies[species]

    @torch.jit.export
    def member_energies(self, species: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """Each member's atomic energies (eV, float64 [M, n]) including the reference energies."""
        return self.member_network_energies(species, G) + self.reference_energies[species]

    @torch.jit.export
    def extrapolating(self, species: torch.Tensor, G: torch.Tensor, tolerance: float) -> torch.Tensor:
        """bool [n]: atoms with a descriptor outside the training range widened by ``tolerance`` · (max − min)
        (where that is finite) + 1e-9."""
        width = self.descriptor_max - self.descriptor_min
        slack = tolerance * torch.where(torch.isfinite(width), width, torch.zeros_like(width)) + 1e-9
        lower = (self.descriptor_min - slack).index_select(0, species)
        upper = (self.descriptor_max + slack).index_select(0, species)
        return ((G < lower) | (G > upper)).any(dim=1)

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor,
                n_local: int) -> torch.Tensor:
        G = self.descriptors(species, edge_index, edge_vec.to(torch.float64), n_local)
        return self.atomic_energies(species[:n_local], G)

    def init_args(self) -> dict:
        """Everything ``Potential(**args)`` needs to rebuild this module's shape and buffers."""
        return dict(elements=list(self.elements), descriptor_kind=self.descriptor_kind, spec=self.spec.clone(),
                    cutoff=self.cutoff, hidden=list(self.hidden), activation=self.activation,
                    shift=self.shift.clone(), scale=self.scale.clone(),
                    reference_energies=self.reference_energies.clone(),
                    descriptor_min=self.descriptor_min.clone(), descriptor_max=self.descriptor_max.clone(),
                    n_members=self.n_members)

    @torch.jit.unused
    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict`` that also takes the state of a model written before committees
        (per-layer ``nn.Linear`` weights [out, in], biases [out], PReLU slopes [1]: one member)."""
        return super().load_state_dict(upgrade_state_dict(state_dict), strict, assign)

    @classmethod
    def committee(cls, members) -> "Potential":
        """One committee from models that differ only in their network weights (same elements,
        descriptor, scaling, range and reference energies): their members in order."""
        members = list(members)
        first = members[0]
        states = [upgrade_state_dict(m.state_dict()) for m in members]
        state = {}
        for key, value in states[0].items():
            if key.startswith("nets."):
                state[key] = torch.cat([s[key] for s in states])
            else:
                if any(not torch.equal(s[key], value) for s in states[1:]):
                    raise ValueError(f"committee members differ in {key} (they must share descriptor, scaling, "
                                     "descriptor range and reference energies)")
                state[key] = value
        if any((m.hidden, m.activation, m.elements) != (first.hidden, first.activation, first.elements)
               for m in members):
            raise ValueError("committee members must have the same elements, hidden layers and activation")
        args = {**first.init_args(), "n_members": sum(int(m.n_members) for m in members)}
        model = cls(**args)
        model.load_state_dict(state)
        return model

    def member(self, m: int) -> "Potential":
        """Member ``m`` of the committee as a model of its own (eV, the same descriptor and scaling)."""
        if not 0 <= m < self.n_members:
            raise IndexError(f"member {m} of a committee of {self.n_members}")
        model = Potential(**{**self.init_args(), "n_members": 1})
        state = {k: (v[m:m + 1].clone() if k.startswith("nets.") else v) for k, v in self.state_dict().items()}
        model.load_state_dict(state)
        return model


def upgrade_state_dict(state: dict) -> dict:
    """A state dict with every network tensor in member-stacked form: tensors of models written before
    committees (``nets.<element>.<layer>.…``: ``nn.Linear`` weight [out, in] and bias [out] at even
    layers, ``nn.PReLU`` slope [1] at odd ones) gain a leading member dimension of 1; stacked tensors
    pass unchanged."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "nets" and len(parts) == 4 and isinstance(value, torch.Tensor):
            linear = int(parts[2]) % 2 == 0
            if linear and value.dim() == (2 if parts[3] == "weight" else 1):
                value = value.unsqueeze(0)
            elif not linear and value.dim() == 1:
                value = value.reshape(1, 1)
        out[key] = value
    return out
