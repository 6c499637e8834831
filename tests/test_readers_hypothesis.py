"""Property-based tests (hypothesis) of the readers on mutated files: XSF, extxyz, composition CSV and
formulas, campaign TOML. A mutated input is either refused with a ValueError naming the file (or row, or
key) or read with every count right: never a traceback of another type, never a silent wrong count."""

from __future__ import annotations

import dataclasses
import io
import os
import tempfile

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xtalnn.campaign.config import ConfigError, from_dict
from xtalnn.enthalpy.data import CompositionDataError, parse_formula, read_table
from xtalnn.io.aenet import parse_xsf
from xtalnn.io.structures import read_structures

FAST = settings(max_examples=60, deadline=None, database=None,  # nothing written into the source tree
                suppress_health_check=[HealthCheck.function_scoped_fixture])

XSF = """# total energy = -12.5 eV

CRYSTAL
PRIMVEC
  4.0 0.0 0.0
  0.0 4.0 0.0
  0.0 0.0 4.0
PRIMCOORD
3 1
Ti 0.0 0.0 0.0 0.1 0.0 0.0
O  1.0 1.0 1.0 0.0 0.1 0.0
O  2.0 2.0 2.0 0.0 0.0 0.1
"""


def _mutate(lines: list[str], op: str, k: int, value: str) -> list[str]:
    """One line-level mutation: delete, duplicate, replace or truncate line ``k``, or insert ``value``."""
    lines = list(lines)
    k %= len(lines)
    if op == "delete":
        del lines[k]
    elif op == "duplicate":
        lines.insert(k, lines[k])
    elif op == "replace":
        lines[k] = value
    elif op == "truncate":
        lines[k] = lines[k][: len(value) % (len(lines[k]) + 1)]
        del lines[k + 1:]
    else:
        lines.insert(k, value)
    return lines


MUTATION = st.tuples(st.sampled_from(["delete", "duplicate", "replace", "truncate", "insert"]),
                     st.integers(0, 200), st.text(alphabet="TiO0123456789 .-+eE#\t", max_size=30))


def _atom_lines_after_primcoord(text: str) -> int:
    lines = text.splitlines()
    start = [k for k, line in enumerate(lines) if line.strip().upper() == "PRIMCOORD"][0]
    n = 0
    for line in lines[start + 2:]:
        parts = line.split()
        if not parts or parts[0].startswith("#"):  # blank and comment lines (XSF allows them anywhere)
            continue
        if len(parts) not in (4, 7) or not parts[0].isalpha():
            break
        n += 1
    return n


@FAST
@given(MUTATION)
def test_xsf_mutations_are_refused_or_read_with_the_right_count(mutation):
    text = "\n".join(_mutate(XSF.splitlines(), *mutation)) + "\n"
    try:
        atoms = parse_xsf(text, "m.xsf")
    except ValueError as err:
        assert "m.xsf" in str(err)
        return
    assert len(atoms) == _atom_lines_after_primcoord(text) == int(text.split("PRIMCOORD")[1].split()[0])
    assert np.isfinite(atoms.get_potential_energy()) and atoms.get_forces().shape == (len(atoms), 3)


def _frames() -> list:
    frames = []
    for n in (3, 5):
        atoms = Atoms("Ti" + f"O{n - 1}", positions=np.arange(3 * n).reshape(n, 3) * 0.7, cell=[6, 6, 6], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-float(n), forces=np.zeros((n, 3)))
        frames.append(atoms)
    return frames


def _is_extxyz_atom_line(line: str) -> bool:
    parts = line.split()
    if len(parts) != 7 or not parts[0].isalpha():
        return False
    try:
        [float(x) for x in parts[1:]]
    except ValueError:
        return False
    return True


