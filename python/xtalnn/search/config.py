"""The genetic algorithm's settings, in one place: :class:`GASettings` is what :func:`xtalnn.search.search`
takes, what ``xtalnn search`` builds its options from (:func:`add_arguments`, :func:`from_arguments`)
and what a campaign's ``[ga]`` table extends. Defaults are the seed paper's. Energies eV/atom,
lengths Å, forces eV/Å.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field

from xtalnn.search.systems import CRYSTAL_SYSTEMS


def _setting(default, help: str, flag: str | None = None, **kwargs):
    """A field with its command-line help (``flag``: the option name if not derived from the field)."""
    metadata = {"help": help, "flag": flag}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


@dataclass
class GASettings:
    """All settings of a GA search (one population per crystal system and seed)."""

    systems: list = _setting(list(CRYSTAL_SYSTEMS), "crystal systems to search (default: all seven)")
    population: int = _setting(64, "structures kept per population")
    children: int = _setting(16, "children per generation")
    select_fraction: float = _setting(1 / 3, "share of the population that breeds (best first)")
    mutation_probability: float = _setting(0.05, "probability that a crossover child is also mutated")
    mutation_share: float = _setting(
        0.0, "share of children made from one parent by one mutation (strain, swap, rattle or a soft-mode "
        "displacement, as ase-ga's mutation operators) instead of by crossover (0: crossover only, as the seed paper)")
    symmetric_start: float = _setting(
        0.5, "share of the first generation taken from the highest-symmetry Wyckoff prototypes, highest "
        "first, alternating with random draws (0: all random, as the seed paper)")
    first_generation: int = _setting(
        0, "structures in the first generation (0: population, as the seed paper); fewer start the breeding "
        "sooner, and children then fill the population")
    immigrants: float = _setting(
        0.0, "share of each generation's children that are new starting structures (random immigrants, drawn "
        "as the first generation's) instead of bred ones (0: none, as the seed paper)")
    generations: int = _setting(30, "generations after the first one")
    stall_generations: int = _setting(
        10, "a population stops when its best energy has not improved by more than energy_tol for this many "
        "generations (0: never; the seed paper runs every generation)")
    budget_sharing: str = _setting(
        "adaptive", "how a worker process shares evaluations between its populations: 'adaptive' (in "
        "proportion to 2^-rank of each population's lowest energy among all, floored at 1/(2 × runs)) or "
        "'equal' (in turn, as the seed paper)")
    seeds_per_system: int = _setting(2, "independent runs per crystal system", flag="--seeds")
    seed: int = _setting(0, "first random seed (runs use seed, seed + 1, …)")
    top_k: int = _setting(16, "distinct structures reported per system")
    relax: bool = _setting(True, "relax every candidate (off: single points only)")
    relax_steps: int = _setting(60, "optimiser steps per relaxation")
    fmax: float = _setting(0.05, "relaxation force threshold (eV/Å)")
    optimizer: str = _setting("BFGS", "ASE optimiser of the relaxations (BFGS, FIRE, LBFGS, BFGSLineSearch)")
    keep_symmetry: bool = _setting(False, "relax with ASE's FixSymmetry (keeps each candidate's space group)")
    free_cell: bool = _setting(
        False, "relax every candidate with a free cell (all strains, as ase-ga and AIRSS do) instead of within its "
        "population's crystal system; the population keeps the relaxed structure, and its children are put back on "
        "the system's lattice (off: the seed paper's constrained relaxation)")
    volume_per_atom: float | None = _setting(None, "Å³/atom of the starting structures (default: an estimate "
                                                   "from covalent radii)")
    min_distances: dict = _setting({}, "minimum distance per element pair {'A-B': Å} (default "
                                       "0.7 × (r_cov,A + r_cov,B))", flag="--min-distance")
    pressure: float = _setting(0.0, "external pressure (GPa): candidates relax under it and are ranked by "
                                    "enthalpy per atom (E + pV)/N, which the search then reports as its energy")
    energy_tol: float = _setting(0.005, "energies per atom closer than this (eV/atom) may be duplicates")

    IGNORED_ON_RESUME = ("generations", "stall_generations", "top_k", "systems", "budget_sharing")
    """Settings a resumed search may change (it runs longer, reports more, or searches a subset)."""

    def __post_init__(self):
        self.systems = list(self.systems)
        self.min_distances = {"-".join(sorted(_pair(k))): float(v) for k, v in dict(self.min_distances).items()}

    def check(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        from xtalnn.io.settings import check_instance_types, check_items

        check_instance_types(self)
        check_items("systems", self.systems, str)
        bad = [s for s in self.systems if s not in CRYSTAL_SYSTEMS]
        if bad or not self.systems:
            raise ValueError(f"systems: unknown crystal system(s) {bad}; use some of {', '.join(CRYSTAL_SYSTEMS)}")
        for name, low in (("population", 2), ("children", 1), ("seeds_per_system", 1), ("top_k", 1),
                          ("generations", 0), ("stall_generations", 0), ("relax_steps", 0), ("first_generation", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        from xtalnn.search.schedule import SHARING

        if self.budget_sharing not in SHARING:
            raise ValueError(f"budget_sharing must be one of {', '.join(SHARING)}, got {self.budget_sharing!r}")
        if 0 < self.first_generation < 2:
            raise ValueError(f"first_generation must be 0 (the population) or >= 2, got {self.first_generation}")
        for name in ("select_fraction", "mutation_probability", "mutation_share", "symmetric_start", "immigrants"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not math.isfinite(self.pressure):
            raise ValueError(f"pressure must be a finite number of GPa, got {self.pressure}")
        if not self.fmax > 0 or not self.energy_tol >= 0:
            raise ValueError(f"fmax must be > 0 eV/Å and energy_tol >= 0 eV/atom, got {self.fmax}, {self.energy_tol}")
        if self.volume_per_atom is not None and not self.volume_per_atom > 0:
            raise ValueError(f"volume_per_atom must be > 0 Å³/atom, got {self.volume_per_atom}")

    def first_generation_size(self) -> int:
        """Structures in the first generation."""
        return self.first_generation or self.population

    def immigrants_per_generation(self) -> int:
        """Children of each generation that are new starting structures (the last ones of the generation)."""
        return int(round(self.children * self.immigrants))

    def run_seeds(self) -> list[int]:
        return [self.seed + k for k in range(self.seeds_per_system)]

    def identity(self) -> dict:
        """The settings a resumed search must share with the stored one."""
        d = dataclasses.asdict(self)
        for key in self.IGNORED_ON_RESUME:
            d.pop(key)
        return d

    @classmethod
    def of(cls, settings: GASettings) -> GASettings:
        """The GA settings part of ``settings`` (e.g. a campaign's ``[ga]`` table, a subclass)."""
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def from_dict(cls, values: dict, where: str = "GA settings"):
        """Settings from a mapping (a TOML table); unknown keys and wrong types are ValueErrors naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown key(s) in {where}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        from xtalnn.io.settings import check_types

        check_types(cls, values)  # before __post_init__ turns systems = "cubic" into letters
        settings = cls(**values)
        settings.check()
        return settings


def _pair(key) -> tuple[str, str]:
    a, _, b = key.partition("-") if isinstance(key, str) else (key[0], "-", key[1])
    if not a or not b:
        raise ValueError(f"min_distances: {key!r} is not an element pair 'A-B'")
    return a, b


# ---------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`GASettings` field (``--population 64``, ``--no-relax``, ``--keep-symmetry``,
    ``--systems cubic,hexagonal``, ``--min-distance Si-Si=2.0`` …), help and defaults from the fields."""
    group = parser.add_argument_group("GA settings")
    defaults = GASettings()
    for f in dataclasses.fields(GASettings):
        flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        helptext = f.metadata["help"]
        if f.type == "bool":
            if default:
                group.add_argument(f"--no-{f.name.replace('_', '-')}", dest=f.name, action="store_false",
                                   help=f"turn off: {helptext}")
            else:
                group.add_argument(flag, dest=f.name, action="store_true", help=helptext)
        elif f.name == "systems":
            group.add_argument(flag, dest=f.name, default="all", help=f"comma-separated subset of "
                               f"{','.join(CRYSTAL_SYSTEMS)} (default: all)")
        elif f.name == "min_distances":
            group.add_argument(flag, dest=f.name, action="append", default=[], metavar="A-B=D",
                               help="minimum distance in Å for a pair, e.g. Si-Si=2.0 (repeatable; default "
                               "0.7 × (r_cov,A + r_cov,B))")
        else:
            kind = float if f.type in ("float", "float | None") else int if f.type == "int" else str
            shown = "" if default is None else f" (default: {_shown(default)})"
            group.add_argument(flag, dest=f.name, type=kind, default=default, help=helptext + shown)


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def from_arguments(args: argparse.Namespace) -> GASettings:
    """The :class:`GASettings` of parsed options (see :func:`add_arguments`)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(GASettings)}
    if values["systems"] == "all":
        values["systems"] = list(CRYSTAL_SYSTEMS)
    else:
        values["systems"] = [s.strip() for s in values["systems"].split(",") if s.strip()]
    pairs = {}
    for item in values["min_distances"]:
        pair, _, value = item.partition("=")
        try:
            pairs[pair] = float(value)
        except ValueError:
            raise ValueError(f"--min-distance {item!r}: expected A-B=distance in Å") from None
    values["min_distances"] = pairs
    settings = GASettings(**values)
    settings.check()
    return settings


# ---------------------------------------------------------------------------- run folders
def bind_identity(path: str, identity: dict, what: str, extra: dict | None = None,
                  defaults: dict | None = None) -> dict:
    """Tie a run folder to its settings: the first run writes ``{"identity": identity, **extra}`` to
    ``path`` (atomically); a later run with other settings is refused with a ValueError naming the
    settings that differ. A setting the stored identity lacks (a folder made before the setting existed)
    counts as equal when its value is the one in ``defaults`` (the identity of default settings), so an
    upgrade that adds a setting does not orphan older run folders. Returns what is stored."""
    from xtalnn.io.atomic import write_json

    identity = json.loads(json.dumps(identity))  # as JSON stores it (tuples → lists, keys → str)
    if not os.path.exists(path):
        record = {"identity": identity, **(extra or {})}
        write_json(path, record)
        return record
    with open(path) as fh:
        record = json.load(fh)
    stored = record.get("identity", {})
    old, new = _flat(stored), _flat(identity)
    differ = _differences(old, new, _flat(json.loads(json.dumps(defaults or {}))))
    if differ:
        shown = ", ".join(f"{k} = {_shown_value(old, k)} there, {_shown_value(new, k)} now" for k in differ[:4])
        raise ValueError(f"{os.path.dirname(path) or '.'} holds a different {what} (settings differ: "
                         f"{', '.join(differ)}): {shown}; use another output folder or the same settings")
    return record


def _differences(old: dict, new: dict, defaults: dict) -> list[str]:
    """Keys of the flat identities ``old`` (stored) and ``new`` whose values differ; a key ``old`` lacks is
    no difference when ``new`` holds its value in the flat ``defaults``."""
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k)
                  and not (k not in old and k in defaults and new.get(k) == defaults[k]))


def _shown_value(flat: dict, key: str) -> str:
    return repr(flat[key]) if key in flat else "unset"


def bind_search(out_dir: str, identity: dict, calculator) -> dict:
    """Tie a search folder to its settings and its calculator (spec and arguments, a model file's
    contents, an ASE calculator's class and parameters: :func:`~xtalnn.calculators.registry.calculator_identity`):
    a rerun with another calculator or other settings is refused, naming what differs (energies of two
    calculators never share one ranking)."""
    from xtalnn.calculators.registry import calculator_identity

    return bind_identity(os.path.join(out_dir, "search.json"),
                         {**identity, "calculator": calculator_identity(calculator)}, "search",
                         defaults=GASettings().identity())


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
