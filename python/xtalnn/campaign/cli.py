"""``xtalnn campaign run CONFIG -o DIR`` and ``xtalnn campaign report DIR`` (thin layer over the library)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("campaign", help="active learning: GA → oracle → database → training, then the long GA",
                              description="Active-learning crystal structure search (see xtalnn.campaign).")
    sub = p.add_subparsers(dest="campaign_command", metavar="ACTION")
    run = sub.add_parser("run", help="run or resume a campaign from a TOML config")
    run.add_argument("config", help="campaign TOML file (examples/si/fast.toml)")
    run.add_argument("-o", "--output", required=True, help="campaign folder (the same folder resumes)")
    run.add_argument("--dask", default=None, metavar="ADDRESS",
                     help="run jobs on Dask: 'local' (a LocalCluster on 127.0.0.1) or tcp://host:8786 / tls://…")
    run.add_argument("--workers", type=int, default=None, help="local processes / LocalCluster workers")
    run.set_defaults(func=_run)
    rep = sub.add_parser("report", help="write DIR/report.md, report.html, CIFs under DIR/final/, PNGs")
    rep.add_argument("folder", help="campaign folder")
    rep.set_defaults(func=_report)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _run(args: argparse.Namespace) -> int:
    from xtalnn.campaign.config import load
    from xtalnn.campaign.loop import run
    from xtalnn.io.outputs import check_output_folder

    check_output_folder(args.output, [args.config])
    cfg = load(args.config)
    try:
        run(cfg, args.output, dask=args.dask, workers=args.workers, echo=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", flush=True)
        return 130
    except (OSError, ModuleNotFoundError, RuntimeError) as err:  # connection refused, missing package, dead worker
        print(f"xtalnn campaign: error: {err}", file=sys.stderr)
        return 1
    print(f"report: {args.output}/report.md", flush=True)
    return 0


def _report(args: argparse.Namespace) -> int:
    from xtalnn.campaign.report import write_report

    paths = write_report(args.folder)  # refuses a folder without campaign.json before opening any database
    print(paths["markdown"])
    print(paths["html"])
    return 0
