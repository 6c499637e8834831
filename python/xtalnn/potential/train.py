"""Training a :class:`~xtalnn.potential.model.Potential` on energies (and forces).

The run, step by step: :func:`prepare` reads, splits and featurises the data; :func:`build_model` (or
:func:`warm_start_model`, or a checkpoint) gives the starting model; each epoch (:func:`_train_epoch`)
minimises the loss of :mod:`.loss` and is recorded (:func:`_record_epoch`: history, best state and a
checkpoint of :mod:`.checkpoint`, atomically, so Ctrl-C or ``kill`` never loses the best model and
``resume=True`` continues where the run stopped); :func:`_finish` exports the best state as the model
file (:mod:`.modelfile`) with its test metrics and plots.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from xtalnn.potential import data as D
from xtalnn.potential.checkpoint import (
    Interrupts,
    load_checkpoint,
    output_paths,
    save_checkpoint,
    write_history,
)
from xtalnn.potential.config import TrainConfig
from xtalnn.potential.evaluate import evaluate
from xtalnn.potential.loss import cache_descriptors, cache_jacobians, graphs_loss, mark_force_structures
from xtalnn.potential.model import Potential, upgrade_state_dict
from xtalnn.potential.optim import make_optimizer, make_scheduler


@dataclass
class TrainResult:
    model: Potential
    metadata: dict
    history: list
    test_metrics: dict
    paths: dict
    interrupted: bool = False
    stopped_early: bool = False


def make_descriptor(config: TrainConfig):
    """``(descriptor module, its constructor settings for the metadata)``."""
    from xtalnn.descriptors import ACSF, Chebyshev

    if config.descriptor_file:
        from xtalnn.descriptors.parameter_files import read_parameter_files

        descriptor = read_parameter_files(config.descriptor_file, config.elements, config.descriptor_file_unit)
        settings = dict(kind=descriptor.op_name, source=[str(p) for p in config.descriptor_file],
                        cutoff_function=descriptor.cutoff_function)
        if isinstance(descriptor, ACSF):
            settings.update(cutoff=descriptor.cutoff, g2=descriptor.g2.tolist(), g4=descriptor.g4.tolist(),
                            g5=descriptor.g5.tolist())
        else:
            settings.update(radial_cutoff=descriptor.radial_cutoff, radial_order=descriptor.radial_order,
                            angular_cutoff=descriptor.angular_cutoff, angular_order=descriptor.angular_order,
                            type_spins=descriptor.type_spins)
    elif config.descriptor == "acsf":
        settings = dict(kind="acsf", cutoff=config.cutoff, n_radial=config.acsf_radial,
                        n_angular_eta=config.acsf_angular_eta, angular=config.acsf_angular)
        descriptor = ACSF.default(config.elements, config.cutoff, n_radial=config.acsf_radial,
                                  n_angular_eta=config.acsf_angular_eta, angular=config.acsf_angular)
        settings.update(g2=descriptor.g2.tolist(), g4=descriptor.g4.tolist(), g5=descriptor.g5.tolist(),
                        cutoff_function=descriptor.cutoff_function)
    else:
        angular = config.angular_cutoff or config.cutoff
        descriptor = Chebyshev(config.elements, config.cutoff, config.radial_order, angular, config.angular_order)
        settings = dict(kind="chebyshev", radial_cutoff=config.cutoff, radial_order=config.radial_order,
                        angular_cutoff=angular, angular_order=config.angular_order,
                        type_spins=descriptor.type_spins, cutoff_function=descriptor.cutoff_function)
    settings["n_features"] = descriptor.n_features
    settings["feature_labels"] = descriptor.feature_labels()
    return descriptor, settings


@dataclass
class Prepared:
    """Data ready for training: graphs per split, reference energies, descriptor settings."""

    config: TrainConfig
    descriptor: object
    descriptor_settings: dict
    structures: list
    graphs: list
    split: dict
    reference_energies: np.ndarray
    fingerprint: str
    sources: list


def prepare(config: TrainConfig, data_paths, split=None, reference_energies=None) -> Prepared:
    """Read and check the structures, split them, fit reference energies (or take ``reference_energies``,
    eV per element: those of a model the run starts from), build all graphs (targets E − Σ e_ref)."""
    config.validate()
    structures = D.read_training_structures(data_paths, config.elements, config.limit)
    if split is None:
        # frames that share a uid (an oracle relaxation: xtalnn campaign) stay in one split
        uids = [a.info.get("uid") for a in structures]
        groups = uids if all(u is not None for u in uids) else None
        split_seed = config.seed if config.split_seed is None else config.split_seed
        train_idx, val_idx, test_idx = D.split_indices(len(structures), config.split, split_seed, groups)
        split = {"train": train_idx.tolist(), "val": val_idx.tolist(), "test": test_idx.tolist()}
    train_structures = [structures[i] for i in split["train"]]
    reference = D.fit_reference_energies(train_structures, config.elements) if reference_energies is None \
        else np.asarray(reference_energies, dtype=np.float64)
    descriptor, settings = make_descriptor(config)
    graphs = [D.build_graph(a, config.elements, descriptor.cutoff, reference, name=D.source_of(a, f"#{k}"))
              for k, a in enumerate(structures)]
    return Prepared(config, descriptor, settings, structures, graphs, split, reference,
                    D.fingerprint(train_structures), [str(p) for p in data_paths])


def build_model(prepared: Prepared) -> Potential:
    """A fresh model whose scaling and range come from the training split (seeded weights)."""
    config = prepared.config
    train_graphs = [prepared.graphs[i] for i in prepared.split["train"]]
    descriptor = prepared.descriptor
    mean, std, lo, hi = D.descriptor_statistics(
        lambda s, e, v, n: descriptor(s, e, v, n), train_graphs, len(config.elements))
    torch.manual_seed(config.seed)
    return Potential(config.elements, descriptor.op_name, descriptor.spec(), descriptor.cutoff, config.hidden,
                     config.activation, shift=mean, scale=std, reference_energies=prepared.reference_energies,
                     descriptor_min=lo, descriptor_max=hi)


def previous_model(previous) -> tuple[list, dict]:
    """``(elements, state dict)`` of a model file or of a checkpoint's best state."""
    previous = Path(previous)
    if not previous.is_file():
        raise FileNotFoundError(f"{previous}: no model file or checkpoint to start from")
    if previous.suffix == ".ckpt":
        ckpt = load_checkpoint(previous)
        return list(ckpt["model_args"]["elements"]), upgrade_state_dict(ckpt["best_state"])
    from xtalnn.potential.modelfile import load_model

    module, _ = load_model(previous)
    return list(module.elements), upgrade_state_dict(module.state_dict())


