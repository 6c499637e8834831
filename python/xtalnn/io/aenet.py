"""aenet XSF structures: ``# total energy = E eV`` on line 1, forces in PRIMCOORD columns 5–7.

ASE's XSF reader gives positions, cell and forces but drops the energy; this module adds it
(as a SinglePointCalculator result, eV) so the rest of xtalnn sees ordinary ``ase.Atoms``.
"""

from __future__ import annotations

import io
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
    try:
        atoms = read_xsf(io.StringIO(text))
    except Exception as err:  # ASE raises several types on malformed files
        raise ValueError(f"{name}: not a readable XSF file ({err})") from err
    forces = atoms.calc.results.get("forces") if atoms.calc is not None else None
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    atoms.info["source"] = name
    return atoms


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
