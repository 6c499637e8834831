"""The active-learning loop: GA → oracle labelling → training, cycle after cycle, then the long GA.

Cycle c:

1. GA, one job per crystal system, fitness = the newest finished potential (``[ga] start_fitness``,
   the empirical model by default, before the first one); its best ``recommendations`` distinct structures per system, minus those
   that duplicate structures already sent to the oracle (this or earlier cycles), are written to
   ``DIR/cycles/NNN/recommendations.extxyz`` (atomically, once).
2. Labelling, one job per structure; each result goes to the database as it arrives.
3. Training of model c on every labelled structure of cycles ≤ c except those the fitness model
   already predicted within ``min_loss`` (eV/atom), warm-started from model c − 1.

With ``overlap = true`` (default) the training of model c runs while the GA and labelling of cycle
c + 1 go on; that GA uses the newest model finished when it starts (model c − 1). Which model a GA
uses is fixed by the cycle number, never by timing, so a campaign is reproducible on any executor.

Convergence (checked when a model finishes): training set ≥ ``min_structures``, validation RMSE
≤ ``max_val_rmse`` and, by default, the newest labelled cycle's lowest predicted structures predicted
within ``max_candidate_rmse`` by the model that proposed them (:mod:`xtalnn.campaign.quality`). Then no more labelling: the long GA (``final_seeds`` runs per system,
``final_generations`` generations) with the converged model, its best ``final_relabel`` distinct
structures per system relabelled by the oracle (lowest predicted energy first, all systems),
ranked by the oracle's energy. With
``[oracle] final_relax_steps > 0`` the ``final_relax_best`` lowest of those (distinct, all systems) are
then relaxed by the oracle, cell included, and ranked by their relaxed energy.

Resuming (the same command, the same folder) skips every finished part: GA runs resume from their
databases, labelled uids are not submitted again, a model is used only once its ``done.json``
exists, and an unfinished training continues from its checkpoint.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field

from xtalnn.campaign import training as T
from xtalnn.campaign.config import CampaignConfig
from xtalnn.campaign.ga import GATask, run_ga
from xtalnn.campaign.labelling import label
from xtalnn.campaign.quality import candidate_error
from xtalnn.campaign.storage import LabelStore
from xtalnn.io.atomic import frames_once, write_frames, write_json
from xtalnn.search.config import GASettings, bind_identity
from xtalnn.search.dedup import Deduplicator, space_group_number

MIN_TRAINING_STRUCTURES = 10
"""Fewer labelled structures than this: no model is trained that cycle (the split needs some)."""


def _by_model_energy(recs: list) -> list:
    """``recs`` lowest predicted energy first: the oracle labels the model's best guesses first, so the
    database (and an interrupted run) holds the candidates that matter most."""
    return sorted(recs, key=lambda a: (a.info.get("model_energy", float("inf")), a.info["uid"]))


def _recommend(tasks, results, system: str, limit: int, dedup, prefix: str, model: str):
    """The ``limit`` lowest-energy GA results of ``system`` that ``dedup`` has not seen, as Atoms with
    their provenance in ``info`` (uid ``{prefix}-{system}-NN``); returns (atoms list, duplicates skipped)."""
    found = sorted((x for t, res in zip(tasks, results) if t.system == system for x in res),
                   key=lambda x: x["energy_per_atom"])
    picked, duplicates = [], 0
    for cand in found:
        if len(picked) >= limit:
            break
        if dedup.add(cand["atoms"]) is not None:
            duplicates += 1
            continue
        atoms = cand["atoms"].copy()
        atoms.info = {"uid": f"{prefix}-{system}-{len(picked):02d}", "system": system, "model": model,
                      "model_energy": cand["energy_per_atom"], "spacegroup": cand["spacegroup"]}
        picked.append(atoms)
    return picked, duplicates


@dataclass
class CampaignResult:
    """What a finished campaign produced (energies eV/atom)."""

    out_dir: str
    composition: str
    cycles: list = field(default_factory=list)  # per-cycle summaries
    converged_cycle: int | None = None
    final_model: str = ""
    ranking: dict = field(default_factory=dict)  # system -> [{uid, oracle_energy, model_energy, spacegroup, ...}]
    oracle_calls: int = 0
    wall_seconds: float = 0.0


class _Log:
    def __init__(self, out_dir: str, echo):
        self.path = os.path.join(out_dir, "campaign.log")
        self.echo = echo

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if self.echo:
            self.echo(line)
        with open(self.path, "a") as fh:
            fh.write(f"{stamp} {line}\n")


def resolve_composition(cfg: CampaignConfig) -> str:
    """The cell's composition: the config's, or the composition model's top-ranked stoichiometry of
    ``elements`` scaled to at most ``max_atoms`` atoms."""
    from xtalnn.search.formula import parse_composition

    if cfg.composition:
        return parse_composition(cfg.composition, cfg.formula_units).formula
    from xtalnn.enthalpy import CompositionModel
    from xtalnn.enthalpy.rank import rank_compositions

    model = CompositionModel.load(cfg.composition_model)
    best = rank_compositions(model, cfg.elements, max_atoms=cfg.max_atoms)[0]
    comp = parse_composition(best.formula)
    units = max(1, cfg.max_atoms // comp.n_atoms)
    return parse_composition(best.formula, units).formula


def _check_identity(out_dir: str, cfg: CampaignConfig) -> str:
    """Bind ``out_dir`` to ``cfg`` (:func:`~xtalnn.search.config.bind_identity`); returns the composition."""
    path = os.path.join(out_dir, "campaign.json")
    composition = None if os.path.exists(path) else resolve_composition(cfg)
    return bind_identity(path, cfg.identity(), "campaign", {"composition": composition},
                         defaults=CampaignConfig().identity())["composition"]


class Campaign:
    """One campaign in ``out_dir`` (see the module docstring); :meth:`run` does everything."""

    def __init__(self, cfg: CampaignConfig, out_dir: str, executor, echo=print):
        os.makedirs(out_dir, exist_ok=True)
        self.cfg = cfg
        self.out = os.path.abspath(out_dir)
        self.executor = executor
        self.log = _Log(self.out, echo)
        self.composition = _check_identity(self.out, cfg)
        from xtalnn.search.formula import parse_composition

        self.elements = parse_composition(self.composition).elements
        self.store = LabelStore(cfg.database, self.out)
        self.dedup = Deduplicator(key=space_group_number)
        self._dedup_ids: set[int] = set()
        self.models: dict[int, dict] = {}  # cycle -> done.json of finished models
        self.started = time.perf_counter()
        self.summaries: dict[int, dict] = {}

    # ------------------------------------------------------------------ paths
    def cycle_dir(self, c: int) -> str:
        return os.path.join(self.out, "cycles", f"{c:03d}")

    def model_dir(self, c: int) -> str:
        return os.path.join(self.out, "models", f"cycle-{c:03d}")

    def fitness_for(self, c: int) -> tuple[str, str]:
        """(calculator spec, name) of the GA fitness of cycle ``c``: the newest model finished before it
        starts, fixed by the cycle number (``overlap``: model c − 2, else c − 1)."""
        last = c - 1 - (1 if self.cfg.overlap else 0)
        usable = [k for k, d in self.models.items() if k <= last and not d.get("skipped")]
        if not usable:
            return self.start_fitness()
        k = max(usable)
        return T.model_path(self.model_dir(k)), f"cycle-{k:03d}"

    def start_fitness(self) -> tuple[str, str]:
        """(calculator spec, name) of the GA fitness before the first potential (``[ga] start_fitness``):
        ``("empirical", "empirical")`` or ``(spec, "start-" + spec)``."""
        spec = self.cfg.ga.start_fitness
        return (spec, "empirical") if spec == "empirical" else (spec, f"start-{os.path.basename(spec)}")

    # ------------------------------------------------------------------ GA
    def _refresh_dedup(self) -> None:
        for row in self.store.rows(frame=0):
            if row.id not in self._dedup_ids:
                self._dedup_ids.add(row.id)
                self.dedup.add(row.toatoms())

    def ga_tasks(self, fitness: str, folder: str, seed: int, seeds: int, generations: int, top_k: int) -> list:
        """One :class:`GATask` per system and seed (seeds ``seed + k``) with the ``[ga]`` settings; the
        empirical fitness relaxes only with ``empirical_relax``."""
        g = self.cfg.ga
        base = GASettings.of(g)
        base.relax = g.relax and (fitness != "empirical" or g.empirical_relax)
        return [GATask(self.composition, fitness, dataclasses.replace(
                    base, systems=[s], seeds_per_system=1, seed=seed + k, generations=generations, top_k=top_k),
                    os.path.join(folder, "ga", f"{s}-s{k}"))
                for s in g.systems for k in range(seeds)]

    def recommend(self, c: int) -> list:
        """The cycle's recommendations (read back if already made)."""
        folder = self.cycle_dir(c)

        def make() -> list:
            os.makedirs(folder, exist_ok=True)
            spec, name = self.fitness_for(c)
            g = self.cfg.ga
            tasks = self.ga_tasks(spec, folder, self.cfg.seed + 1000 * c, g.seeds_per_system, g.generations,
                                  g.recommendations)
            t0 = time.perf_counter()
            results = self._gather([(run_ga, t) for t in tasks])
            self._refresh_dedup()
            recs, duplicates = [], 0
            for s in g.systems:
                picked, dropped = _recommend(tasks, results, s, g.recommendations, self.dedup, f"c{c:03d}", name)
                recs += picked
                duplicates += dropped
            write_json(os.path.join(folder, "ga.json"), {
                "fitness": name, "recommended": len(recs), "duplicates": duplicates,
                "seconds": time.perf_counter() - t0})
            self.log(f"cycle {c}: GA ({name}) recommended {len(recs)} new structures "
                     f"({duplicates} duplicates of labelled ones dropped) in {time.perf_counter() - t0:.0f} s")
            return recs

        return frames_once(os.path.join(folder, "recommendations.extxyz"), make)

    # ------------------------------------------------------------------ labelling
    def label_all(self, recs: list, cycle: int, origin: str, relax_steps: int | None = None,
                  cell: bool = False) -> dict:
        """Send every recommendation not yet in the database to the oracle; store each result as it comes.
        ``relax_steps`` (default: the oracle's) and ``cell``: see :func:`~xtalnn.campaign.labelling.label`."""
        o = self.cfg.oracle
        steps = o.relax_steps if relax_steps is None else relax_steps
        done = self.store.uids()
        todo = [a for a in recs if a.info["uid"] not in done]
        counts = {"submitted": len(todo), "ok": 0, "failed": 0}
        futures = {}
        for atoms in todo:
            clean = atoms.copy()
            clean.info = {}
            futures[self.executor.submit(label, clean, o.calculator, dict(o.kwargs), steps, o.fmax, cell,
                                         self.cfg.ga.pressure)] = atoms
        for fut in cf.as_completed(futures):
            atoms = futures[fut]
            try:
                result = fut.result()
            except cf.BrokenExecutor as err:
                raise RuntimeError(f"a worker process died ({err}); run the same command again to resume") from err
            except Exception as err:  # the job itself failed outside the oracle call
                result = {"status": "failed", "frames": [], "error": f"{type(err).__name__}: {err}",
                          "atoms": atoms, "started": time.time(), "finished": time.time(), "seconds": 0.0}
            meta = dict(cycle=cycle, system=atoms.info["system"], origin=origin, oracle=o.calculator,
                        model=atoms.info.get("model", "none"), model_energy=atoms.info.get("model_energy"),
                        min_loss=self.cfg.min_loss, pressure=self.cfg.ga.pressure)
            self.store.write(atoms.info["uid"], result, meta)
            counts[result["status"]] += 1
            if result["status"] != "ok":
                self.log(f"  {atoms.info['uid']}: oracle failed: {result['error'].splitlines()[0]}")
            elif result["error"]:
                self.log(f"  {atoms.info['uid']}: oracle relaxation stopped after {len(result['frames']) - 1} "
                         f"steps: {result['error'].splitlines()[0]}")
        return counts

    # ------------------------------------------------------------------ training
    def training_frames(self, c: int) -> list:
        """Labelled structures of cycles ≤ c for training, sorted by uid and frame: status ok, not well
        predicted, at most ``energy_window`` eV/atom above the lowest labelled energy, each with its loss
        weight ``info["weight"]`` = 1 / (1 + ΔE / ``low_energy_scale``)² (ΔE above the lowest, eV/atom;
        1 when the scale is 0)."""
        frames = []
        rows = [r for r in self.store.rows(status="ok") if r.get("origin") in ("ga", "relax") and r.cycle <= c]
        lowest = min((r.oracle_energy for r in rows), default=0.0)
        if self.cfg.energy_window > 0:
            rows = [r for r in rows if r.oracle_energy <= lowest + self.cfg.energy_window]
        wells = {r.uid for r in rows if r.frame == 0 and r.get("well_predicted", False)}
        rows = [r for r in rows if r.uid not in wells]
        rows.sort(key=lambda r: (r.uid, r.frame))
        scale = self.cfg.low_energy_scale
        for r in rows:
            atoms = r.toatoms()
            atoms.info = {"uid": r.uid, "frame": int(r.frame)}
            if scale > 0:
                atoms.info["weight"] = 1.0 / (1.0 + (r.oracle_energy - lowest) / scale) ** 2
            frames.append(atoms)
        return frames

    def submit_training(self, c: int):
        folder = self.model_dir(c)
        if T.is_done(folder):
            return None
        os.makedirs(folder, exist_ok=True)
        data = os.path.join(folder, "train.extxyz")
        if not os.path.exists(data):
            frames = self.training_frames(c)
            if len(frames) < MIN_TRAINING_STRUCTURES:
                write_json(os.path.join(folder, "done.json"), {
                    "skipped": f"only {len(frames)} training structures (< {MIN_TRAINING_STRUCTURES})",
                    "n_structures": len(frames), "val_rmse": float("nan")})
                return None
            write_frames(data, frames)
        previous = [k for k, d in self.models.items() if k < c and not d.get("skipped")]
        prev = self.model_dir(max(previous)) if previous and self.cfg.warm_start else ""
        settings = {"threads": 1, **self.cfg.training}
        return self.executor.submit(T.run_training, T.TrainTask(settings, self.elements, data, folder, prev))

    def finish_training(self, c: int, future) -> dict:
        if future is not None:
            try:
                future.result()
            except cf.BrokenExecutor as err:
                raise RuntimeError(f"the training worker died ({err}); run the same command again to resume") from err
        done = T.read_done(self.model_dir(c))
        self.models[c] = done
        return done

    def _complete(self, c: int, future, result: CampaignResult) -> int | None:
        """Wait for the model of cycle ``c``, record and log the cycle's summary; ``c`` if it converged."""
        done = self.finish_training(c, future)
        summary = self.cycle_summary(c, {})
        result.cycles.append(summary)
        self.log(self.progress_line(summary) + "; " + self.time_left(c, len(result.cycles)))
        return c if self.converged(c, done, summary["candidate_rmse"]) else None

    def time_left(self, c: int, cycles_this_run: int) -> str:
        """``elapsed 12:04, ~03:01 per cycle, ≤ 24:08 to max_cycles``: this run's wall time, its mean time per
        cycle, and the time the remaining cycles would take at that pace (convergence ends sooner; the final
        GA and relabelling come after)."""
        from tqdm import tqdm

        elapsed = time.perf_counter() - self.started
        per_cycle = elapsed / max(cycles_this_run, 1)
        left = max(self.cfg.max_cycles - c, 0) * per_cycle
        return (f"elapsed {tqdm.format_interval(elapsed)}, ~{tqdm.format_interval(per_cycle)} per cycle, "
                f"≤ {tqdm.format_interval(left)} to max_cycles {self.cfg.max_cycles} unless it converges sooner")

    def newest_candidate_error(self) -> dict:
        """:func:`~xtalnn.campaign.quality.candidate_error` of the newest labelled cycle's recommendations,
        with the energies the model that proposed them predicted."""
        rows = [r for r in self.store.rows(frame=0, status="ok", origin="ga") if T.is_potential(r.get("model"))]
        newest = max((r.cycle for r in rows), default=None)
        return candidate_error([r for r in rows if r.cycle == newest], self.cfg.convergence.candidates)

    def converged(self, c: int, done: dict, candidate_rmse: float) -> bool:
        v = self.cfg.convergence
        if done.get("skipped") or done["n_structures"] < v.min_structures or not done["val_rmse"] <= v.max_val_rmse:
            return False
        if v.stall_cycles and not search_stalled(self.lowest_by_cycle(), c, v.stall_cycles, self.cfg.min_loss):
            return False
        return v.criterion == "validation" or candidate_rmse <= v.max_candidate_rmse

    def lowest_by_cycle(self) -> dict[int, float]:
        """The lowest oracle energy (eV/atom) labelled in each cycle (GA structures and their relaxation frames)."""
        out: dict[int, float] = {}
        for r in self.store.rows(status="ok"):
            if r.get("origin") in ("ga", "relax") and r.cycle > 0:
                out[r.cycle] = min(out.get(r.cycle, float("inf")), r.oracle_energy)
        return out

    # ------------------------------------------------------------------ progress
    def cycle_summary(self, c: int, counts: dict) -> dict:
        best: dict[str, tuple[float, int]] = {}
        from xtalnn.search.dedup import space_group

        for r in self.store.rows(status="ok", frame=0):
            if r.cycle <= c and r.get("origin") == "ga":
                e = r.oracle_energy
                if r.system not in best or e < best[r.system][0]:
                    best[r.system] = (e, r.id)
        best_sg = {}
        for s, (e, rid) in best.items():
            best_sg[s] = {"energy": e, "spacegroup": space_group(self.store.db.get(id=rid).toatoms())[0]}
        done = self.models.get(c, {})
        ga = _load_json(os.path.join(self.cycle_dir(c), "ga.json"))
        n_labelled = sum(1 for r in self.store.rows(frame=0) if r.cycle == c and r.get("origin") == "ga")
        n_failed = sum(1 for r in self.store.rows(frame=0, status="failed") if r.cycle == c)
        n_well = sum(1 for r in self.store.rows(frame=0, status="ok") if r.cycle == c
                     and r.get("well_predicted", False))
        summary = {"cycle": c, "fitness": ga.get("fitness", "?"), "labelled": n_labelled, "failed": n_failed,
                   "duplicates": ga.get("duplicates", 0), "well_predicted": n_well,
                   "training_set": done.get("n_structures", 0), "val_rmse": done.get("val_rmse", float("nan")),
                   "skipped": done.get("skipped", ""), "best": best_sg,
                   "candidate_rmse": self.newest_candidate_error()["rmse"],
                   "oracle_calls_total": self.store.count(frame=0)}
        write_json(os.path.join(self.cycle_dir(c), "summary.json"), summary)
        return summary

    def progress_line(self, s: dict) -> str:
        model = (f"val RMSE {s['val_rmse']:.4f} eV/atom" if not s["skipped"] else f"no model ({s['skipped']})")
        model += f", newest candidates' RMSE {s['candidate_rmse']:.4f} eV/atom"
        best = ", ".join(f"{k} {v['energy']:.4f} (sg {v['spacegroup']})" for k, v in sorted(
            s["best"].items(), key=lambda kv: kv[1]["energy"]))
        return (f"cycle {s['cycle']:3d}: labelled {s['labelled']} (failed {s['failed']}, "
                f"duplicates dropped {s['duplicates']}, well predicted {s['well_predicted']}), "
                f"training set {s['training_set']}, {model}; best eV/atom: {best or '-'}; "
                f"oracle calls so far {s['oracle_calls_total']}")

    # ------------------------------------------------------------------ final
    def final(self, spec: str, name: str) -> dict:
        g = self.cfg.ga
        folder = os.path.join(self.out, "final")
        os.makedirs(folder, exist_ok=True)

        def make() -> list:
            tasks = self.ga_tasks(spec, folder, self.cfg.seed + 100_000, g.final_seeds, g.final_generations,
                                  g.final_candidates)
            t0 = time.perf_counter()
            self.log(f"final GA with {name}: {len(tasks)} runs of {g.final_generations} generations")
            results = self._gather([(run_ga, t) for t in tasks])
            recs = []
            for s in g.systems:
                recs += _recommend(tasks, results, s, g.final_relabel, Deduplicator(key=space_group_number), "final", name)[0]
            self.log(f"final GA: {len(recs)} candidates in {time.perf_counter() - t0:.0f} s; relabelling")
            return recs

        candidates = frames_once(os.path.join(folder, "candidates.extxyz"), make)
        counts = self.label_all(_by_model_energy(candidates), 0, "final")
        if self.cfg.oracle.final_relax_steps > 0 and self.cfg.oracle.final_relax_best > 0:
            self.relax_best(folder)
        from xtalnn.campaign.report import ranking

        rank = ranking(self.store, self.cfg.ga.systems)
        write_json(os.path.join(folder, "ranking.json"), rank)
        return {"relabelled": counts, "ranking": rank}

    def relax_best(self, folder: str) -> dict:
        """Relax the ``final_relax_best`` lowest distinct relabelled final candidates (oracle single-point
        energy, all systems) with the oracle, cell included; stored as uid ``<uid>-relaxed``, origin
        ``final_relax``, one row per step. The choice is written once to ``final/relax.extxyz``."""
        o = self.cfg.oracle

        def make() -> list:
            rows = sorted(self.store.rows(origin="final", frame=0, status="ok"), key=lambda r: (r.oracle_energy, r.uid))
            dedup, recs = Deduplicator(key=space_group_number), []
            for r in rows:
                if len(recs) >= o.final_relax_best:
                    break
                atoms = r.toatoms()
                if dedup.add(atoms) is not None:
                    continue
                atoms.calc = None
                atoms.info = {"uid": f"{r.uid}-relaxed", "system": r.system, "model": r.get("model", "none"),
                              "model_energy": r.get("model_energy", float("nan"))}
                recs.append(atoms)
            self.log(f"final: the {len(recs)} lowest distinct candidates relaxed by the oracle, cell included "
                     f"(at most {o.final_relax_steps} steps)")
            return recs

        recs = frames_once(os.path.join(folder, "relax.extxyz"), make)
        return self.label_all(recs, 0, "final_relax", relax_steps=o.final_relax_steps, cell=True)

    # ------------------------------------------------------------------ jobs
    def _gather(self, jobs: list) -> list:
        futures = [self.executor.submit(fn, arg) for fn, arg in jobs]
        try:
            return [f.result() for f in futures]
        except cf.BrokenExecutor as err:
            raise RuntimeError(f"a worker process died ({err}); run the same command again to resume") from err

    # ------------------------------------------------------------------ run
    def run(self) -> CampaignResult:
        cfg = self.cfg
        t0 = time.perf_counter()
        self.log(f"campaign {self.composition} in {self.out}: oracle {cfg.oracle.calculator}, database "
                 f"{self.store.display}, executor {getattr(self.executor, 'description', '?')}")
        result = CampaignResult(self.out, self.composition)
        for c in range(1, cfg.max_cycles + 1):  # finished models (resume)
            if T.is_done(self.model_dir(c)):
                self.models[c] = T.read_done(self.model_dir(c))
        pending = None  # (cycle, future)
        converged = None
        for c in sorted(self.models):
            summary = _load_json(os.path.join(self.cycle_dir(c), "summary.json"))
            if self.converged(c, self.models[c], summary.get("candidate_rmse", float("nan"))):
                converged = c
                break
        c = 0
        while converged is None and c < cfg.max_cycles:
            c += 1
            recs = self.recommend(c)
            counts = self.label_all(_by_model_energy(recs), c, "ga", cell=cfg.oracle.relax_cell)
            if counts["submitted"]:
                self.log(f"cycle {c}: labelled {counts['ok']} ok, {counts['failed']} failed")
            if pending is not None:
                converged, pending = self._complete(*pending, result), None
                if converged is not None:
                    break
            pending = (c, self.submit_training(c))
            if not cfg.overlap:
                converged, pending = self._complete(*pending, result), None
        if pending is not None:
            converged = self._complete(*pending, result)
        usable = [k for k, d in self.models.items() if not d.get("skipped")]
        if converged is not None:
            self.log(f"converged at cycle {converged}: training set {self.models[converged]['n_structures']}, "
                     f"validation RMSE {self.models[converged]['val_rmse']:.4f} eV/atom, newest candidates' "
                     f"RMSE {self.newest_candidate_error()['rmse']:.4f} eV/atom")
            final_cycle = converged
        elif usable:
            final_cycle = max(usable)
            self.log(f"not converged after {cfg.max_cycles} cycles; the final GA uses model {final_cycle}")
        else:
            final_cycle = None
            self.log(f"no potential could be trained; the final GA uses the start fitness ({cfg.ga.start_fitness})")
        if final_cycle is not None:
            spec, name = T.model_path(self.model_dir(final_cycle)), f"cycle-{final_cycle:03d}"
        else:
            spec, name = self.start_fitness()
        write_json(os.path.join(self.out, "state.json"), {
            "converged_cycle": converged, "final_model": name, "cycles_run": sorted(self.models)})
        final = self.final(spec, name)
        result.converged_cycle = converged
        result.final_model = name
        result.ranking = final["ranking"]
        result.oracle_calls = self.store.count(frame=0)
        result.wall_seconds = time.perf_counter() - t0
        state = {"converged_cycle": converged, "final_model": name, "cycles_run": sorted(self.models),
                 "oracle_calls": result.oracle_calls, "finished": True}
        write_json(os.path.join(self.out, "state.json"), state)
        best = []
        for s, rows in sorted(result.ranking.items()):
            if rows:
                best.append((rows[0]["oracle_energy"], s, rows[0]["spacegroup"]))
        best.sort()
        self.log("final ranking (oracle eV/atom): " + ", ".join(f"{s} {e:.4f} (sg {g})" for e, s, g in best))
        self.log(f"{result.oracle_calls} oracle calls; wall time this run {result.wall_seconds:.0f} s")
        return result


