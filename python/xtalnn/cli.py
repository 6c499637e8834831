"""Command-line interface: ``xtalnn SUBCOMMAND``. A thin layer over the library.

Each feature module owns its subcommands through a ``register(subparsers)`` function that adds
its parsers and sets ``func`` (called with the parsed namespace, returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module path -> its register(subparsers) adds one or more subcommands
_COMMAND_MODULES = (
    "xtalnn.ops",
    "xtalnn.descriptors.cli",
    "xtalnn.potential.cli",
    "xtalnn.search.cli",
    "xtalnn.enthalpy.cli",
    "xtalnn.campaign.cli",
    "xtalnn.lammps.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xtalnn", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _version() -> str:
    from xtalnn import __version__

    return f"xtalnn {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as err:  # bad input, missing or unwritable file: one line naming it
        print(f"xtalnn {args.command}: error: {error_line(err)}", file=sys.stderr)
        return 1


def error_line(err: Exception) -> str:
    """The one-line message of a user-facing error; an OSError names its file first."""
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in (err.strerror or ""):
        return f"{err.filename}: {err.strerror or err}"
    return str(err)


if __name__ == "__main__":
    sys.exit(main())
