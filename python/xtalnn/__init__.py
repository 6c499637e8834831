"""xtalnn: neural-network interatomic potentials and crystal structure search.

Units throughout: energies in eV, lengths in Å, forces in eV/Å, stress in eV/Å³.
"""

__version__ = "0.1.0"
