"""Duplicate detection (pymatgen ``StructureMatcher``) and spglib symmetry."""

from __future__ import annotations

from functools import lru_cache

import spglib
from ase import Atoms


def space_group(atoms: Atoms, symprec: float = 0.1) -> tuple[int, str]:
    """(international number, symbol) from spglib at ``symprec`` (Å); (0, "?") on failure."""
    import warnings

    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():  # spglib 2.x deprecation chatter about its error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        data = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if data is None:
        return 0, "?"
    return int(data.number), str(data.international)


@lru_cache(maxsize=None)
def _wyckoff_dof(number: int) -> dict[str, int]:
    """Free fractional coordinates of each Wyckoff letter of space group ``number`` (pyxtal)."""
    from pyxtal.symmetry import Group

    return {w.letter: int(w.get_dof()) for w in Group(number).Wyckoff_positions}


def fixed_site_key(atoms: Atoms, symprec: float = 0.1) -> tuple | None:
    """A key of a structure whose atoms all sit on Wyckoff positions without free coordinates
    (spglib at ``symprec`` Å), None otherwise.

    Such a structure is fixed by its space group, its occupied site types and its lattice
    parameters; the key is (space-group number, atoms in the primitive cell, sorted (element,
    site symmetry, orbit size)), which does not depend on the origin choice (diamond on 8a or
    8b gives the same key). Equal keys are necessary, not sufficient, for two structures to be
    the same up to the lattice (confirm with ``StructureMatcher``).
    """
    import warnings

    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        data = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if data is None:
        return None
    dof = _wyckoff_dof(int(data.number))
    orbits: dict[int, list[int]] = {}
    for i, rep in enumerate(data.equivalent_atoms):
        orbits.setdefault(int(rep), []).append(i)
    if any(dof.get(data.wyckoffs[rep], 1) > 0 for rep in orbits):
        return None
    symbols = atoms.get_chemical_symbols()
    sites = sorted((symbols[rep], str(data.site_symmetry_symbols[rep]), len(members))
                   for rep, members in orbits.items())
    n_primitive = len(set(int(k) for k in data.mapping_to_primitive))
    return (int(data.number), n_primitive, tuple(sites))


MATCHER_SETTINGS = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5, "scale": True}
"""pymatgen ``StructureMatcher`` tolerances of every duplicate check (lengths fractional, angles °;
volumes scaled to each other first)."""


@lru_cache(maxsize=1)
def structure_matcher():
    """The one ``StructureMatcher`` (:data:`MATCHER_SETTINGS`)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**MATCHER_SETTINGS)


class Deduplicator:
    """Distinct structures seen so far; :meth:`add` returns the index of an earlier duplicate, or None.

    Two structures are duplicates when :func:`structure_matcher` matches them. To keep the check
    cheap for thousands of structures, only structures with the same ``key(atoms)`` are compared
    (e.g. the space group, or :func:`fixed_site_key`; no key function: all are compared), and, when
    ``energy_tol`` (eV/atom) is given, only those whose energies per atom differ by less. A structure
    whose key is None is never a duplicate and is not remembered.
    """

    def __init__(self, key=None, energy_tol: float | None = None):
        self.key = key
        self.energy_tol = energy_tol
        self.count = 0
        self._buckets: dict = {}  # key -> [(index, energy per atom or None, pymatgen Structure)]

    def add(self, atoms: Atoms, energy_per_atom: float | None = None) -> int | None:
        """Remember ``atoms`` unless it duplicates an earlier structure; returns that structure's index."""
        key = self._key(atoms)
        if key is None and self.key is not None:
            return None
        index, structure = self._find(key, atoms, energy_per_atom)
        if index is None:
            from pymatgen.io.ase import AseAtomsAdaptor

            structure = structure if structure is not None else AseAtomsAdaptor.get_structure(atoms)
            self._buckets.setdefault(key, []).append((self.count, energy_per_atom, structure))
            self.count += 1
        return index

    def _key(self, atoms: Atoms):
        return None if self.key is None else self.key(atoms)

    def _find(self, key, atoms: Atoms, energy_per_atom: float | None):
        from pymatgen.io.ase import AseAtomsAdaptor

        structure = None
        for index, energy, other in self._buckets.get(key, ()):
            if self.energy_tol is not None and abs(energy - energy_per_atom) > self.energy_tol:
                continue
            if structure is None:
                structure = AseAtomsAdaptor.get_structure(atoms)
            if structure_matcher().fit(structure, other):
                return index, structure
        return None, structure


def space_group_number(atoms: Atoms) -> int:
    """The spglib space-group number at the default tolerance (a :class:`Deduplicator` key)."""
    return space_group(atoms)[0]
