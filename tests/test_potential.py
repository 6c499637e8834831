"""Potentials: data handling, the model, training (energy + force loss), the model file, resume, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

import xtalnn
from conftest import TIO2_TAR, random_crystal
from xtalnn.potential import data as D
from xtalnn.potential.modelfile import ModelFormatError, load_model, read_metadata, save_model
from xtalnn.potential.model import ACTIVATIONS, FORMAT_VERSION, Potential
from xtalnn.potential.config import OPTIMIZERS, TrainConfig
from xtalnn.potential.loss import batch_loss, predict
from xtalnn.potential.optim import make_optimizer
from xtalnn.potential.train import train

PYTHON = sys.executable
# subprocesses import the same xtalnn as this process (the installed package in CI, python/ in development)
ENV = {**os.environ, "PYTHONPATH": str(Path(xtalnn.__file__).resolve().parents[1])}
TINY = dict(elements=["Ti", "O"], acsf_radial=4, acsf_angular_eta=1, hidden=[8], threads=1, optimizer="adam", lr=5e-3,
            schedule="plateau")


def run_cli(*args, timeout=300, **kw):
    return subprocess.run([PYTHON, "-m", "xtalnn.cli", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def small(tio2_structures):
    """Twelve of the smaller TiO2 structures (energies and forces)."""
    return [a for a in tio2_structures if len(a) <= 24][:12]


@pytest.fixture(scope="module")
def small_xyz(small, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "small.extxyz"
    write(path, small, format="extxyz")
    return path


@pytest.fixture(scope="module")
def trained(small_xyz, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "model.pt"
    config = TrainConfig(**TINY, epochs=6, batch_size=2, split=[0.6, 0.2, 0.2], patience=0)
    return train(config, [small_xyz], out, progress=False)


# -- data ------------------------------------------------------------------------------------------

def test_reference_energies_recover_per_element_energies(rng):
    true = {"Ti": -1615.3, "O": -440.7}
    structures = []
    for n in (4, 5, 6, 7, 9):
        atoms = random_crystal(rng, n)
        atoms.symbols[: rng.integers(1, n)] = "Ti"
        e = sum(true[s] for s in atoms.get_chemical_symbols())
        atoms.calc = SinglePointCalculator(atoms, energy=e)
        structures.append(atoms)
    fitted = D.fit_reference_energies(structures, ["Ti", "O"])
    np.testing.assert_allclose(fitted, [true["Ti"], true["O"]], rtol=0, atol=1e-8)


def test_split_is_reproducible_disjoint_and_complete():
    a = D.split_indices(100, (0.8, 0.1, 0.1), seed=3)
    b = D.split_indices(100, (0.8, 0.1, 0.1), seed=3)
    c = D.split_indices(100, (0.8, 0.1, 0.1), seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert [len(x) for x in a] == [80, 10, 10]
    assert sorted(np.concatenate(a).tolist()) == list(range(100))
    # groups (frames of one relaxation) never straddle two splits
    groups = np.repeat(np.arange(25), [1, 7] * 12 + [4])
    parts = D.split_indices(len(groups), (0.8, 0.1, 0.1), seed=3, groups=groups)
    owners = [set(groups[p].tolist()) for p in parts]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(groups))) and all(len(p) for p in parts)


def test_descriptor_statistics_match_numpy(small):
    from xtalnn.descriptors import ACSF

    acsf = ACSF.default(["Ti", "O"], 5.0, n_radial=4, n_angular_eta=1)
    graphs = [D.build_graph(a, ["Ti", "O"], acsf.cutoff) for a in small[:5]]
    mean, std, lo, hi = D.descriptor_statistics(lambda *x: acsf(*x), graphs, 2, chunk=2)
    G = np.concatenate([acsf.compute(a) for a in small[:5]])
    symbols = np.concatenate([a.get_chemical_symbols() for a in small[:5]])
    for k, el in enumerate(["Ti", "O"]):
        g = G[symbols == el]
        np.testing.assert_allclose(mean[k], g.mean(0), atol=1e-10)
        np.testing.assert_allclose(lo[k], g.min(0), atol=1e-12)
        np.testing.assert_allclose(hi[k], g.max(0), atol=1e-12)
        s = g.std(0)
        np.testing.assert_allclose(std[k][s > 1e-6], s[s > 1e-6], rtol=1e-6)


def test_batching_equals_one_structure_at_a_time(trained, small):
    model = trained.model
    graphs = [D.build_graph(a, model.elements, model.cutoff) for a in small[:5]]
    together, f_together = predict(model, D.collate(graphs))
    for k, g in enumerate(graphs):
        alone, f_alone = predict(model, D.collate([g]))
        assert torch.allclose(together[k], alone[0], rtol=0, atol=1e-10)
    f_each = torch.cat([predict(model, D.collate([g]))[1] for g in graphs])
    assert torch.allclose(f_together, f_each, atol=1e-10)


# -- model -----------------------------------------------------------------------------------------

def tiny_model(activation="tanh", reference=(-1615.0, -440.0)):
    from xtalnn.descriptors import ACSF

    acsf = ACSF.default(["Ti", "O"], 5.0, n_radial=4, n_angular_eta=1)
    torch.manual_seed(0)
    return Potential(["Ti", "O"], "acsf", acsf.spec(), acsf.cutoff, (6, 5), activation,
                     reference_energies=reference, n_features=acsf.n_features)


def test_config_names_every_activation_of_the_model():
    from xtalnn.potential import config

    assert tuple(ACTIVATIONS) == config.ACTIVATIONS


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_scripts_and_sums_atomic_energies_in_float64(activation, small):
    model = tiny_model(activation)
    scripted = torch.jit.script(model)
    g = D.build_graph(small[0], ["Ti", "O"], model.cutoff)
    vec = g.positions[g.edge_index[1]] - g.positions[g.edge_index[0]] + g.offsets
    e_eager = model(g.species, g.edge_index, vec, g.n_atoms)
    e_script = scripted(g.species, g.edge_index, vec, g.n_atoms)
    assert e_eager.dtype == torch.float64 and e_eager.shape == (g.n_atoms,)
    assert torch.equal(e_eager, e_script)
    # reference energies are carried in float64: the network part is resolved to far below 1 meV
    G = model.descriptors(g.species, g.edge_index, vec, g.n_atoms)
    network = model.network_energies(g.species, G)
    total = e_eager.sum() - model.reference_energies[g.species].sum()
    assert abs(float(total.detach() - network.sum().detach())) < 1e-9


def test_force_loss_weight_gradient_matches_finite_differences(small):
    """The force term's weight gradient goes through the op's double backward; check it numerically."""
    model = tiny_model()
    batch = D.collate([D.build_graph(a, ["Ti", "O"], model.cutoff, (-1615.0, -440.0)) for a in small[:2]])
    parameter = model.nets[1][0].weight  # [members, out, in]
    weight = parameter[0]  # the one member's first layer [out, in] (a view: edits change the parameter)

    def force_loss():
        return batch_loss(model, batch, force_weight=1.0)[0] - batch_loss(model, batch, force_weight=0.0)[0]

    loss = force_loss()
    (grad,) = torch.autograd.grad(loss, parameter)
    grad = grad[0]
    h = 1e-6
    for (i, j) in [(0, 0), (2, 5), (4, 11)]:
        with torch.no_grad():
            weight[i, j] += h
        up = force_loss().item()
        with torch.no_grad():
            weight[i, j] -= 2 * h
        down = force_loss().item()
        with torch.no_grad():
            weight[i, j] += h
        assert abs(grad[i, j].item() - (up - down) / (2 * h)) < 1e-6 * (1 + abs(grad[i, j].item()))
    assert grad.abs().sum() > 0


def test_cached_descriptor_derivatives_give_the_same_loss_and_gradients(small):
    from xtalnn.potential.loss import cache_jacobians, graphs_loss

    model = tiny_model()
    big = small[0].repeat((3, 3, 3))  # n² > edges: stays on the op's double backward
    big.calc = SinglePointCalculator(big, energy=27 * small[0].get_potential_energy(),
                                     forces=np.tile(small[0].get_forces(), (27, 1)))
    graphs = [D.build_graph(a, ["Ti", "O"], model.cutoff, (-1615.0, -440.0)) for a in [*small[:3], big]]
    loss_op = graphs_loss(model, graphs, 0.2)[0]
    grads_op = torch.autograd.grad(loss_op, list(model.parameters()))
    assert cache_jacobians(model, graphs, chunk=2) == 3
    n, F = graphs[0].n_atoms, model.n_features
    assert graphs[0].J.shape == (n * 3, n * F) and graphs[-1].J is None
    loss_cached = graphs_loss(model, graphs, 0.2)[0]
    grads_cached = torch.autograd.grad(loss_cached, list(model.parameters()))
    assert loss_cached.item() == pytest.approx(loss_op.item(), rel=1e-12)
    for a, b in zip(grads_op, grads_cached):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    # per-structure weights: the cached path and the op path agree, and equal the weighted RMSEs by hand
    for g, w in zip(graphs, (0.5, 2.0, 0.0, 1.5)):
        g.weight = w
    weighted = graphs_loss(model, graphs, 0.2)
    for g in graphs:
        g.G = g.J = None
    direct = graphs_loss(model, graphs, 0.2)
    assert weighted[0].item() == pytest.approx(direct[0].item(), rel=1e-12)
    batch = D.collate(graphs)
    energy, forces = predict(model, batch, forces=True)
    w = torch.tensor([0.5, 2.0, 0.0, 1.5], dtype=torch.float64)
    e_rmse = torch.sqrt((w * ((energy - batch.energy) / batch.n_atoms) ** 2).sum() / w.sum())
    w_atom = w[batch.structure][:, None]
    f_rmse = torch.sqrt((w_atom * (forces - batch.forces) ** 2).sum() / (3 * w_atom.sum()))
    assert direct[0].item() == pytest.approx((e_rmse + 0.2 * f_rmse).item(), rel=1e-9)
    assert batch_loss(model, batch, 0.2)[0].item() == pytest.approx(direct[0].item(), rel=1e-9)


def test_structure_weights_are_read_and_checked(small):
    atoms = small[0].copy()
    atoms.calc = small[0].calc
    atoms.info["weight"] = 0.25
    assert D.build_graph(atoms, ["Ti", "O"], 4.0).weight == 0.25
    atoms.info["weight"] = -1
    with pytest.raises(D.DataError, match="weight"):
        D.check_structure(atoms, ["Ti", "O"], "w.xyz")


def test_warm_start_predicts_like_the_previous_model_and_checks_its_shape(trained, small_xyz, tmp_path):
    from xtalnn.potential.train import prepare, warm_start_model

    prepared = prepare(TrainConfig(**TINY, split=[0.6, 0.2, 0.2]), [small_xyz])
    model = warm_start_model(prepared, trained.paths["model"])
    graphs = prepared.graphs[:3]
    batch = D.collate(graphs)
    e_new, _ = predict(model, batch, forces=False)
    e_old, _ = predict(trained.model, batch, forces=False)
    assert torch.allclose(e_new, e_old, rtol=0, atol=1e-10)
    assert torch.all(model.descriptor_min <= trained.model.descriptor_min)
    with pytest.raises(ValueError, match="hidden sizes"):
        warm_start_model(prepare(TrainConfig(**{**TINY, "hidden": [3]}), [small_xyz]), trained.paths["model"])
    result = train(TrainConfig(**TINY, epochs=2, split=[0.6, 0.2, 0.2], patience=0), [small_xyz],
                   tmp_path / "warm.pt", progress=False, init_from=trained.paths["checkpoint"])
    assert result.metadata["training_data"]["init_from"] == str(trained.paths["checkpoint"])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_takes_a_step(name, small):
    model = tiny_model()
    batch = D.collate([D.build_graph(a, ["Ti", "O"], model.cutoff, (-1615.0, -440.0)) for a in small[:2]])
    config = TrainConfig(elements=["Ti", "O"], optimizer=name, lr=1e-3)
    optimizer = make_optimizer(config, model.parameters())
    before = [p.detach().clone() for p in model.parameters()]

    def closure():
        optimizer.zero_grad()
        loss = batch_loss(model, batch, 0.1)[0]
        loss.backward()
        return loss

    optimizer.step(closure)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert torch.isfinite(batch_loss(model, batch, 0.1)[0])


# -- training, file, resume -----------------------------------------------------------------------

def test_training_writes_history_plots_and_a_model_with_metadata(trained):
    paths = trained.paths
    for key in ("model", "checkpoint", "history", "learning_curve", "parity", "metrics"):
        assert paths[key].is_file(), key
    rows = paths["history"].read_text().strip().splitlines()
    assert len(rows) == 1 + 6
    first, last = trained.history[0], trained.history[-1]
    assert last["train_loss"] < first["train_loss"]
    meta = read_metadata(paths["model"])
    assert meta["elements"] == ["Ti", "O"] and meta["format_version"] == FORMAT_VERSION
    assert meta["units"]["energy"] == "eV" and meta["cutoff"] == trained.model.cutoff
    assert set(meta["reference_energies"]) == {"Ti", "O"}
    ref = meta["reference_energies"]
    for g in trained.model.init_args()["reference_energies"], :
        assert g.tolist() == [ref["Ti"], ref["O"]]
    # what the networks learn is the remainder: ≈ −850 eV/atom totals become < 1 eV/atom
    assert all(abs(e) < 1.0 for e in trained.history and [r["train_energy_rmse_meV_per_atom"] / 1000
                                                          for r in trained.history])
    assert np.array(meta["descriptor_range"]["min"]).shape == (2, trained.model.n_features)
    assert len(meta["training_data"]["fingerprint"]) == 64
    assert meta["descriptor"]["kind"] == "acsf" and meta["spec"] == trained.model.spec.tolist()
    assert set(trained.test_metrics) >= {"energy_rmse_meV_per_atom", "force_rmse_eV_per_A"}


def test_model_file_loads_with_torch_and_the_op_library_only(trained, small):
    """A fresh interpreter that never imports xtalnn gives the same atomic energies."""
    from xtalnn.ops import library_path

    model = trained.model
    g = D.build_graph(small[3], model.elements, model.cutoff)
    vec = g.positions[g.edge_index[1]] - g.positions[g.edge_index[0]] + g.offsets
    expected = model(g.species, g.edge_index, vec, g.n_atoms)
    inputs = Path(trained.paths["model"]).with_name("inputs.pt")
    torch.save({"species": g.species, "edge_index": g.edge_index, "edge_vec": vec}, inputs)
    code = (
        "import sys, torch\n"
        f"torch.ops.load_library({library_path()!r})\n"
        f"m = torch.jit.load({str(trained.paths['model'])!r})\n"
        f"x = torch.load({str(inputs)!r})\n"
        "e = m(x['species'], x['edge_index'], x['edge_vec'], len(x['species']))\n"
        "assert not any(k.startswith('xtalnn') for k in sys.modules), 'xtalnn was imported'\n"
        "print(repr(e.tolist())); print(m.elements, m.cutoff, m.format_version)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert eval(lines[0]) == expected.tolist()
    assert lines[1] == f"['Ti', 'O'] {model.cutoff} {FORMAT_VERSION}"


def test_incompatible_format_version_is_refused(trained, tmp_path):
    src = trained.paths["model"]
    bad = tmp_path / "future.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            payload = zin.read(item.filename)
            if item.filename.endswith("extra/xtalnn_potential.json"):
                meta = json.loads(payload)
                meta["format_version"] = FORMAT_VERSION + 1
                payload = json.dumps(meta).encode()
            zout.writestr(item, payload)
    with pytest.raises(ModelFormatError, match=f"format version {FORMAT_VERSION + 1} is not supported"):
        load_model(bad)
    from xtalnn.potential.calculator import XtalnnCalculator

    with pytest.raises(ModelFormatError):
        XtalnnCalculator(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFormatError, match="not a TorchScript model file"):
        load_model(junk)


def test_same_seed_gives_the_same_model(small_xyz, tmp_path):
    config = dict(**TINY, epochs=1, batch_size=4, split=[0.7, 0.3, 0.0], limit=6)
    a = train(TrainConfig(**config), [small_xyz], tmp_path / "a.pt", progress=False)
    b = train(TrainConfig(**config), [small_xyz], tmp_path / "b.pt", progress=False)
    c = train(TrainConfig(**{**config, "seed": 1}), [small_xyz], tmp_path / "c.pt", progress=False)
    for (k, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), k
    assert not torch.equal(a.model.nets[0][0].weight, c.model.nets[0][0].weight)


# -- bad input -------------------------------------------------------------------------------------

def _no_model_written(directory: Path, name="m.pt"):
    assert not (directory / name).exists()
    assert not [p for p in directory.iterdir() if p.name.startswith(".tmp-")]


def test_missing_energy_is_named(small, tmp_path):
    atoms = [a.copy() for a in small[:3]]  # copies drop the calculator: no energies
    path = tmp_path / "noenergy.extxyz"
    write(path, atoms, format="extxyz")
    with pytest.raises(D.DataError, match=r"noenergy\.extxyz.*no energy"):
        train(TrainConfig(**TINY, epochs=1), [path], tmp_path / "m.pt", progress=False)
    _no_model_written(tmp_path)


def test_foreign_element_empty_folder_and_unreadable_file_are_named(small_xyz, tmp_path):
    with pytest.raises(D.DataError, match=r"small\.extxyz.*\['O'\] not in --elements"):
        train(TrainConfig(**{**TINY, "elements": ["Ti"]}, epochs=1), [small_xyz], tmp_path / "m.pt", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty.*no \\*.xsf"):
        train(TrainConfig(**TINY, epochs=1), [empty], tmp_path / "m.pt", progress=False)
    garbage = tmp_path / "garbage.xyz"
    garbage.write_text("this is\nnot a structure file\n")
    with pytest.raises(ValueError, match="garbage.xyz"):
        train(TrainConfig(**TINY, epochs=1), [garbage], tmp_path / "m.pt", progress=False)
    with pytest.raises(FileNotFoundError, match="missing.xsf"):
        train(TrainConfig(**TINY, epochs=1), [tmp_path / "missing.xsf"], tmp_path / "m.pt", progress=False)
    _no_model_written(tmp_path)


def test_failed_export_leaves_no_temporary_file(trained, tmp_path):
    target = tmp_path / "m.pt"
    target.mkdir()  # a directory where the model file should go: the final rename fails
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        save_model(trained.model, target)
    assert (target / "keep").read_text() == "x"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


# -- CLI -------------------------------------------------------------------------------------------

def test_cli_train_eval_predict_export(small_xyz, tmp_path):
    model = tmp_path / "cli.pt"
    out = run_cli("train", "--data", small_xyz, "--elements", "Ti", "O", "-o", model, "--epochs", 2,
                  "--acsf-radial", 4, "--acsf-angular-eta", 1, "--hidden", 6, "--batch-size", "full",
                  "--optimizer", "Rprop", "--activation", "silu", "--threads", 1, "--quiet")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["epochs_run"] == 2 and Path(summary["model"]).name == "cli.pt"
    assert read_metadata(model)["config"]["optimizer"] == "rprop"

    out = run_cli("eval", model, "--data", small_xyz, "--parity", tmp_path / "parity.png")
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)
    assert set(metrics) == {"energy_rmse_meV_per_atom", "energy_mae_meV_per_atom", "force_rmse_eV_per_A",
                            "force_mae_eV_per_A", "n_structures"}
    assert metrics["n_structures"] == 12 and (tmp_path / "parity.png").stat().st_size > 1000
    assert 0 < metrics["energy_mae_meV_per_atom"] <= metrics["energy_rmse_meV_per_atom"]

    out = run_cli("predict", model, small_xyz, "-o", tmp_path / "pred.extxyz")
    assert out.returncode == 0, out.stderr
    from ase.io import read

    pred = read(tmp_path / "pred.extxyz", ":")
    assert len(pred) == 12 and pred[0].get_forces().shape == (len(pred[0]), 3)

    out = run_cli("export", tmp_path / "cli.ckpt", "-o", tmp_path / "again.pt")
    assert out.returncode == 0, out.stderr
    a, _ = load_model(model)
    b, _ = load_model(tmp_path / "again.pt")
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)

    out = run_cli("train", "--data", tmp_path / "nowhere", "--elements", "Ti", "O", "-o", tmp_path / "bad.pt")
    assert out.returncode == 1 and "nowhere" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "bad.pt").exists()


def test_cli_preset_seed_and_config_file(tmp_path):
    from xtalnn.cli import build_parser
    from xtalnn.potential.cli import config_from_args

    parser = build_parser()
    c = config_from_args(parser.parse_args(["train", "--data", "x", "--elements", "Ti", "O", "--preset", "seed"]))
    assert (c.descriptor, c.hidden, c.activation, c.optimizer, c.lr, c.batch_size) == \
        ("acsf", [10, 10], "tanh", "adam", 1e-4, 1)
    c = config_from_args(parser.parse_args(["train", "--data", "x", "--elements", "Ti", "O", "--preset", "seed",
                                            "--descriptor", "chebyshev"]))
    assert (c.descriptor, c.optimizer, c.lr, c.batch_size) == ("chebyshev", "adamax", 1e-3, 8)
    cfg = tmp_path / "c.toml"
    cfg.write_text('elements = ["O", "Ti"]\nhidden = [20, 20, 20]\nactivation = "elu"\nlr = 0.01\n')
    c = config_from_args(parser.parse_args(["train", "--data", "x", "--config", str(cfg), "--lr", "0.02"]))
    assert (c.elements, c.hidden, c.activation, c.lr) == (["O", "Ti"], [20, 20, 20], "elu", 0.02)
    bad = tmp_path / "bad.json"
    bad.write_text('{"hiden": [3]}')
    with pytest.raises(ValueError, match="hiden"):
        config_from_args(parser.parse_args(["train", "--data", "x", "--elements", "Ti", "--config", str(bad)]))


def test_interrupt_keeps_the_best_model_and_resume_continues(small_xyz, tmp_path):
    model = tmp_path / "run.pt"
    args = ["train", "--data", small_xyz, "--elements", "Ti", "O", "-o", model, "--epochs", 400,
            "--acsf-radial", 4, "--acsf-angular-eta", 1, "--hidden", 6, "--batch-size", 4, "--threads", 1,
            "--optimizer", "adam", "--lr", "1e-3", "--patience", 0, "--quiet"]
    proc = subprocess.Popen([PYTHON, "-m", "xtalnn.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    history = tmp_path / "run.history.csv"
    deadline = time.time() + 240
    while time.time() < deadline and (not history.exists() or len(history.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # `kill`
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["interrupted"] is True
    ckpt = torch.load(tmp_path / "run.ckpt", weights_only=False)
    done = ckpt["epoch"]
    assert 2 <= done < 400
    loaded, meta = load_model(model)  # the best state so far, a complete file
    best = ckpt["best_state"]
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in best.items())

    out = run_cli("train", "--data", small_xyz, "-o", model, "--resume", "--epochs", done + 2, "--quiet")
    assert out.returncode == 0, out.stderr
    rows = history.read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, done + 3))
    assert "resuming after epoch" in out.stderr


@pytest.mark.slow
def test_default_settings_learn_tio2_energies_and_forces(tmp_path):
    """Defaults on 200 TiO2 structures for 10 minutes: held-out errors far below the data's spread
    (per-atom energy std ≈ 345 meV/atom, force RMS ≈ 0.80 eV/Å)."""
    config = TrainConfig(elements=["Ti", "O"], limit=200, max_time=10, threads=2)
    result = train(config, [TIO2_TAR], tmp_path / "tio2.pt", progress=False)
    test = result.test_metrics
    assert test["n_structures"] == 20
    assert test["energy_rmse_meV_per_atom"] < 30
    assert test["force_rmse_eV_per_A"] < 0.4
    out = run_cli("eval", tmp_path / "tio2.pt", "--data", TIO2_TAR, "--limit", 200)
    assert json.loads(out.stdout)["n_structures"] == 200


def test_cli_eval_per_structure_errors_worst_first(trained, small, tmp_path):
    """`xtalnn eval --per-structure`: one row per structure, worst |energy error| first, each row equal
    to what XtalnnCalculator gives for that structure (a compressed cell extrapolates)."""
    import csv

    from xtalnn.potential.calculator import XtalnnCalculator

    frames = [a.copy() for a in small[:5]]
    squeezed = small[5].copy()
    squeezed.set_cell(squeezed.cell * 0.85, scale_atoms=True)
    frames.append(squeezed)
    for a, b in zip(frames, small[:6]):
        a.calc = SinglePointCalculator(a, energy=b.get_potential_energy(), forces=b.get_forces())
    write(tmp_path / "set.extxyz", frames, format="extxyz")
    out = tmp_path / "errors.csv"
    result = run_cli("eval", trained.paths["model"], "--data", tmp_path / "set.extxyz", "--per-structure", out)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and list(rows[0]) == ["file", "atoms", "energy_error_meV_per_atom", "force_rmse_eV_per_A",
                                                 "extrapolating_atoms"]
    errors = [abs(float(r["energy_error_meV_per_atom"])) for r in rows]
    assert errors == sorted(errors, reverse=True)
    calc = XtalnnCalculator(trained.paths["model"], warn=False)
    for row in rows:
        k = int(row["file"].split("set.extxyz[", 1)[1].split("]", 1)[0])  # "<path>[k] (from <origin>)"
        atoms = frames[k].copy()
        calc.calculate(atoms, ["energy", "forces"])
        ref = frames[k]
        assert int(row["atoms"]) == len(atoms)
        assert float(row["energy_error_meV_per_atom"]) == pytest.approx(
            (calc.results["energy"] - ref.get_potential_energy()) / len(atoms) * 1000, abs=1e-3)
        assert float(row["force_rmse_eV_per_A"]) == pytest.approx(
            np.sqrt(np.mean((calc.results["forces"] - ref.get_forces()) ** 2)), rel=1e-5)
        assert int(row["extrapolating_atoms"]) == calc.results["n_extrapolating"]
    assert int(next(r for r in rows if "set.extxyz[5]" in r["file"])["extrapolating_atoms"]) > 0
