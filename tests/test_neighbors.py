"""The compiled neighbour list equals ASE's, edge for edge, on many kinds of cells."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

from conftest import random_crystal
from xtalnn.neighbors import neighbor_list


def edge_set(i, j, S):
    return set(zip(i.tolist(), j.tolist(), map(tuple, np.asarray(S).tolist())))


def assert_same_edges(atoms, cutoff):
    ours = neighbor_list(atoms, cutoff)
    ref = ase_neighbor_list("ijS", atoms, cutoff)
    assert len(ours[0]) == len(ref[0])
    assert edge_set(*ours) == edge_set(*ref)
    assert np.all(np.diff(ours[0]) >= 0), "edges must be sorted by centre"


@pytest.mark.parametrize("seed", range(12))
def test_random_triclinic_cells(seed):
    rng = np.random.default_rng(seed)
    atoms = random_crystal(rng, int(rng.integers(1, 40)), skew=0.45)
    atoms.positions += rng.normal(0, 5.0, 3)  # atoms outside the cell must be wrapped correctly
    assert_same_edges(atoms, float(rng.uniform(1.5, 7.0)))


@pytest.mark.parametrize("seed", range(8))
def test_small_skewed_cells_with_cutoff_longer_than_cell(seed):
    rng = np.random.default_rng(100 + seed)
    cell = np.eye(3) * rng.uniform(1.5, 3.0) + rng.uniform(-1.2, 1.2, (3, 3))
    if abs(np.linalg.det(cell)) < 0.5:
        cell += np.eye(3)
    atoms = Atoms("SiO" if seed % 2 else "Si", scaled_positions=rng.random((2 if seed % 2 else 1, 3)),
                  cell=cell, pbc=True)
    assert_same_edges(atoms, float(rng.uniform(4.0, 8.0)))


@pytest.mark.parametrize("pbc", [(True, False, False), (False, True, True), (True, True, False), (False, False, True)])
def test_mixed_periodicity(pbc, rng):
    atoms = random_crystal(rng, 25, skew=0.2, pbc=pbc)
    assert_same_edges(atoms, 4.5)


def test_molecule_without_cell():
    atoms = molecule("C6H6")
    assert_same_edges(atoms, 3.0)
    atoms = molecule("CH3CH2OH")
    atoms.center(vacuum=0.0)
    assert_same_edges(atoms, 10.0)


def test_supercell_and_large_cutoff():
    atoms = bulk("Si", "diamond", a=5.43).repeat((3, 2, 2))
    atoms.rattle(0.05, seed=3)
    assert_same_edges(atoms, 9.0)


@pytest.mark.parametrize(
    "atoms, cutoff, message",
    [
        (Atoms(), 3.0, "no atoms"),
        (Atoms("Si2", positions=[[0, 0, 0], [np.nan, 0, 0]], cell=[4, 4, 4], pbc=True), 3.0, "NaN"),
        (Atoms("Si", cell=[[4, 0, 0], [0, 4, 0], [0, 0, 0]], pbc=True), 3.0, "zero"),
        (Atoms("Si", cell=[[4, 0, 0], [8, 0, 0], [0, 0, 4]], pbc=True), 3.0, "zero volume"),
        (bulk("Si"), 0.0, "cutoff"),
        (bulk("Si"), -1.0, "cutoff"),
    ],
)
def test_bad_input_is_a_clear_value_error(atoms, cutoff, message):
    with pytest.raises(ValueError, match=message):
        neighbor_list(atoms, cutoff)
