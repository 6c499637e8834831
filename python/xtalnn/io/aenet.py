"""aenet XSF structures: ``# total energy = E eV`` on line 1, forces in PRIMCOORD columns 5–7.

ASE's XSF reader gives positions, cell and forces but drops the energy; this module adds it
(as a SinglePointCalculator result, eV) so the rest of xtalnn sees ordinary ``ase.Atoms``.
"""

from __future__ import annotations

import io
import math
import re
import tarfile
from pathlib import Path
from typing import Iterator

from ase.calculators.singlepoint import SinglePointCalculator
from ase.io.xsf import read_xsf

_ENERGY = re.compile(r"total\s+energy\s*=\s*([-+0-9.eEdD]+)\s*eV", re.IGNORECASE)


def parse_xsf(text: str, name: str = "<xsf>"):
    """One aenet XSF file's text → ``ase.Atoms`` with energy (eV) and forces (eV/Å) attached."""
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    match = _ENERGY.search(first)
    if match is None:
        raise ValueError(f"{name}: first line has no '# total energy = … eV' (got {first[:60]!r})")
    energy = float(match.group(1).replace("d", "e").replace("D", "e"))
    if not math.isfinite(energy):
        raise ValueError(f"{name}: total energy {match.group(1)} eV is not finite")
    check_primcoord(text, name)
    try:
        atoms = read_xsf(io.StringIO(text))
    except Exception as err:  # ASE raises several types on malformed files
        raise ValueError(f"{name}: not a readable XSF file ({err})") from err
    forces = atoms.calc.results.get("forces") if atoms.calc is not None else None
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    atoms.info["source"] = name
    return atoms


def _is_atom_line(line: str) -> bool:
    """An XSF atom line: a symbol or atomic number, then 3 coordinates (Å), optionally 3 forces (eV/Å)."""
    parts = line.split()
    if len(parts) not in (4, 7) or not (parts[0].isalpha() or parts[0].isdigit()):
        return False
    try:
        [float(x) for x in parts[1:]]
    except ValueError:
        return False
    return True


def check_primcoord(text: str, name: str = "<xsf>") -> None:
    """Raise ValueError naming the file if a PRIMCOORD block's declared atom count (its first line, ``N 1``)
    differs from the number of atom lines that follow it (ASE would read N of them silently)."""
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.strip().upper() != "PRIMCOORD":
            continue
        header = lines[k + 1].split() if k + 1 < len(lines) else []
        if not header or not header[0].isdigit():
            raise ValueError(f"{name}: PRIMCOORD is not followed by the atom count line 'N 1'")
        declared = int(header[0])
        found = 0
        for atom_line in lines[k + 2:]:
            if not atom_line.strip() or atom_line.lstrip().startswith("#"):
                continue
            if not _is_atom_line(atom_line):
                break
            found += 1
        if found != declared:
            raise ValueError(f"{name}: PRIMCOORD declares {declared} atoms but {found} atom lines follow")


def read_xsf_file(path) -> "Atoms":  # noqa: F821
    path = Path(path)
    return parse_xsf(path.read_text(), str(path))


def iter_tar(path) -> Iterator:
    """Every ``*.xsf`` member of a (gzipped) tar archive, in sorted member order."""
    with tarfile.open(path) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xsf")),
                         key=lambda m: m.name)
        for member in members:
            yield parse_xsf(tar.extractfile(member).read().decode(), f"{path}:{member.name}")
