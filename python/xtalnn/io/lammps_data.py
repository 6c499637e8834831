"""LAMMPS data files (``units metal``, ``atom_style atomic``) written from ASE structures."""

from __future__ import annotations

from pathlib import Path

from ase import Atoms


def write_data(path, atoms, elements) -> Atoms:
    """Write periodic ``atoms`` as a LAMMPS data file (``units metal``, ``atom_style atomic``; atom type
    k is ``elements[k - 1]``, masses in g/mol) in LAMMPS's frame: the cell rotated to lower-triangular
    form (a along x, b in the xy plane), positions wrapped into it. Returns that rotated copy, whose
    forces (eV/Å) and stress are directly comparable with LAMMPS's."""
    from ase.data import atomic_masses, atomic_numbers

    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise ValueError(f"element(s) {unknown} are not among the atom types {list(elements)}")
    if not all(atoms.pbc):
        raise ValueError("write_data writes periodic cells only")
    cell, _ = atoms.cell.standard_form()
    rotated = atoms.copy()
    rotated.set_cell(cell, scale_atoms=True)
    rotated.wrap()
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = cell.tolist()
    lines = [f"xtalnn: {rotated.get_chemical_formula()}", "", f"{len(rotated)} atoms", f"{len(elements)} atom types",
             f"0 {lx!r} xlo xhi", f"0 {ly!r} ylo yhi", f"0 {lz!r} zlo zhi", f"{xy!r} {xz!r} {yz!r} xy xz yz",
             "", "Masses", ""]
    lines += [f"{k + 1} {float(atomic_masses[atomic_numbers[e]])!r}" for k, e in enumerate(elements)]
    lines += ["", "Atoms # atomic", ""]
    types = [list(elements).index(s) + 1 for s in rotated.get_chemical_symbols()]
    lines += [f"{i + 1} {t} {x!r} {y!r} {z!r}" for i, (t, (x, y, z)) in enumerate(zip(types, rotated.positions.tolist()))]
    Path(path).write_text("\n".join(lines) + "\n")
    return rotated
