"""``xtalnn search COMPOSITION --calculator SPEC -o DIR``: a thin layer over :func:`search`."""

from __future__ import annotations

import argparse

from xtalnn.search.systems import CRYSTAL_SYSTEMS


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
        help="sw-si | tblite | gpaw | empirical | MODEL.pt | module:factory (default: empirical)",
    )
    p.add_argument("-o", "--output", default="results", help="output folder (default: results)")
    p.add_argument("--formula-units", type=int, default=1, help="multiply the composition")
    p.add_argument("--systems", default="all",
                   help=f"comma-separated subset of {','.join(CRYSTAL_SYSTEMS)} (default: all)")
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--children", type=int, default=16, help="children per generation")
    p.add_argument("--generations", type=int, default=30)
    p.add_argument("--mutation-probability", type=float, default=0.05)
    p.add_argument("--symmetric-start", type=float, default=0.5,
                   help="share of the first generation taken from the highest-symmetry Wyckoff "
                   "prototypes, highest first, alternating with random draws (0: all random, as "
                   "the seed paper; default 0.5)")
    p.add_argument("--seeds", type=int, default=2, help="independent runs per crystal system")
    p.add_argument("--seed", type=int, default=0, help="first random seed")
    p.add_argument("--top-k", type=int, default=16, help="structures reported per system")
    p.add_argument("--no-relax", action="store_true", help="single points only, no relaxation")
    p.add_argument("--relax-steps", type=int, default=60)
    p.add_argument("--fmax", type=float, default=0.05, help="eV/Å")
    p.add_argument("--keep-symmetry", action="store_true",
                   help="relax with ase FixSymmetry (keeps each candidate's space group)")
    p.add_argument("--volume-per-atom", type=float, default=None, help="Å³/atom for the start")
    p.add_argument("--min-distance", action="append", default=[], metavar="A-B=D",
                   help="minimum distance in Å for a pair, e.g. Si-Si=2.0 (repeatable)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xtalnn.search.driver import search

    systems = CRYSTAL_SYSTEMS if args.systems == "all" else tuple(
        s.strip() for s in args.systems.split(",") if s.strip()
    )
    dmin = {}
    for item in args.min_distance:
        pair, _, value = item.partition("=")
        if not value:
            raise ValueError(f"--min-distance {item!r}: expected A-B=distance")
        dmin[pair] = float(value)
    result = search(
        args.composition, args.calculator, systems=systems, population=args.population,
        generations=args.generations, children=args.children,
        mutation_probability=args.mutation_probability,
        symmetric_start=args.symmetric_start, seeds_per_system=args.seeds,
        seed=args.seed, top_k=args.top_k, relax=not args.no_relax, relax_steps=args.relax_steps,
        fmax=args.fmax, keep_symmetry=args.keep_symmetry, volume_per_atom=args.volume_per_atom,
        min_distances=dmin, formula_units=args.formula_units, out_dir=args.output,
        workers=args.workers, verbose=not args.quiet,
    )
    print(f"{result.evaluations} evaluations ({result.new_evaluations} new, {result.failed} failed)"
          f" in {result.wall_seconds:.1f} s; results in {result.out_dir}")
    for c in result.candidates[:10]:
        a, b, cc, al, be, ga = c.cellpar
        print(f"{c.energy_per_atom:10.4f} eV/atom  {c.symbol:>10s} ({c.spacegroup:3d})  {c.system:12s}"
              f"  a={a:.3f} b={b:.3f} c={cc:.3f}  α={al:.1f} β={be:.1f} γ={ga:.1f}")
    return 0 if result.candidates else 1
