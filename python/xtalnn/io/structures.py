"""Reading structures from any source a user has: aenet XSF (file, folder, tar.gz), ASE db, any ASE format."""

from __future__ import annotations

import itertools
import tarfile
from pathlib import Path
from typing import Iterator

from xtalnn.io.aenet import iter_tar, read_xsf_file

DB_SUFFIXES = (".db", ".json", ".sqlite")


def iter_structures(path, limit: int | None = None) -> Iterator:
    """Yield ``ase.Atoms`` (with energies/forces attached when the source has them) from ``path``.

    ``path`` may be an aenet XSF file, a folder of them, a (gzipped) tar of them, an ASE database
    (``.db``, ``.json``; or a ``postgresql://`` URL), or any file ``ase.io.read`` understands
    (extxyz, OUTCAR, vasprun.xml, QE output, CIF, …), all frames.
    """
    return itertools.islice(_iter(str(path)), limit)


def read_structures(path, limit: int | None = None) -> list:
    """``list(iter_structures(path, limit))``; ValueError if the source holds no structure."""
    structures = list(iter_structures(path, limit))
    if not structures:
        raise ValueError(f"{path}: no structures found")
    return structures


def _iter(path: str) -> Iterator:
    if path.startswith(("postgresql://", "postgres://")):
        yield from _iter_db(path)
        return
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if p.is_dir():
        files = sorted(p.glob("*.xsf"))
        if not files:
            raise ValueError(f"{path}: folder holds no *.xsf files")
        for f in files:
            yield read_xsf_file(f)
    elif p.suffix == ".xsf":
        yield read_xsf_file(p)
    elif p.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")) and tarfile.is_tarfile(p):
        yield from iter_tar(p)
    elif p.suffix in DB_SUFFIXES and _is_ase_db(p):
        yield from _iter_db(path)
    else:
        from ase.io import iread

        try:
            yield from iread(path, index=":")
        except Exception as err:  # ase.io raises many types for unreadable files
            raise ValueError(f"{path}: ASE cannot read this file ({type(err).__name__}: {err})") from err


def _is_ase_db(p: Path) -> bool:
    if p.suffix == ".json":
        head = p.read_text(errors="replace")[:200]
        return '"ids"' in head or '"1"' in head or "nextid" in head
    return p.read_bytes()[:16].startswith(b"SQLite format 3")


def _iter_db(path: str) -> Iterator:
    from ase.db import connect

    with connect(path) as db:
        for row in db.select():
            atoms = row.toatoms(add_additional_information=True)
            atoms.info["source"] = f"{path}:{row.id}"
            yield atoms
