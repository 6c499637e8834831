"""Built-in reference calculators by name (real calculators, no mocks)."""

import importlib.util
import os

import numpy as np
import pytest
from ase.build import bulk

from xtalnn import references
from xtalnn.references import CalculatorFactory, make_calculator


def test_sw_si_diamond_energy():
    atoms = bulk("Si", "diamond", a=5.431, cubic=True)
    atoms.calc = make_calculator("sw-si")
    # Stillinger–Weber's diamond cohesive energy is 4.3366 eV/atom at a = 5.431 Å
    assert atoms.get_potential_energy() / len(atoms) == pytest.approx(-4.3366, abs=1e-3)
    assert np.allclose(atoms.get_forces(), 0.0, atol=1e-8)
    atoms.rattle(0.05, seed=1)
    assert np.abs(atoms.get_forces()).max() > 0.01


def test_tblite_periodic_energy_forces_stress():
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.calc = make_calculator("tblite")
    assert np.isfinite(atoms.get_potential_energy())
    assert atoms.get_forces().shape == (2, 3)
    assert atoms.get_stress().shape == (6,)


def test_empirical_by_name():
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.calc = make_calculator("empirical", epsilon=0.2)
    assert atoms.get_potential_energy() < 0


def test_module_factory_and_picklable_factory():
    import pickle

    factory = CalculatorFactory("xtalnn.empirical:EmpiricalPairPotential", {"epsilon": 0.05})
    calc = pickle.loads(pickle.dumps(factory))()
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())
    assert factory.name == "xtalnn.empirical:EmpiricalPairPotential"


@pytest.mark.skipif(importlib.util.find_spec("gpaw") is not None, reason="GPAW is installed")
def test_gpaw_missing_gives_install_hint():
    with pytest.raises(ModuleNotFoundError, match="apt-get install"):
        make_calculator("gpaw")


def test_model_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        make_calculator(str(tmp_path / "missing.pt"))
    model = tmp_path / "model.pt"
    model.write_bytes(b"not a model")
    if importlib.util.find_spec("xtalnn.calculator") is None:
        with pytest.raises(ModuleNotFoundError, match="xtalnn.calculator"):
            make_calculator(str(model))
    else:  # once the calculator module exists, a broken file must still fail loudly
        with pytest.raises(Exception):
            make_calculator(str(model))


@pytest.mark.parametrize("spec", ["no-such-name", "", "os.path:sep", "nomodule_xyz:f"])
def test_bad_specs(spec):
    with pytest.raises((ValueError, ModuleNotFoundError, TypeError)):
        make_calculator(spec)


def test_mpi_preload_and_potential_file():
    path = references.lammps_potential_file("Si.sw")
    assert os.path.basename(path) == "Si.sw" and os.path.exists(path)
    references.preload_mpi()  # idempotent
    assert "sw-si" in references.names() and "gpaw" in references.names()