def warm_start_model(prepared: Prepared, previous, loaded: tuple[list, dict] | None = None) -> Potential:
    """The model in ``previous`` (a model file or a training checkpoint) as the start of a new run:
    its weights, scaling and reference energies unchanged (it predicts what it predicted before),
    its descriptor range widened to cover the new training split. ``prepared`` must be made with the
    previous model's reference energies (:func:`prepare`), so the targets the network learns are
    relative to the reference energies the exported model adds back. Elements, descriptor and network
    shape must match ``prepared.config``; a mismatch is a ValueError naming it."""
    elements, state = loaded if loaded is not None else previous_model(previous)  # read once by train()
    if not np.allclose(state["reference_energies"].numpy(), prepared.reference_energies):
        raise ValueError(f"{previous}: prepare() the data with this model's reference energies "
                         "(the training targets are relative to them)")
    fresh = build_model(prepared)
    if elements != list(fresh.elements):
        raise ValueError(f"{previous}: elements {elements} differ from this run's {list(fresh.elements)}")
    for key, value in fresh.state_dict().items():
        if key not in state or tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(f"{previous}: {key} has shape {tuple(state[key].shape) if key in state else None}, "
                             f"this run's network needs {tuple(value.shape)} (same descriptor, hidden sizes "
                             "and activation required)")
    if not torch.equal(state["spec"], fresh.spec):
        raise ValueError(f"{previous}: its descriptor parameters differ from this run's")
    state = {k: v.clone() for k, v in state.items()}
    state["descriptor_min"] = torch.minimum(state["descriptor_min"], fresh.descriptor_min)
    state["descriptor_max"] = torch.maximum(state["descriptor_max"], fresh.descriptor_max)
    fresh.load_state_dict(state)
    return fresh


