"""Compositions, crystal-system constraints and GA operators (fast, no calculator)."""

import numpy as np
import pytest

from xtalnn.search.formula import (
    check_packing,
    default_volume_per_atom,
    min_distances,
    parse_composition,
)
from xtalnn.search.dedup import fixed_site_key
from xtalnn.search.generate import (
    StartingStructures,
    min_distance_ok,
    random_structure,
    symmetric_prototypes,
)
from xtalnn.search.operators import cut_and_splice, make_child, rattle, soft_mode, spring_hessian, strain, swap
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
        for mutated in (strain(child, system, rng), swap(child, rng), rattle(child, rng), soft_mode(child, rng)):
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


def test_soft_mode_moves_along_a_soft_vibration_without_translation():
    """The displacement is one of the spring model's softest vibrations: its curvature is below that of
    every random displacement of the same size, it carries no net translation, and the atom that moves
    most moves within the amplitude bounds (Å)."""
    from ase.build import bulk
    from ase.geometry import find_mic

    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    hessian = spring_hessian(atoms)
    assert np.allclose(hessian, hessian.T)
    assert np.allclose(hessian @ np.tile([1.0, 0.0, 0.0], len(atoms)), 0.0)  # translations cost nothing
    rng = np.random.default_rng(3)

    def curvature(d):
        v = d.ravel() / np.linalg.norm(d)
        return v @ hessian @ v

    random_curvatures = [curvature(rng.normal(size=(len(atoms), 3))) for _ in range(200)]
    for _ in range(10):
        moved = soft_mode(atoms, rng, amplitude=(0.5, 1.0))
        assert np.allclose(moved.cell, atoms.cell)
        d, _ = find_mic(moved.get_positions() - atoms.get_positions(), atoms.cell)
        assert 0.5 - 1e-9 <= np.linalg.norm(d, axis=1).max() <= 1.0 + 1e-9
        assert np.abs(d.mean(axis=0)).max() < 1e-9
        assert curvature(d) < min(random_curvatures)


def test_mutation_share_makes_single_parent_children():
    comp = parse_composition("Ti2O4")
    pop, rng, dmin = _population(comp, "orthorhombic", 4, seed=5)
    mutated = [make_child(pop, comp, "orthorhombic", rng, dmin, mutation_share=1.0) for _ in range(20)]
    bred = [make_child(pop, comp, "orthorhombic", rng, dmin, mutation_probability=0.0) for _ in range(5)]
    assert all(m is not None and m[1].startswith("mutation+") and len(m[2]) == 1 for m in mutated)
    assert {m[1] for m in mutated} >= {"mutation+strain", "mutation+soft"}
    assert all(b is not None and b[1] == "crossover" and len(b[2]) == 2 for b in bred)
    for child, _, _ in mutated:
        assert obeys(child, "orthorhombic") and min_distance_ok(child, dmin)


def test_no_single_parent_children_keeps_the_seed_random_stream():
    """With ``mutation_share`` 0 a child draws exactly the seed scheme's random numbers (parents, crossover,
    mutation coin), so searches with the default settings reproduce those made before the setting existed."""
    comp = parse_composition("Ti2O4")
    pop, _, dmin = _population(comp, "tetragonal", 4, seed=7)
    child, origin, used = make_child(pop, comp, "tetragonal", np.random.default_rng(11), dmin, mutation_probability=0.0)
    rng = np.random.default_rng(11)
    i, j = (int(x) for x in rng.choice(len(pop), size=2, replace=False))
    expected = cut_and_splice(pop[i], pop[j], comp, "tetragonal", rng)
    assert used == (i, j) and origin == "crossover"
    assert np.allclose(child.get_positions(), expected.get_positions()) and np.allclose(child.cell, expected.cell)


def test_swap_needs_two_elements():
    comp = parse_composition("Si4")
    pop, rng, _ = _population(comp, "cubic", 1)
    assert swap(pop[0], rng) is None


@pytest.mark.parametrize("system", CRYSTAL_SYSTEMS)
def test_symmetric_prototypes_are_ranked_and_hold_the_composition(system):
    from pyxtal.symmetry import Group

    comp = parse_composition("Ti2O4")
    prototypes = symmetric_prototypes(comp, system)
    assert prototypes
    keys = [(-p.order, p.n_orbits, p.dof) for p in prototypes]
    assert keys == sorted(keys)
    for p in prototypes:
        assert p.group in SPACE_GROUPS[system]
        group = Group(p.group)
        assert p.order == len(group[0])
        multiplicity = {w.get_label(): w.multiplicity for w in group.Wyckoff_positions}
        assert [sum(multiplicity[label] for label in sites) for sites in p.sites] == list(comp.numbers)


