"""The training loss and the derivative caches that make it cheap.

loss = RMSE(ΔE / n_atoms) [eV/atom] + w_F · RMSE(ΔF) [eV/Å] + w_S · RMSE(Δσ · V / n_atoms) [eV/atom];
forces are −∂E/∂x and the stress σ = (1/V) ∂E/∂ε (ASE's sign, eV/Å³) by autograd through the
descriptor op (``create_graph=True``: the op's double backward gives the weight gradient of the
force and stress terms). The stress term compares the virial per atom (σV/n, eV/atom, the scale of
the energy term), over the 9 components of the structures that have a stress. Energy-only structures keep their descriptors (:func:`cache_descriptors`); small
periodic force structures keep their dense position Jacobian (:func:`cache_jacobians`), so their
forces cost one matrix product per epoch and no descriptor call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xtalnn.potential import data as D


def predict_with_stress(model, batch: D.Batch, forces: bool = True, stress: bool = True, create_graph: bool = False,
                        descriptor_fn=None):
    """Structure energies without reference energies (eV, float64 [B]), forces (eV/Å) or None, and the
    stress σ = (1/V) ∂E/∂ε (eV/Å³, [B, 3, 3], ASE's sign: positive under tension) or None. The strain
    ε is symmetric, one per structure, applied to every edge vector (positions and cell alike)."""
    positions = batch.positions.detach().clone().requires_grad_(forces)
    strain = torch.zeros(batch.n_structures, 3, 3, dtype=torch.float64, requires_grad=True) if stress else None
    edge_vec = batch.edge_vec(positions, None if strain is None else 0.5 * (strain + strain.transpose(1, 2)))
    fn = descriptor_fn if descriptor_fn is not None else model.descriptors
    G = fn(batch.species, batch.edge_index, edge_vec, int(batch.species.shape[0]))
    atomic = model.network_energies(batch.species, G)
    energy = torch.zeros(batch.n_structures, dtype=torch.float64).index_add(0, batch.structure, atomic)
    inputs = ([positions] if forces else []) + ([strain] if stress else [])
    grads = torch.autograd.grad(energy.sum(), inputs, create_graph=create_graph) if inputs else []
    F = -grads[0] if forces else None
    S = grads[-1] / batch.volume[:, None, None] if stress else None
    return energy, F, S


def predict(model, batch: D.Batch, forces: bool = True, create_graph: bool = False, descriptor_fn=None):
    """Structure energies without reference energies (eV, float64 [B]) and forces (eV/Å) or None."""
    return predict_with_stress(model, batch, forces, False, create_graph, descriptor_fn)[:2]


def loss_terms(batch: D.Batch, energy, forces, stress=None):
    """(Σ w (ΔE/n)², Σ w, Σ w ΔF², Σ w · force components, Σ w (Δσ V/n)², Σ w · 9) for one batch, w the
    structures' weights; the force and stress sums are None (and their counts 0) without them."""
    w = batch.weight
    e2 = (w * ((energy - batch.energy) / batch.n_atoms) ** 2).sum()
    f2, n_f, s2, n_s = None, 0, None, 0
    if forces is not None and batch.forces is not None:
        w_atom = w[batch.structure]
        f2 = (w_atom[:, None] * (forces - batch.forces) ** 2).sum()
        n_f = 3 * float(w_atom.sum())
    if stress is not None and batch.stress is not None:
        per_atom = (batch.volume / batch.n_atoms)[:, None, None]
        s2 = (w[:, None, None] * ((stress - batch.stress) * per_atom) ** 2).sum()
        n_s = 9 * float(w.sum())
    return e2, float(w.sum()), f2, n_f, s2, n_s


def _total_loss(e2, n_e, f2, n_f, s2, n_s, force_weight: float, stress_weight: float):
    """RMSE(ΔE/n) + w_F·RMSE(ΔF) + w_S·RMSE(ΔσV/n) from the weighted sums of :func:`loss_terms`."""
    loss = torch.sqrt(e2 / max(n_e, 1e-12) + 1e-14)
    if f2 is not None:
        loss = loss + force_weight * torch.sqrt(f2 / max(n_f, 1e-12) + 1e-14)
    if s2 is not None:
        loss = loss + stress_weight * torch.sqrt(s2 / max(n_s, 1e-12) + 1e-14)
    return loss


def _detached(x):
    return None if x is None else x.detach()


def batch_loss(model, batch, force_weight: float, descriptor_fn=None, stress_weight: float = 0.0):
    """``(loss, e2, n_e, f2, n_f, s2, n_s)`` with loss = RMSE(ΔE/n) + w_F·RMSE(ΔF) + w_S·RMSE(ΔσV/n), all
    weighted by the structures' weights (:attr:`~xtalnn.potential.data.Graph.weight`)."""
    use_forces = force_weight > 0 and batch.forces is not None
    use_stress = stress_weight > 0 and batch.stress is not None
    energy, forces, stress = predict_with_stress(model, batch, use_forces, use_stress, use_forces or use_stress,
                                                 descriptor_fn)
    e2, n_e, f2, n_f, s2, n_s = loss_terms(batch, energy, forces, stress)
    loss = _total_loss(e2, n_e, f2, n_f, s2, n_s, force_weight, stress_weight)
    return loss, e2.detach(), n_e, _detached(f2), n_f, _detached(s2), n_s


def dense_position_jacobian(edge_index: torch.Tensor, J: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """∂G_i/∂x_k of one structure as a matrix [n·3, n·F] (row k·3 + c, column i·F + f) from the edge
    derivatives J [E, F, 3] = ∂G_centre/∂edge_vec, with edge_vec = x_j − x_i + S·cell: every edge
    i→j adds J_e to ∂G_i/∂x_j and subtracts it from ∂G_i/∂x_i (periodic images of one pair add up)."""
    centre, neighbour = edge_index
    n, F = n_atoms, J.shape[1]
    K = torch.zeros(n * n, F, 3, dtype=J.dtype)
    K.index_add_(0, centre * n + neighbour, J)
    K.index_add_(0, centre * n + centre, -J)
    return K.view(n, n, F, 3).permute(1, 3, 0, 2).reshape(n * 3, n * F)


def cache_jacobians(model, graphs: list, chunk: int = 32, max_bytes: float = 4e9) -> int:
    """Store G and the dense position Jacobian ∂G/∂x [n·3, n·F] (:func:`dense_position_jacobian`) of
    each graph whose dense form is no larger than its edge form (n² ≤ edges: small periodic cells,
    where one atom pair has many images); forces then cost one matrix-vector product per structure
    and no descriptor call: F = −(∂E/∂G)·∂G/∂x. The edge derivatives come from the op's backward,
    one vector-Jacobian product per feature. At most ``max_bytes`` are kept. Returns the number of
    graphs cached; the others keep ``J = None`` and go through the op's double backward."""
    todo, total = [], 0
    n_features = int(model.n_features)
    for g in graphs:
        size = 8 * 3 * n_features * g.n_atoms ** 2
        if g.n_atoms ** 2 <= g.edge_index.shape[1] and total + size <= max_bytes:
            todo.append(g)
            total += size
    for k in range(0, len(todo), chunk):
        part = todo[k:k + chunk]
        b = D.collate(part)
        vec = b.edge_vec(b.positions).detach().requires_grad_(True)
        G = model.descriptors(b.species, b.edge_index, vec, int(b.species.shape[0]))
        J = torch.empty(vec.shape[0], G.shape[1], 3, dtype=torch.float64)
        for f in range(G.shape[1]):
            seed = torch.zeros_like(G)
            seed[:, f] = 1.0
            (J[:, f, :],) = torch.autograd.grad(G, vec, seed, retain_graph=f < G.shape[1] - 1)
        G = G.detach()
        for g, g_block, j_block in zip(part, torch.split(G, [x.n_atoms for x in part]),
                                       torch.split(J, [x.edge_index.shape[1] for x in part])):
            g.G, g.J = g_block.clone(), dense_position_jacobian(g.edge_index, j_block, g.n_atoms)
    return len(todo)


@dataclass
class _CachedSet:
    """Graphs with cached descriptors, concatenated once: energy inputs for all, and the force
    structures grouped by atom count so their Jacobians stack into one batched product per size."""

    species: torch.Tensor
    G: torch.Tensor
    structure: torch.Tensor
    energy: torch.Tensor
    n_atoms: torch.Tensor
    weight: torch.Tensor
    groups: list  # (atom rows [B·n], Jacobians [B, n·3, n·F], reference forces [B·n, 3], weights [B·n, 1])

    @classmethod
    def build(cls, graphs: list, use_forces) -> "_CachedSet":
        counts = torch.tensor([g.n_atoms for g in graphs], dtype=torch.int64)
        start = (torch.cumsum(counts, 0) - counts).tolist()
        by_size: dict = {}
        for g, s in zip(graphs, start):
            if use_forces(g):
                by_size.setdefault(g.n_atoms, []).append((g, s))
        groups = []
        for n, members in sorted(by_size.items()):
            rows = torch.cat([torch.arange(s, s + n) for _, s in members])
            stacked = torch.stack([g.J for g, _ in members])
            for b, (g, _) in enumerate(members):
                g.J = stacked[b]  # a view: the stacked copy is the only one kept
            weights = torch.tensor([g.weight for g, _ in members for _ in range(n)], dtype=torch.float64)
            groups.append((rows, stacked, torch.cat([g.forces for g, _ in members]), weights[:, None]))
        return cls(torch.cat([g.species for g in graphs]), torch.cat([g.G for g in graphs]),
                   torch.repeat_interleave(torch.arange(len(graphs)), counts),
                   torch.tensor([g.energy for g in graphs], dtype=torch.float64), counts.to(torch.float64),
                   torch.tensor([g.weight for g in graphs], dtype=torch.float64), groups)

    def loss_terms(self, model):
        """(Σ w (ΔE/n)², Σ w ΔF² or None, Σ w · force components) with forces from the cached Jacobians."""
        G = self.G.detach().requires_grad_(bool(self.groups))
        atomic = model.network_energies(self.species, G)
        energy = torch.zeros(len(self.energy), dtype=torch.float64).index_add(0, self.structure, atomic)
        e2 = (self.weight * ((energy - self.energy) / self.n_atoms) ** 2).sum()
        if not self.groups:
            return e2, None, 0
        (dE_dG,) = torch.autograd.grad(atomic.sum(), G, create_graph=True)
        f2, n_f = torch.zeros((), dtype=torch.float64), 0.0
        for rows, J, reference, w in self.groups:
            d = dE_dG[rows].reshape(J.shape[0], J.shape[2], 1)
            forces = -torch.bmm(J, d).reshape(-1, 3)  # this layout's products run ~2× faster than d·J
            f2 = f2 + (w * (forces - reference) ** 2).sum()
            n_f += 3 * float(w.sum())
        return e2, f2, n_f


def graphs_loss(model, graphs: list, force_weight: float, descriptor_fn=None, cache: dict | None = None,
                stress_weight: float = 0.0):
    """:func:`batch_loss` over ``graphs``. Graphs with cached descriptors (and, if their forces enter
    the loss, cached Jacobians: :func:`cache_jacobians`) need no descriptor call; the others go
    through the op (its double backward for force and stress structures), or ``descriptor_fn`` if
    given. Structures whose stress enters the loss (``stress_weight`` > 0 and a reference stress)
    always go through the op. ``cache`` (a dict) keeps the concatenated inputs between calls
    (full-batch training). Returns ``(loss, e2, n_e, f2, n_f, s2, n_s)``."""

    def use_forces(g):
        return force_weight > 0 and g.forces is not None and g.use_forces

    def use_stress(g):
        return stress_weight > 0 and g.stress is not None

    cached, direct = [], {}  # direct: (forces, stress) → graphs through the op
    for g in graphs:
        if descriptor_fn is None and not use_stress(g) and g.G is not None and (g.J is not None or not use_forces(g)):
            cached.append(g)
        else:
            direct.setdefault((use_forces(g), use_stress(g)), []).append(g)
    e2 = torch.zeros((), dtype=torch.float64)
    f2, n_f, s2, n_s = None, 0, None, 0

    def remember(key, make):
        if cache is None:
            return make()
        if key not in cache:
            cache[key] = make()
        return cache[key]

    if cached:
        part = remember(("cached",) + tuple(id(g) for g in cached), lambda: _CachedSet.build(cached, use_forces))
        e2_c, f2_c, n_f = part.loss_terms(model)
        e2 = e2 + e2_c
        f2 = f2_c
    for (with_f, with_s), part in sorted(direct.items()):
        batch = remember((with_f, with_s) + tuple(id(g) for g in part), lambda: D.collate(part))
        energy, forces, stress = predict_with_stress(model, batch, with_f, with_s, with_f or with_s, descriptor_fn)
        e2_d, _, f2_d, n_fd, s2_d, n_sd = loss_terms(batch, energy, forces, stress)
        e2 = e2 + e2_d
        if f2_d is not None:
            f2, n_f = (f2_d if f2 is None else f2 + f2_d), n_f + n_fd
        if s2_d is not None:
            s2, n_s = (s2_d if s2 is None else s2 + s2_d), n_s + n_sd
    n_e = sum(g.weight for g in graphs)
    loss = _total_loss(e2, n_e, f2, n_f, s2, n_s, force_weight, stress_weight)
    return loss, e2.detach(), n_e, _detached(f2), n_f, _detached(s2), n_s


def mark_force_structures(graphs: list, fraction: float, seed: int) -> None:
    """Let the forces of a seeded ``fraction`` of ``graphs`` enter the loss (at least one if > 0)."""
    n = len(graphs)
    k = 0 if fraction <= 0 else max(1, int(round(min(fraction, 1.0) * n)))
    chosen = set(np.random.default_rng([seed, 7]).permutation(n)[:k].tolist())
    for i, g in enumerate(graphs):
        g.use_forces = i in chosen


def cache_descriptors(model, graphs: list, chunk: int = 64) -> None:
    """Store the descriptors of energy-only graphs (they do not change while the weights do)."""
    todo = [g for g in graphs if not g.use_forces or g.forces is None]
    with torch.no_grad():
        for k in range(0, len(todo), chunk):
            part = todo[k:k + chunk]
            b = D.collate(part)
            G = model.descriptors(b.species, b.edge_index, b.edge_vec(b.positions), int(b.species.shape[0]))
            for g, block in zip(part, torch.split(G, [g.n_atoms for g in part])):
                g.G = block.clone()
