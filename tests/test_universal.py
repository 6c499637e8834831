"""Universal ML potentials (CHGNet, SevenNet-0) as reference calculators: the factories return the
packages' own calculators, and energy, forces and stress are consistent with each other in ASE's
units and sign (finite differences of the model's own energy)."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import torch
from ase.spacegroup import crystal

from xtalnn.calculators import universal


def _rutile_strained():
    """Rutile Ti2O4 (6 atoms), rattled and sheared so that forces and stress are far from zero."""
    atoms = crystal(["Ti", "O"], basis=[(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                    cellpar=[4.594, 4.594, 2.959, 90, 90, 90])
    atoms.rattle(0.05, seed=1)
    deform = np.array([[1.03, 0.02, 0.0], [0.0, 0.98, 0.015], [0.01, 0.0, 1.02]])
    atoms.set_cell(atoms.cell @ deform, scale_atoms=True)
    return atoms


def _own(name):
    if name == "chgnet":
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(use_device="cpu")
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator("7net-0", device="cpu")


@pytest.fixture(scope="module", params=["chgnet", "sevennet"])
def model(request):
    # one thread: these small cells gain nothing from two, and an oversubscribed core makes torch
    # several times slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield request.param, getattr(universal, request.param)()
    torch.set_num_threads(threads)


def _energy(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return float(atoms.get_potential_energy())


def _efs(calc, atoms):
    """Energy (eV), forces (eV/Å) and Voigt stress (eV/Å³) through ASE's Atoms API (CHGNet's
    ``calc.results["stress"]`` itself is a 3×3 matrix; ``Atoms.get_stress`` makes it Voigt)."""
    atoms = atoms.copy()
    atoms.calc = calc
    return (float(atoms.get_potential_energy()), np.array(atoms.get_forces(), float),
            np.array(atoms.get_stress(), float))


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")  # the packages' own banners
def test_same_as_package_calculator(model):
    name, calc = model
    atoms = _rutile_strained()
    e, f, s = _efs(calc, atoms)
    e0, f0, s0 = _efs(_own(name), atoms)
    assert f.shape == (6, 3) and s.shape == (6,)
    assert e == pytest.approx(e0, abs=1e-5)
    np.testing.assert_allclose(f, f0, atol=1e-5)
    np.testing.assert_allclose(s, s0, atol=1e-7)
    # total energy of the cell (eV), not per atom: ~ -9 eV/atom for TiO2 with MP-trained models
    assert -11.0 < e / len(atoms) < -8.0


def test_forces_are_minus_energy_gradient(model):
    _, calc = model
    atoms = _rutile_strained()
    _, forces, _ = _efs(calc, atoms)
    assert np.abs(forces).max() > 0.5
    h = 5e-3  # float32 energies: round-off ~4e-6 eV / (2h)
    fd = np.zeros_like(forces)
    for i in range(len(atoms)):
        for k in range(3):
            e = []
            for sign in (1, -1):
                shifted = atoms.copy()
                shifted.positions[i, k] += sign * h
                e.append(_energy(calc, shifted))
            fd[i, k] = -(e[0] - e[1]) / (2 * h)
    np.testing.assert_allclose(forces, fd, atol=1e-2)


def test_stress_is_energy_strain_derivative(model):
    """ASE: stress = (1/V) dE/dε in eV/Å³, positive under tension, Voigt xx yy zz yz xz xy."""
    _, calc = model
    atoms = _rutile_strained()
    _, _, stress = _efs(calc, atoms)
    assert np.abs(stress).max() > 0.02  # GPa would be ~160 times larger
    h = 1e-3
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    fd = np.zeros(6)
    for m, (i, j) in enumerate(voigt):
        e = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[i, j] += sign * h / 2
            eps[j, i] += sign * h / 2
            strained = atoms.copy()
            strained.set_cell(atoms.cell @ (np.eye(3) + eps), scale_atoms=True)
            e.append(_energy(calc, strained))
        fd[m] = (e[0] - e[1]) / (2 * h) / atoms.get_volume()
    np.testing.assert_allclose(stress, fd, atol=1e-3)
    # sign: a cell stretched well beyond equilibrium pulls back (tension, positive trace)
    stretched = atoms.copy()
    stretched.set_cell(atoms.cell * 1.08, scale_atoms=True)
    assert _efs(calc, stretched)[2][:3].sum() > 0


def test_threads_kept_and_picklable(model):
    name, calc = model
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fresh = getattr(universal, name)()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)  # computing with 2 threads on a busy machine is very slow
    atoms = _rutile_strained()
    e = _efs(fresh, atoms)[0]
    assert torch.get_num_threads() == before
    clone = pickle.loads(pickle.dumps(fresh))
    assert _efs(clone, atoms)[0] == pytest.approx(e, abs=1e-5)


def test_builds_in_worker_process_from_spec():
    """A CalculatorFactory with the ``module:factory`` spec builds the calculator in a fresh
    (spawned) worker process."""
    import concurrent.futures
    import multiprocessing

    from xtalnn.calculators.registry import CalculatorFactory

    factory = CalculatorFactory("xtalnn.calculators.universal:chgnet")
    atoms = _rutile_strained()
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        e = pool.submit(_worker_energy, factory, atoms).result(timeout=120)
    assert e == pytest.approx(_energy(factory(), atoms), abs=1e-5)


def _worker_energy(factory, atoms):
    return _energy(factory(), atoms)


@pytest.mark.parametrize("name,modules", [("chgnet", ["chgnet", "chgnet.model", "chgnet.model.dynamics"]),
                                          ("sevennet", ["sevenn", "sevenn.calculator"])])
def test_missing_package_names_the_extra(monkeypatch, name, modules):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(ModuleNotFoundError, match=r"xtalnn\[universal\]"):
        getattr(universal, name)()
