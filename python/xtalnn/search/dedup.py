"""Duplicate detection (pymatgen ``StructureMatcher``) and spglib symmetry."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class Archive:
    """Distinct structures seen so far; ``add`` returns the index of an existing duplicate.

    Two structures are duplicates when their energies per atom differ by less than
    ``energy_tol`` (eV/atom) and pymatgen's ``StructureMatcher`` (default tolerances) matches
    them (after scaling to the same volume).
    """

    energy_tol: float = 0.005
    entries: list[tuple[float, object]] = field(default_factory=list)
    _matcher: object = None

    def find(self, atoms: Atoms, energy_per_atom: float) -> int | None:
        """Index of a matching archived structure, or None."""
        from pymatgen.io.ase import AseAtomsAdaptor

        structure = None
        for k, (energy, other) in enumerate(self.entries):
            if abs(energy - energy_per_atom) > self.energy_tol:
                continue
            if structure is None:
                structure = AseAtomsAdaptor.get_structure(atoms)
            if self.matcher.fit(structure, other):
                return k
        return None

    def add(self, atoms: Atoms, energy_per_atom: float) -> int | None:
        """Archive ``atoms`` unless it duplicates an entry; returns the duplicate's index."""
        from pymatgen.io.ase import AseAtomsAdaptor

        k = self.find(atoms, energy_per_atom)
        if k is None:
            self.entries.append((energy_per_atom, AseAtomsAdaptor.get_structure(atoms)))
        return k

    @property
    def matcher(self):
        if self._matcher is None:
            from pymatgen.analysis.structure_matcher import StructureMatcher

            self._matcher = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, scale=True)
        return self._matcher