# -- the run -----------------------------------------------------------------------------------

@dataclass
class _Run:
    """The state of a training run that a checkpoint saves (weights, optimiser, history, best state)."""

    config: TrainConfig
    prepared: Prepared
    model: Potential
    optimizer: torch.optim.Optimizer
    scheduler: object
    init_from: str | None = None
    history: list = field(default_factory=list)
    best_state: dict = field(default_factory=dict)
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    start_epoch: int = 0
    committee: dict | None = None  # a committee member: the committee's config, split and warm start (resume)

    def split(self, name: str) -> list:
        return [self.prepared.graphs[i] for i in self.prepared.split[name]]

    def state(self, epoch: int) -> dict:
        """What :func:`~xtalnn.potential.checkpoint.save_checkpoint` writes after ``epoch``."""
        p = self.prepared
        return {"config": asdict(self.config), "model_args": self.model.init_args(),
                "last_state": self.model.state_dict(), "best_state": self.best_state,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "epoch": epoch, "history": self.history, "best_loss": self.best_loss,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs, "split": p.split,
                "fingerprint": p.fingerprint, "sources": p.sources, "descriptor": p.descriptor_settings,
                "init_from": self.init_from, "committee": self.committee}

    def finished(self) -> str | None:
        """Why a resumed run has nothing left to do (epoch limit, early stop, time budget), or None."""
        config = self.config
        if self.start_epoch >= config.epochs:
            return f"the epoch limit ({config.epochs}) is reached"
        if config.patience and self.bad_epochs >= config.patience:
            return f"it stopped early (no validation improvement for {self.bad_epochs} epochs)"
        if config.max_time and self.history and self.history[-1]["time_s"] >= 60 * config.max_time:
            return f"its time budget ({config.max_time:g} min) is spent"
        return None


def _open_run(config: TrainConfig, prepared: Prepared, checkpoint: dict | None, init_from, say,
              loaded: tuple[list, dict] | None = None, model: Potential | None = None) -> _Run:
    """The starting model, optimiser and bookkeeping: from ``checkpoint`` (resume), ``init_from`` (warm
    start), ``model`` (a committee member made by :func:`_train_committee`) or fresh."""
    if model is not None:
        init_from = None if init_from is None else str(init_from)
    elif checkpoint:
        model = Potential(**checkpoint["model_args"])
        model.load_state_dict(checkpoint["last_state"])
    elif init_from is not None:
        init_from = str(init_from)
        model = warm_start_model(prepared, init_from, loaded)
        say(f"starting from the weights of {init_from}")
    else:
        model = build_model(prepared)
    optimizer = make_optimizer(config, model.parameters())
    run = _Run(config, prepared, model, optimizer, make_scheduler(config, optimizer), init_from,
               best_state={k: v.clone() for k, v in model.state_dict().items()})
    if checkpoint:
        run.init_from = checkpoint.get("init_from")  # a resumed warm start keeps its origin in the metadata
        optimizer.load_state_dict(checkpoint["optimizer"])
        if run.scheduler is not None and checkpoint.get("scheduler") is not None:
            run.scheduler.load_state_dict(checkpoint["scheduler"])
        run.history, run.best_state = checkpoint["history"], checkpoint["best_state"]
        run.best_loss, run.best_epoch = checkpoint["best_loss"], checkpoint["best_epoch"]
        run.bad_epochs, run.start_epoch = checkpoint["bad_epochs"], checkpoint["epoch"]
        say(f"resuming after epoch {run.start_epoch} (best validation loss {run.best_loss:.5g} at epoch "
            f"{run.best_epoch})")
    return run


