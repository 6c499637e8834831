"""The campaign's settings: one TOML file (``tomllib``), defaults from the seed paper.

::

    composition = "Si8"            # atoms in the cell; or [composition] elements = [...], model = "comp.pt"
    seed = 0
    max_cycles = 20
    overlap = true                 # train cycle c while the GA and labelling of cycle c + 1 run

    [ga]                           # any xtalnn.search.config.GASettings key (but seed, top_k), per cycle
    systems = ["cubic", ...]       # default: all seven crystal systems
    population = 64
    children = 16
    generations = 30               # per cycle before convergence
    recommendations = 16           # distinct structures per system per cycle sent to the oracle
    final_generations = 1500       # the long GA after convergence
    final_seeds = 20               # independent runs per system in the final GA
    final_candidates = 16          # candidates per seed kept from the final GA
    final_relabel = 10             # best structures per system relabelled by the oracle
    start_fitness = "empirical"    # GA fitness before the first potential: "empirical" or a calculator spec

    [oracle]
    calculator = "sw-si"           # any xtalnn.calculators.registry spec: sw-si, tblite, gpaw, module:factory
    kwargs = {}                    # passed to the calculator (e.g. ecut = 300 for gpaw)
    relax_steps = 0                # > 0: a short oracle relaxation whose frames are stored too
    relax_cell = false             # true: that relaxation moves the cell too (FrechetCellFilter)
    final_relax_steps = 0          # > 0: after the final relabelling, the final_relax_best lowest distinct
    final_relax_best = 3           #   candidates relaxed by the oracle, cell included; ranked by the result

    [training]                     # xtalnn.potential.train.TrainConfig keys (elements are automatic)
    min_loss = 0.01                # eV/atom: labelled structures predicted within this are not added
    energy_window = 5.0            # eV/atom: structures higher above the lowest labelled one are not trained on
    low_energy_scale = 0.25        # eV/atom: loss weight 1 / (1 + ΔE / scale)² of a structure ΔE above the
                                   #   lowest labelled one (0: all weights 1, as the seed paper)
    warm_start = true              # start each model from the previous model's weights

    [convergence]
    min_structures = 2240          # 112 x 20
    max_val_rmse = 0.08            # eV/atom (validation split)
    criterion = "candidates"       # also: the newest cycle's lowest predicted structures were predicted
    max_candidate_rmse = 0.03      #   within this RMSE (eV/atom) by the model that proposed them;
    candidates = 10                #   "validation": the seed paper's rule (size and validation RMSE only)

    [database]
    url = "campaign.db"            # SQLite file (relative to the campaign folder) or postgresql://user@host:port/db

    [executor]
    kind = "local"                 # "local" (processes) or "dask"
    workers = 2                    # local processes / LocalCluster workers
    address = ""                   # dask: tcp://host:8786 or tls://…; "" = a LocalCluster on 127.0.0.1
    tls_ca_file = ""               # distributed.Security for a remote tls:// scheduler
    tls_client_cert = ""
    tls_client_key = ""
    jobqueue = ""                  # "slurm" | "pbs": a dask-jobqueue cluster with [executor.jobqueue_kwargs]
    jobs = 1

Database passwords never go in this file: a PostgreSQL URL with a password is refused; libpq reads
``PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from xtalnn.calculators.registry import check_spec
from xtalnn.io.settings import check_items, check_types
from xtalnn.search.config import GASettings


class ConfigError(ValueError):
    """A campaign configuration that cannot be used; the message names the key."""


@dataclass
class GAConfig(GASettings):
    """``[ga]``: the settings of every cycle's GA (:class:`~xtalnn.search.config.GASettings`; ``seed`` and
    ``top_k`` are set by the campaign), and the campaign's own: recommendations per system and cycle,
    the long final GA and its relabelling. Energies eV/atom, lengths Å."""

    seeds_per_system: int = 1        # independent GA runs per crystal system and cycle
    recommendations: int = 16        # distinct structures per crystal system and cycle sent to the oracle
    final_generations: int = 1500    # generations of the long GA after convergence
    final_seeds: int = 20            # independent runs per crystal system in the final GA
    final_candidates: int = 16       # candidates per seed kept from the final GA
    final_relabel: int = 10          # best final candidates per crystal system relabelled by the oracle
    empirical_relax: bool = False    # relax with the empirical model (before the first potential)? It
                                     # over-compresses covalent solids, so by default its GA ranks unrelaxed
                                     # pyxtal structures
    start_fitness: str = "empirical"  # GA fitness before the first potential: "empirical" or a calculator spec
                                     # (a cheap real potential such as ma-tio2 or pedone, a model file): its
                                     # relaxed minima are the first structures the oracle labels

    SET_BY_CAMPAIGN = ("seed", "top_k")
    """GA settings the campaign sets itself (the top-level ``seed``; ``recommendations``)."""


@dataclass
class OracleConfig:
    """The reference calculator: a spec of :mod:`xtalnn.calculators.registry` and its keyword arguments."""

    calculator: str = "sw-si"  # a calculator spec: sw-si, ma-tio2, pedone, chgnet, gpaw, module:factory, …
    kwargs: dict = field(default_factory=dict)  # keyword arguments of the calculator (e.g. ecut = 300 for gpaw)
    relax_steps: int = 0  # > 0: a short oracle relaxation whose frames are stored and trained on
    relax_cell: bool = False  # the cycles' oracle relaxations move the cell too (FrechetCellFilter)
    fmax: float = 0.05  # eV/Å, for the optional relaxations
    final_relax_steps: int = 0  # BFGS steps of the final cell relaxation (FrechetCellFilter); 0 = none
    final_relax_best: int = 3  # how many of the lowest relabelled final candidates are relaxed


@dataclass
class ConvergenceConfig:
    """Converged when the training set holds ≥ ``min_structures``, the validation RMSE is ≤ ``max_val_rmse``
    and (``criterion = "candidates"``) the model that proposed the newest labelled cycle predicted its
    ``candidates`` lowest structures within ``max_candidate_rmse`` (RMSE against the oracle, eV/atom;
    :func:`xtalnn.campaign.quality.candidate_error`). ``criterion = "validation"`` is the seed paper's
    rule (training-set size and validation RMSE only)."""

    min_structures: int = 112 * 20  # labelled structures in the training set at least
    max_val_rmse: float = 0.08  # eV/atom, validation split RMSE at most
    criterion: str = "candidates"  # "candidates" | "validation" (the seed paper's rule)
    max_candidate_rmse: float = 0.03  # eV/atom, the proposing model's RMSE on the newest cycle's candidates
    candidates: int = 10  # lowest predicted structures of the newest cycle that max_candidate_rmse is about
    stall_cycles: int = 0  # > 0: also require the lowest labelled energy not to have dropped by more than min_loss (eV/atom) over the last stall_cycles cycles (0: off)


@dataclass
class ExecutorConfig:
    """Where jobs run: local processes or a Dask cluster (see :mod:`xtalnn.campaign.executor`)."""

    kind: str = "local"  # "local" (processes) or "dask"
    workers: int = 0  # 0: the CPU count
    address: str = ""  # dask: tcp://host:8786 or tls://…; "" = a LocalCluster on 127.0.0.1
    tls_ca_file: str = ""  # CA certificate of a remote tls:// scheduler (distributed.Security)
    tls_client_cert: str = ""  # client certificate for a tls:// scheduler
    tls_client_key: str = ""  # client key for a tls:// scheduler
    jobqueue: str = ""  # "slurm" | "pbs": a dask-jobqueue cluster instead of address
    jobqueue_kwargs: dict = field(default_factory=dict)  # keyword arguments of the dask-jobqueue cluster
    jobs: int = 1  # dask-jobqueue jobs to start (cluster.scale(jobs=…))


@dataclass
class CampaignConfig:
    """All settings of a campaign (see the module docstring for the TOML layout)."""

    composition: str = ""  # atoms in the cell, e.g. "Si8"; or elements and composition_model
    formula_units: int = 1  # multiplies composition
    elements: list = field(default_factory=list)  # with composition_model: pick the stoichiometry
    composition_model: str = ""  # model file of `xtalnn composition train` that picks the stoichiometry
    max_atoms: int = 12  # largest cell the composition model may pick (atoms)
    seed: int = 0  # the campaign's random seed (GA runs, splits, weights)
    max_cycles: int = 20  # cycles at most before the final GA
    overlap: bool = True  # train cycle c while the GA and labelling of cycle c + 1 run
    min_loss: float = 0.01  # eV/atom
    energy_window: float = 5.0  # eV/atom above the lowest labelled energy; 0 = no window
    low_energy_scale: float = 0.25  # eV/atom; 0 = uniform loss weights
    warm_start: bool = True  # start each model from the previous model's weights
    ga: GAConfig = field(default_factory=GAConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    training: dict = field(default_factory=dict)  # TrainConfig keys
    convergence: ConvergenceConfig = field(default_factory=ConvergenceConfig)
    database: str = "campaign.db"  # SQLite file (relative to the campaign folder) or postgresql://user@host:port/db
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    source: str = ""  # the file it was read from

    def identity(self) -> dict:
        """Settings a resumed campaign must share with the stored one (not the executor)."""
        d = dataclasses.asdict(self)
        for key in ("executor", "source", "max_cycles"):
            d.pop(key)
        d["ga"].pop("final_generations")
        for key in ("final_relax_steps", "final_relax_best"):  # the last step only: a finished campaign can
            d["oracle"].pop(key)  # be run again with a final relaxation added
        return d


def _section(cls, values: Any, name: str):
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table, got {values!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) in [{name}]: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        check_types(cls, values, f"[{name}] ")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return cls(**values)


def _typed(values: dict, where: str = "") -> None:
    """ConfigError naming the first top-level setting of the wrong type (``[composition] elements`` a list
    of symbols: ``"TiO"`` is not ``["Ti", "O"]``)."""
    try:
        check_types(CampaignConfig, values, where)
        check_items("elements", values.get("elements", []), str, where)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _ga_section(values: Any) -> GAConfig:
    if isinstance(values, dict):
        fixed = sorted(set(values) & set(GAConfig.SET_BY_CAMPAIGN))
        if fixed:
            raise ConfigError(f"[ga] {', '.join(fixed)}: set by the campaign (the top-level seed; recommendations)")
    return _section(GAConfig, values, "ga")


def from_dict(values: dict, source: str = "") -> CampaignConfig:
    """Build and check a :class:`CampaignConfig` from parsed TOML."""
    values = dict(values)
    top: dict[str, Any] = {}
    comp = values.pop("composition", "")
    if isinstance(comp, dict):
        comp = dict(comp)
        top["elements"] = comp.pop("elements", [])
        top["composition_model"] = comp.pop("model", "")
        top["max_atoms"] = comp.pop("max_atoms", 12)
        if comp:
            raise ConfigError(f"unknown key(s) in [composition]: {', '.join(sorted(comp))}; "
                              "known: elements, model, max_atoms")
        _typed(top, "[composition] ")
        comp = ""
    top["composition"] = comp
    _typed({"composition": comp})
    training = dict(values.pop("training", {}) or {})
    for key in ("min_loss", "warm_start", "energy_window", "low_energy_scale"):
        if key in training:
            top[key] = training.pop(key)
            _typed({key: top[key]}, "[training] ")
    if "elements" in training:
        raise ConfigError("[training] elements: the campaign sets the model's elements from the composition")
    db = values.pop("database", {}) or {}
    if isinstance(db, str):
        db = {"url": db}
    unknown_db = sorted(set(db) - {"url"})
    if unknown_db:
        raise ConfigError(f"unknown key(s) in [database]: {', '.join(unknown_db)}; known: url")
    cfg = CampaignConfig(
        **top,
        ga=_ga_section(values.pop("ga", {}) or {}),
        oracle=_section(OracleConfig, values.pop("oracle", {}) or {}, "oracle"),
        convergence=_section(ConvergenceConfig, values.pop("convergence", {}) or {}, "convergence"),
        executor=_section(ExecutorConfig, values.pop("executor", {}) or {}, "executor"),
        training=training,
        database=str(db.get("url", "campaign.db")),
        source=source,
    )
    for key in ("formula_units", "seed", "max_cycles", "overlap"):
        if key in values:
            _typed({key: values[key]})
            setattr(cfg, key, values.pop(key))
    if values:
        raise ConfigError(f"unknown top-level key(s): {', '.join(sorted(values))}; known: composition, "
                          "formula_units, seed, max_cycles, overlap, [ga], [oracle], [training], "
                          "[convergence], [database], [executor]")
    check(cfg)
    return cfg


def load(path: str | os.PathLike) -> CampaignConfig:
    """Read a campaign TOML file (see the module docstring)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"campaign config {path} does not exist")
    with open(path, "rb") as fh:
        try:
            values = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
    try:
        return from_dict(values, source=path)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


