"""``xtalnn lammps-plugin-path``: print (building first if needed) the path of the LAMMPS plugin."""

from __future__ import annotations

import sys

from xtalnn.lammps import plugin


def register(sub) -> None:
    p = sub.add_parser("lammps-plugin-path", help="print the path of the LAMMPS plugin (pair_style xtalnn), "
                                                  "building it first if needed",
                       description=plugin.__doc__.split("\n\n")[1])
    p.add_argument("--rebuild", action="store_true", help="compile from scratch")
    p.add_argument("--no-build", action="store_true", help="only print where the plugin is (or would be)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    if args.no_build:
        print(plugin.plugin_path())
        return 0
    try:
        if not plugin.plugin_path().is_file() or args.rebuild:
            print("building the LAMMPS plugin (once per environment, about a minute) ...", file=sys.stderr)
        print(plugin.build(rebuild=args.rebuild))
    except plugin.PluginBuildError as err:
        print(f"xtalnn lammps-plugin-path: error: {err}", file=sys.stderr)
        return 1
    return 0
