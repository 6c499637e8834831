"""``xtalnn lammps-plugin-path`` and ``xtalnn ops-library-path``."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("ops-library-path", help="print the path of the compiled op library")
    p.set_defaults(func=_print_library_path)


def _print_library_path(args) -> int:
    from xtalnn.ops import library_path

    print(library_path())
    return 0
