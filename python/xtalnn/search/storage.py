"""Per-run candidate databases (ase.db, SQLite): every evaluation is stored as it finishes.

One database per (crystal system, seed) run, ``OUT/runs/<system>-s<seed>.db``, so the parallel
runs never contend for a lock. A row's key-value pairs: ``system``, ``seed``, ``gen``
(generation, 0 = random start), ``idx`` (child index in its generation), ``status`` (``ok``,
``duplicate``, ``failed``), ``energy_per_atom`` (eV/atom), ``spacegroup``, ``origin``,
``n_calls`` (calculator calls), ``seconds`` (wall time of the evaluation); ``data`` holds the
error message of a failed candidate and the parents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ase import Atoms


@dataclass
class Record:
    """One evaluated (or failed) candidate."""

    gen: int
    idx: int
    status: str
    atoms: Atoms
    energy_per_atom: float = float("nan")
    spacegroup: int = 0
    origin: str = ""
    n_calls: int = 0
    seconds: float = 0.0
    error: str = ""
    extra: dict = field(default_factory=dict)


def run_db_path(out_dir: str, system: str, seed: int) -> str:
    return os.path.join(out_dir, "runs", f"{system}-s{seed}.db")


class RunStore:
    """Append-only store of one run's records, keyed by (gen, idx)."""

    def __init__(self, path: str, system: str, seed: int):
        import ase.db

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.system = system
        self.seed = seed
        # one writer per run database: SQLite's own locking suffices, and ase.db's lock file would
        # outlive a kill -9 and block the resumed run's first write forever
        self.db = ase.db.connect(path, type="db", append=True, use_lock_file=False)

    def load(self) -> dict[tuple[int, int], Record]:
        """All stored records by (gen, idx)."""
        out: dict[tuple[int, int], Record] = {}
        for row in self.db.select(system=self.system, seed=self.seed):
            data = row.get("data", {}) or {}
            out[(row.gen, row.idx)] = Record(
                gen=row.gen,
                idx=row.idx,
                status=row.status,
                atoms=row.toatoms(),
                energy_per_atom=row.get("energy_per_atom", float("nan")),
                spacegroup=row.get("spacegroup", 0),
                origin=row.get("origin", ""),
                n_calls=row.get("n_calls", 0),
                seconds=row.get("seconds", 0.0),
                error=data.get("error", ""),
                extra={k: v for k, v in data.items() if k != "error"},
            )
        return out

    def write(self, record: Record) -> None:
        """Store one record (committed immediately)."""
        kv = dict(
            system=self.system,
            seed=self.seed,
            gen=record.gen,
            idx=record.idx,
            status=record.status,
            origin=record.origin or "none",
            n_calls=int(record.n_calls),
            seconds=float(record.seconds),
            spacegroup=int(record.spacegroup),
        )
        if record.energy_per_atom == record.energy_per_atom:  # not NaN
            kv["energy_per_atom"] = float(record.energy_per_atom)
        data = dict(record.extra)
        if record.error:
            data["error"] = record.error
        self.db.write(record.atoms, key_value_pairs=kv, data=data)