def _prepare_caches(run: _Run, train_graphs: list, say) -> None:
    """Choose the force structures and cache what does not change with the weights (:mod:`.loss`)."""
    config = run.config
    mark_force_structures(train_graphs, config.force_fraction if config.force_weight > 0 else 0.0, config.seed)
    cache_descriptors(run.model, train_graphs)
    if config.cache_derivatives and config.force_weight > 0:
        force_graphs = [g for g in train_graphs if g.use_forces and g.forces is not None]
        n_cached = cache_jacobians(run.model, force_graphs)
        megabytes = sum(g.J.numel() * 8 for g in force_graphs if g.J is not None) / 1e6
        say(f"cached ∂G/∂x of {n_cached} of {len(force_graphs)} force structures ({megabytes:.0f} MB); "
            "the others use the op's double backward")


def _train_epoch(run: _Run, train_graphs: list, batch_size: int, epoch: int, full_cache) -> tuple[float, float, float]:
    """One pass over the training split (shuffled per epoch unless full-batch); returns its energy
    RMSE (meV/atom), force RMSE (eV/Å, NaN without forces) and virial RMSE (σV/n, meV/atom; NaN
    without stresses in the loss)."""
    config, model, optimizer = run.config, run.model, run.optimizer
    w, w_s = config.force_weight, config.stress_weight
    model.train()
    n = len(train_graphs)
    order = np.random.default_rng([config.seed, epoch]).permutation(n) if batch_size < n else np.arange(n)
    se2 = sf2 = ss2 = 0.0
    ne = nf = ns = 0
    for k in range(0, n, batch_size):
        part = [train_graphs[i] for i in order[k:k + batch_size]]
        if config.optimizer == "lbfgs":
            def closure():
                optimizer.zero_grad()
                loss = graphs_loss(model, part, w, cache=full_cache, stress_weight=w_s)[0]
                loss.backward()
                return loss
            optimizer.step(closure)
            _, e2, n_e, f2, n_f, s2, n_s = graphs_loss(model, part, w, cache=full_cache, stress_weight=w_s)
        else:
            optimizer.zero_grad(set_to_none=True)
            loss, e2, n_e, f2, n_f, s2, n_s = graphs_loss(model, part, w, cache=full_cache, stress_weight=w_s)
            loss.backward()
            optimizer.step()
        se2 += float(e2)
        ne += n_e
        if f2 is not None:
            sf2 += float(f2)
            nf += n_f
        if s2 is not None:
            ss2 += float(s2)
            ns += n_s
    return (math.sqrt(se2 / max(ne, 1)) * 1000, (math.sqrt(sf2 / nf) if nf else float("nan")),
            (math.sqrt(ss2 / ns) * 1000 if ns else float("nan")))


def _epoch_loss(config: TrainConfig, e_rmse: float, f_rmse: float, s_rmse: float = float("nan")) -> float:
    """The early-stopping criterion: E RMSE (eV/atom) + w_F · F RMSE (eV/Å) where forces exist
    + w_S · virial RMSE (σV/n, eV/atom) where stresses enter the loss."""
    w, w_s = config.force_weight, config.stress_weight
    return e_rmse / 1000 + (w * f_rmse if w > 0 and np.isfinite(f_rmse) else 0.0) \
        + (w_s * s_rmse / 1000 if w_s > 0 and np.isfinite(s_rmse) else 0.0)


def _record_epoch(run: _Run, epoch: int, train_rmse: tuple, val_rmse: tuple, seconds: float, paths: dict) -> None:
    """History row, learning-rate schedule, best state and the checkpoint after ``epoch`` (1-based)."""
    config = run.config
    val_loss = _epoch_loss(config, *val_rmse)
    run.history.append({
        "epoch": epoch, "lr": run.optimizer.param_groups[0]["lr"], "train_loss": _epoch_loss(config, *train_rmse),
        "val_loss": val_loss, "train_energy_rmse_meV_per_atom": train_rmse[0],
        "val_energy_rmse_meV_per_atom": val_rmse[0], "train_force_rmse_eV_per_A": train_rmse[1],
        "val_force_rmse_eV_per_A": val_rmse[1], "time_s": seconds,
        **({"train_virial_rmse_meV_per_atom": train_rmse[2], "val_virial_rmse_meV_per_atom": val_rmse[2]}
           if config.stress_weight > 0 else {}),
    })
    if config.schedule == "plateau":
        run.scheduler.step(val_loss)
    elif run.scheduler is not None:
        run.scheduler.step()
    if val_loss < run.best_loss:
        run.best_loss, run.best_epoch, run.bad_epochs = val_loss, epoch, 0
        run.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    else:
        run.bad_epochs += 1
    save_checkpoint(run.state(epoch), paths["checkpoint"])
    write_history(run.history, paths["history"])


