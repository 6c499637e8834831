"""The potential tutorial, ASE part: relax rutile with the trained model (cell included), then 200 steps
of NVT molecular dynamics on a 3x3x4 supercell (216 atoms). Run it next to tio2.pt:
    python ase_rutile.py tio2.pt
"""

import sys
import time

import numpy as np

from ase import units
from ase.filters import FrechetCellFilter
from ase.io import write
from ase.md.langevin import Langevin

try:
    from ase.md.velocitydistribution import thermalize_momenta  # ASE >= 3.29
except ImportError:
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
from ase.optimize import BFGS
from ase.spacegroup import crystal

from xtalnn.potential.calculator import XtalnnCalculator

model = sys.argv[1] if len(sys.argv) > 1 else "tio2.pt"
rutile = crystal(["Ti", "O"], basis=[(0, 0, 0), (0.305, 0.305, 0)], spacegroup=136,
                 cellpar=[4.59, 4.59, 2.96, 90, 90, 90])
rutile.calc = XtalnnCalculator(model)

t0 = time.perf_counter()
BFGS(FrechetCellFilter(rutile), logfile=None).run(fmax=0.01, steps=200)
a, _, c = rutile.cell.lengths()
print(f"relaxed rutile: a = {a:.3f} Å, c = {c:.3f} Å, E = {rutile.get_potential_energy() / len(rutile):.4f} eV/atom "
      f"({time.perf_counter() - t0:.1f} s)")
write("rutile_relaxed.cif", rutile)

supercell = rutile.repeat((3, 3, 4))
supercell.calc = XtalnnCalculator(model)
thermalize_momenta(supercell, temperature_K=600, rng=np.random.default_rng(0))
md = Langevin(supercell, timestep=1.0 * units.fs, temperature_K=600, friction=0.02, fixcm=False, logfile="md.log", loginterval=20)
t0 = time.perf_counter()
md.run(200)
seconds = time.perf_counter() - t0
print(f"MD: 200 steps of {len(supercell)} atoms in {seconds:.1f} s ({1e6 * seconds / 200 / len(supercell):.0f} µs/atom/step); "
      f"T = {supercell.get_temperature():.0f} K; atoms outside the training range: "
      f"{supercell.calc.results['n_extrapolating']}")
