"""Descriptor parameters from other programs' setup files: n2p2's ``input.nn`` and aenet's ``.stp``.

    read_n2p2(path, elements=None, length_unit=1.0) -> ACSF
    read_aenet(paths, elements=None) -> ACSF | Chebyshev
    read_parameter_files(paths, elements=None, length_unit=1.0) -> ACSF | Chebyshev   (either, by content)

n2p2 (``symfunction_short <centre> <type> …`` lines): type 2 radial
``<neighbour> η r_s r_c``; type 3 narrow angular (Behler's G4, with the f_c(r_jk) e^{−η r_jk²} factor)
and type 9 wide angular (G5), ``<neighbour1> <neighbour2> η λ ζ r_c [r_s]``; ``cutoff_type 1`` (cosine)
or ``6`` (the C2 polynomial 1 − 10x³ + 15x⁴ − 6x⁵), both with α = 0. n2p2 works in the length unit of
its data: ``length_unit`` is that unit in Å (e.g. 0.529177210903 for Bohr), so r_s, r_c (×unit) and
η (÷unit²) come out in Å and Å⁻².

aenet (one ``<X>.fingerprint.stp`` per element, keywords ``ATOM``, ``ENV``, ``RMIN`` and either
``BASIS type=Chebyshev`` with ``radial_Rc radial_N angular_Rc angular_N`` or ``FUNCTIONS`` /
``SYMMFUNC type=Behler2011`` with ``G=1`` (f_c only: a G2 with η = 0, R_s = 0), ``G=2 type2= eta= Rs= Rc=``,
``G=4`` / ``G=5 type2= type3= eta= lambda= zeta= Rc=``); lengths in Å, the cosine cutoff.

xtalnn's :class:`~xtalnn.descriptors.ACSF` applies one list of (η, R_s) to every neighbour element
and one list of (η, ζ, λ) to every element pair, with one cutoff: a file whose centre or neighbour
elements use different lists is read as their union (an :class:`ExtraFunctionsWarning` says how
many functions that adds), and different cutoffs, angular shifts r_s ≠ 0 or other function types
are a ``ValueError`` naming the line. Elements: ``elements`` (the model's order) if given — it must
be the file's set — else n2p2's ``elements`` line / aenet's ``ENV`` list.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

BOHR = 0.529177210903  # Å
N2P2_CUTOFF_TYPES = {1: "cosine", 6: "polynomial"}  # n2p2's CT_COS and CT_POLY2, with α = 0


class ExtraFunctionsWarning(UserWarning):
    """The file gives different functions to different elements; xtalnn's descriptor uses their union."""


