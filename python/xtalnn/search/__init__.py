"""Genetic-algorithm crystal structure search, one population per crystal system, on any ASE
calculator.

>>> from xtalnn.search import search
>>> result = search("Si8", "sw-si", generations=10, out_dir="results")  # doctest: +SKIP
>>> result.best.spacegroup, result.best.energy_per_atom                  # doctest: +SKIP
(227, -4.3366)

Modules: :mod:`.config` (:class:`GASettings`, the one set of GA settings), :mod:`.formula`
(compositions), :mod:`.systems` (lattice constraints), :mod:`.generate`
(pyxtal starts), :mod:`.operators` (crossover, mutations), :mod:`.relax` (constrained
relaxation), :mod:`.dedup` (the one de-duplicator, spglib), :mod:`.storage` (ase.db per run),
:mod:`.driver` (the GA and :func:`search`), :mod:`.report` (outputs), :mod:`.cli`.
"""

from xtalnn.search.formula import Composition, parse_composition
from xtalnn.search.config import GASettings
from xtalnn.search.driver import SearchConfig, run_system, search
from xtalnn.search.report import Candidate, SearchResult
from xtalnn.search.systems import CRYSTAL_SYSTEMS

ALL = CRYSTAL_SYSTEMS

__all__ = [
    "ALL",
    "CRYSTAL_SYSTEMS",
    "Candidate",
    "Composition",
    "GASettings",
    "SearchConfig",
    "SearchResult",
    "parse_composition",
    "run_system",
    "search",
]
