"""Duplicate detection (pymatgen ``StructureMatcher``) and spglib symmetry."""

from __future__ import annotations

from dataclasses import dataclass, field

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