def read_parameter_files(paths, elements=None, length_unit: float = 1.0):
    """The descriptor of an n2p2 ``input.nn`` or of aenet ``.stp`` files (one per element), told apart by
    their content."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise ValueError("no descriptor parameter file given")
    text = Path(paths[0]).read_text()
    if re.search(r"^\s*symfunction_short\b", text, re.M):
        if len(paths) > 1:
            raise ValueError(f"{paths[0]}: an n2p2 input.nn holds every element's functions; give it alone")
        return read_n2p2(paths[0], elements, length_unit)
    if length_unit != 1.0:
        raise ValueError("aenet setup files are in Å (the unit of its XSF files); length_unit applies to n2p2 only")
    return read_aenet(paths, elements)


# -- collecting functions into xtalnn's shared lists ---------------------------------------------

class _Functions:
    """Radial (η, R_s) and angular (η, ζ, λ) rows per centre and neighbour element(s), one cutoff."""

    def __init__(self, source: str):
        self.source = source
        self.cutoffs: set = set()
        self.radial: dict = {}   # (centre, neighbour) → ordered set of rows
        self.angular: dict = {"g4": {}, "g5": {}}  # kind → (centre, frozenset of neighbours) → rows

    def add_radial(self, centre, neighbour, eta, rs, rc, where):
        self._cutoff(rc, where)
        self.radial.setdefault((centre, neighbour), {})[(float(eta), float(rs))] = None

    def add_angular(self, kind, centre, n1, n2, eta, zeta, lam, rc, where):
        self._cutoff(rc, where)
        if float(lam) not in (-1.0, 1.0):
            raise ValueError(f"{where}: λ must be +1 or -1, got {lam}")
        key = (centre, tuple(sorted((n1, n2))))
        self.angular[kind].setdefault(key, {})[(float(eta), float(zeta), float(lam))] = None

    def _cutoff(self, rc, where):
        self.cutoffs.add(round(float(rc), 10))
        if len(self.cutoffs) > 1:
            raise ValueError(f"{where}: cutoff {rc} differs from {sorted(self.cutoffs - {round(float(rc), 10)})}: "
                             "xtalnn's ACSF has one cutoff for all functions")

    def descriptor(self, elements, cutoff_function: str):
        from xtalnn.descriptors import ACSF

        if not self.cutoffs:
            raise ValueError(f"{self.source}: no symmetry functions")
        used = {e for key in self.radial for e in (key[0], key[1])}
        used |= {e for rows in self.angular.values() for c, pair in rows for e in (c, *pair)}
        unknown = sorted(used - set(elements))
        if unknown:
            raise ValueError(f"{self.source}: element(s) {unknown} are not among the elements {list(elements)}")
        g2 = _union(self.radial.values())
        g4, g5 = (_union(self.angular[k].values()) for k in ("g4", "g5"))
        defined = sum(len(r) for r in self.radial.values()) + sum(
            len(r) for rows in self.angular.values() for r in rows.values())
        acsf = ACSF(list(elements), next(iter(self.cutoffs)), g2=g2 or None,
                    g4=g4 or None, g5=g5 or None, cutoff_function=cutoff_function)
        n_centres = len(elements)
        if acsf.n_features * n_centres > defined:
            warnings.warn(f"{self.source}: {defined} functions over all centre elements; xtalnn's ACSF gives every "
                          f"element the union ({len(g2)} radial per neighbour element, {len(g4)} G4 and {len(g5)} "
                          f"G5 per element pair): {acsf.n_features} per centre element, {acsf.n_features * n_centres} "
                          "in all", ExtraFunctionsWarning, stacklevel=3)
        return acsf


def _union(groups) -> list:
    rows: dict = {}
    for group in groups:
        rows.update(group)
    return sorted(rows)


# -- n2p2 --------------------------------------------------------------------------------------

def read_n2p2(path, elements=None, length_unit: float = 1.0):
    """:class:`~xtalnn.descriptors.ACSF` from the ``symfunction_short`` and ``cutoff_type`` lines of an
    n2p2 ``input.nn`` (lengths in ``length_unit`` Å; see the module docstring)."""
    if not (np.isfinite(length_unit) and length_unit > 0):
        raise ValueError(f"length_unit must be a positive number of Å, got {length_unit}")
    functions = _Functions(str(path))
    file_elements, cutoff_function = None, "cosine"
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{path}:{number}"
        key, args = words[0], words[1:]
        if key == "elements":
            file_elements = args
        elif key == "cutoff_type":
            kind = int(args[0])
            alpha = float(args[1]) if len(args) > 1 else 0.0
            if kind not in N2P2_CUTOFF_TYPES or alpha != 0.0:
                raise ValueError(f"{where}: cutoff_type {' '.join(args)} has no xtalnn counterpart (known: 1 = cosine, "
                                 "6 = polynomial, both with α = 0)")
            cutoff_function = N2P2_CUTOFF_TYPES[kind]
        elif key == "symfunction_short":
            _n2p2_function(functions, args, length_unit, where)
    elements = _model_elements(elements, file_elements, path)
    return functions.descriptor(elements, cutoff_function)


def _n2p2_function(functions: _Functions, args: list, unit: float, where: str) -> None:
    try:
        centre, kind = args[0], int(args[1])
        if kind == 2:
            neighbour, eta, rs, rc = args[2], *map(float, args[3:6])
            if len(args) != 6:
                raise ValueError
            functions.add_radial(centre, neighbour, eta / unit**2, rs * unit, rc * unit, where)
        elif kind in (3, 9):
            n1, n2 = args[2], args[3]
            eta, lam, zeta, rc = map(float, args[4:8])
            if len(args) not in (8, 9):
                raise ValueError
            if len(args) == 9 and float(args[8]) != 0.0:
                raise ValueError(f"{where}: angular shift r_s = {args[8]}: xtalnn's G4/G5 have none")
            functions.add_angular("g4" if kind == 3 else "g5", centre, n1, n2, eta / unit**2, zeta, lam, rc * unit,
                                  where)
        else:
            raise ValueError(f"{where}: symmetry function type {kind} has no xtalnn counterpart (known: 2, 3, 9)")
    except (IndexError, ValueError) as err:
        if str(err).startswith(where):
            raise
        raise ValueError(f"{where}: cannot read `symfunction_short {' '.join(args)}` (type 2: <centre> 2 <neighbour> "
                         "η r_s r_c; types 3 and 9: <centre> 3|9 <n1> <n2> η λ ζ r_c [r_s])") from None


def _model_elements(elements, file_elements, source) -> list:
    if elements is None:
        if not file_elements:
            raise ValueError(f"{source}: no element list in the file; give the model's elements")
        return list(file_elements)
    if file_elements is not None and sorted(file_elements) != sorted(elements):
        raise ValueError(f"{source}: the file's elements {sorted(file_elements)} are not the model's {sorted(elements)}")
    return list(elements)


# -- aenet -------------------------------------------------------------------------------------

def read_aenet(paths, elements=None):
    """:class:`~xtalnn.descriptors.ACSF` (``FUNCTIONS``/``SYMMFUNC type=Behler2011``) or
    :class:`~xtalnn.descriptors.Chebyshev` (``BASIS type=Chebyshev``) from aenet setup files, one per
    centre element (all must describe the same descriptor; see the module docstring)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    setups = [_read_stp(Path(p)) for p in paths]
    env = setups[0]["env"]
    for s in setups[1:]:
        if sorted(s["env"]) != sorted(env):
            raise ValueError(f"{s['path']}: ENV {s['env']} differs from {setups[0]['path']}'s {env}")
    atoms = [s["atom"] for s in setups]
    if len(set(atoms)) != len(atoms):
        raise ValueError(f"two setup files for one element: {atoms}")
    elements = _model_elements(elements, env, paths[0])
    kinds = {s["kind"] for s in setups}
    if len(kinds) > 1:
        raise ValueError(f"{paths}: the setups mix descriptor kinds {sorted(kinds)}")
    if kinds == {"chebyshev"}:
        from xtalnn.descriptors import Chebyshev

        params = {tuple(sorted(s["chebyshev"].items())) for s in setups}
        if len(params) > 1:
            raise ValueError(f"{paths}: the Chebyshev parameters differ between the elements' setups")
        p = setups[0]["chebyshev"]
        return Chebyshev(elements, p["radial_rc"], int(p["radial_n"]), p["angular_rc"], int(p["angular_n"]))
    functions = _Functions(", ".join(map(str, paths)))
    for s in setups:
        for where, fields in s["functions"]:
            _aenet_function(functions, s["atom"], fields, where)
    return functions.descriptor(elements, "cosine")


