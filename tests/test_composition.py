"""Fast tests of the composition model (parsing, errors, CV splits, export round trip, CLI, rank)."""

from __future__ import annotations

import csv
import gzip
import math
import os

import numpy as np
import pytest

pytest.importorskip("pymatgen")
torch = pytest.importorskip("torch")

from conftest import OQMD_CSV  # noqa: E402
from xtalnn.enthalpy import CompositionDataError, CompositionModel, parse_formula, read_table  # noqa: E402
from xtalnn.enthalpy.modelfile import save_enthalpy_model  # noqa: E402
from xtalnn.enthalpy.features import (  # noqa: E402
    default_elements,
    element_property_table,
    elements_present,
    fraction_matrix,
)
from xtalnn.enthalpy.rank import candidate_formulas, hull_distances, rank_compositions  # noqa: E402
from xtalnn.enthalpy.training import (  # noqa: E402
    EnthalpyTrainConfig,
    cross_validate,
    kfold_indices,
    metrics,
    predict_array,
    train,
)

OQMD = str(OQMD_CSV)  # the shared data lookup of conftest.py (XTALNN_SHARED or ../shared)


def _oqmd_rows(n: int) -> list[tuple[str, str]]:
    if not os.path.exists(OQMD):
        pytest.fail(f"shared data missing: {OQMD}")
    with gzip.open(OQMD, "rt") as fh:
        reader = csv.reader(fh)
        next(reader)
        return [tuple(row) for _, row in zip(range(n), reader)]


def _write_csv(path, header, rows, gz=False):
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    rows = _oqmd_rows(300) + [("TiO2", "-3.3"), ("CaTiO3", "-3.5"), ("Ti2O3", "-3.1"), ("CaO", "-3.0")]
    return _write_csv(tmp_path_factory.mktemp("data") / "small.csv", ["formula", "target"], rows)


@pytest.fixture(scope="module")
def small_data(small_csv):
    table = read_table(small_csv)
    elements = default_elements()
    from xtalnn.enthalpy.data import parse_formulas

    x = fraction_matrix(parse_formulas(table.formulas), elements)
    return table, x, elements, element_property_table(elements)


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):
    """A tiny 2-member default-architecture ensemble and its file."""
    table, x, elements, features = small_data
    config = EnthalpyTrainConfig.for_arch("default", max_epochs=2, ensemble=2, batch_size=64,
                                  model_kwargs={"dim": 16, "heads": 2, "layers": 1, "head_dim": 32, "head_blocks": 1})  # fmt: skip
    module, _ = train(config, x, table.targets, features, seed=3)
    path = str(tmp_path_factory.mktemp("model") / "comp.pt")
    meta = {"elements": elements, "trained_elements": elements_present(x, elements), "ensemble": 2, "arch": "default"}
    save_enthalpy_model(module, path, meta)
    return module, path, x


# ---- parsing and bad input ------------------------------------------------------------------------


def test_parse_formula_fractions():
    assert parse_formula("La1Pb1Re2") == pytest.approx({"La": 0.25, "Pb": 0.25, "Re": 0.5})
    assert parse_formula("Fe0.4O0.6") == pytest.approx({"Fe": 0.4, "O": 0.6})
    assert parse_formula("Ca(TiO3)2") == pytest.approx({"Ca": 1 / 9, "Ti": 2 / 9, "O": 6 / 9})


@pytest.mark.parametrize("bad, words", [("Xx2O", "unknown element 'Xx'"), ("Ti(O", "cannot parse"),
                                        ("", "empty formula"), ("Ti-1O2", "cannot parse")])  # fmt: skip
def test_parse_formula_errors_name_row_and_value(bad, words):
    with pytest.raises(CompositionDataError) as err:
        parse_formula(bad, row=17)
    assert "row 17" in str(err.value) and words in str(err.value) and repr(bad) in str(err.value)


