"""Oracle labelling: one job per recommended structure, run in a worker (local process or Dask).

:func:`label` never raises for a failing calculation: it returns ``status="failed"`` with the error
(an SCF that does not converge, a calculator that refuses the structure, a non-finite energy), so
the campaign records it and goes on. Energies eV, forces eV/Å, stress eV/Å³.
"""

from __future__ import annotations

import math
import time
import traceback

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

_CALCULATORS: dict = {}  # one calculator per (spec, kwargs) per worker process (LAMMPS start-up once)


def _calculator(spec: str, kwargs: dict):
    from xtalnn.calculators.registry import make_calculator

    key = (spec, repr(sorted(kwargs.items())))
    if key not in _CALCULATORS:
        _CALCULATORS[key] = make_calculator(spec, **kwargs)
    return _CALCULATORS[key]


def _frame(atoms: Atoms) -> Atoms:
    """A copy of ``atoms`` carrying its calculator's energy, forces and stress (if any)."""
    energy = float(atoms.get_potential_energy())
    if not math.isfinite(energy):
        raise ValueError(f"the oracle returned a non-finite energy ({energy})")
    forces = np.asarray(atoms.get_forces(), dtype=float)
    if not np.all(np.isfinite(forces)):
        raise ValueError("the oracle returned non-finite forces")
    results = {"energy": energy, "free_energy": energy, "forces": forces}
    try:
        stress = atoms.get_stress()
        if np.all(np.isfinite(stress)):
            results["stress"] = np.asarray(stress, dtype=float)
    except Exception:  # calculators without stress: energies and forces are enough
        pass
    out = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.calc = SinglePointCalculator(out, **results)
    return out


def label(atoms: Atoms, spec: str, kwargs: dict | None = None, relax_steps: int = 0, fmax: float = 0.05,
          cell: bool = False, pressure: float = 0.0) -> dict:
    """Single point (and optionally ``relax_steps`` BFGS steps) with the oracle ``spec``.

    The relaxation moves the atoms at fixed cell, or with ``cell=True`` the cell too (ASE's
    ``FrechetCellFilter``: stress to −``pressure`` (GPa; 0 by default), ``fmax`` in eV/Å applies to the
    filter's generalised forces); every step is a stored frame.

    Returns ``{"status": "ok"|"failed", "frames": [Atoms with results], "error": str (also for an
    ok call whose relaxation failed after the single point: its frames so far are kept),
    "atoms": the input, "started"/"finished": Unix time (s), "seconds": wall time}``.
    """
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.time()
    t0 = time.perf_counter()
    frames: list[Atoms] = []
    try:
        calc = _calculator(spec, dict(kwargs or {}))
        work = atoms.copy()
        work.calc = calc
        frames.append(_frame(work))
        if relax_steps > 0:
            from ase.optimize import BFGS

            target = work
            if cell:
                from ase.filters import FrechetCellFilter

                from ase.units import GPa

                target = FrechetCellFilter(work, scalar_pressure=pressure * GPa)
            opt = BFGS(target, logfile=None)
            for _ in opt.irun(fmax=fmax, steps=relax_steps):
                if opt.nsteps > 0:
                    frames.append(_frame(work))
        status, error = "ok", ""
    except Exception as err:  # any failure of the oracle is recorded, never retried
        error = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}"
        _CALCULATORS.clear()  # a calculator left in a bad state is not reused
        # a relaxation that fails after the single point keeps the frames it computed (status ok, the
        # error recorded): only a failed single point makes the call "failed"
        status = "ok" if frames else "failed"
    return {"status": status, "frames": frames, "error": error, "atoms": atoms.copy(),
            "started": started, "finished": time.time(), "seconds": time.perf_counter() - t0}
