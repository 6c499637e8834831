"""ASE calculator for xtalnn potential files (TorchScript, see :mod:`xtalnn.potential.model`).

    from xtalnn.potential.calculator import XtalnnCalculator
    atoms.calc = XtalnnCalculator("model.pt")
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Energies in eV, forces in eV/Å, stress in eV/Å³ (Voigt order xx, yy, zz, yz, xz, xy, ASE's sign:
σ = (1/V) ∂E/∂ε, positive under tension). Forces are −∂E/∂x and the stress the derivative with
respect to a symmetric homogeneous strain ε applied to positions and cell, both by autograd through
the descriptor op. Structures whose descriptors leave the training range get a warning naming the
atoms; ``calc.results["n_extrapolating"]`` counts them (``results["extrapolating_atoms"]`` lists them).

Committee model files (``xtalnn train --committee N``) give the committee mean as energy, forces and
stress, and its spread (population statistics over the N members, as DP-GEN's model deviation)::

    results["energy_std"]           σ_E = std_m E_m (eV)
    results["committee_energies"]   E_m (eV) [N]
    results["forces_std"]           std_m F_m,i,c (eV/Å) [n_atoms, 3]
    results["force_deviation"]      ε_i = sqrt(mean_m |F_m,i − F̄_i|²) (eV/Å) [n_atoms]
    results["max_force_deviation"]  max_i ε_i (eV/Å)

Each member's forces cost one more backward pass through the descriptor op (the descriptors
themselves are computed once).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from xtalnn.neighbors import check_atoms, neighbor_list_tensors


class ExtrapolationWarning(UserWarning):
    """Some atoms' descriptors lie outside the range seen in training."""


class XtalnnCalculator(Calculator):
    """Energy, free energy, per-atom energies, forces and stress from an xtalnn model file.

    Parameters
    ----------
    model_path : the ``.pt`` file written by ``xtalnn train`` / ``xtalnn export``.
    extrapolation_tolerance : relative slack on the training descriptor range (fraction of max − min)
        before an atom counts as extrapolating.
    warn : emit an :class:`ExtrapolationWarning` when atoms extrapolate.
    threads : ``torch.set_num_threads`` for this process (None leaves it).
    spread : for a committee model file, also compute the members' spread on every call (one backward
        pass per member); ``False`` gives the mean alone at the cost of a single model's backward pass.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    committee_properties = ["energy_std", "committee_energies", "forces_std", "force_deviation",
                            "max_force_deviation"]
    default_parameters: dict = {}

    def __init__(self, model_path, extrapolation_tolerance: float = 1e-6, warn: bool = True,
                 threads: int | None = None, spread: bool = True, **kwargs):
        super().__init__(**kwargs)
        from xtalnn.potential.modelfile import load_model

        self.model_path = str(model_path)
        self.model, self.metadata = load_model(self.model_path)
        self.elements = list(self.model.elements)  # the module's attributes: what pair_style xtalnn reads
        self.cutoff = float(self.model.cutoff)
        self._index = {symbol: k for k, symbol in enumerate(self.elements)}
        # files written before committees have no n_members: one network
        self.n_members = int(self.model.n_members) if hasattr(self.model, "n_members") else 1
        self.spread = bool(spread) and self.n_members > 1
        if self.spread:
            self.implemented_properties = self.implemented_properties + self.committee_properties
        self.extrapolation_tolerance = float(extrapolation_tolerance)
        self.warn = warn
        if threads:
            torch.set_num_threads(int(threads))

    def species_of(self, atoms) -> torch.Tensor:
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(self._index))
        if unknown:
            raise ValueError(f"element(s) {unknown} not in the model {self.model_path} "
                             f"(it knows {self.elements})")
        return torch.tensor([self._index[s] for s in symbols], dtype=torch.int64)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        check_atoms(atoms)
        species = self.species_of(atoms)
        n = len(atoms)
        positions = torch.tensor(atoms.get_positions(), dtype=torch.float64)
        cell = torch.tensor(np.asarray(atoms.get_cell()), dtype=torch.float64)
        pbc = torch.tensor(np.asarray(atoms.get_pbc(), dtype=bool))
        edge_index, shifts = neighbor_list_tensors(positions, cell, pbc, self.cutoff)

        volume = abs(float(np.linalg.det(cell.numpy())))
        want_stress = "stress" in properties
        if want_stress and volume <= 0.0:
            raise PropertyNotImplementedError("stress needs a cell with a non-zero volume")
        positions.requires_grad_(True)
        strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
        deform = torch.eye(3, dtype=torch.float64) + 0.5 * (strain + strain.T)
        x = positions @ deform
        edge_vec = x[edge_index[1]] - x[edge_index[0]] + shifts.to(torch.float64) @ (cell @ deform)

        G = self.model.descriptors(species, edge_index, edge_vec, n)
        if self.spread:
            atomic, grad_x, grad_eps = self._committee(species, G, positions, strain)
        else:
            atomic = self.model.atomic_energies(species, G)
            grad_x, grad_eps = torch.autograd.grad(atomic.sum(), [positions, strain])

        e = float(atomic.detach().sum())
        self.results["energy"] = e
        self.results["free_energy"] = e
        self.results["energies"] = atomic.detach().numpy().copy()
        self.results["forces"] = -grad_x.numpy().copy()
        if volume > 0.0:
            s = grad_eps.numpy() / volume
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        self._check_range(species, G.detach())

    def _committee(self, species, G, positions, strain):
        """Mean atomic energies and the mean's gradients from the members' (one backward pass each,
        through the one descriptor pass); the members' spread into ``results``."""
        members = self.model.member_energies(species, G)  # [M, n] eV
        energies = members.sum(1)
        grads_x, grads_eps = [], []
        for m in range(self.n_members):
            gx, ge = torch.autograd.grad(energies[m], [positions, strain], retain_graph=m < self.n_members - 1)
            grads_x.append(gx)
            grads_eps.append(ge)
        forces = -torch.stack(grads_x).numpy()  # [M, n, 3] eV/Å
        deviation = np.sqrt(((forces - forces.mean(0)) ** 2).sum(-1).mean(0))
        e = energies.detach().numpy()
        self.results["committee_energies"] = e.copy()
        self.results["energy_std"] = float(e.std())
        self.results["forces_std"] = forces.std(0)
        self.results["force_deviation"] = deviation
        self.results["max_force_deviation"] = float(deviation.max()) if len(deviation) else 0.0
        return members.detach().mean(0), torch.stack(grads_x).mean(0), torch.stack(grads_eps).mean(0)

    def _check_range(self, species: torch.Tensor, G: torch.Tensor) -> None:
        outside = self.model.extrapolating(species, G, self.extrapolation_tolerance)
        atoms_out = torch.nonzero(outside).flatten().tolist()
        self.results["n_extrapolating"] = len(atoms_out)
        self.results["extrapolating_atoms"] = np.array(atoms_out, dtype=int)
        if atoms_out and self.warn:
            symbols = self.atoms.get_chemical_symbols()
            shown = ", ".join(f"{i} ({symbols[i]})" for i in atoms_out[:20])
            more = f" and {len(atoms_out) - 20} more" if len(atoms_out) > 20 else ""
            warnings.warn(f"{len(atoms_out)} of {len(symbols)} atoms have descriptors outside the training "
                          f"range of {self.model_path}: atoms {shown}{more}; the prediction is an extrapolation",
                          ExtrapolationWarning, stacklevel=3)
