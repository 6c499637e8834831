"""The empirical pair potential: a real ASE calculator with consistent energy, forces, stress."""

import numpy as np
import pytest
from ase.build import bulk

from xtalnn.calculators.empirical import EmpiricalPairPotential


def _distorted():
    atoms = bulk("Si", "diamond", a=5.2, cubic=True)
    atoms.rattle(0.1, seed=3)
    rng = np.random.default_rng(0)
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + 0.03 * rng.normal(size=(3, 3))), scale_atoms=True)
    atoms.calc = EmpiricalPairPotential()
    return atoms


def test_forces_match_finite_differences():
    atoms = _distorted()
    numeric = np.array([[_fd_force(atoms, i, k) for k in range(3)] for i in range(len(atoms))])
    assert np.allclose(atoms.get_forces(), numeric, atol=1e-5)


def _fd_force(atoms, i, k, h=1e-5):
    energies = []
    for sign in (1, -1):
        a = atoms.copy()
        a.calc = EmpiricalPairPotential()
        a.positions[i, k] += sign * h
        energies.append(a.get_potential_energy())
    return -(energies[0] - energies[1]) / (2 * h)


def test_stress_matches_strain_derivative():
    atoms = _distorted()
    stress = atoms.get_stress(voigt=False)
    h = 1e-6
    for i, j in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2)]:
        energies = []
        for sign in (1, -1):
            eps = np.eye(3)
            eps[i, j] += sign * h / 2
            eps[j, i] += sign * h / 2
            a = atoms.copy()
            a.calc = EmpiricalPairPotential()
            a.set_cell(atoms.cell[:] @ eps, scale_atoms=True)
            energies.append(a.get_potential_energy())
        numeric = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
        assert stress[i, j] == pytest.approx(numeric, abs=1e-7)


def test_energies_sum_to_energy_and_translation_invariance():
    atoms = _distorted()
    e = atoms.get_potential_energy()
    assert atoms.calc.results["energies"].sum() == pytest.approx(e)
    assert np.allclose(atoms.get_forces().sum(axis=0), 0.0, atol=1e-10)
    shifted = atoms.copy()
    shifted.positions += [0.3, -1.1, 2.0]
    shifted.calc = EmpiricalPairPotential()
    assert shifted.get_potential_energy() == pytest.approx(e)


def test_rejects_overlapping_and_exploded_structures():
    def energy(a):
        atoms = bulk("Si", "diamond", a=a)
        atoms.calc = EmpiricalPairPotential()
        return atoms.get_potential_energy() / len(atoms)

    bound = min(energy(a) for a in np.linspace(4.0, 6.0, 21))
    overlapping = energy(2.5)  # nearest neighbours at 1.08 Å
    exploded = energy(20.0)
    assert bound < -0.05
    assert overlapping > 1.0  # far above the bound structure: the wall
    assert exploded == pytest.approx(0.0, abs=1e-12)  # nothing inside the cutoff


def test_prefers_close_packing_over_diamond_as_documented():
    # documented limitation: a pair potential cannot see bond angles; it favours fcc over diamond
    def best(structure):
        out = []
        for a in np.linspace(3.0, 7.0, 81):
            atoms = bulk("Si", structure, a=a)
            atoms.calc = EmpiricalPairPotential()
            out.append(atoms.get_potential_energy() / len(atoms))
        return min(out)

    assert best("fcc") < best("diamond")