def _clock(seconds: float) -> str:
    """MM:SS or H:MM:SS (tqdm's format)."""
    from tqdm import tqdm

    return tqdm.format_interval(max(seconds, 0.0))


class _Budget:
    """How far a run is and what is left: against the epoch limit or the time budget
    (``max_time`` minutes of training, resumed runs included), whichever ends first. The time per
    epoch is the mean of this session's epochs."""

    def __init__(self, config: TrainConfig, start_epoch: int, elapsed0: float):
        self.epochs, self.start_epoch, self.elapsed0 = config.epochs, start_epoch, elapsed0
        self.seconds = 60.0 * config.max_time if config.max_time else math.inf
        self.patience = config.patience

    def describe(self) -> str:
        budget = f"a time budget of {self.seconds / 60:g} min (--max-time MIN changes it)" \
            if math.isfinite(self.seconds) else "no time budget"
        stop = f", early stop after {self.patience} epochs without validation improvement" if self.patience else ""
        return f"training: at most {self.epochs} epochs or {budget}, whichever ends first{stop}"

    def fraction(self, epoch: int, elapsed: float) -> float:
        return min(1.0, max(epoch / self.epochs, elapsed / self.seconds))

    def left(self, epoch: int, elapsed: float) -> tuple[float, str]:
        """Seconds left (an estimate; NaN before the first epoch without a time budget) and what ends the run."""
        done = epoch - self.start_epoch
        per_epoch = (elapsed - self.elapsed0) / done if done > 0 else math.nan
        by_epochs = (self.epochs - epoch) * per_epoch
        by_time = self.seconds - elapsed  # the run stops at the first epoch that ends past the budget
        if by_time <= 0:
            by_time = 0.0
        elif math.isfinite(by_time) and per_epoch > 0:
            by_time = math.ceil(by_time / per_epoch) * per_epoch
        if math.isnan(by_epochs) or by_time < by_epochs:
            return (by_time, "budget") if math.isfinite(by_time) else (math.nan, "epochs")
        return by_epochs, "epochs"

    def status(self, epoch: int, elapsed: float) -> str:
        left, what = self.left(epoch, elapsed)
        budget = f" of {self.seconds / 60:g} min" if math.isfinite(self.seconds) else ""
        left = "?" if math.isnan(left) else f"~{_clock(left)}"
        return f"epoch {epoch}/{self.epochs}  {_clock(elapsed)}{budget} elapsed, {left} left ({what})"


