"""An empirical pair potential that needs no training: repulsive wall + weak attraction.

It ranks structures when no machine-learned potential exists yet (the first cycle of the
active-learning search). Every pair of atoms i, j interacts through a Lennard-Jones-shaped
curve whose minimum sits at the sum of the tabulated covalent radii
``r0 = scale * (r_cov[Z_i] + r_cov[Z_j])`` (radii from ``ase.data.covalent_radii``, Å)::

    phi(r) = epsilon * [ (r0 / r)**12 - 2 * (r0 / r)**6 ]          (eV)

shifted so that both energy and force go smoothly to zero at ``r_cut = cutoff * r0``
("shifted-force" form). ``epsilon`` (eV per pair, default 0.1) is small: the attraction only
holds a structure together; the steep r**-12 wall is what the model is for.

What it can tell apart
----------------------
* overlapping atoms (a pair much closer than r0 costs eV to keV) from sane structures;
* exploded / isolated structures (no neighbours inside ``r_cut``: energy ~0) from bound ones;
* denser, better-coordinated packings from open ones, at fixed composition.

What it cannot tell apart
-------------------------
* bond directionality: it is a pair potential, so it prefers close packing (fcc/hcp-like,
  12 neighbours) and ranks diamond Si *above* (worse than) denser metallic packings — the
  opposite of the truth for covalent solids;
* charge transfer and ionic ordering (no Coulomb term: Ti/O antisite orderings look alike
  when the radii are alike), magnetism, electronic effects (metal vs insulator), polymorphs
  whose neighbour distances agree within a few percent (their energies differ by meV only).

Use it as a coarse filter, never as a ranking of real polymorphs. Energies in eV, forces in
eV/Å, stress in eV/Å³ (ASE sign convention: positive = tensile).
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.data import covalent_radii
from ase.neighborlist import neighbor_list
from ase.stress import full_3x3_to_voigt_6_stress


class EmpiricalPairPotential(Calculator):
    """Repulsive wall + weak attraction from covalent radii (see the module docstring).

    Parameters
    ----------
    epsilon : float
        Well depth per pair (eV).
    scale : float
        Multiplies the sum of covalent radii to give the pair's equilibrium distance r0 (Å).
    cutoff : float
        Interaction range in units of r0 (dimensionless, > 1).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    default_parameters = {"epsilon": 0.1, "scale": 1.0, "cutoff": 2.0}

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        eps = float(self.parameters.epsilon)
        numbers = atoms.numbers
        radii = covalent_radii[numbers] * float(self.parameters.scale)
        rc_factor = float(self.parameters.cutoff)
        # per-pair cutoff: neighbor_list with a per-atom radius list gives r < rc_i + rc_j
        per_atom_cut = radii * rc_factor
        i, j, d, D = neighbor_list("ijdD", atoms, per_atom_cut.tolist(), self_interaction=False)
        r0 = radii[i] + radii[j]
        rc = r0 * rc_factor
        inside = d < rc
        i, j, d, D, r0, rc = i[inside], j[inside], d[inside], D[inside], r0[inside], rc[inside]
        phi, dphi = _lj(d, r0, eps)
        phi_c, dphi_c = _lj(rc, r0, eps)
        pair_e = phi - phi_c - (d - rc) * dphi_c  # shifted force: E(rc) = E'(rc) = 0
        pair_de = dphi - dphi_c  # dE/dr
        # each pair appears twice (i->j and j->i): half to each
        energies = np.zeros(len(atoms))
        np.add.at(energies, i, 0.5 * pair_e)
        unit = D / d[:, None]
        fvec = pair_de[:, None] * unit  # dE/dx_j for the i->j term (x_j moves r)
        forces = np.zeros((len(atoms), 3))
        np.add.at(forces, i, 0.5 * fvec)
        np.add.at(forces, j, -0.5 * fvec)
        # stress = (1/V) dE/d(strain); each directed pair carries half of its pair energy
        dE_dstrain = 0.5 * (D.T @ fvec)
        energy = float(energies.sum())
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = energies
        self.results["forces"] = forces
        if atoms.cell.rank == 3 and all(atoms.pbc):
            stress = dE_dstrain / atoms.get_volume()
            self.results["stress"] = full_3x3_to_voigt_6_stress(0.5 * (stress + stress.T))


def _lj(r, r0, eps):
    """Lennard-Jones in well form: energy (eV) and derivative dE/dr (eV/Å)."""
    x6 = (r0 / r) ** 6
    e = eps * (x6 * x6 - 2.0 * x6)
    de = eps * (-12.0 * x6 * x6 + 12.0 * x6) / r
    return e, de
