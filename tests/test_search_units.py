"""Compositions, crystal-system constraints and GA operators (fast, no calculator)."""

import numpy as np
import pytest

from xtalnn.search.composition import (
    check_packing,
    default_volume_per_atom,
    min_distances,
    parse_composition,
)
from xtalnn.search.generate import min_distance_ok, random_structure
from xtalnn.search.operators import cut_and_splice, rattle, strain, swap
from xtalnn.search.systems import CRYSTAL_SYSTEMS, SPACE_GROUPS, angles_ok, obeys, project_strain


@pytest.mark.parametrize(
    "text, counts",
    [("Si8", {"Si": 8}), ("Ti4O8", {"Ti": 4, "O": 8}), ("Ca1Ti1O3", {"Ca": 1, "Ti": 1, "O": 3}),
     ("CaTiO3", {"Ca": 1, "Ti": 1, "O": 3})],
)
def test_parse_formula(text, counts):
    assert dict(parse_composition(text).counts) == counts


def test_elements_and_formula_units():
    comp = parse_composition({"Ti": 1, "O": 2}, formula_units=4)
    assert comp.formula == "Ti4O8" and comp.n_atoms == 12


@pytest.mark.parametrize("bad", ["Xx8", "si8", "Q2O", "Si0", "", "8Si", {"Zz": 1}])
def test_bad_compositions(bad):
    with pytest.raises(ValueError):
        parse_composition(bad)


def test_packing_check():
    comp = parse_composition("Si8")
    dmin = min_distances(comp)
    check_packing(comp, default_volume_per_atom(comp), dmin)  # sane default passes
    with pytest.raises(ValueError, match="impossible composition"):
        check_packing(comp, 2.0, dmin)
    with pytest.raises(ValueError, match="impossible composition"):
        check_packing(comp, 20.0, min_distances(comp, overrides={"Si-Si": 4.0}))


def _population(comp, system, n, seed=0):
    rng = np.random.default_rng(seed)
    dmin = min_distances(comp)
    out = []
    for _ in range(n):
        made = random_structure(comp, system, rng, dmin)
        assert made is not None, system
        atoms, group = made
        assert group in SPACE_GROUPS[system]
        out.append(atoms)
    return out, rng, dmin


@pytest.mark.parametrize("system", CRYSTAL_SYSTEMS)
def test_operators_keep_lattice_constraints(system):
    """Property test: random starts, crossovers and every mutation obey the system."""
    comp = parse_composition("Ti2O4")
    pop, rng, dmin = _population(comp, system, 6)
    for atoms in pop:
        assert obeys(atoms, system) and angles_ok(atoms) and min_distance_ok(atoms, dmin)
        assert sorted(atoms.get_chemical_symbols()) == sorted(comp.symbols)
    for _ in range(25):
        i, j = rng.choice(len(pop), 2, replace=False)
        child = cut_and_splice(pop[i], pop[j], comp, system, rng)
        assert obeys(child, system), child.cell.cellpar()
        assert sorted(child.get_chemical_symbols()) == sorted(comp.symbols)
        assert abs(child.get_volume() - (pop[i].get_volume() + pop[j].get_volume()) / 2) < 0.5 * child.get_volume()
        for mutated in (strain(child, system, rng), swap(child, rng), rattle(child, rng)):
            assert obeys(mutated, system), mutated.cell.cellpar()
            assert sorted(mutated.get_chemical_symbols()) == sorted(comp.symbols)


def test_strain_projection_is_a_projection():
    rng = np.random.default_rng(1)
    for system in CRYSTAL_SYSTEMS:
        m = rng.normal(size=(3, 3))
        p = project_strain(m, system)
        assert np.allclose(project_strain(p, system), p)
        assert np.allclose(p, p.T)
    assert np.allclose(project_strain(np.diag([1.0, 2.0, 3.0]), "cubic"), 2.0 * np.eye(3))


def test_swap_needs_two_elements():
    comp = parse_composition("Si4")
    pop, rng, _ = _population(comp, "cubic", 1)
    assert swap(pop[0], rng) is None