def _loop(run: _Run, paths: dict, progress: bool, say) -> tuple[bool, bool]:
    """Epochs until the limit, early stopping, the time limit or an interrupt; returns
    ``(interrupted, stopped_early)``."""
    from tqdm import tqdm

    config = run.config
    done = run.finished()
    if done:
        say(f"nothing to continue: {done}")
        return False, 0 < config.patience <= run.bad_epochs
    train_graphs, val_graphs = run.split("train"), run.split("val")
    _prepare_caches(run, train_graphs, say)
    n = len(train_graphs)
    batch_size = n if config.batch_size == "full" else int(config.batch_size)
    full_cache = {} if batch_size >= n else None
    t0 = time.perf_counter() - (run.history[-1]["time_s"] if run.history else 0.0)
    budget = _Budget(config, run.start_epoch, time.perf_counter() - t0)
    say(budget.describe())
    bar = tqdm(total=1000, disable=not progress, dynamic_ncols=True, desc=budget.status(run.start_epoch, budget.elapsed0),
               bar_format="train {percentage:3.0f}%|{bar}| {desc}")  # the share of the epochs or the budget
    try:
        with Interrupts() as interrupts:
            for epoch in range(run.start_epoch, config.epochs):
                train_rmse = _train_epoch(run, train_graphs, batch_size, epoch, full_cache)
                run.model.eval()
                val_rmse = train_rmse
                if val_graphs:
                    m = evaluate(run.model, val_graphs, forces=config.force_weight > 0,
                                 stress=config.stress_weight > 0).metrics()
                    e_rmse = m.get("weighted_energy_rmse_meV_per_atom", m["energy_rmse_meV_per_atom"])
                    val_rmse = (e_rmse, m["force_rmse_eV_per_A"], m.get("virial_rmse_meV_per_atom", float("nan")))
                with interrupts.critical():
                    _record_epoch(run, epoch + 1, train_rmse, val_rmse, time.perf_counter() - t0, paths)
                elapsed = time.perf_counter() - t0
                bar.n = round(1000 * budget.fraction(epoch + 1, elapsed))
                bar.set_description_str(f"{budget.status(epoch + 1, elapsed)} | E {train_rmse[0]:.1f}/{val_rmse[0]:.1f} "
                                        f"meV/atom  F {train_rmse[1]:.3f}/{val_rmse[1]:.3f} eV/Å  lr "
                                        f"{run.history[-1]['lr']:.1e}  best@{run.best_epoch}")
                if config.patience and run.bad_epochs >= config.patience:
                    bar.close()
                    say(f"early stop: no validation improvement for {run.bad_epochs} epochs")
                    return False, True
                if config.max_time and time.perf_counter() - t0 > 60 * config.max_time:
                    bar.close()
                    say(f"time limit of {config.max_time} min reached")
                    break
    except KeyboardInterrupt:
        say("interrupted: exporting the best model so far; `--resume` continues")
        return True, False
    finally:
        bar.close()
    return False, False


def _finish(run: _Run, paths: dict, interrupted: bool, extra: dict | None = None) -> tuple[dict, dict]:
    """Export the best state as the model file with its metadata (and ``extra`` metadata), test metrics
    and plots; returns ``(metadata, test metrics)``."""
    from xtalnn.potential import plots
    from xtalnn.potential.modelfile import save_model

    model, prepared, history = run.model, run.prepared, run.history
    model.load_state_dict(run.best_state)
    model.eval()
    test_graphs = run.split("test")
    test_metrics: dict = {}
    if test_graphs and not interrupted:
        ev = evaluate(model, test_graphs, forces=True, stress=True)
        test_metrics = ev.metrics()
        plots.parity(*ev.relative_energies(), ev.forces_ref, ev.forces_pred,
                     paths["parity"], title=f"test split ({len(test_graphs)} structures)")
    if history:
        plots.learning_curve(history, paths["learning_curve"])
    train_time = history[-1]["time_s"] if history else 0.0
    split = {f"n_{name}": len(prepared.split[name]) for name in ("train", "val", "test")}
    metadata = save_model(
        model, paths["model"],
        descriptor=prepared.descriptor_settings,
        training_data={"fingerprint": prepared.fingerprint, **split, "sources": prepared.sources,
                       "init_from": str(run.init_from) if run.init_from is not None else None},
        config=asdict(run.config),
        metrics={"test": test_metrics, "best_epoch": run.best_epoch, "epochs_run": len(history),
                 "best_val_loss": run.best_loss, "train_time_s": train_time},
        **(extra or {}),
    )
    if test_metrics:
        from xtalnn.io.atomic import write_text

        write_text(paths["metrics"], json.dumps({"test": test_metrics, "best_epoch": run.best_epoch,
                                                 "epochs_run": len(history), "train_time_s": train_time}, indent=2))
    return metadata, test_metrics


