"""The seven crystal systems: their space groups and lattice constraints.

Every population member is kept in its system's *standard orientation* (``ase.geometry.
cellpar_to_cell``: a along x, b in the xy plane), in which each constraint is linear in the cell
matrix, so that averaging two parents' cells (crossover) and the allowed strains below keep it:

============== ================================ =============================================
system         cell parameters                  allowed symmetric strains (Cartesian)
============== ================================ =============================================
cubic          a = b = c, α = β = γ = 90°       e·I
tetragonal     a = b, α = β = γ = 90°           diag(e1, e1, e3)
orthorhombic   α = β = γ = 90°                  diag(e1, e2, e3)
hexagonal      a = b, α = β = 90°, γ = 120°     diag(e1, e1, e3)
trigonal       a = b, α = β = 90°, γ = 120°     diag(e1, e1, e3)   (hexagonal axes)
monoclinic     α = γ = 90° (unique axis b)      diag(e1, e2, e3) + e4 (xz + zx)
triclinic      none                             any
============== ================================ =============================================

Trigonal cells come in two settings, told apart by their cell (:func:`trigonal_setting`): hexagonal
axes (P groups, and R groups whose atom count fills the 3-fold centred cell) or the primitive
rhombohedral cell of the R groups (a = b = c, α = β = γ; the 3-fold axis n along a + b + c), whose
allowed strains are e1·I + e2·n nᵀ. Lengths in Å, angles in degrees.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.geometry import cellpar_to_cell

CRYSTAL_SYSTEMS: tuple[str, ...] = (
    "cubic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "orthorhombic",
    "monoclinic",
    "triclinic",
)

SPACE_GROUPS: dict[str, range] = {
    "triclinic": range(1, 3),
    "monoclinic": range(3, 16),
    "orthorhombic": range(16, 75),
    "tetragonal": range(75, 143),
    "trigonal": range(143, 168),
    "hexagonal": range(168, 195),
    "cubic": range(195, 231),
}

RHOMBOHEDRAL_GROUPS: tuple[int, ...] = (146, 148, 155, 160, 161, 166, 167)
"""The trigonal space groups with a rhombohedral lattice (R3, R-3, R32, R3m, R3c, R-3m, R-3c)."""

ANGLE_RANGE = (55.0, 125.0)
"""Cell angles (degrees) outside this range are reduced (monoclinic/triclinic) or rejected."""


def check_system(system: str) -> str:
    """Return ``system`` if it is one of :data:`CRYSTAL_SYSTEMS`, else raise ValueError."""
    if system not in CRYSTAL_SYSTEMS:
        raise ValueError(f"unknown crystal system {system!r}; expected one of {CRYSTAL_SYSTEMS}")
    return system


def system_of_space_group(number: int) -> str:
    """Crystal system of an international space-group number (1–230)."""
    for name, numbers in SPACE_GROUPS.items():
        if number in numbers:
            return name
    raise ValueError(f"space group {number} outside 1..230")


def trigonal_setting(cellpar) -> str:
    """``"rhombohedral"`` for a cell near a = b = c, α = β = γ (within 10 % and 10°) that is not near
    hexagonal axes (α = β = 90°, γ = 120°), else ``"hexagonal"``."""
    a, b, c, al, be, ga = (float(x) for x in cellpar)
    lengths, angles = np.array([a, b, c]), np.array([al, be, ga])
    near_hexagonal = abs(ga - 120.0) < 10.0 and abs(al - 90.0) < 10.0 and abs(be - 90.0) < 10.0
    equal = np.ptp(lengths) < 0.1 * lengths.mean() and np.ptp(angles) < 10.0
    return "rhombohedral" if equal and not near_hexagonal else "hexagonal"


def strain_basis(system: str, cell=None) -> np.ndarray:
    """Orthonormal basis (Frobenius) of the allowed symmetric strains, shape (k, 3, 3). A trigonal
    ``cell`` (3×3, Å) in the rhombohedral setting has its own: I and n nᵀ − I/3, n ∥ a + b + c."""
    check_system(system)
    if system == "trigonal" and cell is not None:
        cell = np.asarray(cell, float)
        if trigonal_setting(_cellpar(cell)) == "rhombohedral":
            n = cell.sum(axis=0) / np.linalg.norm(cell.sum(axis=0))
            axial = np.outer(n, n) - np.eye(3) / 3
            return np.array([np.eye(3) / np.sqrt(3), axial / np.linalg.norm(axial)])

    def e(*pairs: tuple[int, int]) -> np.ndarray:
        m = np.zeros((3, 3))
        for i, j in pairs:
            m[i, j] = m[j, i] = 1.0
        return m / np.linalg.norm(m)

    xx, yy, zz = e((0, 0)), e((1, 1)), e((2, 2))
    if system == "cubic":
        basis = [e((0, 0), (1, 1), (2, 2))]
    elif system in ("tetragonal", "hexagonal", "trigonal"):
        basis = [e((0, 0), (1, 1)), zz]
    elif system == "orthorhombic":
        basis = [xx, yy, zz]
    elif system == "monoclinic":
        basis = [xx, yy, zz, e((0, 2))]
    else:
        basis = [xx, yy, zz, e((1, 2)), e((0, 2)), e((0, 1))]
    return np.array(basis)


def _cellpar(cell: np.ndarray) -> np.ndarray:
    from ase.geometry import cell_to_cellpar

    return cell_to_cellpar(cell)


def project_strain(matrix: np.ndarray, system: str, cell=None) -> np.ndarray:
    """Project a 3×3 matrix (strain, stress or cell force) onto the system's allowed strains (those of
    ``cell``'s setting, for a trigonal cell: :func:`strain_basis`)."""
    m = 0.5 * (np.asarray(matrix, float) + np.asarray(matrix, float).T)
    basis = strain_basis(system, cell)
    coeff = np.einsum("kij,ij->k", basis, m)
    return np.einsum("k,kij->ij", coeff, basis)


