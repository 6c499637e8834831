"""The model-file contract in practice: load a potential with torch alone (plus the op library), read its
provenance without torch, and compute energy and forces of rutile_relaxed.cif from an edge list."""

import json
import zipfile

import numpy as np
import torch
from ase.io import read

import xtalnn.ops
from xtalnn.neighbors import neighbor_list_tensors

torch.ops.load_library(xtalnn.ops.library_path())        # the op library; no other xtalnn class is needed
model = torch.jit.load("tio2.pt")
print(model.elements, model.cutoff, model.descriptor_kind, model.format_version, model.n_members)

with zipfile.ZipFile("tio2.pt") as archive:               # the provenance, readable without torch
    name = next(n for n in archive.namelist() if n.endswith("extra/xtalnn_potential.json"))
    meta = json.loads(archive.read(name))
print(meta["format_version"], meta["units"], meta["training_data"]["fingerprint"][:12], sorted(meta))

atoms = read("rutile_relaxed.cif")
species = torch.tensor([model.elements.index(s) for s in atoms.get_chemical_symbols()])
positions = torch.tensor(atoms.positions, requires_grad=True)
cell = torch.tensor(np.asarray(atoms.cell))
edge_index, shifts = neighbor_list_tensors(positions.detach(), cell, torch.tensor(atoms.pbc), model.cutoff)
edge_vec = positions[edge_index[1]] - positions[edge_index[0]] + shifts.to(torch.float64) @ cell
atomic_energy = model(species, edge_index, edge_vec, len(atoms))    # float64 [n_local], eV
energy = atomic_energy.sum()
forces = -torch.autograd.grad(energy, positions)[0]
print(f"E = {energy.item():.4f} eV, max |F| = {forces.abs().max().item():.2e} eV/Å")