def train(config: TrainConfig, data_paths, output, resume: bool = False, progress: bool = True,
          epochs: int | None = None, log=None, max_time: float | None = None, init_from=None) -> TrainResult:
    """Train, write ``output`` (the model file) and its side files; see
    :func:`~xtalnn.potential.checkpoint.output_paths`.

    ``init_from`` (a model file or checkpoint) starts from that model's weights, scaling and
    reference energies (:func:`warm_start_model`) instead of fresh ones.

    ``resume=True`` continues from ``<output>.ckpt`` (same data required); ``epochs`` then may raise
    the epoch limit and ``max_time`` (minutes of training in all, resumed runs included) the time
    limit. Ctrl-C / SIGTERM stop the run: the best model so far is exported and the
    checkpoint kept. Returns the trained model (best validation state) and the test-split metrics.
    """
    paths = output_paths(output)
    out_dir = paths["model"].resolve().parent
    if not out_dir.is_dir():
        raise FileNotFoundError(f"{output}: output directory {out_dir} does not exist")
    checkpoint = None
    committee_run = config.committee > 1 or (not paths["checkpoint"].exists()
                                             and member_paths(paths, 0)["checkpoint"].exists())
    committee_resume = None
    if resume and committee_run:  # the committee's settings, split and warm start are in member 0's checkpoint
        checkpoint = load_checkpoint(member_paths(paths, 0)["checkpoint"])
        committee_resume = checkpoint.get("committee")
        if committee_resume is None:
            raise ValueError(f"{member_paths(paths, 0)['checkpoint']}: this committee checkpoint predates resumable "
                             "committees; train it again, or join the members' best states: `xtalnn export "
                             "<model>.member0.ckpt <model>.member1.ckpt … -o <model>.pt`")
        config = TrainConfig.from_dict(committee_resume["config"])
        checkpoint = {**checkpoint, "split": committee_resume["split"]}
        init_from = committee_resume["init_from"]
        if epochs is not None:
            config.epochs = int(epochs)
        if max_time is not None:
            config.max_time = float(max_time)
    elif resume:
        checkpoint = load_checkpoint(paths["checkpoint"])
        config = TrainConfig.from_dict(checkpoint["config"])
        if epochs is not None:
            config.epochs = int(epochs)
        if max_time is not None:
            config.max_time = float(max_time)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    say = log or (lambda msg: None)

    reference, loaded = None, None  # the targets are relative to the reference energies of the start model
    if checkpoint:
        reference = checkpoint["model_args"]["reference_energies"]
    elif init_from is not None:
        loaded = previous_model(init_from)
        reference = loaded[1]["reference_energies"]
    prepared = prepare(config, data_paths, split=checkpoint["split"] if checkpoint else None,
                       reference_energies=reference)
    if checkpoint and checkpoint["fingerprint"] != prepared.fingerprint:
        raise ValueError(f"{paths['checkpoint']}: the training data differ from the run being resumed")
    n = {name: len(prepared.split[name]) for name in ("train", "val", "test")}
    say(f"{len(prepared.graphs)} structures: {n['train']} train, {n['val']} validation, {n['test']} test; "
        f"descriptor {prepared.descriptor_settings['kind']} ({prepared.descriptor.n_features} features, "
        f"cutoff {prepared.descriptor.cutoff} Å)")
    if config.force_weight > 0 and not any(prepared.graphs[i].forces is not None for i in prepared.split["train"]):
        say("no training structure has forces: training on energies only")
    if config.committee > 1:
        return _train_committee(config, prepared, paths, init_from, loaded, progress, say,
                                resume=committee_resume is not None)
    run = _open_run(config, prepared, checkpoint, init_from, say, loaded)
    interrupted, stopped_early = _loop(run, paths, progress, say)
    metadata, test_metrics = _finish(run, paths, interrupted)
    return TrainResult(run.model, metadata, run.history, test_metrics, paths, interrupted, stopped_early)


# -- committees --------------------------------------------------------------------------------

def member_paths(paths: dict, m: int) -> dict:
    """Checkpoint and history of committee member ``m`` (``model.member<m>.ckpt``, ``….history.csv``);
    the model file, plots and metrics stay the committee's."""
    stem = str(paths["checkpoint"])[:-len(".ckpt")]
    return {**paths, "checkpoint": Path(f"{stem}.member{m}.ckpt"), "history": Path(f"{stem}.member{m}.history.csv")}


def member_config(config: TrainConfig, m: int) -> TrainConfig:
    """Member ``m`` of a committee trains as a single model would with ``seed + m`` on the committee's
    split (``split_seed`` fixed), time budget shared equally between the members."""
    split_seed = config.seed if config.split_seed is None else config.split_seed
    max_time = config.max_time / config.committee if config.max_time else config.max_time
    return replace(config, seed=config.seed + m, split_seed=split_seed, committee=1, committee_bootstrap=False,
                   max_time=max_time)


