"""Atomic writes: a file is written beside its destination and renamed over it (``os.replace``), so
a reader, or a run resumed after ``kill -9``, sees either the old file or the whole new one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable


def atomic_write(path, write: Callable[[str], None], suffix: str = "") -> None:
    """Call ``write(tmp)`` on a temporary path in ``path``'s directory, then rename it to ``path``.

    ``suffix`` ends the temporary name (writers that pick the format by extension need it). The
    temporary file is removed if ``write`` fails or the run is interrupted.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: output directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{os.path.basename(path)}-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, flushed to disk first."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write(path, write)


def write_json(path, value) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(value, indent=1))


def write_frames(path, frames: list) -> None:
    """Write structures as extended XYZ to ``path`` atomically (an empty list gives an empty file)."""
    import ase.io

    def write(tmp: str) -> None:
        if frames:
            ase.io.write(tmp, frames, format="extxyz")

    atomic_write(path, write, suffix=".extxyz")


def frames_once(path, make: Callable[[], list]) -> list:
    """The structures an earlier run wrote to ``path``, or ``make()``'s, written there first (atomically)
    and read back: a resumed run works on exactly what a fresh one would (positions as written)."""
    import ase.io

    if not os.path.exists(path):
        write_frames(path, make())
    return ase.io.read(path, index=":") if os.path.getsize(path) else []
