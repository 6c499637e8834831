"""Results of a search: best K distinct structures per system → ase.db, CIF files, PNG, summary."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from xtalnn.search.dedup import Deduplicator, space_group
from xtalnn.search.storage import RunStore, run_db_path


@dataclass
class Candidate:
    """A ranked structure: energy per atom (eV/atom), spglib space group, cell parameters
    (a, b, c in Å; α, β, γ in degrees), and where it came from."""

    atoms: Atoms
    energy_per_atom: float
    system: str
    spacegroup: int
    symbol: str
    cellpar: tuple[float, ...]
    seed: int
    gen: int
    idx: int
    rank: int = 0
    cif: str = ""


@dataclass
class SearchResult:
    """Ranked candidates (all systems, lowest energy first) and per-system bookkeeping."""

    candidates: list[Candidate]
    by_system: dict[str, list[Candidate]]
    history: dict[str, list[float]]  # best energy per atom (eV/atom) after each generation
    evaluations: int  # candidates stored in the databases (all runs)
    new_evaluations: int  # of which evaluated in this call
    failed: int
    wall_seconds: float
    out_dir: str
    run_stats: list[dict] = field(default_factory=list)
    pressure: float = 0.0  # GPa; when not 0, every "energy per atom" here is the enthalpy (E + pV)/N

    @property
    def best(self) -> Candidate:
        return self.candidates[0]

    @property
    def quantity(self) -> str:
        """What the search ranked by: ``"E"`` or ``"H at p GPa"``."""
        return f"H at {self.pressure:g} GPa" if self.pressure else "E"


def collect(out_dir: str, cfg, stats: list[dict], wall: float) -> SearchResult:
    """Read every run database of ``cfg`` in ``out_dir``; write the outputs; return the result."""
    by_system: dict[str, list[Candidate]] = {}
    history: dict[str, list[float]] = {}
    total = failed = 0
    for system in cfg.ga.systems:
        records = []
        for seed in cfg.ga.run_seeds():
            path = run_db_path(out_dir, system, seed)
            if not os.path.exists(path):
                continue
            for rec in RunStore(path, system, seed).load().values():
                total += 1
                failed += rec.status == "failed"
                if rec.status == "ok":
                    records.append((seed, rec))
        records.sort(key=lambda t: (t[1].energy_per_atom, t[0], t[1].gen, t[1].idx))
        history[system] = _history(records)
        archive = Deduplicator(energy_tol=cfg.ga.energy_tol)
        chosen: list[Candidate] = []
        for seed, rec in records:
            if len(chosen) >= cfg.ga.top_k:
                break
            if archive.add(rec.atoms, rec.energy_per_atom) is not None:
                continue  # the same structure found by another seed
            number, symbol = space_group(rec.atoms)
            chosen.append(
                Candidate(
                    atoms=rec.atoms, energy_per_atom=rec.energy_per_atom, system=system,
                    spacegroup=number, symbol=symbol,
                    cellpar=tuple(float(x) for x in rec.atoms.cell.cellpar()),
                    seed=seed, gen=rec.gen, idx=rec.idx, rank=len(chosen) + 1,
                )
            )
        by_system[system] = chosen
    ranked = sorted((c for cs in by_system.values() for c in cs), key=lambda c: c.energy_per_atom)
    result = SearchResult(
        candidates=ranked, by_system=by_system, history=history, evaluations=total,
        new_evaluations=sum(s.get("new_evaluations", 0) for s in stats), failed=failed,
        wall_seconds=wall, out_dir=out_dir, run_stats=stats, pressure=cfg.ga.pressure,
    )
    write_outputs(result, cfg.composition.formula)
    return result


def _history(records) -> list[float]:
    """Best energy per atom (eV/atom) found up to and including each generation."""
    if not records:
        return []
    last = max(r.gen for _, r in records)
    best = np.full(last + 1, np.inf)
    for _, r in records:
        best[r.gen] = min(best[r.gen], r.energy_per_atom)
    return [float(x) for x in np.minimum.accumulate(best)]


def write_outputs(result: SearchResult, formula: str) -> None:
    """``best.db`` (ase.db), ``cif/<system>/<rank>-<formula>-sg<n>.cif``, ``best_energy.png``,
    ``summary.txt`` in ``result.out_dir`` (rewritten from the run databases each time)."""
    import ase.db
    import ase.io

    out = result.out_dir
    db_path = os.path.join(out, "best.db")
    if os.path.exists(db_path):
        os.remove(db_path)
    with ase.db.connect(db_path) as db:
        for system, cands in result.by_system.items():
            for c in cands:
                a, b, cc, al, be, ga = c.cellpar
                folder = os.path.join(out, "cif", system)
                os.makedirs(folder, exist_ok=True)
                c.cif = os.path.join(folder, f"{c.rank:02d}-{formula}-sg{c.spacegroup}.cif")
                ase.io.write(c.cif, c.atoms)
                db.write(
                    c.atoms, system=system, rank=c.rank, energy_per_atom=c.energy_per_atom,
                    spacegroup=c.spacegroup, sg_symbol=c.symbol, a=a, b=b, c=cc, alpha=al,
                    beta=be, gamma=ga, seed=c.seed, gen=c.gen, idx=c.idx,
                )
    with open(os.path.join(out, "summary.txt"), "w") as fh:
        fh.write(f"# {formula}: best distinct structures per crystal system\n")
        fh.write(f"# ranked by {result.quantity} (eV/atom)\n")
        fh.write("system        rank  eV/atom       space group       a      b      c  alpha   beta  gamma\n")
        for system, cands in result.by_system.items():
            for c in cands:
                a, b, cc, al, be, ga = c.cellpar
                fh.write(
                    f"{system:13s} {c.rank:4d} {c.energy_per_atom:12.4f}  {c.symbol:>9s} ({c.spacegroup:3d})"
                    f" {a:6.3f} {b:6.3f} {cc:6.3f} {al:6.1f} {be:6.1f} {ga:6.1f}\n"
                )
    plot_history(result.history, os.path.join(out, "best_energy.png"), formula, result.quantity)


def plot_history(history: dict[str, list[float]], path: str, title: str = "", quantity: str = "E") -> None:
    """PNG of the best energy per atom (eV/atom; ``quantity``: E or the enthalpy) per generation, one line
    per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for system, values in history.items():
        if values:
            ax.plot(range(len(values)), values, marker=".", label=system)
    ax.set_xlabel("generation")
    ax.set_ylabel(f"best {quantity} (eV/atom)")
    ax.set_title(title)
    if any(history.values()):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