def _check_composition(cfg: CampaignConfig) -> None:
    """ConfigError for a composition that does not parse, or a composition model (file) or element that
    does not exist."""
    from ase.data import atomic_numbers

    from xtalnn.search.formula import parse_composition

    if cfg.composition:
        if not isinstance(cfg.formula_units, int) or cfg.formula_units < 1:
            raise ConfigError(f"formula_units must be an integer >= 1, got {cfg.formula_units!r}")
        try:
            parse_composition(cfg.composition, cfg.formula_units)
        except ValueError as err:
            raise ConfigError(f"composition {cfg.composition!r}: {err}") from None
        return
    unknown = [e for e in cfg.elements if e not in atomic_numbers or e == "X"]
    if unknown:
        raise ConfigError(f"[composition] elements: {unknown} are not element symbols")
    if not os.path.isfile(cfg.composition_model):
        raise ConfigError(f"[composition] model: {cfg.composition_model} is not a file")
    if cfg.max_atoms < 1:
        raise ConfigError(f"[composition] max_atoms must be >= 1, got {cfg.max_atoms}")


def check(cfg: CampaignConfig) -> None:
    """Raise :class:`ConfigError` on settings that cannot work."""
    from xtalnn.campaign.storage import check_url
    from xtalnn.potential.train import TrainConfig

    if not cfg.composition and not (cfg.elements and cfg.composition_model):
        raise ConfigError('give composition = "Si8", or [composition] elements = [...] and model = "comp.pt" '
                          "(the composition model picks the stoichiometry)")
    _check_composition(cfg)
    for where, spec in (("[oracle] calculator", cfg.oracle.calculator), ("[ga] start_fitness", cfg.ga.start_fitness)):
        try:  # local workers share this environment; a Dask cluster's workers may have packages this one lacks
            check_spec(spec, installed=cfg.executor.kind == "local")
        except (ValueError, ImportError, AttributeError, OSError) as err:
            raise ConfigError(f"{where}: {err}") from None
    g = cfg.ga
    try:
        g.check()
    except ValueError as err:
        raise ConfigError(f"[ga] {err}") from err
    for name in ("recommendations", "final_seeds", "final_candidates"):
        if int(getattr(g, name)) < 1:
            raise ConfigError(f"[ga] {name} must be >= 1, got {getattr(g, name)}")
    if g.final_generations < 0 or g.final_relabel < 0:
        raise ConfigError("[ga] final_generations and final_relabel must be >= 0")
    if cfg.max_cycles < 1:
        raise ConfigError(f"max_cycles must be >= 1, got {cfg.max_cycles}")
    if not cfg.energy_window >= 0:
        raise ConfigError(f"[training] energy_window must be >= 0 eV/atom (0 = off), got {cfg.energy_window}")
    if not cfg.low_energy_scale >= 0:
        raise ConfigError(f"[training] low_energy_scale must be >= 0 eV/atom (0 = off), got {cfg.low_energy_scale}")
    if not cfg.min_loss >= 0:
        raise ConfigError(f"[training] min_loss must be >= 0 eV/atom, got {cfg.min_loss}")
    if not isinstance(cfg.oracle.calculator, str) or not cfg.oracle.calculator:
        raise ConfigError("[oracle] calculator must name a calculator (sw-si, tblite, gpaw, module:factory)")
    for key in ("relax_steps", "final_relax_steps", "final_relax_best"):
        if int(getattr(cfg.oracle, key)) < 0:
            raise ConfigError(f"[oracle] {key} must be >= 0, got {getattr(cfg.oracle, key)}")
    if not cfg.oracle.fmax > 0:
        raise ConfigError(f"[oracle] fmax must be > 0 eV/Å, got {cfg.oracle.fmax}")
    v = cfg.convergence
    if v.min_structures < 1 or not v.max_val_rmse > 0 or not v.max_candidate_rmse > 0 or v.candidates < 1:
        raise ConfigError("[convergence] min_structures >= 1, candidates >= 1, max_val_rmse > 0 and "
                          "max_candidate_rmse > 0 (eV/atom)")
    if v.criterion not in ("candidates", "validation"):
        raise ConfigError(f"[convergence] criterion must be 'candidates' or 'validation', got {v.criterion!r}")
    if cfg.executor.kind not in ("local", "dask"):
        raise ConfigError(f"[executor] kind must be 'local' or 'dask', got {cfg.executor.kind!r}")
    try:
        TrainConfig.from_dict({"elements": ["H"], **cfg.training}).validate()
    except (TypeError, ValueError) as err:
        raise ConfigError(f"[training]: {err}") from err
    check_url(cfg.database)
