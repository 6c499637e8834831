"""XtalnnCalculator: forces and stress against finite differences, invariances, errors, extrapolation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from scipy.spatial.transform import Rotation

from conftest import random_crystal
from xtalnn.potential.calculator import ExtrapolationWarning, XtalnnCalculator
from xtalnn.descriptors import ACSF, Chebyshev
from xtalnn.potential import data as D
from xtalnn.potential.modelfile import save_model
from xtalnn.potential.model import Potential

ELEMENTS = ["Ti", "O"]


def make_model_file(path, kind: str, structures) -> str:
    """A small untrained model (seeded weights) scaled on ``structures``, written as a model file."""
    if kind == "acsf":
        d = ACSF.default(ELEMENTS, 5.0, n_radial=5, n_angular_eta=2, angular="both")
    else:
        d = Chebyshev(ELEMENTS, 5.5, 8, 4.5, 4)
    graphs = [D.build_graph(a, ELEMENTS, d.cutoff) for a in structures]
    mean, std, lo, hi = D.descriptor_statistics(lambda *x: d(*x), graphs, 2)
    torch.manual_seed(1)
    model = Potential(ELEMENTS, d.op_name, d.spec(), d.cutoff, (12, 12), "tanh", shift=mean, scale=std,
                      reference_energies=[-1615.0, -440.0], descriptor_min=lo, descriptor_max=hi)
    save_model(model, path)
    return str(path)


@pytest.fixture(scope="module", params=["acsf", "chebyshev"])
def model_path(request, tio2_structures, tmp_path_factory):
    return make_model_file(tmp_path_factory.mktemp(request.param) / "m.pt", request.param, tio2_structures[:20])


@pytest.fixture
def crystal(tio2_structures):
    atoms = tio2_structures[4].copy()
    atoms.rattle(0.02, seed=3)
    return atoms


def energy_of(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy()


def test_forces_are_minus_the_energy_gradient(model_path, crystal):
    calc = XtalnnCalculator(model_path, warn=False)
    crystal.calc = calc
    forces = crystal.get_forces()
    h = 1e-4
    rng = np.random.default_rng(0)
    for i in rng.choice(len(crystal), 4, replace=False):
        for c in range(3):
            plus, minus = crystal.copy(), crystal.copy()
            plus.positions[i, c] += h
            minus.positions[i, c] -= h
            fd = -(energy_of(plus, calc) - energy_of(minus, calc)) / (2 * h)
            assert forces[i, c] == pytest.approx(fd, abs=1e-6, rel=1e-6)
    assert abs(forces.sum(0)).max() < 1e-8  # no net force in a periodic crystal


def test_stress_is_the_strain_derivative_over_volume(model_path, rng):
    atoms = random_crystal(rng, 10, skew=0.3, density=0.07)
    calc = XtalnnCalculator(model_path, warn=False)
    atoms.calc = calc
    stress = atoms.get_stress(voigt=False)
    h = 1e-5
    volume = atoms.get_volume()
    for a, b in [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]:
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h if a != b else h
        values = []
        for sign in (1, -1):
            strained = atoms.copy()
            strained.set_cell(atoms.cell @ (np.eye(3) + sign * eps), scale_atoms=True)
            values.append(energy_of(strained, calc))
        fd = (values[0] - values[1]) / (2 * h) / volume / (2 if a != b else 1)
        assert stress[a, b] == pytest.approx(fd, abs=1e-7, rel=1e-5)
    np.testing.assert_allclose(stress, stress.T)


def test_molecule_without_cell_energy_forces_and_no_stress(model_path):
    mol = Atoms("TiO2", positions=[[0, 0, 0], [1.7, 0.1, 0], [-0.6, 1.6, 0.2]], pbc=False)
    calc = XtalnnCalculator(model_path, warn=False)
    mol.calc = calc
    forces = mol.get_forces()
    h = 1e-4
    for i in range(3):
        for c in range(3):
            plus, minus = mol.copy(), mol.copy()
            plus.positions[i, c] += h
            minus.positions[i, c] -= h
            assert forces[i, c] == pytest.approx(-(energy_of(plus, calc) - energy_of(minus, calc)) / (2 * h), abs=1e-6)
    np.testing.assert_allclose(forces.sum(0), 0, atol=1e-9)
    assert np.sum(mol.get_potential_energies()) == pytest.approx(mol.get_potential_energy(), abs=1e-9)
    with pytest.raises(PropertyNotImplementedError, match="volume"):
        mol.get_stress()


def test_rotation_and_translation_invariance(model_path, crystal):
    calc = XtalnnCalculator(model_path, warn=False)
    crystal.calc = calc
    e0, f0, s0 = crystal.get_potential_energy(), crystal.get_forces(), crystal.get_stress(voigt=False)
    R = Rotation.from_euler("zyx", [37, -21, 64], degrees=True).as_matrix()
    moved = crystal.copy()
    moved.set_cell(crystal.cell @ R.T, scale_atoms=True)
    moved.translate([0.7, -1.3, 2.9])
    moved.calc = calc
    assert moved.get_potential_energy() == pytest.approx(e0, abs=1e-8)
    np.testing.assert_allclose(moved.get_forces(), f0 @ R.T, atol=1e-8)
    np.testing.assert_allclose(moved.get_stress(voigt=False), R @ s0 @ R.T, atol=1e-9)
    np.testing.assert_allclose(moved.get_potential_energies(), crystal.get_potential_energies(), atol=1e-9)


def test_energy_free_energy_and_per_atom_energies(model_path, crystal):
    crystal.calc = XtalnnCalculator(model_path, warn=False)
    e = crystal.get_potential_energy()
    assert crystal.get_potential_energy(force_consistent=True) == e
    assert np.sum(crystal.get_potential_energies()) == pytest.approx(e, abs=1e-8)
    n_ti = crystal.get_chemical_symbols().count("Ti")
    # the reference energies (−1615 / −440 eV) are in the totals, carried in float64
    assert abs(e - (-1615.0 * n_ti - 440.0 * (len(crystal) - n_ti))) < 5 * len(crystal)


def test_unknown_element_is_a_clear_error(model_path, crystal):
    crystal.symbols[0] = "Sr"
    crystal.calc = XtalnnCalculator(model_path)
    with pytest.raises(ValueError, match=r"\['Sr'\] not in the model"):
        crystal.get_potential_energy()


def test_extrapolation_warns_with_atoms_and_counts(model_path, tio2_structures):
    calc = XtalnnCalculator(model_path)
    inside = tio2_structures[2].copy()  # part of the scaling set
    inside.calc = calc
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        inside.get_potential_energy()
    assert calc.results["n_extrapolating"] == 0

    squeezed = tio2_structures[2].copy()
    squeezed.set_cell(squeezed.cell * 0.75, scale_atoms=True)
    squeezed.calc = calc
    with pytest.warns(ExtrapolationWarning, match=r"atoms have descriptors outside the training range.*atoms 0 \(") as rec:
        energy = squeezed.get_potential_energy()
    assert np.isfinite(energy)
    n = calc.results["n_extrapolating"]
    assert 0 < n <= len(squeezed) and len(calc.results["extrapolating_atoms"]) == n
    assert f"{n} of {len(squeezed)} atoms" in str(rec[0].message)
