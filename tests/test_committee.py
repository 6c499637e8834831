"""Committee models: N networks over one descriptor pass in one model file (``xtalnn train --committee N``).

Trained committees against single runs with the members' seeds; the calculator's spread (energy
standard deviation, DP-GEN's force deviation) against the members' own calculators; forces and
stress of the mean against finite differences. LAMMPS's per-atom deviation: tests/test_lammps.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase.io import write

from xtalnn.potential.calculator import XtalnnCalculator
from xtalnn.potential.config import TrainConfig
from xtalnn.potential.model import Potential
from xtalnn.potential.modelfile import load_model, read_metadata, save_model
from xtalnn.potential.train import train

TINY = dict(elements=["Ti", "O"], acsf_radial=4, acsf_angular_eta=1, hidden=[8], threads=1, optimizer="adam", lr=5e-3,
            epochs=4, batch_size=2, split=[0.6, 0.2, 0.2], patience=0, max_time=None)


@pytest.fixture(scope="module")
def small_xyz(tio2_structures, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "small.extxyz"
    write(path, [a for a in tio2_structures if len(a) <= 24][:12], format="extxyz")
    return path


@pytest.fixture(scope="module")
def committee(small_xyz, tmp_path_factory):
    out = tmp_path_factory.mktemp("committee") / "committee.pt"
    return train(TrainConfig(**TINY, committee=3), [small_xyz], out, progress=False)


def untrained(seed: int, template: Potential | None = None, structures=None) -> Potential:
    """A small seeded model (ACSF 5 Å, 2×12 tanh), scaled on ``structures`` or shaped like ``template``."""
    if template is not None:
        torch.manual_seed(seed)
        return Potential(**template.init_args())
    from xtalnn.descriptors import ACSF
    from xtalnn.potential import data as D

    d = ACSF.default(["Ti", "O"], 5.0, n_radial=5, n_angular_eta=2, angular="both")
    graphs = [D.build_graph(a, ["Ti", "O"], d.cutoff) for a in structures]
    mean, std, lo, hi = D.descriptor_statistics(lambda *x: d(*x), graphs, 2)
    torch.manual_seed(seed)
    return Potential(["Ti", "O"], d.op_name, d.spec(), d.cutoff, (12, 12), "tanh", shift=mean, scale=std,
                     reference_energies=[-1615.0, -440.0], descriptor_min=lo, descriptor_max=hi)


def calc_results(path, atoms, properties=("energy", "forces", "stress")) -> dict:
    atoms = atoms.copy()
    calc = XtalnnCalculator(path, warn=False)
    calc.calculate(atoms, list(properties))
    return dict(calc.results)


def test_each_member_is_the_single_run_with_its_seed(committee, small_xyz, tmp_path):
    """Member m of ``--committee 3`` (seed 0) is, weight for weight, the single model trained with
    seed m on the committee's split (split_seed 0): the committee changes nothing in how members train."""
    assert committee.model.n_members == 3
    for m in (0, 2):
        single = train(TrainConfig(**TINY, seed=m, split_seed=0), [small_xyz], tmp_path / f"single{m}.pt",
                       progress=False)
        member = committee.model.member(m)
        for key, value in single.model.state_dict().items():
            torch.testing.assert_close(member.state_dict()[key], value, rtol=0, atol=1e-12, msg=key)
    assert not torch.equal(committee.model.member(0).nets[0][0].weight, committee.model.member(1).nets[0][0].weight)


