"""The known low-energy structures of the benchmark chemistries (literature Wyckoff positions), shared by
benchmarks/csp.py (all of them: the success targets) and benchmarks/campaign.py (the ground-state
candidates it relaxes with the oracle for comparison)."""

from __future__ import annotations


def known_structures(reduced: str) -> list:
    """(name, conventional cell) of the known low-energy structures of a reduced formula (Si, TiO2,
    CaTiO3); lattice parameters in Å near experiment, relaxed later by each reference itself."""
    from ase.build import bulk
    from ase.spacegroup import crystal

    if reduced == "Si":
        return [
            ("diamond", bulk("Si", "diamond", a=5.43, cubic=True)),
            # hexagonal diamond, P6_3/mmc, Si on 4f (1/3, 2/3, 1/16); degenerate with diamond under
            # Stillinger-Weber, whose cutoff sees first neighbours only
            ("lonsdaleite", crystal("Si", basis=[(1 / 3, 2 / 3, 0.0625)], spacegroup=194,
                                    cellpar=[3.84, 3.84, 6.27, 90, 90, 120])),
        ]
    if reduced == "TiO2":
        return [
            ("rutile", crystal(["Ti", "O"], basis=[(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                               cellpar=[4.594, 4.594, 2.959, 90, 90, 90])),
            ("anatase", crystal(["Ti", "O"], basis=[(0, 0, 0), (0, 0, 0.2081)], spacegroup=141,
                                cellpar=[3.785, 3.785, 9.514, 90, 90, 90])),
            # TiO2-II, alpha-PbO2 type (Simons & Dachille 1967)
            ("columbite", crystal(["Ti", "O"], basis=[(0, 0.171, 0.25), (0.286, 0.376, 0.412)], spacegroup=60,
                                  cellpar=[4.531, 5.498, 4.900, 90, 90, 90])),
            # Meagher & Lager 1979
            ("brookite", crystal(["Ti", "O", "O"], basis=[(0.1289, 0.0972, 0.8628), (0.0095, 0.1491, 0.1835),
                                                          (0.2314, 0.1110, 0.5366)], spacegroup=61,
                                 cellpar=[9.184, 5.447, 5.145, 90, 90, 90])),
        ]
    if reduced == "CaTiO3":
        return [
            ("cubic Pm-3m", crystal(["Ca", "Ti", "O"], basis=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)],
                                    spacegroup=221, cellpar=[3.89, 3.89, 3.89, 90, 90, 90])),
            # high-temperature tetragonal CaTiO3 (a0a0c- tilts)
            ("I4/mcm", crystal(["Ca", "Ti", "O", "O"], basis=[(0, 0.5, 0.25), (0, 0, 0), (0, 0, 0.25),
                                                              (0.21, 0.71, 0)], spacegroup=140,
                               cellpar=[5.45, 5.45, 7.76, 90, 90, 90])),
            # a0a0c+ tilts: the 10-atom tilt pattern nearest Pnma's in-phase tilt
            ("P4/mbm", crystal(["Ca", "Ti", "O", "O"], basis=[(0, 0.5, 0.5), (0, 0, 0), (0, 0, 0.5),
                                                              (0.21, 0.71, 0)], spacegroup=127,
                               cellpar=[5.45, 5.45, 3.88, 90, 90, 90])),
            # a-a-a- tilts (the LaAlO3 type): not a CaTiO3 phase, but the lowest 10-atom perovskite of some
            # references; 30 atoms in hexagonal axes, 10 in the primitive rhombohedral cell
            ("R-3c", crystal(["Ca", "Ti", "O"], basis=[(0, 0, 0.25), (0, 0, 0), (0.55, 0, 0.25)], spacegroup=167,
                             cellpar=[5.45, 5.45, 13.35, 90, 90, 120])),
            # Sasaki et al. 1987 (Pbnm a=5.3796, b=5.4423, c=7.6401) in the standard Pnma setting
            ("Pnma", crystal(["Ca", "Ti", "O", "O"], basis=[(0.0349, 0.25, 0.9935), (0.5, 0, 0),
                                                            (0.4838, 0.25, 0.0714), (0.2888, 0.0371, 0.7108)],
                             spacegroup=62, cellpar=[5.4423, 7.6401, 5.3796, 90, 90, 90])),
        ]
    raise ValueError(f"no known structures for {reduced}: add them to benchmarks/known.py")
