"""Formation enthalpy (eV/atom) from composition alone.

Reproduces the seed paper's dense network on element fractions (``arch="seed"``) and provides a
Roost-style attention model over element tokens with physical element properties (``arch="default"``).

>>> from xtalnn.enthalpy import CompositionModel
>>> CompositionModel.load("comp.pt").predict(["TiO2", "CaTiO3"])   # doctest: +SKIP

Modules: :mod:`.data` (CSV, formula parsing), :mod:`.features` (fractions, element properties),
:mod:`.models` (networks), :mod:`.training` (fit, k-fold CV, metrics), :mod:`.modelfile` (model file,
:class:`CompositionModel`), :mod:`.rank` (stoichiometry ranking, convex hull), :mod:`.plots`,
:mod:`.workflow` (end-to-end jobs), :mod:`.cli`.
"""

import importlib

#: the networks ``CompositionConfig.arch`` can name (see :mod:`.models`)
ARCHITECTURES = ("seed", "default")

_EXPORTS = {"CompositionDataError": "data", "parse_formula": "data", "read_table": "data",
            "CompositionModel": "modelfile", "save_enthalpy_model": "modelfile"}
__all__ = ["ARCHITECTURES", *sorted(_EXPORTS)]


def __getattr__(name):
    """Submodules load on first use, so ``xtalnn --help`` does not pay for torch."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"xtalnn.enthalpy.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'xtalnn.enthalpy' has no attribute {name!r}")
