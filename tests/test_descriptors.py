"""Descriptor ops: equal to their pure-torch twins, exact derivatives, invariances, dscribe."""

from __future__ import annotations

from itertools import combinations_with_replacement

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.data import atomic_numbers
from scipy.spatial.transform import Rotation

from conftest import random_crystal
from xtalnn.descriptors import ACSF, Chebyshev
from xtalnn.neighbors import edge_vectors


def acsf_full(elements=("Ti", "O"), cutoff=4.5, cutoff_function="cosine"):
    return ACSF(elements, cutoff, g2=[(0.5, 1.2), (0.05, 2.5), (1.0, 3.0)],
                g4=[(0.01, 1, 1), (0.05, 2, -1), (0.02, 4.5, 1)],
                g5=[(0.01, 1, -1), (0.03, 4, 1), (0.1, 1.5, -1)], cutoff_function=cutoff_function)


DESCRIPTORS = {
    "acsf-cosine": lambda: acsf_full(),
    "acsf-polynomial": lambda: acsf_full(cutoff_function="polynomial"),
    "acsf-default": lambda: ACSF.default(["Ti", "O"], 5.0, angular="both"),
    # every G5 ζ an integer: G5 from Cartesian moments instead of the pair loop
    "acsf-moments": lambda: ACSF(["Ti", "O", "Ca"], 4.5, g2=[(0.3, 1.0)], g4=[(0.02, 2, 1)],
                                 g5=[(0.01, 1, -1), (0.03, 4, 1), (0.1, 8, -1), (0.03, 2, -1)]),
    "chebyshev": lambda: Chebyshev(["Ti", "O"], 5.0, 8, 3.5, 5),
    "chebyshev-3el": lambda: Chebyshev(["Ti", "O", "Ca"], 4.0, 6, 4.0, 4, cutoff_function="polynomial"),
    "chebyshev-1el": lambda: Chebyshev(["Ti"], 4.0, 4, 3.0, 3),
}


def inputs(descriptor, atoms, dtype=torch.float64):
    species, edge_index, shifts, positions, cell = descriptor.graph(atoms, dtype)
    return species, edge_index, edge_vectors(positions, cell, edge_index, shifts)


@pytest.mark.parametrize("name", DESCRIPTORS)
@pytest.mark.parametrize("seed", range(3))
def test_op_equals_torch_twin(name, seed):
    rng = np.random.default_rng(seed)
    descriptor = DESCRIPTORS[name]()
    atoms = random_crystal(rng, 20, symbols=descriptor.elements, skew=0.3)
    G_op = descriptor.compute(atoms, backend="op")
    G_twin = descriptor.compute(atoms, backend="torch")
    assert G_op.shape == (20, descriptor.n_features) == G_twin.shape
    assert np.abs(G_op).max() > 0.1
    np.testing.assert_allclose(G_op, G_twin, rtol=0, atol=1e-10 * max(1.0, np.abs(G_twin).max()))