def _read_stp(path: Path) -> dict:
    lines = [(k, l.strip()) for k, l in enumerate(path.read_text().splitlines(), 1)]
    lines = [(k, l) for k, l in lines if l and l[0] not in "!#%"]
    setup: dict = {"path": path, "atom": None, "env": [], "functions": [], "kind": None}
    i = 0
    while i < len(lines):
        number, line = lines[i]
        word = line.split()[0].lower()
        where = f"{path}:{number}"
        if word == "descr":
            while i < len(lines) and lines[i][1].lower().replace(" ", "") != "enddescr":
                i += 1
        elif word == "atom":
            setup["atom"] = line.split()[1]
        elif word == "env":
            count = int(line.split()[1])
            setup["env"] = [lines[i + 1 + k][1].split()[0] for k in range(count)]
            i += count
        elif word == "basis":
            if "type=chebyshev" not in line.lower().replace(" ", ""):
                raise ValueError(f"{where}: only BASIS type=Chebyshev has an xtalnn counterpart")
            text = " ".join(l for _, l in lines[i + 1:])
            values = dict((k.lower(), float(v.replace("d", "e").replace("D", "e")))
                          for k, v in re.findall(r"(\w+)\s*=\s*([-+\d.eEdD]+)", text))
            missing = [k for k in ("radial_rc", "radial_n", "angular_rc", "angular_n") if k not in values]
            if missing:
                raise ValueError(f"{where}: BASIS type=Chebyshev needs {', '.join(missing)}")
            setup["kind"], setup["chebyshev"] = "chebyshev", {k: values[k] for k in
                                                              ("radial_rc", "radial_n", "angular_rc", "angular_n")}
            break
        elif word in ("functions", "symmfunc"):
            if "type=behler2011" not in line.lower().replace(" ", ""):
                raise ValueError(f"{where}: only type=Behler2011 functions have an xtalnn counterpart")
            count = int(lines[i + 1][1].split()[0])
            body = lines[i + 2:i + 2 + count]
            if len(body) != count:
                raise ValueError(f"{where}: {count} functions announced, {len(body)} given")
            setup["kind"] = "acsf"
            setup["functions"] = [(f"{path}:{k}", _fields(l, f"{path}:{k}")) for k, l in body]
            break
        i += 1
    if setup["atom"] is None or not setup["env"] or setup["kind"] is None:
        raise ValueError(f"{path}: not an aenet setup file (needs ATOM, ENV and BASIS or FUNCTIONS)")
    return setup


def _fields(line: str, where: str) -> dict:
    fields = dict((k.lower(), v) for k, v in re.findall(r"(\w+)\s*=\s*(\S+)", line))
    if "g" not in fields:
        raise ValueError(f"{where}: no G=… in {line!r}")
    return fields


def _aenet_function(functions: _Functions, centre: str, f: dict, where: str) -> None:
    def number(name):
        if name not in f:
            raise ValueError(f"{where}: G={f['g']} needs {name}=")
        return float(f[name].replace("d", "e").replace("D", "e"))

    kind = int(f["g"])
    for name in ("type2",) + (("type3",) if kind in (4, 5) else ()):
        if name not in f:
            raise ValueError(f"{where}: G={kind} needs {name}=")
    if kind == 1:
        functions.add_radial(centre, f.get("type2"), 0.0, 0.0, number("rc"), where)
    elif kind == 2:
        functions.add_radial(centre, f.get("type2"), number("eta"), number("rs"), number("rc"), where)
    elif kind in (4, 5):
        functions.add_angular(f"g{kind}", centre, f.get("type2"), f.get("type3"), number("eta"), number("zeta"),
                              number("lambda"), number("rc"), where)
    else:
        raise ValueError(f"{where}: G={kind} has no xtalnn counterpart (known: 1, 2, 4, 5)")