def constrained_cellpar(cellpar: np.ndarray, system: str) -> np.ndarray:
    """Nearest cell parameters (a, b, c in Å; α, β, γ in degrees) obeying ``system``."""
    check_system(system)
    a, b, c, al, be, ga = (float(x) for x in cellpar)
    if system == "cubic":
        m = (a * b * c) ** (1 / 3)
        return np.array([m, m, m, 90.0, 90.0, 90.0])
    if system == "tetragonal":
        m = np.sqrt(a * b)
        return np.array([m, m, c, 90.0, 90.0, 90.0])
    if system == "trigonal" and trigonal_setting(cellpar) == "rhombohedral":
        m = (a * b * c) ** (1 / 3)
        angle = (al + be + ga) / 3
        return np.array([m, m, m, angle, angle, angle])
    if system in ("hexagonal", "trigonal"):
        m = np.sqrt(a * b)
        return np.array([m, m, c, 90.0, 90.0, 120.0])
    if system == "orthorhombic":
        return np.array([a, b, c, 90.0, 90.0, 90.0])
    if system == "monoclinic":
        return np.array([a, b, c, 90.0, be, 90.0])
    return np.array([a, b, c, al, be, ga])


def impose(atoms: Atoms, system: str, keep_volume: bool = True) -> Atoms:
    """Return a copy of ``atoms`` on the nearest cell obeying ``system``, in standard orientation.

    Fractional coordinates are kept. With ``keep_volume`` the cell is rescaled to the input
    volume (Å³). Monoclinic and triclinic cells are first reduced (see :func:`reduce_cell`).
    """
    out = reduce_cell(atoms, system)
    volume = out.get_volume()
    scaled = out.get_scaled_positions(wrap=True)
    cell = cellpar_to_cell(constrained_cellpar(out.cell.cellpar(), system))
    if keep_volume:
        cell *= (volume / abs(np.linalg.det(cell))) ** (1 / 3)
    out.set_cell(cell, scale_atoms=False)
    out.set_scaled_positions(scaled)
    out.pbc = True
    return out


def reduce_cell(atoms: Atoms, system: str) -> Atoms:
    """Lattice reduction that keeps the system: Niggli for triclinic; Gauss reduction of the
    a–c plane (b fixed) for monoclinic; unchanged otherwise. Returns a copy."""
    out = atoms.copy()
    if system == "triclinic":
        from ase.build import niggli_reduce

        out.pbc = True
        niggli_reduce(out)
    elif system == "monoclinic":
        cell = np.array(out.cell)
        a, c = cell[0].copy(), cell[2].copy()
        op = np.eye(3, dtype=int)  # rows: new vectors as integer combinations of old
        for _ in range(50):  # 2D Lagrange–Gauss reduction of (a, c)
            if np.dot(a, a) > np.dot(c, c):
                a, c = c, a
                op[[0, 2]] = op[[2, 0]]
            mu = int(np.rint(np.dot(a, c) / np.dot(a, a)))
            if mu == 0:
                break
            c = c - mu * a
            op[2] = op[2] - mu * op[0]
        # keep a right-handed cell with an obtuse-or-right β convention-free: just fix handedness
        if np.linalg.det(op) < 0:
            op[2] = -op[2]
            c = -c
        scaled = out.get_scaled_positions()
        new_cell = op @ cell
        new_scaled = scaled @ np.linalg.inv(op)
        out.set_cell(new_cell, scale_atoms=False)
        out.set_scaled_positions(new_scaled % 1.0)
    return out


def obeys(atoms: Atoms, system: str, length_tol: float = 1e-6, angle_tol: float = 1e-4) -> bool:
    """True when the cell parameters of ``atoms`` satisfy ``system``'s equalities.

    ``length_tol`` is relative, ``angle_tol`` in degrees. Orientation is not checked.
    """
    par = atoms.cell.cellpar()
    want = constrained_cellpar(par, system)
    # constrained_cellpar averages equal lengths geometrically; compare to the actual ones
    a, b, c = par[:3]
    lengths_ok = {
        "cubic": np.isclose(a, b, rtol=length_tol) and np.isclose(b, c, rtol=length_tol),
        "tetragonal": np.isclose(a, b, rtol=length_tol),
        "hexagonal": np.isclose(a, b, rtol=length_tol),
        "trigonal": np.isclose(a, b, rtol=length_tol) and (
            trigonal_setting(par) == "hexagonal" or np.isclose(b, c, rtol=length_tol)),
    }.get(system, True)
    return bool(lengths_ok and np.allclose(par[3:], want[3:], atol=angle_tol))


def angles_ok(atoms: Atoms) -> bool:
    """True when all cell angles lie in :data:`ANGLE_RANGE` (γ = 120° always allowed)."""
    angles = atoms.cell.cellpar()[3:]
    lo, hi = ANGLE_RANGE
    return bool(np.all((angles >= lo - 1e-9) & (angles <= hi + 1e-9)))
