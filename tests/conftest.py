"""Shared fixtures: the real data sets in ../shared/data and random periodic structures."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XTALNN_SHARED", REPO.parent / "shared"))
TIO2_TAR = SHARED / "data" / "tio2_aenet_800.tar.gz"
OQMD_CSV = SHARED / "data" / "oqmd_formation_enthalpy_51k.csv.gz"


@pytest.fixture(scope="session")
def tio2_structures():
    """The first 40 TiO2 structures (sorted by name) of the aenet set, with DFT energies/forces."""
    if not TIO2_TAR.is_file():
        pytest.fail(f"shared data missing: {TIO2_TAR}")
    from xtalnn.io.aenet import iter_tar

    return list(itertools.islice(iter_tar(TIO2_TAR), 40))


def random_crystal(rng: np.random.Generator, n_atoms: int, symbols=("Ti", "O"), skew: float = 0.3,
                   density: float = 0.08, pbc=(True, True, True)) -> Atoms:
    """A random triclinic cell (Å) with random positions; skew sets how far from orthogonal."""
    volume = n_atoms / density
    cell = np.eye(3) * volume ** (1 / 3) + rng.uniform(-skew, skew, (3, 3)) * volume ** (1 / 3)
    if np.linalg.det(cell) < 0:
        cell[0] *= -1
    frac = rng.random((n_atoms, 3))
    atoms = Atoms(symbols=[symbols[k % len(symbols)] for k in range(n_atoms)], scaled_positions=frac,
                  cell=cell, pbc=pbc)
    return atoms


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


def pytest_collection_modifyitems(config, items):
    """Slow tests run for up to two hours; the default run's limit (pyproject ``timeout``) is for the others."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(7200))
