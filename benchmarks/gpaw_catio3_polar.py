"""Is the CaTiO3 GPAW campaign's polar winner below GPAW's cubic perovskite for real (issue 19)?

Energies on the cubic cell's own k mesh (6x6x6, Gamma-centred), 800 eV, PBE, SCF to 1e-7 eV/electron: the cubic
perovskite at GPAW's optimum (a = 3.888 Å), the same cell with Ti moved 0.08 Å along z and along [111] (is cubic
a local minimum?), and the first-ranked CIF of every system of a finished campaign's final ranking.

    OMP_NUM_THREADS=1 python benchmarks/gpaw_catio3_polar.py /tmp/catio3-gpaw800     # ~10 min on one core
"""
import glob
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from ase.io import read
from gpaw_stress import CONV, catio3  # this folder is on sys.path when run as a script

A_CUBIC = 3.888  # Å, GPAW's cubic optimum at 800 eV (benchmarks/campaign_out/catio3-gpaw.json)


def scf(atoms, label: str) -> float:
    """GPAW energy per atom (eV/atom) on the cubic cell's 6×6×6 mesh at 800 eV; prints it with its time."""
    from gpaw import GPAW, PW

    atoms = atoms.copy()
    atoms.calc = GPAW(mode=PW(800), xc="PBE", kpts={"size": (6, 6, 6), "gamma": True}, txt=None, convergence=CONV)
    t = time.perf_counter()
    e = atoms.get_potential_energy() / len(atoms)
    print(f"{label:40s} E/atom {e:.5f}  {time.perf_counter() - t:.0f} s", flush=True)
    return e


def off_centred(atoms, shift):
    """``atoms`` with the Ti atom (index 1) moved by ``shift`` (Å)."""
    out = atoms.copy()
    positions = out.get_positions()
    positions[1] += shift
    out.set_positions(positions)
    return out


def main() -> None:
    cubic = catio3(A_CUBIC)
    e0 = scf(cubic, f"cubic a={A_CUBIC}")
    for shift, label in ((np.array([0, 0, 0.08]), "Ti +0.08 Å along z"),
                         (np.array([1, 1, 1]) * 0.08 / 3 ** 0.5, "Ti +0.08 Å along [111]")):
        print(f"   dE = {1000 * (scf(off_centred(cubic, shift), 'cubic, ' + label) - e0):+.2f} meV/atom", flush=True)
    folder = sys.argv[1] if len(sys.argv) > 1 else "/tmp/catio3-gpaw800"
    for path in sorted(glob.glob(os.path.join(folder, "final", "*", "01-*.cif"))):
        name = f"{os.path.basename(os.path.dirname(path))} {os.path.basename(path)}"
        print(f"   dE = {1000 * (scf(read(path), name) - e0):+.2f} meV/atom", flush=True)


if __name__ == "__main__":
    main()
