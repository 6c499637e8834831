"""Shared by the benchmark scripts: machine/version facts and writing one section of RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(*packages: str) -> str:
    out = [f"python {platform.python_version()}"]
    for name in packages:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def machine(*packages: str) -> str:
    """One Markdown paragraph: machine, cores, versions, git commit, and the command that ran."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "?"
    command = "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
    return (f"Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}. "
            f"Versions: {versions(*packages)}. Commit {commit or '?'}. Command: `{command}`.")


def write_section(heading: str, body: str, path: Path = RESULTS) -> None:
    """Replace the section ``## heading`` of RESULTS.md (or append it), leaving the others as they are."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\nEach section is written by its script in benchmarks/.\n"
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text.rstrip() + "\n")
    tmp.replace(path)  # atomic: several benchmark scripts write this file
