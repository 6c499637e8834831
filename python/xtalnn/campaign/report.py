"""The campaign report: ``DIR/report.md`` and ``DIR/report.html`` with the final ranking per crystal
system (space group, lattice parameters in Å and degrees, oracle and model energies in eV/atom), the
per-cycle progress, CIF files under ``DIR/final/<system>/`` and PNGs of the validation RMSE and the
best oracle energy per cycle. Rewritten from the campaign's files and database each time.
"""

from __future__ import annotations

import glob
import html
import json
import math
import os

from xtalnn.campaign.quality import final_quality
from xtalnn.campaign.training import is_potential
from xtalnn.io.atomic import write_text


def ranking(store, systems) -> dict:
    """The relabelled final candidates per system, lowest oracle energy (eV/atom) first.

    A candidate the oracle also relaxed (uid ``<uid>-relaxed``, see ``[oracle] final_relax_steps``) is
    ranked by its relaxed structure (last frame): ``oracle_energy``, space group and cell are the
    relaxed ones, ``single_point_energy`` the relabelling's, ``relax_steps`` the oracle steps taken.
    """
    from xtalnn.search.dedup import space_group

    relaxed: dict[str, list] = {}
    for row in store.rows(origin="final_relax"):
        relaxed.setdefault(row.uid, []).append(row)
    out: dict[str, list] = {s: [] for s in systems}
    for row in store.rows(origin="final", frame=0):
        atoms = row.toatoms()
        entry = {"uid": row.uid, "system": row.system, "row_id": row.id, "status": row.status, "model": row.get("model", ""),
                 "model_energy": row.get("model_energy", float("nan")), "formula": atoms.get_chemical_formula()}
        if row.status == "ok":
            best = row
            frames = sorted(relaxed.get(f"{row.uid}-relaxed", []), key=lambda r: r.frame)
            if frames and frames[0].status == "ok":
                best = frames[-1]
                atoms = best.toatoms()
                entry.update(single_point_energy=row.oracle_energy, relax_steps=len(frames) - 1, row_id=best.id)
            number, symbol = space_group(atoms)
            entry.update(oracle_energy=best.oracle_energy, spacegroup=number, symbol=symbol,
                         cellpar=[float(x) for x in atoms.cell.cellpar()])
        else:
            entry.update(oracle_energy=float("nan"), spacegroup=0, symbol="?", cellpar=[],
                         error=(row.data.get("error", "") or "").splitlines()[0][:200])
        out.setdefault(row.system, []).append(entry)
    for s in out:
        out[s].sort(key=lambda e: (e["status"] != "ok", e["oracle_energy"] if e["status"] == "ok" else 0, e["uid"]))
    return out


def lowest_labelled(store) -> dict | None:
    """The lowest oracle energy (eV/atom; the enthalpy under pressure) of every structure the oracle
    labelled ok, any origin and frame: uid, frame, origin, system, energy, space group; None if none."""
    from xtalnn.search.dedup import space_group

    rows = store.rows(status="ok")
    if not rows:
        return None
    best = min(rows, key=lambda r: (r.oracle_energy, r.id))
    number, symbol = space_group(best.toatoms())
    return {"uid": best.uid, "frame": int(best.frame), "origin": best.origin, "system": best.system,
            "oracle_energy": float(best.oracle_energy), "spacegroup": number, "symbol": symbol}


def _load(path, default):
    if not os.path.exists(path):
        return default
    with open(path) as fh:
        return json.load(fh)


def _num(x, fmt="{:.4f}") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)