def test_read_table_gzip_and_custom_columns(tmp_path):
    rows = [("TiO2", "-3.3"), ("Ca0.5O0.5", "-3.0")]
    plain = _write_csv(tmp_path / "a.csv", ["comp", "dH"], rows)
    zipped = _write_csv(tmp_path / "a.csv.gz", ["comp", "dH"], rows, gz=True)
    for path in (plain, zipped):
        table = read_table(path, formula_column="comp", target_column="dH")
        assert table.formulas == ["TiO2", "Ca0.5O0.5"]
        np.testing.assert_allclose(table.targets, [-3.3, -3.0])
    with pytest.raises(CompositionDataError, match="no formula column 'formula'"):
        read_table(plain)
    assert read_table(plain, "comp", "missing", require_target=False).targets is None


def test_read_table_bad_target_and_empty(tmp_path):
    path = _write_csv(tmp_path / "b.csv", ["formula", "target"], [("TiO2", "-3.3"), ("CaO", "abc")])
    with pytest.raises(CompositionDataError, match=r"row 2: target 'abc' is not a number"):
        read_table(path)
    nan = _write_csv(tmp_path / "n.csv", ["formula", "target"], [("TiO2", "nan")])
    with pytest.raises(CompositionDataError, match="row 1: target 'nan' is not finite"):
        read_table(nan)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(CompositionDataError, match="empty file"):
        read_table(empty)
    header_only = _write_csv(tmp_path / "h.csv", ["formula", "target"], [])
    with pytest.raises(CompositionDataError, match="no data rows"):
        read_table(header_only)
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "missing.csv")


# ---- features ---------------------------------------------------------------------------------------


def test_fraction_matrix_ordered_by_atomic_number():
    elements = default_elements()
    assert elements[:3] == ["H", "He", "Li"] and elements[-1] == "Pu" and len(elements) == 94
    x = fraction_matrix([parse_formula("TiO2")], elements)
    assert x[0, 21] == pytest.approx(1 / 3) and x[0, 7] == pytest.approx(2 / 3)  # Ti: Z=22, O: Z=8
    assert x.sum() == pytest.approx(1.0)
    with pytest.raises(CompositionDataError, match="row 5: element 'O'"):
        fraction_matrix([parse_formula("TiO2")], ["Ti"], first_row=5)


def test_element_property_table_is_standardised():
    table = element_property_table(default_elements())
    assert table.shape[0] == 94 and np.isfinite(table).all()
    np.testing.assert_allclose(table.mean(axis=0), 0.0, atol=1e-5)


# ---- cross-validation and metrics ---------------------------------------------------------------------


def test_kfold_indices_partition_and_reproducible():
    parts = kfold_indices(103, 10, seed=4)
    assert len(parts) == 10
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(103))
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    assert all(np.array_equal(a, b) for a, b in zip(parts, kfold_indices(103, 10, seed=4)))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, kfold_indices(103, 10, seed=5)))
    with pytest.raises(ValueError):
        kfold_indices(5, 10)


def test_metrics_against_definitions():
    rng = np.random.default_rng(0)
    y = rng.normal(size=1000)
    p = y + rng.normal(scale=0.1, size=1000)
    m = metrics(y, p)
    err = np.abs(p - y)
    assert m["mae"] == pytest.approx(err.mean())
    assert m["rmse"] == pytest.approx(math.sqrt((err**2).mean()))
    assert (err <= m["q80"]).mean() == pytest.approx(0.8, abs=0.002)
    assert (err <= m["q90"]).mean() == pytest.approx(0.9, abs=0.002)


def test_cross_validate_out_of_fold(small_data):
    table, x, elements, features = small_data
    config = EnthalpyTrainConfig.for_arch("seed", max_epochs=2, batch_size=64)
    cv = cross_validate(config, x, table.targets, features, folds=3, seed=1)
    assert len(cv.folds) == 3 and np.isfinite(cv.predictions).all()
    assert sorted(set(cv.fold_of_row.tolist())) == [0, 1, 2]
    assert cv.overall["mae"] == pytest.approx(np.mean(np.abs(cv.predictions - table.targets)))