@pytest.mark.parametrize("system", ["cubic", "orthorhombic", "monoclinic"])
def test_starting_structures_are_distinct_reproducible_and_symmetric_first(system):
    from pyxtal.symmetry import Group
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.ase import AseAtomsAdaptor

    comp = parse_composition("Si8")
    dmin = min_distances(comp)
    starts = StartingStructures(comp, system, np.random.default_rng([3, 1, 0]), dmin, symmetric_share=0.5)
    made = [starts.get(k) for k in range(8)]
    assert all(m is not None for m in made)
    assert [m[1] for m in made] == ["prototype", "random"] * 4
    orders = [len(Group(m[2]["drawn_group"])[0]) for m in made[::2]]
    assert orders == sorted(orders, reverse=True)
    for atoms, _, _ in made:
        assert obeys(atoms, system) and angles_ok(atoms) and min_distance_ok(atoms, dmin)
    # deduplicated before relaxation: no two fixed-site starts with the same key match
    matcher = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, scale=True)
    by_key = {}
    for atoms, _, _ in made:
        key = fixed_site_key(atoms)
        if key is not None:
            by_key.setdefault(key, []).append(AseAtomsAdaptor.get_structure(atoms))
    assert by_key
    for same in by_key.values():
        for i in range(len(same)):
            for j in range(i):
                assert not matcher.fit(same[i], same[j]), (i, j)
    # the same seed gives the same sequence, also when asked out of order (resume replay)
    again = StartingStructures(comp, system, np.random.default_rng([3, 1, 0]), dmin, symmetric_share=0.5)
    assert np.allclose(again.get(6)[0].positions, made[6][0].positions)
    for k in range(8):
        assert np.allclose(again.get(k)[0].cell, made[k][0].cell)
        assert np.allclose(again.get(k)[0].positions, made[k][0].positions)


def test_symmetric_share_spreads_the_prototypes():
    comp = parse_composition("Si8")
    dmin = min_distances(comp)
    for share, pattern in ((0.0, "rrrrrr"), (1 / 3, "prrprr"), (1.0, "pppppp")):
        starts = StartingStructures(comp, "tetragonal", np.random.default_rng(0), dmin, symmetric_share=share)
        assert "".join(starts.get(k)[1][0] for k in range(6)) == pattern
    with pytest.raises(ValueError, match="symmetric_share"):
        StartingStructures(comp, "cubic", np.random.default_rng(0), dmin, symmetric_share=1.5)


def test_fixed_site_key_ignores_the_origin_and_sees_free_coordinates():
    from ase.build import bulk

    diamond = bulk("Si", "diamond", a=5.43, cubic=True)
    shifted = diamond.copy()
    shifted.translate(diamond.cell.cartesian_positions([0.5, 0.5, 0.5]))  # 8a -> 8b
    shifted.wrap()
    assert fixed_site_key(diamond) == fixed_site_key(shifted) is not None
    assert fixed_site_key(bulk("Si", "sc", a=2.7).repeat(2)) not in (None, fixed_site_key(diamond))
    assert fixed_site_key(bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 1, 1))) == (227, 2, (("Si", "-43m", 16),))
    free = diamond.copy()
    free.positions[0] += [0.3, 0.2, 0.1]  # breaks the symmetry: P1-like, free coordinates
    assert fixed_site_key(free) is None


def test_ga_settings_are_one_object_for_api_cli_and_campaign():
    """Every GASettings field is an option of `xtalnn search` and a key of a campaign's [ga]."""
    import argparse
    import dataclasses

    from xtalnn.campaign.config import GAConfig
    from xtalnn.search.config import GASettings, add_arguments, from_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--population", "6", "--no-relax", "--systems", "cubic,hexagonal",
                              "--min-distance", "Si-Si=2.1", "--seeds", "3"])
    settings = from_arguments(args)
    assert settings == dataclasses.replace(GASettings(), population=6, relax=False, systems=["cubic", "hexagonal"],
                                           min_distances={"Si-Si": 2.1}, seeds_per_system=3)
    assert from_arguments(parser.parse_args([])) == GASettings()  # the CLI defaults are the API's
    names = {f.name for f in dataclasses.fields(GASettings)}
    assert names <= {f.name for f in dataclasses.fields(GAConfig)}
    assert GASettings.of(GAConfig(population=5)).population == 5
    with pytest.raises(ValueError, match="population must be int"):
        GASettings.from_dict({"population": "16"})
    with pytest.raises(ValueError, match="unknown key"):
        GASettings.from_dict({"populaton": 16})


def test_a_run_folder_refuses_other_settings(tmp_path):
    from xtalnn.search.config import bind_identity

    path = str(tmp_path / "run.json")
    assert bind_identity(path, {"a": 1, "ga": {"b": 2}}, "search", {"x": 3})["x"] == 3
    assert bind_identity(path, {"a": 1, "ga": {"b": 2}}, "search")["x"] == 3  # the stored record
    with pytest.raises(ValueError, match=r"different search \(settings differ: ga.b\)"):
        bind_identity(path, {"a": 1, "ga": {"b": 5}}, "search")


