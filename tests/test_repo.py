"""House rules that keep CI honest."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text().splitlines()
    test_commands = [line for line in readme if line.startswith("pip install") and "[test]" in line]
    assert len(test_commands) == 1
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_commands[0] in ci_lines


def test_torch_is_pinned_for_runtime_and_build():
    text = (REPO / "pyproject.toml").read_text()
    assert text.count('"torch==2.13.0"') == 2


def test_cli_help_does_not_import_torch():
    """Every command registers its parser from torch-free modules: `xtalnn --help` stays instant."""
    import subprocess
    import sys

    import xtalnn

    script = ("import sys; from xtalnn.cli import build_parser; build_parser().format_help(); "
              "assert 'torch' not in sys.modules, 'torch was imported'; print('ok')")
    env_path = str(Path(xtalnn.__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
