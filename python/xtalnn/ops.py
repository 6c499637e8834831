"""The compiled op library (``libxtalnn_ops.so``).

The library registers ``torch.ops.xtalnn.*`` with ``TORCH_LIBRARY(xtalnn, m)``; TorchScript models
and C++ hosts (the LAMMPS plugin) load it without importing this package.
"""

from __future__ import annotations

import functools
from pathlib import Path

_LIB_NAME = "libxtalnn_ops.so"


def library_path() -> str:
    """Absolute path of the compiled op library."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "lib" / _LIB_NAME, here / _LIB_NAME):
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"{_LIB_NAME} not found next to {here}: xtalnn was not built; reinstall with `pip install .`"
    )


@functools.lru_cache(maxsize=None)
def load_library() -> str:
    """Load the op library into this process once; returns its path."""
    import torch

    path = library_path()
    torch.ops.load_library(path)
    return path


def register(sub) -> None:
    """Add ``xtalnn ops-library-path``."""
    p = sub.add_parser("ops-library-path", help="print the path of the compiled op library")
    p.set_defaults(func=lambda args: print(library_path()) or 0)
