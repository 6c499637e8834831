"""The GA step: one :func:`xtalnn.search.search` run per crystal system (and seed) as a job, with the
newest finished potential (or ``[ga] start_fitness`` before the first one) as the fitness."""

from __future__ import annotations

import os
from dataclasses import dataclass

from xtalnn.search.config import GASettings


@dataclass
class GATask:
    """One GA run: composition, fitness spec (``empirical``, another calculator spec or a model file), its settings (one system,
    one seed) and folder."""

    composition: str
    fitness: str
    settings: GASettings
    out_dir: str

    @property
    def system(self) -> str:
        return self.settings.systems[0]


def run_ga(task: GATask) -> list[dict]:
    """Run one GA (resumes from ``task.out_dir``); the best ``top_k`` distinct structures as
    ``{"atoms", "energy_per_atom" (eV/atom, fitness), "spacegroup"}``, lowest first."""
    import warnings

    import torch

    from xtalnn.calculators.registry import CalculatorFactory
    from xtalnn.search import search

    torch.set_num_threads(1)
    os.makedirs(task.out_dir, exist_ok=True)
    _drop_unreadable_run_databases(task.out_dir)
    with warnings.catch_warnings():  # extrapolation is expected while the model is young: labelling fixes it
        warnings.simplefilter("ignore")
        result = search(task.composition, CalculatorFactory(task.fitness), task.settings, out_dir=task.out_dir,
                        workers=1, verbose=False)
    return [{"atoms": c.atoms, "energy_per_atom": float(c.energy_per_atom), "spacegroup": int(c.spacegroup)}
            for c in result.by_system.get(task.system, [])]


def _drop_unreadable_run_databases(out_dir: str) -> None:
    """Make a GA folder usable after kill -9: a run database left half-initialised (ase.db creates its
    SQLite tables one by one) is deleted; it only holds GA progress, which the seeded GA recomputes
    exactly. (Run databases use no lock file: see :class:`xtalnn.search.storage.RunStore`.)"""
    import glob

    import ase.db

    for path in glob.glob(os.path.join(out_dir, "runs", "*.db")):
        try:
            db = ase.db.connect(path, type="db")
            list(db.select(system="none", seed=-1, limit=1))
            db.count()
        except Exception:
            for suffix in ("", "-journal", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
