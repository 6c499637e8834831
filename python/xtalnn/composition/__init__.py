"""Formation enthalpy (eV/atom) from composition alone.

Reproduces the seed paper's dense network on element fractions (``arch="seed"``) and provides a
Roost-style attention model over element tokens with physical element properties (``arch="default"``).

>>> from xtalnn.composition import CompositionModel
>>> CompositionModel.load("comp.pt").predict(["TiO2", "CaTiO3"])   # doctest: +SKIP

Modules: :mod:`.data` (CSV, formula parsing), :mod:`.features` (fractions, element properties),
:mod:`.models` (networks), :mod:`.training` (fit, k-fold CV, metrics), :mod:`.export` (model file,
:class:`CompositionModel`), :mod:`.rank` (stoichiometry ranking, convex hull), :mod:`.plots`,
:mod:`.workflow` (end-to-end jobs), :mod:`.cli`.
"""

from .data import CompositionDataError, parse_formula, read_table
from .export import CompositionModel, save_model

__all__ = ["CompositionDataError", "CompositionModel", "parse_formula", "read_table", "save_model"]