@pytest.mark.parametrize("name", DESCRIPTORS)
def test_op_gradient_equals_twin_gradient(name, rng):
    descriptor = DESCRIPTORS[name]()
    atoms = random_crystal(rng, 12, symbols=descriptor.elements)
    species, edge_index, vec = inputs(descriptor, atoms)
    weights = torch.randn(len(atoms), descriptor.n_features, dtype=torch.float64)
    grads = []
    for backend in ("op", "torch"):
        v = vec.clone().requires_grad_()
        (descriptor(species, edge_index, v, len(atoms), backend=backend) * weights).sum().backward()
        grads.append(v.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", ["acsf-cosine", "acsf-polynomial", "acsf-moments", "chebyshev", "chebyshev-3el"])
def test_gradcheck_and_gradgradcheck(name):
    descriptor = DESCRIPTORS[name]()
    rng = np.random.default_rng(7)
    atoms = random_crystal(rng, 5, symbols=descriptor.elements, density=0.05)
    species, edge_index, vec = inputs(descriptor, atoms)
    assert len(vec) > 10
    vec.requires_grad_()

    def f(v):
        return descriptor(species, edge_index, v, len(atoms), backend="op")

    assert torch.autograd.gradcheck(f, (vec,), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert torch.autograd.gradgradcheck(f, (vec,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["acsf-cosine", "acsf-moments", "chebyshev"])
def test_double_backward_equals_twin(name, rng):
    """Force-style loss: d/dθ of forces needs the op's double backward; compare with autograd twin."""
    descriptor = DESCRIPTORS[name]()
    atoms = random_crystal(rng, 10, symbols=descriptor.elements)
    species, edge_index, shifts, positions, cell = descriptor.graph(atoms)
    weights = torch.randn(descriptor.n_features, dtype=torch.float64, requires_grad=True)
    results = []
    for backend in ("op", "torch"):
        pos = positions.clone().requires_grad_()
        vec = edge_vectors(pos, cell, edge_index, shifts)
        energy = torch.tanh(descriptor(species, edge_index, vec, len(atoms), backend=backend) @ weights).sum()
        forces = -torch.autograd.grad(energy, pos, create_graph=True)[0]
        loss = (forces**2).sum()
        g_w, g_pos = torch.autograd.grad(loss, (weights, pos))
        results.append((forces.detach(), g_w, g_pos))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_float32_close_to_float64(rng):
    descriptor = acsf_full()
    atoms = random_crystal(rng, 16)
    G64 = descriptor(*inputs(descriptor, atoms, torch.float64), len(atoms))
    G32 = descriptor(*inputs(descriptor, atoms, torch.float32), len(atoms))
    assert G32.dtype == torch.float32
    torch.testing.assert_close(G32.double(), G64, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name", ["acsf-cosine", "chebyshev"])
def test_invariances(name, rng):
    descriptor = DESCRIPTORS[name]()
    atoms = random_crystal(rng, 14, skew=0.3)
    G = descriptor.compute(atoms)

    moved = atoms.copy()  # rotation of positions and cell, translation
    R = Rotation.random(random_state=1).as_matrix()
    moved.set_cell(atoms.cell @ R.T, scale_atoms=False)
    moved.positions = atoms.positions @ R.T + np.array([0.3, -1.7, 2.9])
    np.testing.assert_allclose(descriptor.compute(moved), G, atol=1e-10)

    perm = rng.permutation(len(atoms))  # permutation of atoms
    np.testing.assert_allclose(descriptor.compute(atoms[perm]), G[perm], atol=1e-10)

    imaged = atoms.copy()  # a different periodic image of every atom
    imaged.positions += rng.integers(-2, 3, (len(atoms), 3)) @ atoms.cell.array
    np.testing.assert_allclose(descriptor.compute(imaged), G, atol=1e-10)

    supercell = atoms.repeat((2, 1, 2))  # the same crystal described by a larger cell
    np.testing.assert_allclose(descriptor.compute(supercell), np.tile(G, (4, 1)), atol=1e-10)


def dscribe_order(ours: ACSF) -> np.ndarray:
    """Column of dscribe's ACSF vector for each of our features (dscribe: species by Z, G1 first)."""
    el = sorted(ours.elements, key=lambda s: atomic_numbers[s])
    n2, n4, n5 = len(ours.g2), len(ours.g4), len(ours.g5)
    single = {e: k * (1 + n2) for k, e in enumerate(el)}
    pairs = list(combinations_with_replacement(el, 2))
    pair_start = {frozenset(p) if p[0] != p[1] else p[0]: len(el) * (1 + n2) + k * (n4 + n5)
                  for k, p in enumerate(pairs)}
    columns = [single[e] + 1 + p for e in ours.elements for p in range(n2)]
    for offset, n in ((0, n4), (n4, n5)):
        for a, b in ours.pairs:
            ea, eb = ours.elements[a], ours.elements[b]
            start = pair_start[ea if ea == eb else frozenset((ea, eb))]
            columns += [start + offset + p for p in range(n)]
    return np.array(columns)


def test_acsf_equals_dscribe_on_tio2(tio2_structures):
    dscribe = pytest.importorskip("dscribe.descriptors")
    ours = ACSF.default(["Ti", "O"], 6.5, angular="both", zetas=(1.0, 4.0))
    theirs = dscribe.ACSF(species=["Ti", "O"], r_cut=6.5, g2_params=ours.g2.tolist(),
                          g4_params=ours.g4.tolist(), g5_params=ours.g5.tolist(), periodic=True)
    columns = dscribe_order(ours)
    for atoms in tio2_structures[::4]:
        G = ours.compute(atoms)
        D = theirs.create(atoms)[:, columns]
        np.testing.assert_allclose(G, D, rtol=1e-6, atol=1e-8)


def test_bad_input(rng):
    with pytest.raises(ValueError, match="unknown element"):
        ACSF(["Ti", "Xx"], 5.0, g2=[(0.1, 0.0)])
    with pytest.raises(ValueError, match="cutoff"):
        ACSF(["Ti"], 0.0, g2=[(0.1, 0.0)])
    with pytest.raises(ValueError, match="ζ"):
        ACSF(["Ti"], 5.0, g5=[(0.1, 0.5, 1)])
    with pytest.raises(ValueError, match="cutoff"):
        Chebyshev(["Ti"], -1.0, 4, 3.0, 3)
    descriptor = acsf_full()
    with pytest.raises(ValueError, match=r"\['Si'\] not in"):
        descriptor.compute(bulk("Si"))
    atoms = random_crystal(rng, 4)
    atoms.positions[2] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        descriptor.compute(atoms)
    atoms = random_crystal(rng, 4)
    atoms.positions[1] = atoms.positions[0]
    with pytest.raises(ValueError, match="zero length"):
        descriptor.compute(atoms)
    species, edge_index, vec = inputs(descriptor, random_crystal(rng, 4))
    with pytest.raises(ValueError, match="species index"):
        descriptor(species + 5, edge_index, vec, 4)
    with pytest.raises(ValueError, match="n_local"):
        descriptor(species, edge_index, vec, 9)


@pytest.fixture
def torch_threads():
    """Restores torch's thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["acsf-cosine", "chebyshev"])
def test_two_threads_equal_one_thread_and_the_twin(name, torch_threads):
    """300 atoms: the op's per-atom loop is split over threads (grain 128 atoms, so 2 threads take a
    chunk each); descriptors and their gradient on 2 threads equal 1 thread's exactly and the twin's."""
    descriptor = DESCRIPTORS[name]()
    atoms = random_crystal(np.random.default_rng(5), 300, symbols=descriptor.elements, skew=0.2)
    species, edge_index, vec = inputs(descriptor, atoms)
    weights = torch.from_numpy(np.random.default_rng(6).normal(size=(300, descriptor.n_features)))

    def run(threads: int, backend: str):
        torch.set_num_threads(threads)
        v = vec.clone().requires_grad_(True)
        G = descriptor.forward(species, edge_index, v, 300, backend=backend)
        (grad,) = torch.autograd.grad((G * weights).sum(), v)
        return G.detach(), grad

    G1, g1 = run(1, "op")
    G2, g2 = run(2, "op")
    assert torch.get_num_threads() == 2
    assert torch.equal(G1, G2) and torch.equal(g1, g2)
    Gt, gt = run(1, "torch")
    scale = float(Gt.abs().max())
    assert scale > 0.1
    torch.testing.assert_close(G2, Gt, rtol=0, atol=1e-10 * scale)
    torch.testing.assert_close(g2, gt, rtol=0, atol=1e-9 * float(gt.abs().max()))


def test_neighbor_list_on_two_threads_equals_one_thread_and_ase(torch_threads):
    """2,100 atoms: the cell list is split into chunks over threads (N >= 2048); the edges on 2 threads
    are those of 1 thread and of ASE's neighbour list."""
    from ase.neighborlist import neighbor_list

    from xtalnn.neighbors import neighbor_list_tensors

    atoms = random_crystal(np.random.default_rng(7), 2100, symbols=("Si",), skew=0.1, density=0.05)
    args = (torch.from_numpy(atoms.positions), torch.from_numpy(atoms.cell.array), torch.tensor(atoms.pbc), 3.5)
    torch.set_num_threads(1)
    e1, s1 = neighbor_list_tensors(*args)
    torch.set_num_threads(2)
    e2, s2 = neighbor_list_tensors(*args)
    assert torch.equal(e1, e2) and torch.equal(s1, s2)
    i, j, S = neighbor_list("ijS", atoms, 3.5)
    ours = sorted(zip(e2[0].tolist(), e2[1].tolist(), map(tuple, s2.tolist())))
    assert len(ours) > 10_000 and ours == sorted(zip(i.tolist(), j.tolist(), map(tuple, S.tolist())))