def test_committee_file_predicts_the_mean_of_its_members(committee, tio2_structures, tmp_path):
    meta = read_metadata(committee.paths["model"])
    assert meta["committee"]["members"] == 3 and meta["committee"]["seeds"] == [0, 1, 2]
    atoms = tio2_structures[4].copy()
    atoms.rattle(0.02, seed=1)
    members = []
    for m in range(3):
        save_model(committee.model.member(m), tmp_path / f"member{m}.pt")
        members.append(calc_results(tmp_path / f"member{m}.pt", atoms))
    mean = calc_results(committee.paths["model"], atoms)
    assert mean["energy"] == pytest.approx(np.mean([r["energy"] for r in members]), abs=1e-9)
    np.testing.assert_allclose(mean["forces"], np.mean([r["forces"] for r in members], 0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(mean["stress"], np.mean([r["stress"] for r in members], 0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(mean["committee_energies"], [r["energy"] for r in members], rtol=0, atol=1e-9)
    assert mean["energy_std"] == pytest.approx(np.std([r["energy"] for r in members]), abs=1e-9)
    forces = np.array([r["forces"] for r in members])  # [M, n, 3]
    deviation = np.sqrt(np.mean(np.sum((forces - forces.mean(0)) ** 2, axis=2), axis=0))  # DP-GEN's ε_i
    np.testing.assert_allclose(mean["force_deviation"], deviation, rtol=0, atol=1e-10)
    np.testing.assert_allclose(mean["forces_std"], forces.std(0), rtol=0, atol=1e-10)
    assert mean["max_force_deviation"] == pytest.approx(deviation.max(), abs=1e-10)
    assert mean["energy_std"] > 1e-4 and mean["max_force_deviation"] > 1e-3
    # the scripted file's mean is what readers that know nothing of committees get
    module, _ = load_model(committee.paths["model"])
    assert module.n_members == 3


def test_spread_is_zero_for_identical_members_and_not_otherwise(tio2_structures, tmp_path):
    one = untrained(1, structures=tio2_structures[:20])
    other = untrained(2, template=one)
    save_model(Potential.committee([one, one, one]), tmp_path / "same.pt")
    save_model(Potential.committee([one, other]), tmp_path / "different.pt")
    save_model(one, tmp_path / "one.pt")
    atoms = tio2_structures[4].copy()
    atoms.rattle(0.05, seed=2)
    same = calc_results(tmp_path / "same.pt", atoms)
    single = calc_results(tmp_path / "one.pt", atoms)
    assert same["energy_std"] < 1e-12 and same["max_force_deviation"] < 1e-12  # rounding of one stacked product
    assert same["energy"] == pytest.approx(single["energy"], abs=1e-9)
    np.testing.assert_allclose(same["forces"], single["forces"], rtol=0, atol=1e-10)
    assert "energy_std" not in single  # a single model has no committee
    atoms.calc = XtalnnCalculator(tmp_path / "different.pt", warn=False, spread=False)  # the mean alone
    assert atoms.get_potential_energy() == pytest.approx(calc_results(tmp_path / "different.pt", atoms)["energy"],
                                                         abs=1e-9)
    assert "energy_std" not in atoms.calc.results and "energy_std" not in atoms.calc.implemented_properties
    different = calc_results(tmp_path / "different.pt", atoms)
    assert different["energy_std"] > 1e-3 and different["max_force_deviation"] > 1e-3
    assert np.all(different["force_deviation"] > 0)


def test_committee_forces_and_stress_are_derivatives_of_the_mean_energy(tio2_structures, tmp_path):
    first = untrained(3, structures=tio2_structures[:20])
    path = tmp_path / "c.pt"
    save_model(Potential.committee([first, untrained(4, first), untrained(5, first)]), path)
    atoms = tio2_structures[4].copy()
    atoms.rattle(0.03, seed=4)
    calc = XtalnnCalculator(path, warn=False)
    atoms.calc = calc
    forces, stress = atoms.get_forces(), atoms.get_stress(voigt=False)

    def energy(a):
        return calc_results(path, a, ("energy",))["energy"]

    h = 1e-4
    for i, c in [(0, 0), (3, 1), (7, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, c] += h
        minus.positions[i, c] -= h
        assert forces[i, c] == pytest.approx(-(energy(plus) - energy(minus)) / (2 * h), abs=1e-6, rel=1e-6)
    for a, b in [(0, 0), (1, 2), (0, 1)]:
        strained = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = sign * 1e-5 / (2 if a != b else 1)
            s = atoms.copy()
            s.set_cell(atoms.cell @ (np.eye(3) + eps), scale_atoms=True)
            strained.append(energy(s))
        fd = (strained[0] - strained[1]) / (2e-5 * atoms.get_volume())
        assert stress[a, b] == pytest.approx(fd, abs=1e-6, rel=1e-5)


def test_warm_start_and_old_state_dicts_still_load(committee, small_xyz, tmp_path):
    """A committee warm-starts a committee of the same size (each member from its own weights); a
    committee of another size is refused by name."""
    config = TrainConfig(**{**TINY, "epochs": 1}, committee=3)
    again = train(config, [small_xyz], tmp_path / "again.pt", progress=False, init_from=committee.paths["model"])
    assert again.model.n_members == 3
    with pytest.raises(ValueError, match="a committee of 3 cannot start a committee of 2"):
        train(TrainConfig(**TINY, committee=2), [small_xyz], tmp_path / "two.pt", progress=False,
              init_from=committee.paths["model"])


def test_resume_continues_every_member(small_xyz, tmp_path):
    """A committee stopped after 2 epochs and resumed (as `xtalnn train --resume --epochs 4` calls it) is,
    weight for weight, the committee trained for 4 epochs in one go; a member whose checkpoint is missing
    (the run stopped before it) starts as in the first run; a finished committee resumes to itself."""
    from xtalnn.potential.checkpoint import load_checkpoint, save_checkpoint
    from xtalnn.potential.train import member_paths

    straight = train(TrainConfig(**TINY, committee=2), [small_xyz], tmp_path / "straight.pt", progress=False)
    short = train(TrainConfig(**{**TINY, "epochs": 2}, committee=2), [small_xyz], tmp_path / "resumed.pt",
                  progress=False)
    member_paths(short.paths, 1)["checkpoint"].unlink()
    resumed = train(TrainConfig(), [small_xyz], tmp_path / "resumed.pt", progress=False, resume=True, epochs=4)
    again = train(TrainConfig(), [small_xyz], tmp_path / "resumed.pt", progress=False, resume=True)
    for result in (resumed, again):
        assert result.model.n_members == 2 and result.metadata["committee"]["epochs_run"] == [4, 4]
        for key, value in straight.model.state_dict().items():
            torch.testing.assert_close(result.model.state_dict()[key], value, rtol=0, atol=1e-12, msg=key)
    warm = train(TrainConfig(**{**TINY, "epochs": 1}, committee=2), [small_xyz], tmp_path / "warm.pt", progress=False,
                 init_from=straight.paths["model"])  # a warm-started committee resumes from its members' checkpoints
    more = train(TrainConfig(), [small_xyz], warm.paths["model"], progress=False, resume=True, epochs=2)
    assert more.metadata["committee"]["epochs_run"] == [2, 2]
    old = load_checkpoint(member_paths(short.paths, 0)["checkpoint"])  # written before committees resumed
    old.pop("committee")
    save_checkpoint({k: v for k, v in old.items() if k != "version"}, member_paths(short.paths, 0)["checkpoint"])
    with pytest.raises(ValueError, match="predates resumable committees"):
        train(TrainConfig(), [small_xyz], tmp_path / "resumed.pt", progress=False, resume=True)


def test_bootstrap_members_train_on_different_resamples(small_xyz, tmp_path):
    from xtalnn.potential.train import bootstrap_split

    split = {"train": list(range(10)), "val": [10], "test": [11]}
    a, b = bootstrap_split(split, 0, 0), bootstrap_split(split, 0, 1)
    assert len(a["train"]) == 10 and set(a["train"]) <= set(range(10)) and a["train"] != b["train"]
    assert len(set(a["train"])) < 10  # with replacement
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(TrainConfig(**{**TINY, "epochs": 2}, committee=2, committee_bootstrap=True), [small_xyz],
                       tmp_path / "boot.pt", progress=False)
    assert result.metadata["committee"]["bootstrap"] is True and result.model.n_members == 2


def test_cli_train_committee(small_xyz, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import xtalnn

    env = {**os.environ, "PYTHONPATH": str(Path(xtalnn.__file__).resolve().parents[1])}
    out = tmp_path / "c.pt"
    result = subprocess.run([sys.executable, "-m", "xtalnn.cli", "train", "--data", str(small_xyz), "--elements", "Ti",
                             "O", "--acsf-radial", "4", "--acsf-angular-eta", "1", "--hidden", "8", "--threads", "1",
                             "--epochs", "1", "--committee", "2", "--committee-bootstrap", "--quiet", "-o", str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "committee member 2/2 (seed 1, bootstrap" in result.stderr
    meta = read_metadata(out)
    assert meta["committee"]["members"] == 2 and meta["config"]["committee_bootstrap"] is True
    assert json.loads(result.stdout.splitlines()[-1])["model"] == str(out)
    assert (tmp_path / "c.member1.ckpt").is_file() and (tmp_path / "c.member1.history.csv").is_file()


def test_cli_predict_writes_the_committee_spread(committee, tio2_structures, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from ase.io import read

    import xtalnn

    atoms = tio2_structures[4].copy()
    atoms.rattle(0.02, seed=6)
    write(tmp_path / "in.extxyz", atoms, format="extxyz")
    env = {**os.environ, "PYTHONPATH": str(Path(xtalnn.__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-m", "xtalnn.cli", "predict", str(committee.paths["model"]),
                             str(tmp_path / "in.extxyz"), "-o", str(tmp_path / "out.extxyz")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = read(tmp_path / "out.extxyz")
    calc = XtalnnCalculator(committee.paths["model"], warn=False)
    atoms.calc = calc
    assert calc.get_property("energy_std", atoms) == pytest.approx(out.info["energy_std"], rel=1e-6)
    assert out.info["max_force_deviation"] == pytest.approx(calc.results["max_force_deviation"], rel=1e-6)
    np.testing.assert_allclose(out.arrays["force_deviation"], calc.results["force_deviation"], rtol=1e-6)


def test_cli_export_joins_member_checkpoints_into_the_committee(committee, tio2_structures, tmp_path):
    """`xtalnn export model.member0.ckpt model.member1.ckpt … -o c.pt` rebuilds the committee file."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import xtalnn

    stem = str(committee.paths["model"])[:-3]
    env = {**os.environ, "PYTHONPATH": str(Path(xtalnn.__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-m", "xtalnn.cli", "export", *[f"{stem}.member{m}.ckpt" for m in range(3)],
                             "-o", str(tmp_path / "c.pt")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_metadata(tmp_path / "c.pt")["committee"]["members"] == 3
    atoms = tio2_structures[4].copy()
    again, original = calc_results(tmp_path / "c.pt", atoms), calc_results(committee.paths["model"], atoms)
    assert again["energy"] == pytest.approx(original["energy"], abs=1e-10)
    np.testing.assert_allclose(again["force_deviation"], original["force_deviation"], rtol=0, atol=1e-12)