@FAST
@given(MUTATION)
def test_extxyz_mutations_are_refused_or_every_line_is_accounted_for(mutation):
    buffer = io.StringIO()
    write(buffer, _frames(), format="extxyz")
    lines = _mutate(buffer.getvalue().splitlines(), *mutation)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m.extxyz")
        with open(path, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        try:
            frames = read_structures(path)
        except ValueError as err:
            assert "m.extxyz" in str(err)
            return
    # every atom line (species and 6 numbers: position, force) is one atom: nothing skipped, nothing invented
    assert sum(len(f) for f in frames) == sum(_is_extxyz_atom_line(line) for line in lines)
    for f in frames:
        assert f.positions.shape == (len(f), 3) and np.all(np.isfinite(f.positions))


@FAST
@given(st.text(alphabet="TiOCaKrHe0123456789.()-+eE ", min_size=0, max_size=16))
def test_formulas_are_refused_or_give_finite_fractions_summing_to_one(formula):
    try:
        fractions = parse_formula(formula, row=7)
    except CompositionDataError as err:
        assert "row 7" in str(err)
        return
    values = np.array(list(fractions.values()))
    assert np.all(np.isfinite(values)) and np.all(values > 0) and values.sum() == pytest.approx(1.0)


@FAST
@given(MUTATION, st.booleans())
def test_csv_mutations_are_refused_or_read_row_for_row(tmp_path, mutation, gz):
    import gzip

    lines = _mutate(["formula,target", "TiO2,-3.3", "CaO,-3.0", "CaTiO3,-3.5", "Ti2O3,-3.1"], *mutation)
    text = "\n".join(lines) + "\n"
    path = tmp_path / ("t.csv.gz" if gz else "t.csv")
    if gz:
        blob = gzip.compress(text.encode())
        path.write_bytes(blob[: max(1, len(blob) - (mutation[1] % 3) * 7)])  # sometimes truncated too
    else:
        path.write_text(text)
    try:
        table = read_table(path, require_target=False)
    except (CompositionDataError, ValueError) as err:
        assert "t.csv" in str(err) or "row" in str(err)
        return
    import csv

    with (gzip.open(path, "rt", newline="") if gz else open(path, newline="")) as fh:
        expected = len(list(csv.DictReader(fh)))
    assert len(table.formulas) == expected
    assert table.targets is None or len(table.targets) == expected


TOML_KEYS = [("training", "cutoff"), ("training", "hidden"), ("training", "epochs"), ("training", "lr"),
             ("ga", "population"), ("ga", "systems"), ("ga", "fmax"), ("oracle", "calculator"),
             ("oracle", "relax_steps"), ("convergence", "max_val_rmse"), ("", "seed"), ("", "max_cycles"),
             ("", "composition"), ("", "overlap"), ("training", "min_loss")]
TOML_VALUES = st.one_of(st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                        st.text(max_size=8), st.lists(st.integers(-2, 40), max_size=3),
                        st.lists(st.text(max_size=4), max_size=3))


@FAST
@given(st.sampled_from(TOML_KEYS), TOML_VALUES)
def test_campaign_settings_are_refused_or_typed(key, value):
    section, name = key
    values = {"composition": "Si8", "oracle": {"calculator": "empirical"}}
    if section:
        values.setdefault(section, {})[name] = value
    else:
        values[name] = value
    try:
        cfg = from_dict(values)
    except (ConfigError, ValueError) as err:
        assert name in str(err) or "composition" in str(err), (name, str(err))
        return
    # accepted: every typed field holds its declared type
    from xtalnn.io.settings import type_error

    for part in (cfg, cfg.ga, cfg.oracle, cfg.convergence):
        for f in dataclasses.fields(part):
            if f.name in ("ga", "oracle", "convergence", "executor"):
                continue
            assert type_error(f.name, getattr(part, f.name), f.type) is None, (f.name, getattr(part, f.name))
    if section == "training":
        from xtalnn.potential.config import TrainConfig

        TrainConfig.from_dict({"elements": ["Si"], **cfg.training}).validate()
