"""Local relaxation of a candidate (positions and cell) that keeps its crystal system.

:class:`SystemCellFilter` is ASE's ``UnitCellFilter`` whose cell gradient is projected onto
the system's allowed strains (:func:`.systems.strain_basis`): with the cell in standard
orientation the deformation (I + ε) stays in that subspace, so every step obeys the system's
lattice constraints (optionally also the space group, with ``FixSymmetry``). At the end the
constraints are re-imposed to remove round-off, and the final energy is that of the returned
structure. Under an external pressure p the cell relaxes to zero stress minus p (the filter's
``scalar_pressure``) and the fitness is the enthalpy H = E + pV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import UnitCellFilter
from ase.units import GPa

from xtalnn.search.systems import impose, project_strain


class SystemCellFilter(UnitCellFilter):
    """``UnitCellFilter`` restricted to the strains a crystal system allows."""

    def __init__(self, atoms: Atoms, system: str, **kwargs):
        super().__init__(atoms, **kwargs)
        self.system = system

    def get_forces(self, **kwargs):
        forces = super().get_forces(**kwargs)
        n = len(self.atoms)
        forces[n:] = project_strain(forces[n:], self.system, self.atoms.cell)
        return forces


class EvaluationError(RuntimeError):
    """The calculator raised, or returned a non-finite energy, force or stress."""


@dataclass
class Relaxed:
    """A relaxed candidate: structure (with a SinglePointCalculator), energy (eV), calls, and the
    pressure (GPa) it relaxed under."""

    atoms: Atoms
    energy: float
    n_calls: int
    pressure: float = 0.0

    @property
    def energy_per_atom(self) -> float:
        """eV/atom."""
        return self.energy / len(self.atoms)

    @property
    def enthalpy_per_atom(self) -> float:
        """H / N = (E + pV) / N in eV/atom (the energy per atom at zero pressure)."""
        return enthalpy_per_atom(self.energy, self.atoms.get_volume(), len(self.atoms), self.pressure)


def enthalpy_per_atom(energy: float, volume: float, n_atoms: int, pressure: float) -> float:
    """(E + pV) / N in eV/atom from E in eV, V in Å³ and p in GPa."""
    return (energy + pressure * GPa * volume) / n_atoms


_OPTIMIZERS = ("BFGS", "FIRE", "LBFGS", "BFGSLineSearch")


def relax(
    atoms: Atoms,
    calculator: Calculator,
    system: str,
    steps: int = 60,
    fmax: float = 0.05,
    optimizer: str = "BFGS",
    keep_symmetry: bool = False,
    enabled: bool = True,
    pressure: float = 0.0,
) -> Relaxed:
    """Relax ``atoms`` with ``calculator`` under ``system``'s constraints; at most ``steps``.

    ``fmax`` in eV/Å (the cell part is the filter's scaled stress). ``pressure`` in GPa: the cell
    relaxes towards the stress −p (rank the result by :attr:`Relaxed.enthalpy_per_atom`). With
    ``enabled=False`` only a single point is computed (the paper's unrelaxed GA). Raises
    :class:`EvaluationError` when the calculator fails or returns non-finite numbers.
    """
    import ase.optimize

    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}")
    work = atoms.copy()
    work.calc = calculator
    calls = 0
    try:
        if enabled and steps > 0:
            if keep_symmetry:
                from ase.constraints import FixSymmetry

                work.set_constraint(FixSymmetry(work, symprec=1e-3))
            filt = SystemCellFilter(work, system, scalar_pressure=pressure * GPa)
            opt = getattr(ase.optimize, optimizer)(filt, logfile=None)
            _finite_guard(opt, filt)
            opt.run(fmax=fmax, steps=steps)
            calls = opt.nsteps + 1
            work.set_constraint()
        final = impose(work, system, keep_volume=True)
        final.calc = calculator
        energy = float(final.get_potential_energy())
        forces = final.get_forces()
        stress = final.get_stress()
        calls += 1
    except EvaluationError:
        raise
    except Exception as err:  # anything the calculator or optimiser raises
        raise EvaluationError(f"{type(err).__name__}: {err}") from err
    if not (np.isfinite(energy) and np.all(np.isfinite(forces)) and np.all(np.isfinite(stress))):
        raise EvaluationError(f"non-finite result (energy {energy})")
    final.calc = SinglePointCalculator(final, energy=energy, forces=forces, stress=stress)
    return Relaxed(final, energy, calls, pressure)


def _finite_guard(opt, filt) -> None:
    """Stop a relaxation as soon as the energy or forces become non-finite."""

    def check():
        if not np.all(np.isfinite(filt.atoms.get_forces())):  # cached by the calculator
            raise EvaluationError("non-finite forces during relaxation")

    opt.attach(check, interval=1)
