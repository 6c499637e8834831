"""The GA step: one :func:`xtalnn.search.search` run per crystal system (and seed) as a job, with the
newest finished potential (or the empirical model before the first one) as the fitness; then the
recommendations that duplicate already labelled structures are dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ase import Atoms


@dataclass
class GATask:
    """One GA run: composition, crystal system, fitness spec (``empirical`` or a model file), settings."""

    composition: str
    system: str
    fitness: str
    seed: int
    generations: int
    top_k: int
    out_dir: str
    settings: dict  # population, children, select_fraction, mutation_probability, relax, relax_steps, fmax, volume_per_atom


def run_ga(task: GATask) -> list[dict]:
    """Run one GA (resumes from ``task.out_dir``); the best ``top_k`` distinct structures as
    ``{"atoms", "energy_per_atom" (eV/atom, fitness), "spacegroup"}``, lowest first."""
    import torch

    from xtalnn.references import CalculatorFactory
    from xtalnn.search import search

    torch.set_num_threads(1)
    os.makedirs(task.out_dir, exist_ok=True)
    _drop_unreadable_run_databases(task.out_dir)
    import warnings

    with warnings.catch_warnings():  # extrapolation is expected while the model is young: labelling fixes it
        warnings.simplefilter("ignore")
        result = search(task.composition, CalculatorFactory(task.fitness), systems=[task.system],
                        generations=task.generations, seeds_per_system=1, seed=task.seed, top_k=task.top_k,
                        out_dir=task.out_dir, workers=1, verbose=False, **task.settings)
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


class Deduplicator:
    """Structures seen so far; :meth:`add` says whether a structure duplicates one of them.

    pymatgen ``StructureMatcher`` (ltol 0.2, stol 0.3, 5°, volumes scaled), compared only within the
    same spglib space group (symprec 0.1 Å), so the check stays cheap for thousands of structures.
    """

    def __init__(self):
        from pymatgen.analysis.structure_matcher import StructureMatcher

        self.matcher = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, scale=True)
        self.groups: dict[int, list] = {}

    def add(self, atoms: Atoms) -> bool:
        """Remember ``atoms``; True if it duplicates a structure already seen (then not stored again)."""
        from pymatgen.io.ase import AseAtomsAdaptor

        from xtalnn.search.dedup import space_group

        sg, _ = space_group(atoms)
        structure = AseAtomsAdaptor.get_structure(atoms)
        group = self.groups.setdefault(sg, [])
        if any(self.matcher.fit(structure, other) for other in group):
            return True
        group.append(structure)
        return False
