"""Reference calculators for a campaign or a search: put a module like this one on the Python path of
every machine that runs oracle calls, and name its factories in the config as "mydft:vasp",
"mydft:espresso" or "mydft:gpaw_pbe" ([oracle] calculator), with keyword arguments in [oracle] kwargs.

Each worker process calls the factory once and reuses the calculator for all its oracle calls, so a
file-based code gets its own scratch folder per process.
"""

import os
import tempfile


def _scratch(prefix: str) -> str:
    root = os.environ.get("XTALNN_SCRATCH", tempfile.gettempdir())
    os.makedirs(root, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=root)


def vasp(encut: float = 520.0, kspacing: float = 0.25, **kwargs):
    """VASP through ASE: PBE, plane-wave cutoff ``encut`` (eV), k-point spacing ``kspacing`` (Å⁻¹, VASP's
    KSPACING). ASE runs ``$ASE_VASP_COMMAND`` (e.g. ``srun vasp_std``) and finds the POTCARs under
    ``$VASP_PP_PATH``. Stress needs ``isif = 2`` or more and a converged ``encut`` (Pulay stress)."""
    from ase.calculators.vasp import Vasp

    settings = dict(xc="PBE", encut=encut, kspacing=kspacing, kgamma=True, ismear=0, sigma=0.05,
                    ediff=1e-6, isif=2, prec="Accurate", lreal=False, lwave=False, lcharg=False)
    settings.update(kwargs)
    return Vasp(directory=_scratch("vasp-"), **settings)


def espresso(ecutwfc: float = 60.0, kspacing: float = 0.25, pseudopotentials: dict | None = None,
             command: str = "pw.x", pseudo_dir: str | None = None, **input_data):
    """Quantum ESPRESSO pw.x through ASE (ASE ≥ 3.23 profiles): PBE, wave-function cutoff ``ecutwfc``
    (Ry), k-point spacing ``kspacing`` (Å⁻¹), forces and stress on. ``command`` may carry the MPI launcher
    (``"mpirun -np 16 pw.x"``); ``pseudo_dir`` defaults to ``$ESPRESSO_PSEUDO``."""
    from ase.calculators.espresso import Espresso, EspressoProfile

    profile = EspressoProfile(command=command, pseudo_dir=pseudo_dir or os.environ.get("ESPRESSO_PSEUDO", "."))
    data = {"control": {"tprnfor": True, "tstress": True, "disk_io": "none"},
            "system": {"ecutwfc": ecutwfc, "occupations": "smearing", "smearing": "gaussian", "degauss": 0.005},
            "electrons": {"conv_thr": 1e-8}}
    for section, values in input_data.items():
        data.setdefault(section, {}).update(values)
    return Espresso(profile=profile, directory=_scratch("qe-"), input_data=data,
                    pseudopotentials=pseudopotentials or {}, kspacing=kspacing)


def gpaw_pbe(ecut: float = 800.0, density: float = 3.0, **kwargs):
    """GPAW plane-wave PBE with a converged cutoff for oxides (800 eV; see the GPAW section)."""
    from xtalnn.calculators.external import gpaw

    return gpaw(ecut=ecut, kpts={"density": density, "gamma": True}, **kwargs)