# ---------------------------------------------------------------------------- budget sharing
def test_share_weights_halve_by_rank_with_a_floor_and_full_share_for_unranked_runs():
    from xtalnn.search.schedule import share_weights

    inf = float("inf")
    w = share_weights([-4.0, -4.3, inf, -3.0, -4.1, -2.0, -1.0, -0.5])
    assert w[1] == 1.0 and w[4] == 0.5 and w[0] == 0.25 and w[3] == 0.125
    assert w[2] == 1.0  # no energy yet: a full share
    assert w[7] == 1 / 16  # rank 6 would get 1/64: floored at 1 / (2 n)


def test_next_run_gives_evaluations_in_proportion_to_the_weights():
    from xtalnn.search.schedule import next_run

    weights, given, active = [1.0, 0.5, 0.25], [0, 0, 0], [0, 1, 2]
    for _ in range(70):
        given[next_run(active, given, weights)] += 1
    assert given == [40, 20, 10]


def test_adaptive_sharing_does_not_change_any_runs_results(tmp_path):
    """Only the order in which a process advances its runs depends on the sharing: every run ends with the
    same candidates (its random numbers are its own)."""
    import ase.db

    from xtalnn.search import search

    energies = {}
    for sharing in ("equal", "adaptive"):
        out = tmp_path / sharing
        search("Si4", "empirical", population=4, children=2, generations=2, seeds_per_system=1,
               systems=["cubic", "tetragonal", "triclinic"], budget_sharing=sharing, workers=1, verbose=False,
               out_dir=str(out))
        energies[sharing] = {p.name: sorted((r.gen, r.idx, round(r.get("energy_per_atom", 0.0), 10))
                                            for r in ase.db.connect(str(p)).select())
                             for p in sorted((out / "runs").glob("*.db"))}
    assert energies["equal"] == energies["adaptive"] and len(energies["equal"]) == 3


# ---------------------------------------------------------------------------- rhombohedral setting
def test_rhombohedral_groups_are_drawn_as_primitive_cells_and_keep_their_setting():
    """Ca2Ti2O6 (10 atoms) in R-3c: the a⁻a⁻a⁻ perovskite, reachable only through the primitive
    rhombohedral cell (the hexagonal cell holds 30 atoms); strains, relaxation keep a = b = c, α = β = γ."""
    from xtalnn.calculators.registry import make_calculator
    from xtalnn.search.dedup import space_group
    from xtalnn.search.formula import min_distances, parse_composition
    from xtalnn.search.generate import _pyxtal_structure
    from xtalnn.search.operators import strain
    from xtalnn.search.relax import relax
    from xtalnn.search.systems import strain_basis, trigonal_setting

    comp = parse_composition("Ca2Ti2O6")
    rng = np.random.default_rng(1)
    atoms = next(a for a in (_pyxtal_structure(comp, "trigonal", 167, rng, min_distances(comp), None)
                             for _ in range(50)) if a is not None)
    assert len(atoms) == 10 and space_group(atoms)[0] == 167
    assert trigonal_setting(atoms.cell.cellpar()) == "rhombohedral" and obeys(atoms, "trigonal")
    basis = strain_basis("trigonal", atoms.cell)
    assert basis.shape == (2, 3, 3) and np.allclose(np.einsum("kij,lij->kl", basis, basis), np.eye(2))
    m = rng.normal(size=(3, 3))
    p = project_strain(m, "trigonal", atoms.cell)
    assert np.allclose(project_strain(p, "trigonal", atoms.cell), p)
    strained = strain(atoms, "trigonal", rng)
    assert obeys(strained, "trigonal") and trigonal_setting(strained.cell.cellpar()) == "rhombohedral"
    relaxed = relax(atoms, make_calculator("pedone"), "trigonal", steps=40, fmax=0.05).atoms
    a, b, c, al, be, ga = relaxed.cell.cellpar()
    assert np.allclose([a, b], c, rtol=1e-6) and np.allclose([al, be], ga, atol=1e-4)
    assert space_group(relaxed)[0] == 167


def test_a_setting_added_later_resumes_older_folders_at_its_default(tmp_path):
    """A folder bound before a setting existed resumes when the setting keeps its default, and is refused,
    naming it, when it does not."""
    import json

    from xtalnn.search.config import GASettings, bind_identity

    path = tmp_path / "search.json"
    old = GASettings().identity()
    old.pop("pressure")  # as written before the pressure setting existed
    path.write_text(json.dumps({"identity": old}))
    defaults = GASettings().identity()
    bind_identity(str(path), GASettings().identity(), "search", defaults=defaults)
    with pytest.raises(ValueError, match="pressure"):
        bind_identity(str(path), GASettings(pressure=5.0).identity(), "search", defaults=defaults)
    with pytest.raises(ValueError, match="population"):
        bind_identity(str(path), GASettings(population=8).identity(), "search", defaults=defaults)
