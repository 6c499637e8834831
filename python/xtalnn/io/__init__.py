"""Reading and writing files: structures in any ASE format and aenet XSF (:mod:`.structures`,
:mod:`.aenet`), LAMMPS data files (:mod:`.lammps_data`), and atomic writes (:mod:`.atomic`)."""
