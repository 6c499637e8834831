"""The GA driver: one population per (crystal system, seed) run, runs in parallel processes.

A run is deterministic given its seed: the starting structures (generation 0) come in a fixed
order from :class:`.generate.StartingStructures` seeded with ``[seed, system_index, 0]`` (replayed
up to the first missing one on restart), the random numbers of child ``(gen, idx)`` from
``numpy.random.default_rng([seed, system_index, gen, idx])``, and every evaluated candidate is
read back from the run's database on restart, so a killed search resumes where it stopped without
repeating a finished evaluation and arrives at the same populations.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from collections.abc import Callable, Generator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from xtalnn.search.formula import (
    Composition,
    check_packing,
    default_volume_per_atom,
    parse_composition,
)
from xtalnn.search.formula import (
    min_distances as pair_min_distances,
)
from xtalnn.search.config import GASettings, bind_search
from xtalnn.search.dedup import Deduplicator, space_group
from xtalnn.search.generate import StartingStructures
from xtalnn.search.operators import make_child
from xtalnn.search.relax import EvaluationError, relax
from xtalnn.search.schedule import Scoreboard, next_run, share_weights
from xtalnn.search.storage import Record, RunStore, run_db_path
from xtalnn.search.systems import CRYSTAL_SYSTEMS, check_system

STOP_FILE = "STOP"
"""Creating ``OUT/STOP`` makes every run stop at its next generation boundary."""


@dataclass
class SearchConfig:
    """One search: the composition and its GA settings."""

    composition: Composition
    ga: GASettings

    def identity(self) -> dict:
        """The settings a resumed search must share with the stored one."""
        return {"composition": self.composition.formula, **self.ga.identity()}


# ---------------------------------------------------------------------------- one run
class _Log:
    def __init__(self, out_dir: str | None, verbose: bool):
        self.path = os.path.join(out_dir, "search.log") if out_dir else None
        self.verbose = verbose

    def __call__(self, line: str) -> None:
        if self.verbose:
            print(line, flush=True)
        if self.path:
            with open(self.path, "a") as fh:
                fh.write(line + "\n")


def run_system(
    cfg: SearchConfig,
    calculator_factory: Callable[[], Calculator],
    system: str,
    seed: int,
    out_dir: str,
    verbose: bool = True,
    stop_when: Callable[[Atoms, float, int], bool] | None = None,
) -> dict:
    """Run the GA for one crystal system and seed; every candidate is stored in the run's db.

    Returns counters: ``evaluations`` (candidates in the db), ``new_evaluations`` (done now),
    ``seconds`` (wall time of the new ones).
    """
    return _run_interleaved([(cfg, calculator_factory, system, seed, out_dir, verbose, stop_when, 0)],
                            Scoreboard(1))[0]


def _run_interleaved(tasks: list[tuple], board: Scoreboard) -> list[dict]:
    """Run several (system, seed) runs in this process, one new evaluation at a time.

    ``equal`` sharing (:mod:`.schedule`) takes the runs in turn, which keeps them at the same number
    of evaluations, so that system-parallel runs progress together however few processes there are;
    ``adaptive`` sharing gives the next evaluation to the run furthest below its share
    (:func:`.schedule.share_weights` of every run's best energy on ``board``). Each run's results do
    not depend on the interleaving (own random numbers, own database). Returns their counters.
    """
    steps = [_run_steps(*task, board=board) for task in tasks]
    index = [task[7] for task in tasks]
    adaptive = bool(tasks) and tasks[0][0].ga.budget_sharing == "adaptive"
    counters: list[dict | None] = [None] * len(steps)
    given = [0] * len(steps)
    active = list(range(len(steps)))
    while active:
        if adaptive:
            weights = share_weights(board.snapshot())
            turn = [next_run(active, given, [weights[index[k]] for k in range(len(steps))])]
        else:
            turn = list(active)
        for k in turn:
            try:
                next(steps[k])
                given[k] += 1
            except StopIteration as done:
                counters[k] = done.value
                active.remove(k)
    return counters


def _run_steps(
    cfg: SearchConfig,
    calculator_factory: Callable[[], Calculator],
    system: str,
    seed: int,
    out_dir: str,
    verbose: bool = True,
    stop_when: Callable[[Atoms, float, int], bool] | None = None,
    run_index: int = 0,
    board: Scoreboard | None = None,
) -> Generator[None, None, dict]:
    """The run of :func:`run_system` as a generator that yields after each new evaluation and
    returns the counters; its lowest energy so far goes to ``board`` as entry ``run_index``."""
    check_system(system)
    log = _Log(out_dir, verbose)
    tag = f"[{system} s{seed}]"
    comp = cfg.composition
    dmin = pair_min_distances(comp, overrides=cfg.ga.min_distances)
    store = RunStore(run_db_path(out_dir, system, seed), system, seed)
    done = store.load()
    sys_index = CRYSTAL_SYSTEMS.index(system)
    archive = Deduplicator(energy_tol=cfg.ga.energy_tol)
    calc: list[Calculator] = []  # built lazily: a fully resumed run never starts the calculator
    counters = {"evaluations": 0, "new_evaluations": 0, "seconds": 0.0, "failed": 0, "duplicates": 0}

    def evaluate(gen: int, idx: int, make: Callable[[np.random.Generator], Any]) -> Record:
        rec = done.get((gen, idx))
        if rec is None:
            rng = np.random.default_rng([seed, sys_index, gen, idx])
            start = time.perf_counter()
            made = make(rng)
            if made is None:
                rec = Record(gen, idx, "failed", Atoms(comp.symbols), error="no valid structure")
            else:
                atoms, origin, extra = made
                try:
                    if not calc:
                        calc.append(calculator_factory())
                    ev = relax(
                        atoms,
                        calc[0],
                        "triclinic" if cfg.ga.free_cell else system,
                        steps=cfg.ga.relax_steps,
                        fmax=cfg.ga.fmax,
                        optimizer=cfg.ga.optimizer,
                        keep_symmetry=cfg.ga.keep_symmetry,
                        enabled=cfg.ga.relax,
                        pressure=cfg.ga.pressure,
                    )
                    sg, _ = space_group(ev.atoms)
                    if cfg.ga.pressure:  # the fitness is the enthalpy; keep the energy too
                        extra = {**(extra or {}), "pressure": cfg.ga.pressure,
                                 "energy_per_atom": ev.energy_per_atom}
                    rec = Record(gen, idx, "ok", ev.atoms, ev.enthalpy_per_atom, sg, origin,
                                 ev.n_calls, extra=extra)
                except EvaluationError as err:
                    rec = Record(gen, idx, "failed", atoms, origin=origin, error=str(err), extra=extra)
                    log(f"{tag} gen {gen} child {idx}: candidate discarded: {err}")
            if rec.status == "ok" and archive.add(rec.atoms, rec.energy_per_atom) is not None:
                rec.status = "duplicate"
            rec.seconds = time.perf_counter() - start
            store.write(rec)
            counters["new_evaluations"] += 1
            counters["seconds"] += rec.seconds
            if stop_when is not None and rec.status == "ok":
                if stop_when(rec.atoms, rec.energy_per_atom, rec.spacegroup):
                    open(os.path.join(out_dir, STOP_FILE), "w").close()
        elif rec.status != "failed":
            archive.add(rec.atoms, rec.energy_per_atom)  # replay: same archive as the first time
        if board is not None and rec.status in ("ok", "duplicate"):
            board.report(run_index, rec.energy_per_atom)
        counters["evaluations"] += 1
        counters["failed"] += rec.status == "failed"
        counters["duplicates"] += rec.status == "duplicate"
        return rec

    population: list[Record] = []
    started = time.perf_counter()

    def progress(gen: int, improved_at: int = 0) -> None:
        best = population[0]
        energies = np.array([r.energy_per_atom for r in population])
        groups = len({r.spacegroup for r in population})
        log(
            f"{tag} gen {gen:4d}  best {best.energy_per_atom:.4f} eV/atom (sg {best.spacegroup})"
            f"  diversity {groups} space groups, spread {energies.std():.3f} eV/atom"
            f"  evals {counters['evaluations']} dup {counters['duplicates']}"
            f" failed {counters['failed']}  {_time_left(cfg.ga, gen, improved_at, counters, time.perf_counter() - started)}"
        )

    def merge(records: list[Record]) -> None:
        population.extend(r for r in records if r.status == "ok")
        population.sort(key=lambda r: (r.energy_per_atom, r.gen, r.idx))
        del population[cfg.ga.population:]

    stop_path = os.path.join(out_dir, STOP_FILE)

    starts = StartingStructures(comp, system, np.random.default_rng([seed, sys_index, 0]), dmin,
                                cfg.ga.volume_per_atom, cfg.ga.symmetric_start)
    first = []
    n_first, n_immigrants = cfg.ga.first_generation_size(), cfg.ga.immigrants_per_generation()
    for i in range(n_first):
        if stop_when is not None and os.path.exists(stop_path):
            log(f"{tag} stop requested in the first generation")
            return counters
        new = counters["new_evaluations"]
        first.append(evaluate(0, i, lambda rng, i=i: starts.get(i)))
        if counters["new_evaluations"] > new:
            yield
    merge(first)
    if len(population) < 2:
        log(f"{tag} stopped: fewer than 2 valid structures in the first generation")
        return counters
    progress(0)
    n_select = max(2, int(round(cfg.ga.population * cfg.ga.select_fraction)))
    best, improved_at = population[0].energy_per_atom, 0
    for gen in range(1, cfg.ga.generations + 1):
        if os.path.exists(stop_path):
            log(f"{tag} stop requested at generation {gen}")
            break
        parents = population[:n_select]
        parent_atoms = [p.atoms for p in parents]

        def child_maker(rng):
            made = make_child(parent_atoms, comp, system, rng, dmin, cfg.ga.mutation_probability,
                              mutation_share=cfg.ga.mutation_share)
            if made is None:
                return None
            child, origin, used = made
            ids = [f"{parents[k].gen}.{parents[k].idx}" for k in used]
            return child, origin, {"parents": ids}

        def immigrant(k: int):
            """Maker of the run's k-th starting structure (drawn from the start sequence, not the child's rng)."""
            def make(rng):
                made = starts.get(k)
                return None if made is None else (made[0], f"immigrant-{made[1]}", made[2])
            return make

        children = []
        bred = cfg.ga.children - n_immigrants  # the last n_immigrants children continue the start sequence
        for i in range(cfg.ga.children):
            new = counters["new_evaluations"]
            maker = child_maker if i < bred else immigrant(n_first + (gen - 1) * n_immigrants + i - bred)
            children.append(evaluate(gen, i, maker))
            if counters["new_evaluations"] > new:
                yield
        merge(children)
        improved = population[0].energy_per_atom < best - cfg.ga.energy_tol
        progress(gen, gen if improved else improved_at)
        if improved:
            best, improved_at = population[0].energy_per_atom, gen
        elif cfg.ga.stall_generations and gen - improved_at >= cfg.ga.stall_generations:
            log(f"{tag} stopped at generation {gen}: the best ({best:.4f} eV/atom) has not improved by more than "
                f"{cfg.ga.energy_tol} eV/atom for {gen - improved_at} generations (stall_generations)")
            break
    return counters


def _clock(seconds: float) -> str:
    """MM:SS or H:MM:SS (tqdm's format)."""
    from tqdm import tqdm

    return tqdm.format_interval(max(seconds, 0.0))


def _time_left(ga: GASettings, gen: int, improved_at: int, counters: dict, elapsed: float) -> str:
    """``elapsed 01:23, left ≤04:10 (~00:40 at a stall stop, gen 15)``: the run's wall time, and the time
    to its last generation and to the stall stop (if the best does not improve again), at this
    session's seconds per new evaluation (runs sharing a process advance together, so this includes
    theirs)."""
    text = f"elapsed {_clock(elapsed)}"
    if not counters["new_evaluations"]:
        return text
    per_child = elapsed / counters["new_evaluations"] * ga.children
    text += f", left ≤{_clock((ga.generations - gen) * per_child)}"
    stall = improved_at + ga.stall_generations
    if ga.stall_generations and stall < ga.generations:
        text += f" (~{_clock((stall - gen) * per_child)} at a stall stop, gen {stall})"
    return text


_BOARD: Scoreboard | None = None
"""The search's scoreboard in a worker process (set by :func:`_use_board`)."""


def _use_board(shared, n_runs: int) -> None:
    """Worker-process initializer: the scoreboard shared by all processes of the search."""
    global _BOARD
    _BOARD = Scoreboard(n_runs, shared)


def _run_tasks(tasks: list[tuple]) -> list[dict]:
    board = _BOARD or Scoreboard(1 + max(task[7] for task in tasks))
    # one BLAS thread per process: the matrices are tiny (BFGS on 3N + 9) and the runs are parallel
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return _run_interleaved(tasks, board)
    with threadpool_limits(1):
        return _run_interleaved(tasks, board)


# ---------------------------------------------------------------------------- search()
class _Pickled:
    """Factory returning an unpickled copy of a calculator instance (one per process)."""

    def __init__(self, blob: bytes):
        self.blob = blob

    def __call__(self) -> Calculator:
        return pickle.loads(self.blob)


class _Same:
    """Factory returning the very instance it holds (single-process runs)."""

    def __init__(self, calc: Calculator):
        self.calc = calc

    def __call__(self) -> Calculator:
        return self.calc


def _factory(calculator: Any, workers: int) -> tuple[Callable[[], Calculator], int]:
    from xtalnn.calculators.registry import CalculatorFactory, make_calculator

    if isinstance(calculator, str):
        make_calculator(calculator)  # fail early, clearly, on a bad spec or a missing package
        return CalculatorFactory(calculator), workers
    if isinstance(calculator, Calculator) or hasattr(calculator, "get_potential_energy"):
        if workers > 1:
            try:
                return _Pickled(pickle.dumps(calculator)), workers
            except Exception:
                pass  # not picklable (e.g. a live LAMMPS): run the systems one after another
        return _Same(calculator), 1
    if callable(calculator):
        return calculator, workers
    raise ValueError(f"calculator must be a spec string, an ASE calculator or a factory, got {calculator!r}")


def search(
    composition: str | dict | Composition,
    calculator: str | Calculator | Callable[[], Calculator],
    settings: GASettings | None = None,
    *,
    formula_units: int = 1,
    out_dir: str | None = None,
    workers: int | None = None,
    verbose: bool = True,
    stop_when: Callable[[Atoms, float, int], bool] | None = None,
    **overrides,
):
    """Genetic-algorithm crystal structure search, one population per crystal system.

    Parameters
    ----------
    composition : atoms per cell, ``"Si8"``, ``"Ti4O8"`` or ``{"Ti": 1, "O": 2}`` (× ``formula_units``).
    calculator : the fitness (energy per atom, eV/atom, lower is better): a spec string of
        :mod:`xtalnn.calculators.registry` (``"sw-si"``, ``"tblite"``, ``"empirical"``, a ``.pt`` model,
        ``"module:factory"``), a picklable factory ``() -> Calculator``, or an ASE calculator
        instance (copied to each process if picklable, otherwise the runs go one at a time).
    settings : :class:`~xtalnn.search.config.GASettings` (default: the seed paper's); ``overrides``
        replace single fields, e.g. ``search("Si8", "sw-si", generations=10, systems=["cubic"])``.
        ``symmetric_start`` is the share of the first generation taken from the system's highest-
        symmetry Wyckoff prototypes in rank order (:func:`xtalnn.search.generate.prototype_levels`),
        spread evenly over it; the others are pyxtal's random draws (0 gives the seed paper's
        all-random start). Starting structures on fixed Wyckoff sites are deduplicated before
        relaxation. ``relax=False`` evaluates single points only (:func:`xtalnn.search.relax.relax`).
    out_dir : folder for the run databases, ``best.db``, CIFs, PNG and log (default: a temporary
        folder). Re-running with the same folder resumes the search.
    workers : processes (default: CPU count); runs are (system, seed) pairs, each process takes
        every ``workers``-th run and advances its runs one evaluation at a time in turn.
    stop_when : optional picklable ``(atoms, energy_per_atom, spacegroup) -> bool``; when true for
        any candidate, all runs stop at their next generation (benchmarks).

    Returns
    -------
    :class:`xtalnn.search.report.SearchResult`, candidates ranked by energy per atom.
    """
    import tempfile

    from xtalnn.search import report

    ga = dataclasses.replace(settings or GASettings(), **overrides)
    ga.check()
    comp = parse_composition(composition, formula_units)
    dmin = pair_min_distances(comp, overrides=ga.min_distances)
    check_packing(comp, ga.volume_per_atom or default_volume_per_atom(comp), dmin)
    cfg = SearchConfig(comp, ga)
    out_dir = out_dir or tempfile.mkdtemp(prefix="xtalnn-search-")
    os.makedirs(out_dir, exist_ok=True)
    bind_search(out_dir, cfg.identity(), calculator)
    stop = os.path.join(out_dir, STOP_FILE)
    if os.path.exists(stop):
        os.remove(stop)
    workers = workers or os.cpu_count() or 1
    factory, workers = _factory(calculator, workers)
    runs = [(s, k) for s in ga.systems for k in ga.run_seeds()]
    tasks = [(cfg, factory, s, k, out_dir, verbose, stop_when, i) for i, (s, k) in enumerate(runs)]
    # each process takes every workers-th run and interleaves its runs one evaluation at a time
    workers = min(workers, len(tasks))
    shares = [tasks[w::workers] for w in range(workers)]
    start = time.perf_counter()
    if workers == 1:
        per_share = [_run_tasks(tasks)]
    else:
        import multiprocessing

        # fork: works from scripts without a __main__ guard; the parent never starts a calculator
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        shared = ctx.RawArray("d", [float("inf")] * len(tasks))  # the scoreboard of every process
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_use_board,
                                 initargs=(shared, len(tasks))) as pool:
            per_share = list(pool.map(_run_tasks, shares))
    stats = [per_share[k % workers][k // workers] for k in range(len(tasks))]  # task order
    wall = time.perf_counter() - start
    return report.collect(out_dir, cfg, stats, wall)