# ---- training, export, prediction ---------------------------------------------------------------------


def test_training_is_reproducible(small_data):
    table, x, elements, features = small_data
    config = EnthalpyTrainConfig.for_arch("seed", max_epochs=2, batch_size=64)
    a, _ = train(config, x, table.targets, features, seed=11)
    b, _ = train(config, x, table.targets, features, seed=11)
    xt = torch.as_tensor(x[:50])
    np.testing.assert_array_equal(predict_array(a, xt), predict_array(b, xt))


def test_export_round_trip_identical(trained):
    module, path, x = trained
    loaded = CompositionModel.load(path)
    assert loaded.elements == default_elements() and loaded.n_members == 2
    eager = predict_array(module, torch.as_tensor(x))
    np.testing.assert_array_equal(loaded.predict_fractions(x), eager)
    plain = torch.jit.load(path)  # no class of ours needed
    np.testing.assert_array_equal(plain(torch.as_tensor(x)).detach().numpy(), eager)
    mean, std = loaded.predict_with_uncertainty(["TiO2", "CaTiO3"])
    assert mean.shape == (2,) and np.isfinite(mean).all() and std.shape == (2,) and (std > 0).all()
    out = loaded.predict_fractions(loaded.fractions(["TiO2", "CaTiO3"]))
    np.testing.assert_allclose(mean, out.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(std, out.std(axis=1), rtol=1e-5)


def test_prediction_independent_of_batch_padding(trained):
    _, path, _ = trained
    model = CompositionModel.load(path)
    alone = model.predict(["TiO2"])
    # padded to five element slots by the quinary compound in the same batch
    together = model.predict(["TiO2", "NaKCaTiO5", "CaTiO3"])
    np.testing.assert_allclose(together[0], alone[0], rtol=1e-5)


def test_predict_unseen_element_is_an_error(trained, small_data):
    _, path, _ = trained
    _, x, elements, _ = small_data
    model = CompositionModel.load(path)
    unseen = sorted(set(elements) - set(elements_present(x, elements)))[0]
    with pytest.raises(CompositionDataError, match=f"row 2: formula '{unseen}O' contains {unseen}"):
        model.predict(["TiO2", f"{unseen}O"])


def test_failed_save_keeps_previous_file(trained, tmp_path):
    import shutil

    module, path, x = trained
    target = tmp_path / "model.pt"
    shutil.copy(path, target)
    before = CompositionModel.load(target).predict_fractions(x[:20])

    class NotScriptable(torch.nn.Module):
        def forward(self, x):
            return {1: x}.get(1, None) * 2 if x is not None else x  # Optional arithmetic: not scriptable

    with pytest.raises(Exception):
        save_enthalpy_model(NotScriptable(), target, {"elements": ["H"], "trained_elements": ["H"]})
    with pytest.raises(TypeError):  # metadata that cannot be written, after scripting succeeded
        save_enthalpy_model(module, target, {"elements": ["H"], "trained_elements": ["H"], "bad": object()})
    assert os.listdir(tmp_path) == ["model.pt"]  # no temporary files left behind
    np.testing.assert_array_equal(CompositionModel.load(target).predict_fractions(x[:20]), before)


# ---- rank -----------------------------------------------------------------------------------------------


def test_candidate_formulas_reduced_and_complete():
    assert sorted(candidate_formulas(["Ti", "O"], 3)) == sorted(["TiO", "TiO2", "Ti2O"])
    cands = candidate_formulas(["Ca", "Ti", "O"], 5)
    assert "CaTiO3" in cands and len(cands) == len(set(cands))
    with pytest.raises(CompositionDataError):
        candidate_formulas(["Xx", "O"], 3)


def test_hull_distances_simple_binary():
    # A-B: AB at -1 eV/atom is on the hull; A3B at -0.2 lies above the A–AB tie line (-0.5).
    d = hull_distances(["TiO", "Ti3O", "TiO3"], np.array([-1.0, -0.2, -0.6]), ["Ti", "O"])
    np.testing.assert_allclose(d, [0.0, 0.3, 0.0], atol=1e-9)


def test_rank_orders_by_hull_then_enthalpy(trained):
    _, path, _ = trained
    model = CompositionModel.load(path)
    rows = rank_compositions(model, ["Ti", "O"], max_atoms=8)
    assert len(rows) == len(candidate_formulas(["Ti", "O"], 8))
    keys = [(round(r.e_above_hull, 6), r.enthalpy) for r in rows]
    assert keys == sorted(keys) and rows[0].e_above_hull == pytest.approx(0.0, abs=1e-9)
    by_h = rank_compositions(model, ["Ti", "O"], max_atoms=8, sort="enthalpy")
    assert [r.enthalpy for r in by_h] == sorted(r.enthalpy for r in by_h)
    np.testing.assert_allclose([r.enthalpy for r in rows if r.formula == "TiO2"], model.predict(["TiO2"]), rtol=1e-5)


# ---- CLI ------------------------------------------------------------------------------------------------


def test_cli_train_predict_rank(small_csv, tmp_path, capsys):
    from xtalnn.enthalpy.cli import register
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))

    def run(*argv):
        args = parser.parse_args(list(argv))
        return args.func(args)

    out = str(tmp_path / "comp.pt")
    assert run("composition", "train", "--data", small_csv, "-o", out, "--arch", "seed",
               "--folds", "2", "--epochs", "2", "--quiet") == 0  # fmt: skip
    for suffix in ("_cv.json", "_cv.csv", "_cv_parity.png", "_cv_error_cdf.png"):
        assert os.path.getsize(str(tmp_path / "comp") + suffix) > 0
    capsys.readouterr()
    assert run("composition", "predict", out, "TiO2", "CaTiO3") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "formula,prediction,error" and lines[1].startswith("TiO2,") and len(lines) == 3
    pred_csv = str(tmp_path / "pred.csv")
    assert run("composition", "predict", out, "--data", small_csv, "-o", pred_csv) == 0
    with open(pred_csv) as fh:
        got = list(csv.DictReader(fh))
    model = CompositionModel.load(out)
    np.testing.assert_allclose([float(r["prediction"]) for r in got[:5]],
                               model.predict([r["formula"] for r in got[:5]]), atol=1e-6)  # fmt: skip
    assert run("composition", "rank", out, "--elements", "Ti", "O", "--max-atoms", "6", "--top", "4") == 0
    ranked = capsys.readouterr().out.strip().splitlines()
    assert ranked[0].startswith("rank,formula") and len(ranked) == 5
    # a bad row is marked with its reason, the others are predicted; --strict makes it an exit code
    assert run("composition", "predict", out, "Qq2O", "TiO2") == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(captured.out.splitlines()))
    assert rows[0]["prediction"] == "" and "row 1: unknown element 'Qq'" in rows[0]["error"]
    assert float(rows[1]["prediction"]) == pytest.approx(model.predict(["TiO2"])[0], abs=1e-6)
    assert rows[1]["error"] == "" and "1 of 2 rows not predicted" in captured.err
    assert run("composition", "predict", out, "Qq2O", "TiO2", "--strict") == 1


# ---- slow: the real data set ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("arch, limit", [("seed", 0.15), ("default", 0.075)])
def test_oqmd_one_fold_accuracy(arch, limit):
    """One fold of the 10-fold CV on OQMD 51k (minutes): MAE below a loose bound (eV/atom)."""
    from xtalnn.enthalpy.workflow import load_dataset

    if not os.path.exists(OQMD):
        pytest.fail(f"shared data missing: {OQMD}")
    data = load_dataset(OQMD)
    features = element_property_table(data.elements)
    cv = cross_validate(EnthalpyTrainConfig.for_arch(arch), data.x, data.y, features, folds=10, only_folds=[0])
    assert cv.overall["n"] == len(kfold_indices(len(data.y), 10)[0])
    assert cv.overall["mae"] < limit
