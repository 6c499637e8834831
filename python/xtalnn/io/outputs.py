"""What a command writes: checks made before it starts work (an output never replaces one of the
command's own inputs, an existing output file is replaced only with ``--overwrite`` or when a run
resumes, an output file is not a directory nor an output folder a file), and the summary of the rows
a batch prediction could not make."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable


class OutputError(ValueError):
    """An output path that must not be written; the message names it and says why."""


def _same(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name the same file (links and relative paths resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _local(paths: Iterable) -> list[str]:
    """The file-system paths among ``paths`` (None and database URLs left out)."""
    out = []
    for p in paths:
        if p is None:
            continue
        p = os.fspath(p)
        if "://" not in p:
            out.append(p)
    return out


def check_output_file(path, inputs: Iterable = (), overwrite: bool = False, flag: str = "--overwrite") -> None:
    """Raise :class:`OutputError` unless ``path`` may be written as a file: it is none of ``inputs``
    (files the command reads), not a directory,
    in an existing directory, and absent unless ``overwrite`` (the user's ``flag``) is given."""
    path = os.fspath(path)
    for source in _local(inputs):
        if _same(path, source):
            raise OutputError(f"{path}: is also an input of this command ({source}); write the output elsewhere")
    if os.path.isdir(path):
        raise OutputError(f"{path}: is a directory; give a file name for the output")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OutputError(f"{path}: output directory {parent} does not exist")
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path}: exists; pass {flag} to replace it")


def check_output_files(paths: Iterable, inputs: Iterable = (), overwrite: bool = False,
                       flag: str = "--overwrite") -> None:
    """:func:`check_output_file` for each of ``paths`` (e.g. a model file and its side files)."""
    for path in paths:
        check_output_file(path, inputs, overwrite, flag)


def check_output_folder(path, inputs: Iterable = ()) -> None:
    """Raise :class:`OutputError` unless ``path`` can be a run folder: not an existing file and none of
    ``inputs``. An existing folder is fine: the run resumes there (and checks its settings)."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{path}: exists and is not a folder; give a folder for the output")
    for source in _local(inputs):
        if _same(path, source):
            raise OutputError(f"{path}: is also an input of this command; write the output elsewhere")


def report_skipped(skipped: list[str], total: int, what: str, marked: str) -> None:
    """Print to stderr how many of ``total`` rows (``what``: "structures", "rows") a batch could not
    predict, where they are marked (``marked``), and one line per row with its reason."""
    if skipped:
        print(f"{len(skipped)} of {total} {what} not predicted (marked in {marked}):", file=sys.stderr)
        for line in skipped:
            print(f"  {line}", file=sys.stderr)