def search_stalled(lowest_by_cycle: dict[int, float], c: int, cycles: int, tol: float) -> bool:
    """True when the lowest energy labelled up to cycle ``c`` is at most ``tol`` (eV/atom) below the lowest up
    to cycle ``c − cycles``: the search has stopped finding lower structures (a model can be right on its own
    candidates while the GA has not yet reached the low-energy basin)."""
    if c - cycles < 1:
        return False
    upto = lambda k: min((e for cyc, e in lowest_by_cycle.items() if cyc <= k), default=float("inf"))  # noqa: E731
    return upto(c - cycles) - upto(c) <= tol


def _load_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return json.load(fh)


def run(cfg: CampaignConfig, out_dir: str, dask: str | None = None, workers: int | None = None, echo=print,
        executor=None) -> CampaignResult:
    """Run (or resume) a campaign in ``out_dir`` and write its report. ``dask``: ``"local"`` (a
    LocalCluster on 127.0.0.1) or a scheduler address; default: the config's executor."""
    from xtalnn.campaign.executor import make_executor
    from xtalnn.campaign.report import write_report

    own = executor is None
    ex = make_executor(cfg.executor, dask=dask, workers=workers, log=echo) if own else executor
    try:
        result = Campaign(cfg, out_dir, ex, echo=echo).run()
    finally:
        if own:
            ex.close()
    write_report(out_dir)
    return result


__all__ = ["Campaign", "CampaignResult", "run"]
