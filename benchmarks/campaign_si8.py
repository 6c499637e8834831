"""Active-learning campaign benchmark: run an example config (Si8 by default) and record, in
benchmarks/RESULTS.md ("## Active learning"), the oracle calls used, wall time, cycles, the structure
found (space group, lattice parameters) and the oracle's own optimum of diamond Si for comparison.

    python benchmarks/campaign_si8.py                                  # examples/si/fast.toml (SW oracle)
    python benchmarks/campaign_si8.py --config examples/si/gpaw.toml   # GPAW PBE (needs GPAW)
    python benchmarks/campaign_si8.py --write-only                     # rewrite the section from saved runs

Each run's figures are saved in benchmarks/campaign_out/<config stem>-<folder>.json; the section lists
every saved run. The campaign folder (default /tmp/xtalnn-campaign-<name>) resumes if it exists.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))

from report import machine, write_section  # noqa: E402

OUT = HERE / "campaign_out"


def oracle_optimum(spec: str, kwargs: dict) -> dict:
    """Diamond Si relaxed (cell and positions) with the oracle itself: energy (eV/atom) and a (Å)."""
    from ase.build import bulk
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    from xtalnn.references import make_calculator

    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.calc = make_calculator(spec, **kwargs)
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=0.01, steps=200)
    return {"energy": float(atoms.get_potential_energy() / len(atoms)), "a": float(atoms.cell.cellpar()[0])}


def first_diamond(db_url: str, folder: str, e_opt: float, tol: float = 0.05) -> dict | None:
    """The first labelled structure (in labelling order) that is diamond (sg 227) within ``tol`` eV/atom
    of the oracle's optimum: how many oracle calls it took."""
    from xtalnn.campaign.storage import LabelStore
    from xtalnn.search.dedup import space_group

    store = LabelStore(db_url, folder)
    rows = sorted(store.rows(frame=0), key=lambda r: (r.finished, r.id))
    for k, r in enumerate(rows, 1):
        if r.status == "ok" and r.oracle_energy < e_opt + tol and space_group(r.toatoms())[0] == 227:
            return {"oracle_calls": k, "uid": r.uid, "energy": float(r.oracle_energy)}
    return None


def run_one(config: str, folder: str, dask: str | None) -> dict:
    from xtalnn.campaign import load_config, run

    cfg = load_config(config)
    t0 = time.perf_counter()
    result = run(cfg, folder, dask=dask)
    wall = time.perf_counter() - t0
    opt = oracle_optimum(cfg.oracle.calculator, cfg.oracle.kwargs)
    best = min(((e, s) for s, es in result.ranking.items() for e in es if e["status"] == "ok"),
               key=lambda t: t[0]["oracle_energy"])
    entry, system = best
    state = json.loads(Path(folder, "state.json").read_text())
    log = Path(folder, "campaign.log").read_text()
    return {
        "config": os.path.relpath(config, HERE.parent), "folder": folder, "oracle": cfg.oracle.calculator,
        "oracle_kwargs": cfg.oracle.kwargs, "composition": result.composition,
        "oracle_calls": result.oracle_calls, "wall_seconds_last_run": wall,
        "cycles": len(result.cycles) or len(state.get("cycles_run", [])), "converged_cycle": result.converged_cycle,
        "final_model": result.final_model,
        "best": {"system": system, "spacegroup": entry["spacegroup"], "symbol": entry["symbol"],
                 "cellpar": entry["cellpar"], "oracle_energy": entry["oracle_energy"],
                 "model_energy": entry["model_energy"]},
        "oracle_optimum": opt, "first_diamond": first_diamond(cfg.database, folder, opt["energy"]),
        "cycle_lines": [line[20:] for line in log.splitlines() if line[20:].startswith("cycle ") and "training set" in line],
        "machine": machine("torch", "ase", "distributed", "gpaw"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def section(runs: list[dict]) -> str:
    lines = [
        "`xtalnn campaign run CONFIG -o DIR`: GA → oracle → ase.db → warm-started training, then the long",
        "GA and the oracle relabelling of its best structures. Oracle calls = structures labelled (all cycles",
        "and the final relabelling); \"diamond after\" = labelled structures until the first diamond within",
        "0.05 eV/atom of the oracle's own optimum (diamond relaxed with the oracle).",
        "",
        "| config | oracle | oracle calls | diamond after | cycles (converged) | wall time | best: system, space group | a, b, c (Å) | α, β, γ (°) | oracle E (eV/atom) | oracle optimum: E (eV/atom), a (Å) |",
        "|---|---|---:|---:|---|---:|---|---|---|---:|---|",
    ]
    for r in runs:
        b = r["best"]
        a, bb, c, al, be, ga = b["cellpar"]
        fd = r["first_diamond"]
        conv = f"{r['cycles']} ({'at ' + str(r['converged_cycle']) if r['converged_cycle'] else 'no'})"
        lines.append(
            f"| `{r['config']}` | {r['oracle']} | {r['oracle_calls']} | {fd['oracle_calls'] if fd else 'not found'} | "
            f"{conv} | {r['wall_seconds_last_run'] / 60:.1f} min | {b['system']}, {b['symbol']} ({b['spacegroup']}) | "
            f"{a:.3f}, {bb:.3f}, {c:.3f} | {al:.1f}, {be:.1f}, {ga:.1f} | {b['oracle_energy']:.4f} | "
            f"{r['oracle_optimum']['energy']:.4f}, {r['oracle_optimum']['a']:.3f} |")
    for r in runs:
        lines += ["", f"Per-cycle progress of `{r['config']}` ({r['date']}):", "", "```"] + r["cycle_lines"] + ["```",
                  "", r["machine"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE.parent / "examples" / "si" / "fast.toml"))
    parser.add_argument("-o", "--output", default=None, help="campaign folder")
    parser.add_argument("--dask", default=None)
    parser.add_argument("--write-only", action="store_true")
    parser.add_argument("--note", default="", help="a sentence added under the table")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if not args.write_only:
        name = Path(args.config).parent.name + "-" + Path(args.config).stem
        folder = args.output or f"/tmp/xtalnn-campaign-{name}"
        record = run_one(args.config, folder, args.dask)
        (OUT / f"{name}.json").write_text(json.dumps(record, indent=1))
    runs = [json.loads(Path(p).read_text()) for p in sorted(glob.glob(str(OUT / "*.json")))]
    note = (OUT / "NOTE.md").read_text().strip() if (OUT / "NOTE.md").exists() else ""
    if args.note:
        note = args.note
        (OUT / "NOTE.md").write_text(note + "\n")
    write_section("Active learning", section(runs) + ("\n\n" + note if note else ""))


if __name__ == "__main__":
    main()