def bootstrap_split(split: dict, seed: int, m: int) -> dict:
    """``split`` with its training part replaced by a seeded resample with replacement (same size)."""
    train_idx = np.asarray(split["train"])
    picked = np.random.default_rng([seed, m, 11]).choice(train_idx, size=len(train_idx), replace=True)
    return {**split, "train": np.sort(picked).tolist()}


def _train_committee(config: TrainConfig, prepared: Prepared, paths: dict, init_from, loaded, progress,
                     say, resume: bool = False) -> TrainResult:
    """Train ``config.committee`` members one after the other (each exactly the single-model run of
    :func:`member_config`, on the same graphs, descriptor scaling and reference energies), stack them
    into one committee model (:meth:`Potential.committee`) and export it. An interrupt stops after the
    current member: the committee of the members trained so far is exported. With ``resume`` each
    member with a checkpoint continues from it (finished ones are kept as they are) and the others
    start as in the first run."""
    n = int(config.committee)
    base = build_model(prepared)  # scaling and range of the whole training split, shared by the members
    if loaded is not None:
        members_before = int(loaded[1]["nets.0.0.weight"].shape[0])
        if members_before != n:
            raise ValueError(f"{init_from}: a committee of {members_before} cannot start a committee of {n}")

    def start(m: int, cfg: TrainConfig) -> Potential:
        nonlocal loaded
        if init_from is not None:
            if loaded is None:  # a resumed committee: only members without a checkpoint need the start model
                loaded = previous_model(init_from)
            elements, state = loaded
            return warm_start_model(prepared, init_from, (elements, {
                k: (v[m:m + 1] if k.startswith("nets.") else v) for k, v in state.items()}))
        torch.manual_seed(cfg.seed)  # as build_model does: member m starts as a single run with this seed
        return Potential(**base.init_args())

    states, runs, stopped, interrupted = [], [], [], False
    for m in range(n):
        cfg = member_config(config, m)
        member_prepared = replace(prepared, config=cfg)
        if config.committee_bootstrap:
            member_prepared.split = bootstrap_split(prepared.split, config.seed, m)
        say(f"committee member {m + 1}/{n} (seed {cfg.seed}"
            + (", bootstrap resample of the training split" if config.committee_bootstrap else "") + ")")
        checkpoint = member_paths(paths, m)["checkpoint"]
        if resume and checkpoint.exists():
            run = _open_run(cfg, member_prepared, load_checkpoint(checkpoint), init_from, say)
        else:
            run = _open_run(cfg, member_prepared, None, init_from, say, model=start(m, cfg))
        run.committee = {"config": asdict(config), "split": prepared.split,
                         "init_from": None if init_from is None else str(init_from)}
        interrupted, stopped_early = _loop(run, member_paths(paths, m), progress, say)
        run.model.load_state_dict(run.best_state)
        states.append(run.model)
        runs.append(run)
        stopped.append(stopped_early)
        if interrupted:
            say(f"interrupted: exporting the committee of the {m + 1} member(s) trained so far")
            break
    committee = Potential.committee(states)
    history = runs[0].history
    crun = _Run(config, prepared, committee, runs[0].optimizer, None, runs[0].init_from, history=history,
                best_state=committee.state_dict(), best_loss=float(np.mean([r.best_loss for r in runs])),
                best_epoch=runs[0].best_epoch)
    extra = {"committee": {"members": len(runs), "seeds": [r.config.seed for r in runs],
                           "bootstrap": bool(config.committee_bootstrap),
                           "best_epochs": [r.best_epoch for r in runs],
                           "epochs_run": [len(r.history) for r in runs],
                           "best_val_losses": [r.best_loss for r in runs],
                           "train_time_s": [r.history[-1]["time_s"] if r.history else 0.0 for r in runs]}}
    metadata, test_metrics = _finish(crun, paths, interrupted=False, extra=extra)
    return TrainResult(committee, metadata, history, test_metrics, paths, interrupted, all(stopped))
