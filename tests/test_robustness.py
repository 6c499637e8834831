"""Issue 20 through the CLI, as a user runs it: outputs never replace inputs, run folders are bound to
their calculator, settings are checked before any reference call, damaged files are refused, batch
predictions survive bad rows, and nothing is left behind (no orphan process, no /dev/shm file). Every
refusal is one line on stderr naming the file, key or value at fault, never a traceback."""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import signal
import subprocess
import time
import types
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write

from campaign_helpers import ENV, PYTHON, tiny_config

TINY_TRAIN = ["--elements", "Ti", "O", "--epochs", "2", "--acsf-radial", "4", "--acsf-angular-eta", "1",
              "--hidden", "6", "--threads", "1", "--quiet"]


def run(*args, timeout=600):
    """``xtalnn ARGS`` in a new process (training: it sets the process's torch threads)."""
    return subprocess.run([PYTHON, "-m", "xtalnn.cli", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def cli(*args):
    """``xtalnn ARGS`` through the CLI's entry point in this process (no interpreter start per call); an
    exception the CLI does not turn into its one-line error escapes and fails the test."""
    from xtalnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def refused(out, *words) -> None:
    """A clean refusal: exit 1, one stderr line naming each of ``words``, no traceback."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr and len(lines) == 1, out.stderr
    for word in words:
        assert str(word) in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def work(tio2_structures, tmp_path_factory):
    """A folder with 12 small TiO2 structures (data.extxyz) and a model trained on them (m.pt, m.ckpt)."""
    folder = tmp_path_factory.mktemp("robust")
    write(folder / "data.extxyz", [a for a in tio2_structures if len(a) <= 24][:12], format="extxyz")
    out = run("train", "--data", folder / "data.extxyz", "-o", folder / "m.pt", *TINY_TRAIN)
    assert out.returncode == 0, out.stderr
    return folder


# ---------------------------------------------------------------------------- outputs never replace inputs
def test_outputs_never_replace_inputs_or_existing_files(work, tmp_path):
    data, model, ckpt = work / "data.extxyz", work / "m.pt", work / "m.ckpt"
    before = {p: p.read_bytes() for p in (data, model, ckpt)}
    refused(cli("predict", model, data, "-o", data), data, "input")
    refused(cli("train", "--data", data, "-o", data, *TINY_TRAIN), data, "input")
    refused(cli("export", ckpt, "-o", ckpt), ckpt, "input")
    refused(cli("export", ckpt, "-o", model), model, "--overwrite")
    # a new run into an existing model would discard its checkpoint and history
    refused(cli("train", "--data", data, "-o", model, *TINY_TRAIN), "--overwrite", "--resume")
    refused(cli("train", "--data", data, "-o", work, *TINY_TRAIN), work, "directory")
    assert all(p.read_bytes() == b for p, b in before.items())
    # the user says so: replaced (atomically, no temporary file left)
    again = tmp_path / "again.pt"
    again.write_bytes(b"old")
    assert cli("export", ckpt, "-o", again, "--overwrite").returncode == 0
    assert again.read_bytes()[:2] == b"PK" and not list(tmp_path.glob(".tmp-*"))

    table = tmp_path / "in.csv"
    table.write_text("formula,target\nTiO2,-3.3\nCaO,-3.0\n")
    refused(cli("composition", "predict", model, "--data", table, "-o", table), table, "input")
    assert table.read_text() == "formula,target\nTiO2,-3.3\nCaO,-3.0\n"  # the target column is still there


# ---------------------------------------------------------------------------- search folder and calculator
def test_search_folder_refuses_another_calculator(tmp_path):
    args = ["Si8", "-o", tmp_path / "s", "--population", 3, "--children", 1, "--generations", 0,
            "--systems", "cubic", "--seeds", 1, "--workers", 1, "--quiet", "--no-relax"]
    assert cli("search", *args, "-c", "sw-si").returncode == 0
    refused(cli("search", *args, "-c", "empirical"), "calculator.spec", "'sw-si' there", "'empirical' now")
    assert cli("search", *args, "-c", "sw-si").returncode == 0  # the same calculator resumes
    (tmp_path / "file").write_text("x")
    refused(cli("search", *args[:1], "-o", tmp_path / "file", *args[3:], "-c", "sw-si"), tmp_path / "file")


# ---------------------------------------------------------------------------- settings before any reference call
@pytest.mark.parametrize("replace, named", [
    ({"cutoff = 4.0": "cutoff = -1.0"}, "cutoff"),
    ({"hidden = [6, 6]": 'hidden = "16"'}, "hidden"),
    ({"epochs = 8": 'epochs = "many"'}, "epochs"),
    ({'composition = "Si8"': '[composition]\nelements = "TiO"\nmodel = "c.pt"'}, "elements"),
    ({'calculator = "sw-si"': 'calculator = "nonexist"'}, "nonexist"),
    ({"population = 5": "population = 5.5"}, "population"),
])
def test_campaign_settings_are_checked_before_any_reference_call(tmp_path, replace, named):
    if "[composition]" in next(iter(replace.values())):  # a table must come before the first [section]
        text = Path(tiny_config(str(tmp_path))).read_text().replace('composition = "Si8"\n', "")
        Path(tmp_path / "tiny.toml").write_text(next(iter(replace.values())) + "\n" + text)
        config = str(tmp_path / "tiny.toml")
    else:
        config = tiny_config(str(tmp_path), **replace)
    out = cli("campaign", "run", config, "-o", tmp_path / "out")
    refused(out, "tiny.toml", named)
    assert not (tmp_path / "out").exists()  # nothing started, no folder bound to the bad settings


def test_train_settings_are_checked_before_training(work, tmp_path):
    refused(cli("train", "--data", work / "data.extxyz", "-o", tmp_path / "m.pt", *TINY_TRAIN, "--cutoff", "0"),
            "cutoff")
    bad = tmp_path / "c.toml"
    bad.write_text('hidden = "16"\n')
    refused(cli("train", "--data", work / "data.extxyz", "-o", tmp_path / "m.pt", "--elements", "Ti", "O",
                "--config", bad), bad, "hidden")
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------- damaged files
def test_damaged_model_checkpoint_and_data_files_are_refused(work, tmp_path):
    data = work / "data.extxyz"
    import zipfile

    with zipfile.ZipFile(work / "m.pt") as archive:  # one flipped byte inside the largest stored tensor
        member = max((m for m in archive.infolist() if "/data/" in m.filename), key=lambda m: m.compress_size)
    blob = bytearray((work / "m.pt").read_bytes())
    start = member.header_offset + 30 + int.from_bytes(blob[member.header_offset + 26:member.header_offset + 28],
                                                       "little") \
        + int.from_bytes(blob[member.header_offset + 28:member.header_offset + 30], "little")
    blob[start + member.compress_size // 2] ^= 0xFF
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(blob))
    refused(cli("predict", flipped, data, "-o", tmp_path / "p.extxyz"), flipped, "checksum")
    refused(cli("predict", work, data, "-o", tmp_path / "p.extxyz"), work, "directory")
    (tmp_path / "r.pt").write_bytes((work / "m.ckpt").read_bytes()[:5000])  # a truncated checkpoint
    (tmp_path / "r.ckpt").write_bytes((work / "m.ckpt").read_bytes()[:5000])
    refused(cli("train", "--data", data, "-o", tmp_path / "r.pt", "--resume", "--quiet"), "r.ckpt")
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(np.random.default_rng(0).bytes(3000))
    refused(cli("export", noise, "-o", tmp_path / "x.pt"), noise)

    # an XSF whose PRIMCOORD count disagrees with its atom lines
    xsf = ("# total energy = -10.0 eV\n\nCRYSTAL\nPRIMVEC\n 4 0 0\n 0 4 0\n 0 0 4\nPRIMCOORD\n3 1\n"
           "Ti 0 0 0 0 0 0\nO 1 1 1 0 0 0\nO 2 2 2 0 0 0\nO 3 3 3 0 0 0\n")
    (tmp_path / "bad.xsf").write_text(xsf)
    refused(cli("train", "--data", tmp_path / "bad.xsf", "-o", tmp_path / "x.pt", *TINY_TRAIN),
            "bad.xsf", "declares 3 atoms but 4")

    gz = tmp_path / "t.csv.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("formula,target\n" + "".join(f"TiO2,{x:.9f}\n" for x in np.random.default_rng(1).random(3000)))
    (tmp_path / "cut.csv.gz").write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    refused(cli("composition", "train", "--data", tmp_path / "cut.csv.gz", "-o", tmp_path / "c.pt"), "cut.csv.gz")

    # a folder that is no campaign: refused, and no empty database is created in it
    refused(cli("campaign", "report", tmp_path), tmp_path, "campaign.json")
    assert not (tmp_path / "campaign.db").exists()


def test_overlapping_atoms_and_foreign_elements_name_the_file(work, tmp_path):
    atoms = read(work / "data.extxyz", 0)
    atoms.positions[1] = atoms.positions[0]  # exact overlap
    write(tmp_path / "overlap.extxyz", atoms)
    out = cli("train", "--data", tmp_path / "overlap.extxyz", "-o", tmp_path / "x.pt", *TINY_TRAIN)
    refused(out, "overlap.extxyz")


# ---------------------------------------------------------------------------- batch predictions survive bad rows
def test_predict_marks_the_structures_it_cannot_predict(work, tmp_path):
    good = read(work / "data.extxyz", ":3")
    foreign = Atoms("Si2", positions=[[0, 0, 0], [1.2, 1.2, 1.2]], cell=[5, 5, 5], pbc=True)
    overlap = good[0].copy()
    overlap.positions[1] = overlap.positions[0]
    write(tmp_path / "mix.extxyz", [good[0], foreign, good[1], overlap, good[2]])
    out = cli("predict", work / "m.pt", tmp_path / "mix.extxyz", "-o", tmp_path / "p.extxyz")
    assert out.returncode == 0, out.stderr
    frames = read(tmp_path / "p.extxyz", ":")
    assert len(frames) == 5
    errors = [f.info.get("error") for f in frames]
    assert errors[0] is None and errors[2] is None and errors[4] is None
    assert "Si" in errors[1] and "overlap" in errors[3], errors
    assert frames[1].calc is None and np.isfinite(frames[0].get_potential_energy())
    assert "2 of 5 structures not predicted" in out.stderr and "mix.extxyz[1]" in out.stderr
    strict = cli("predict", work / "m.pt", tmp_path / "mix.extxyz", "-o", tmp_path / "q.extxyz", "--strict")
    assert strict.returncode == 1 and (tmp_path / "q.extxyz").exists()


def test_composition_predict_marks_rows_it_cannot_predict(tmp_path):
    table = tmp_path / "t.csv"
    rows = [("TiO2", "-3.3"), ("CaO", "-3.0"), ("CaTiO3", "-3.5"), ("Ti2O3", "-3.1")] * 6
    with open(table, "w", newline="") as fh:
        csv.writer(fh).writerows([("formula", "target"), *rows])
    model = tmp_path / "c.pt"
    assert run("composition", "train", "--data", table, "-o", model, "--arch", "seed", "--epochs", "2",
               "--quiet").returncode == 0
    query = tmp_path / "q.csv"
    query.write_text("formula\nTiO2\nKrO2\nH1e400\nCaO\nnot a formula\n")
    out = cli("composition", "predict", model, "--data", query, "-o", tmp_path / "p.csv")
    assert out.returncode == 0, out.stderr
    got = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [r["formula"] for r in got] == ["TiO2", "KrO2", "H1e400", "CaO", "not a formula"]
    assert [bool(r["error"]) for r in got] == [False, True, True, False, True]
    assert all(r["prediction"] == "" for r in got if r["error"]) and all(np.isfinite(float(r["prediction"]))
                                                                         for r in got if not r["error"])
    assert "Kr" in got[1]["error"] and "3 of 5 rows not predicted" in out.stderr
    assert cli("composition", "predict", model, "--data", query, "-o", tmp_path / "p2.csv",
               "--strict").returncode == 1


# ---------------------------------------------------------------------------- nothing left behind
def _descendants(pid: int) -> list:
    import psutil

    return psutil.Process(pid).children(recursive=True)


def test_kill9_of_a_campaign_leaves_no_process_and_no_writer(tmp_path):
    """kill -9 of the campaign process alone (not its process group): its workers and the resource
    tracker end with it and nothing writes into the folder afterwards."""
    import psutil

    config = tiny_config(str(tmp_path))
    out = tmp_path / "out"
    proc = subprocess.Popen([PYTHON, "-m", "xtalnn.cli", "campaign", "run", config, "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            workers = [p for p in _descendants(proc.pid) if "spawn_main" in " ".join(p.cmdline())]
            if len(workers) >= 2 and (out / "campaign.log").exists():
                break
            time.sleep(0.2)
        time.sleep(2.0)  # the workers are labelling or running the GA now
        children = _descendants(proc.pid)
        assert proc.poll() is None, "the campaign ended before it could be killed; the test proves nothing"
        assert len(children) >= 3, children  # 2 workers + the resource tracker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [" ".join(p.cmdline())[:120] for p in alive]
        snapshot = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
        time.sleep(3)
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == snapshot
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in children if "children" in locals() else []:  # a failed run leaves nothing either
            if p.is_running():
                p.kill()


def test_lammps_references_leave_nothing_in_dev_shm_or_tmp(tmp_path):
    code = ("import os\nfrom ase import Atoms\nfrom ase.build import bulk\n"
            "from xtalnn.calculators.registry import make_calculator\n"
            "a = bulk('Si', 'diamond', a=5.43, cubic=True); a.calc = make_calculator('sw-si')\n"
            "b = Atoms('CaTiO3', scaled_positions=[[0,0,0],[.5,.5,.5],[.5,.5,0],[.5,0,.5],[0,.5,.5]], "
            "cell=[3.9]*3, pbc=True); b.calc = make_calculator('pedone')\n"
            "print(os.getpid(), a.get_potential_energy(), b.get_potential_energy(), "
            "any(f.startswith(f'mpich_shm_{os.getpid():x}_') for f in os.listdir('/dev/shm')), "
            "len(os.listdir(os.environ['TMPDIR'])))\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**ENV, "TMPDIR": str(tmp)})
    assert out.returncode == 0, out.stderr
    pid, _, _, shm_during, tmp_during = out.stdout.split()
    pid = int(pid)
    assert shm_during == "True" and int(tmp_during) == 1  # the files exist while the references run
    assert not [f for f in os.listdir("/dev/shm") if f.startswith(f"mpich_shm_{pid:x}_")]
    assert not list(tmp.iterdir())  # pedone's table folder is gone too
