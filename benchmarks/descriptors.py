"""Descriptor speed: xtalnn's C++ ACSF op against dscribe, TorchANI and our own torch twin.

Same ACSF definition and parameter count for everyone (Ti/O, cutoff 6.5 Å: 2×8 radial + 3×18
angular = 70 functions; dscribe adds its G1 per element). Timed, in one process and run:
forward (descriptors incl. neighbour list), and forward + backward (gradient w.r.t. positions),
per atom, on (a) the 800 aenet TiO2 structures, (b) a 4,096-atom Si diamond cell, (c) a ~32,000-atom
TiO2 (rutile) cell. Also: peak memory of the op (forward + backward) against N, and the
neighbour list for 100,000 atoms against ASE and vesin. Writes the "Descriptors" section of
benchmarks/RESULTS.md.

    python benchmarks/descriptors.py            # full run (~15 min on 2 cores)
    python benchmarks/descriptors.py --quick    # smaller sets, no RESULTS.md update
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting are ruinous on a shared, oversubscribed 2-core machine:
# let idle threads sleep. Must be set before torch loads libgomp; applies to every torch-based
# implementation in this process alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import itertools
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")

from report import machine, write_section  # noqa: E402

from xtalnn.io.aenet import iter_tar  # noqa: E402
from xtalnn.descriptors import ACSF  # noqa: E402
from xtalnn.neighbors import edge_vectors, neighbor_list  # noqa: E402

TIO2 = HERE.parent.parent / "shared" / "data" / "tio2_aenet_800.tar.gz"
CUTOFF = 6.5
N_RADIAL, ANGULAR_ETA, ZETAS = 8, 1, (1.0, 2.0, 4.0)  # per pair: 3 ζ × 2 λ × … see acsf()
MAX_TRIPLETS_TORCH = 120_000_000  # pure-torch paths hold every triplet in memory (~10 GB here)


def acsf(elements) -> ACSF:
    """8 radial per element and 18 G5 per pair: 70 functions for Ti/O (as TorchANI below)."""
    base = ACSF.default(elements, CUTOFF, n_radial=N_RADIAL, n_angular_eta=3, zetas=ZETAS, angular="g5")
    return base


def rutile(n_target: int):
    atoms = bulk("TiO2", "rutile", a=4.594, c=2.959, u=0.305) if False else _rutile_cell()
    reps = max(1, round((n_target / len(atoms)) ** (1 / 3)))
    k = n_target / (len(atoms) * reps * reps)
    supercell = atoms.repeat((reps, reps, max(1, round(k))))
    supercell.rattle(0.05, seed=1)
    return supercell


def _rutile_cell():
    from ase.spacegroup import crystal

    return crystal(["Ti", "O"], basis=[(0, 0, 0), (0.305, 0.305, 0)], spacegroup=136,
                   cellpar=[4.594, 4.594, 2.959, 90, 90, 90])


def si_diamond(n_cells: int = 8):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(n_cells)
    atoms.rattle(0.05, seed=2)
    return atoms


def n_triplets(atoms, cutoff=CUTOFF) -> int:
    i = neighbor_list(atoms, cutoff)[0]
    counts = np.bincount(i, minlength=len(atoms))
    return int((counts * (counts - 1) // 2).sum())


# -- the four implementations: each returns a callable(structures, backward) ----------------------
def xtalnn_runner(descriptor: ACSF, backend: str):
    def run(structures, backward: bool):
        for atoms in structures:
            species, edge_index, shifts, positions, cell = descriptor.graph(atoms)
            positions.requires_grad_(backward)
            with torch.set_grad_enabled(backward):
                vec = edge_vectors(positions, cell, edge_index, shifts)
                G = descriptor(species, edge_index, vec, len(atoms), backend=backend)
                if backward:
                    G.sum().backward()
    return run


def torchani_runner(descriptor: ACSF):
    from torchani.aev import AEVComputer

    eta_r, _ = descriptor.g2[0]
    rs = descriptor.g2[:, 1].tolist()
    aev = AEVComputer.from_constants(
        radial_cutoff=CUTOFF, angular_cutoff=CUTOFF - 1e-9, radial_eta=float(eta_r), radial_shifts=rs,
        angular_eta=float(descriptor.g5[0, 0]), angular_zeta=4.0,
        angular_shifts=np.linspace(0.8, CUTOFF - 0.5, 3).tolist(),
        sections=np.linspace(0, np.pi, 6, endpoint=False).tolist(),
        num_species=len(descriptor.elements), cutoff_fn="cosine", neighborlist="cell_list",
    ).double()
    index = {s: k for k, s in enumerate(descriptor.elements)}

    def run(structures, backward: bool):
        for atoms in structures:
            atoms = big_enough(atoms)
            species = torch.tensor([[index[s] for s in atoms.get_chemical_symbols()]])
            coords = torch.tensor(atoms.get_positions()[None], dtype=torch.float64, requires_grad=backward)
            cell = torch.tensor(np.asarray(atoms.get_cell()), dtype=torch.float64)
            pbc = torch.tensor([True, True, True])
            with torch.set_grad_enabled(backward):
                G = aev(species, coords, cell=cell, pbc=pbc)
                if backward:
                    G.sum().backward()
    return run, aev


def big_enough(atoms, cutoff=CUTOFF):
    """TorchANI refuses cells thinner than 2 × its cutoff: repeat small cells until they are not."""
    spacing = atoms.cell.volume / np.linalg.norm(np.cross(atoms.cell[[1, 2, 0]], atoms.cell[[2, 0, 1]]), axis=1)
    reps = np.maximum(1, np.ceil(2 * cutoff / spacing + 1e-9)).astype(int)
    return atoms.repeat(tuple(reps)) if np.any(reps > 1) else atoms


def dscribe_runner(descriptor: ACSF):
    from dscribe.descriptors import ACSF as DscribeACSF

    d = DscribeACSF(species=descriptor.elements, r_cut=CUTOFF, g2_params=descriptor.g2.tolist(),
                    g4_params=descriptor.g4.tolist() or None, g5_params=descriptor.g5.tolist() or None,
                    periodic=True)

    def run(structures, backward: bool):
        for atoms in structures:
            if backward:
                d.derivatives(atoms, method="numerical", attach=True, n_jobs=1)
            else:
                d.create(atoms, n_jobs=1)
    return run, d


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(name, run, structures, n_atoms, repeats, log, modes=("forward", "forward+backward")):
    """µs/atom for forward and/or forward+backward; a string with the reason where one failed."""
    out = {}
    for mode in modes:
        backward = mode == "forward+backward"
        try:
            run(structures[:1], backward)  # warm-up
            t = best_time(lambda: run(structures, backward), repeats)
            out[mode] = 1e6 * t / n_atoms
            log(f"  {name:16s} {mode:17s} {out[mode]:10.2f} µs/atom  ({t:.2f} s)")
        except (RuntimeError, MemoryError, ValueError, AssertionError) as err:
            out[mode] = f"failed: {type(err).__name__}: {(str(err).splitlines() or [''])[0][:80]}"
            log(f"  {name:16s} {mode:17s} {out[mode]}")
    return out


def memory_probe(n_target: int) -> dict:
    """Run in a fresh subprocess: peak RSS of neighbour list + one op forward + backward on N atoms."""
    atoms = rutile(n_target)
    descriptor = acsf(["Ti", "O"])
    species, edge_index, shifts, positions, cell = descriptor.graph(atoms)
    positions.requires_grad_()
    vec = edge_vectors(positions, cell, edge_index, shifts)
    G = descriptor(species, edge_index, vec, len(atoms))
    G.sum().backward()
    # VmHWM (not ru_maxrss, which a child inherits from its parent across fork/exec)
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    edge_mb = (vec.numel() * 8 + edge_index.numel() * 8 + shifts.numel() * 8) / 2**20
    return {"n_atoms": len(atoms), "n_edges": int(edge_index.shape[1]), "peak_rss_mb": peak, "edge_inputs_mb": edge_mb}


def neighbour_list_timing(n_target: int, log) -> dict:
    import vesin
    from ase.neighborlist import neighbor_list as ase_nl

    atoms = rutile(n_target)
    res = {"n_atoms": len(atoms)}
    res["xtalnn"] = best_time(lambda: neighbor_list(atoms, CUTOFF), 3)
    nl = vesin.NeighborList(cutoff=CUTOFF, full_list=True)
    res["vesin"] = best_time(lambda: nl.compute(points=atoms.positions, box=atoms.cell.array, periodic=True,
                                                quantities="ijS"), 3)
    res["ase"] = best_time(lambda: ase_nl("ijS", atoms, CUTOFF), 1)
    res["n_edges"] = len(neighbor_list(atoms, CUTOFF)[0])
    for k in ("xtalnn", "vesin", "ase"):
        log(f"  neighbour list {k:7s} {res[k]:8.3f} s for {res['n_atoms']} atoms")
    return res


def fmt(v):
    return f"{v:,.2f}" if isinstance(v, float) else str(v)


CACHE = HERE / "descriptors_out" / "results.json"
PARTS = ("speed", "memory", "neighbours")


def speed(quick: bool, log) -> dict:
    """Cases a, b, c: µs/atom of every implementation, forward and forward + backward."""
    n_tio2 = 80 if quick else 800
    tio2 = list(itertools.islice(iter_tar(TIO2), n_tio2))
    cases = {
        "a": (f"{len(tio2)} aenet TiO2 structures", tio2, ["Ti", "O"]),
        "b": ("Si diamond, 4,096 atoms", [si_diamond(8 if not quick else 4)], ["Si"]),
        "c": ("TiO2 rutile, ~32,000 atoms", [rutile(32_000 if not quick else 4_000)], ["Ti", "O"]),
    }
    results = {}
    for key, (title, structures, elements) in cases.items():
        n_atoms = sum(len(a) for a in structures)
        triplets = sum(n_triplets(a) for a in structures)
        log(f"({key}) {title}: {n_atoms} atoms, {triplets:,} triplets, {acsf(elements).n_features} ACSF")
        descriptor = acsf(elements)
        big = len(structures) == 1 and n_atoms > 10_000
        repeats = 1 if big else 3
        row = {"n_atoms": n_atoms, "n_features": descriptor.n_features}
        row["xtalnn op"] = measure("xtalnn op", xtalnn_runner(descriptor, "op"), structures, n_atoms, repeats, log)
        # the peers are 10–100× slower: on the many-structure set they run on every 20th structure
        sample = structures[:: max(1, len(structures) // 40)]
        n_sample = sum(len(a) for a in sample)
        twin_triplets = sum(n_triplets(a) for a in sample)
        ani_sample = [big_enough(a) for a in sample]
        ani_triplets = sum(n_triplets(a) for a in ani_sample)
        for name, count, make in (
            ("xtalnn torch twin", twin_triplets,
             lambda: measure("xtalnn twin", xtalnn_runner(descriptor, "torch"), sample, n_sample, 1, log)),
            ("TorchANI AEVComputer", ani_triplets,
             lambda: measure("torchani", torchani_runner(descriptor)[0], sample,
                             sum(len(a) for a in ani_sample), 1, log)),
        ):
            if count <= MAX_TRIPLETS_TORCH:
                row[name] = make()
            else:
                skip = f"not run: {count:,} triplets held in memory (> {MAX_TRIPLETS_TORCH:,})"
                log(f"  {name}: {skip}")
                row[name] = {"forward": skip, "forward+backward": skip}
        run, _ = dscribe_runner(descriptor)
        row["dscribe"] = measure("dscribe", run, sample, n_sample, 1, log, modes=("forward",))
        # numerical derivatives: every atom displaced, the whole structure recomputed (quadratic in N)
        probe = sample[:3] if len(sample) > 1 else [si_diamond(1) if elements == ["Si"] else rutile(24)]
        n_probe = sum(len(a) for a in probe)
        fb = measure("dscribe", run, probe, n_probe, 1, log, modes=("forward+backward",))["forward+backward"]
        if isinstance(fb, float):
            fb = fb if len(sample) > 1 else f"not run: {fb * n_atoms / n_probe:,.0f} µs/atom projected from {n_probe} atoms"
        row["dscribe"]["forward+backward"] = fb
        results[key] = [title, row]

    return results


def memory(quick: bool, log) -> list:
    out = []
    for n in ((4_000, 16_000) if quick else (4_000, 32_000, 100_000)):
        run = subprocess.run([sys.executable, __file__, "--memory-probe", str(n)], capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"memory probe for {n} atoms failed: {run.stderr[-500:]}")
        out.append(json.loads(run.stdout.strip().splitlines()[-1]))
        log(f"  memory: {out[-1]['n_atoms']} atoms → {out[-1]['peak_rss_mb']:.0f} MB peak RSS")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sets, do not write RESULTS.md")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                    help="parts to measure; the others are taken from the last full run's cache")
    ap.add_argument("--memory-probe", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe)))
        return 0
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    log = lambda msg: print(msg, flush=True)  # noqa: E731

    cache = json.loads(CACHE.read_text()) if CACHE.exists() and not args.quick else {}
    measure_part = {"speed": speed, "memory": memory,
                    "neighbours": lambda quick, log: neighbour_list_timing(20_000 if quick else 100_000, log)}
    for part in args.parts:
        cache[part] = measure_part[part](args.quick, log)
        if not args.quick:
            CACHE.parent.mkdir(exist_ok=True)
            CACHE.write_text(json.dumps(cache, indent=1))
    missing = [p for p in PARTS if p not in cache]
    if missing:
        raise SystemExit(f"no cached results for {missing}: run those parts first")
    body = render(cache["speed"], cache["memory"], cache["neighbours"])
    print(body)
    if not args.quick:
        write_section("Descriptors", body)
    return 0


def render(results, memory, nl) -> str:
    lines = [machine("torch", "ase", "dscribe", "torchani", "vesin"), "",
             f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}. Float64 everywhere, 2 threads (dscribe: its C++ serial code; its ACSF derivatives are "
             "numerical only: measured on 3 structures of case a, and projected, not run, for b and c since its "
             "cost grows as N²). Times include the neighbour list. µs per atom; xtalnn op best of 3 (1 for case c), "
             "peers once, on every 20th structure of case (a); TorchANI on supercells of cells thinner than "
             "twice its cutoff (it refuses them). "
             "**Ratio** = peer time / xtalnn op time (higher = xtalnn faster).", ""]
    for key, (title, row) in results.items():
        ours = row["xtalnn op"]
        lines += [f"### ({key}) {title} — {row['n_atoms']:,} atoms, {row['n_features']} functions", "",
                  "| implementation | forward µs/atom | ratio | forward+backward µs/atom | ratio |",
                  "|---|---:|---:|---:|---:|"]
        for name in ("xtalnn op", "xtalnn torch twin", "TorchANI AEVComputer", "dscribe"):
            r = row[name]
            cells = []
            for mode in ("forward", "forward+backward"):
                v = r[mode]
                ratio = f"{v / ours[mode]:.1f}×" if isinstance(v, float) and isinstance(ours[mode], float) else "–"
                cells += [fmt(v), ratio]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if memory:
        lines += ["### Memory (fresh process: neighbour list + op forward + backward, TiO2)", "",
                  "Peak RSS of the whole process (python, torch, ASE included); the increment per atom "
                  "between sizes is what the op and its inputs cost. Linear memory = constant increment.", "",
                  "| atoms | edges | peak RSS MB | edge tensors MB | increment kB/atom |", "|---:|---:|---:|---:|---:|"]
        previous = None
        for m in memory:
            inc = "–" if previous is None else \
                f"{1024 * (m['peak_rss_mb'] - previous['peak_rss_mb']) / (m['n_atoms'] - previous['n_atoms']):.1f}"
            lines.append(f"| {m['n_atoms']:,} | {m['n_edges']:,} | {m['peak_rss_mb']:.0f} | "
                         f"{m['edge_inputs_mb']:.0f} | {inc} |")
            previous = m
        lines.append("")
    lines += [f"### Neighbour list, TiO2 rutile {nl['n_atoms']:,} atoms, cutoff {CUTOFF} Å, {nl['n_edges']:,} edges",
              "", "| implementation | seconds | ratio to xtalnn |", "|---|---:|---:|"]
    for k in ("xtalnn", "vesin", "ase"):
        lines.append(f"| {k} | {nl[k]:.3f} | {nl[k] / nl['xtalnn']:.1f}× |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