def write_report(out_dir: str) -> dict:
    """Write ``report.md``, ``report.html``, ``final/<system>/NN-<formula>-sgN.cif``, ``validation_rmse.png``
    and ``best_energy.png`` in ``out_dir``; returns the paths."""
    from xtalnn.campaign.storage import LabelStore

    out = os.path.abspath(out_dir)
    meta = _load(os.path.join(out, "campaign.json"), None)
    if meta is None:
        raise FileNotFoundError(f"{out_dir} is not a campaign folder (no campaign.json)")
    ident = meta["identity"]
    state = _load(os.path.join(out, "state.json"), {})
    cycles = [_load(p, {}) for p in sorted(glob.glob(os.path.join(out, "cycles", "*", "summary.json")))]
    store = LabelStore(ident["database"], out)
    rank = ranking(store, ident["ga"]["systems"])
    # CIF files of the ranked structures
    for system, entries in rank.items():
        folder = os.path.join(out, "final", system)
        for k, e in enumerate(entries, 1):
            if e["status"] != "ok":
                continue
            import ase.io

            os.makedirs(folder, exist_ok=True)
            e["rank"] = k
            e["cif"] = os.path.join("final", system, f"{k:02d}-{e['formula']}-sg{e['spacegroup']}.cif")
            ase.io.write(os.path.join(out, e["cif"]), store.db.get(id=e["row_id"]).toatoms())
    pngs = _plots(out, cycles, meta["composition"])
    oracle_calls = store.count(frame=0)
    frames = store.count()
    failed = store.count(frame=0, status="failed")
    converged = state.get("converged_cycle")
    overall = sorted((e for es in rank.values() for e in es if e["status"] == "ok"), key=lambda e: e["oracle_energy"])
    labelled = lowest_labelled(store)
    final_model = state.get("final_model")

    head = [
        f"# Active-learning campaign: {meta['composition']}",
        "",
        f"- oracle: `{ident['oracle']['calculator']}`; database: `{store.display}`",
        f"- cycles run: {len(cycles)}; converged: "
        + (f"at cycle {converged}" if converged else "no (final GA with the last model)")
        + f"; final model: {state.get('final_model', '?')}",
        f"- oracle calls (structures labelled): {oracle_calls} ({failed} failed); stored frames: {frames}",
        *([f"- pressure: {ident['ga']['pressure']:g} GPa: every oracle and model energy below is an enthalpy per "
           "atom (E + pV)/N"] if ident.get("ga", {}).get("pressure") else []),
        "- lowest labelled structure (any cycle, any frame): " + (
            f"{labelled['system']} {labelled['symbol']} ({labelled['spacegroup']}), {labelled['oracle_energy']:.4f} "
            f"eV/atom, uid {labelled['uid']} frame {labelled['frame']} ({labelled['origin']})" if labelled else "–"),
        "- best of the final ranking: " + (f"{overall[0]['system']} {overall[0]['symbol']} ({overall[0]['spacegroup']}), "
                                           f"{overall[0]['oracle_energy']:.4f} eV/atom" if overall else "–")
        + ("" if is_potential(final_model) else
           f" (no potential was trained: the final GA ranked with the start fitness, {final_model})" if overall else ""),
        "",
        "## Cycles",
        "",
        "| cycle | GA fitness | labelled | failed | duplicates dropped | well predicted | training set | "
        "val RMSE (eV/atom) | newest candidates' RMSE (eV/atom) | best oracle energy (eV/atom, system, sg) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in cycles:
        best = min(s.get("best", {}).items(), key=lambda kv: kv[1]["energy"], default=None)
        best_txt = f"{best[1]['energy']:.4f} ({best[0]}, {best[1]['spacegroup']})" if best else "–"
        head.append(f"| {s['cycle']} | {s['fitness']} | {s['labelled']} | {s['failed']} | {s['duplicates']} | "
                    f"{s['well_predicted']} | {s['training_set']} | {_num(s['val_rmse'])} | "
                    f"{_num(s.get('candidate_rmse'))} | {best_txt} |")
    final_model = state.get("final_model")
    model_path = os.path.join(out, "models", final_model, "model.pt") if is_potential(final_model) else None
    quality = final_quality(store, model_path if model_path and os.path.exists(model_path) else None,
                            overall[0] if overall else None)
    head += ["", "![validation RMSE](validation_rmse.png) ![best energy](best_energy.png)", "",
             *_quality_lines(quality, final_model), "", "## Final ranking per crystal system", "",
             "Oracle energies of the long GA's best structures (relabelled), lowest first; \"relaxed\": "
             "the oracle's own relaxation (cell included) of the lowest ones, with the number of steps and "
             "the single-point energy before it.", ""]
    for system, entries in rank.items():
        head += [f"### {system}", ""]
        if not entries:
            head += ["no candidate", ""]
            continue
        head += ["| rank | space group | a | b | c | α | β | γ | oracle E (eV/atom) | relaxed | model E (eV/atom) | CIF |",
                 "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
        for k, e in enumerate(entries, 1):
            if e["status"] != "ok":
                head.append(f"| {k} | failed: {e.get('error', '')} | | | | | | | – | | {_num(e['model_energy'])} | |")
                continue
            a, b, c, al, be, ga = e["cellpar"]
            relaxed = (f"{e['relax_steps']} steps from {e['single_point_energy']:.4f}" if "relax_steps" in e else "no")
            head.append(f"| {k} | {e['symbol']} ({e['spacegroup']}) | {a:.3f} | {b:.3f} | {c:.3f} | {al:.1f} | "
                        f"{be:.1f} | {ga:.1f} | {e['oracle_energy']:.4f} | {relaxed} | {_num(e['model_energy'])} | "
                        f"[{os.path.basename(e['cif'])}]({e['cif']}) |")
        head.append("")
    md = "\n".join(head) + "\n"
    paths = {"markdown": os.path.join(out, "report.md"), "html": os.path.join(out, "report.html"), **pngs}
    _write(paths["markdown"], md)
    _write(paths["html"], _html(md, meta["composition"]))
    _write(os.path.join(out, "final", "ranking.json"), json.dumps(rank, indent=1))
    _write(os.path.join(out, "final", "quality.json"), json.dumps(quality, indent=1))
    return paths


def _quality_lines(q: dict, model: str | None) -> list:
    rank = q["ground_state_model_rank"]
    return [
        "## The final model where the search needs it", "",
        f"- RMSE of {model or 'the final model'} against the oracle's single points on the {q['top_n']} final "
        f"candidates it ranked lowest: {_num(q['top_rmse'])} eV/atom (largest error {_num(q['top_max_error'])})",
        f"- on the oracle-relaxed ground state: model {_num(q['ground_state_model_energy'])} eV/atom, error "
        f"{_num(q['ground_state_error'], '{:+.4f}')} eV/atom",
        "- the ground state in the model's own ranking of the final candidates (before any oracle relaxation): "
        + (f"position {rank}" if rank else "not among them"),
    ]


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_text(path, text)


def _html(md: str, title: str) -> str:
    """A small Markdown → HTML conversion (headings, lists, tables, images, links) for this report."""
    import re

    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r'<img alt="\1" src="\2" width="480">', text)
        text = re.sub(r"\[([^\]]*)\]\(([^)]+)\)", r'<a href="\2">\1</a>', text)
        return re.sub(r"`([^`]*)`", r"<code>\1</code>", text)

    body, table, in_list = [], [], False
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                table.append(cells)
            continue
        if table:
            rows = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{inline(c)}</{'th' if i == 0 else 'td'}>"
                                            for c in r) + "</tr>" for i, r in enumerate(table))
            body.append(f"<table>{rows}</table>")
            table = []
        if line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{inline(line[2:])}</li>")
            continue
        if in_list:
            body.append("</ul>")
            in_list = False
        m = re.match(r"(#+) (.*)", line)
        if m:
            n = len(m.group(1))
            body.append(f"<h{n}>{inline(m.group(2))}</h{n}>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    style = "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _plots(out: str, cycles: list, title: str) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {"validation_rmse": os.path.join(out, "validation_rmse.png"),
             "best_energy": os.path.join(out, "best_energy.png")}
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = [s["cycle"] for s in cycles if s.get("val_rmse") is not None and math.isfinite(s["val_rmse"])]
    ys = [s["val_rmse"] for s in cycles if s.get("val_rmse") is not None and math.isfinite(s["val_rmse"])]
    ax.plot(xs, ys, marker="o")
    ax.set_xlabel("cycle")
    ax.set_ylabel("validation RMSE (eV/atom)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(paths["validation_rmse"], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    systems = sorted({k for s in cycles for k in s.get("best", {})})
    for system in systems:
        pts = [(s["cycle"], s["best"][system]["energy"]) for s in cycles if system in s.get("best", {})]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=system)
    ax.set_xlabel("cycle")
    ax.set_ylabel("best oracle energy (eV/atom)")
    ax.set_title(title)
    if systems:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(paths["best_energy"], dpi=100)
    plt.close(fig)
    return paths
