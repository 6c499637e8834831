"""``xtalnn search COMPOSITION --calculator SPEC -o DIR``: a thin layer over :func:`search`; its GA
options come from :class:`xtalnn.search.config.GASettings`."""

from __future__ import annotations

import argparse

from xtalnn.search.config import add_arguments


def register(subparsers) -> None:
    """Add the ``search`` subcommand."""
    p = subparsers.add_parser(
        "search",
        help="genetic-algorithm crystal structure search on any ASE calculator",
        description="Genetic-algorithm crystal structure search, one population per crystal "
        "system. Re-running with the same output folder resumes.",
    )
    p.add_argument("composition", help="atoms per cell, e.g. Si8, Ti4O8, Ca1Ti1O3")
    p.add_argument(
        "--calculator", "-c", default="empirical",
        help="sw-si | ma-tio2 | pedone | chgnet | sevennet | tblite | gpaw | empirical | MODEL.pt | module:factory (default: empirical)",
    )
    p.add_argument("-o", "--output", default="results", help="output folder (default: results)")
    p.add_argument("--formula-units", type=int, default=1, help="multiply the composition")
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xtalnn.search.config import from_arguments
    from xtalnn.search.driver import search

    result = search(args.composition, args.calculator, from_arguments(args), formula_units=args.formula_units,
                    out_dir=args.output, workers=args.workers, verbose=not args.quiet)
    print(f"{result.evaluations} evaluations ({result.new_evaluations} new, {result.failed} failed)"
          f" in {result.wall_seconds:.1f} s; results in {result.out_dir}; ranked by {result.quantity}")
    for c in result.candidates[:10]:
        a, b, cc, al, be, ga = c.cellpar
        print(f"{c.energy_per_atom:10.4f} eV/atom  {c.symbol:>10s} ({c.spacegroup:3d})  {c.system:12s}"
              f"  a={a:.3f} b={b:.3f} c={cc:.3f}  α={al:.1f} β={be:.1f} γ={ga:.1f}")
    return 0 if result.candidates else 1
