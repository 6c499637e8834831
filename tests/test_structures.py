"""Structure sources: aenet XSF (file, folder, tar.gz), ASE db, extxyz; clear errors otherwise."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
from ase.db import connect
from ase.io import write

from conftest import TIO2_TAR
from xtalnn.cli import main
from xtalnn.io.structures import read_structures


def test_aenet_tar_has_energies_and_forces(tio2_structures):
    atoms = tio2_structures[0]
    energy = atoms.get_potential_energy()
    assert -1000 < energy / len(atoms) < -700  # ≈ −850 eV/atom with the atomic references
    assert atoms.get_forces().shape == (len(atoms), 3)
    assert np.abs(atoms.get_forces()).max() > 0


def test_folder_db_and_extxyz_give_the_same_structures(tio2_structures, tmp_path):
    sample = tio2_structures[:3]
    folder = tmp_path / "xsf"
    folder.mkdir()
    with tarfile.open(TIO2_TAR) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.name.endswith(".xsf"))[:3]
        for name in names:
            (folder / name.split("/")[-1]).write_bytes(tar.extractfile(name).read())
    write(tmp_path / "s.extxyz", sample)
    with connect(tmp_path / "s.db") as db:
        for atoms in sample:
            db.write(atoms)
    for source in (folder, tmp_path / "s.extxyz", tmp_path / "s.db"):
        read = read_structures(source)
        assert len(read) == 3
        for a, b in zip(read, sample):
            np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)  # extxyz: 8 decimals
            assert a.get_potential_energy() == pytest.approx(b.get_potential_energy())
            np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-7)


def test_bad_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_structures(tmp_path / "missing.xyz")
    bad = tmp_path / "bad.xsf"
    bad.write_text("CRYSTAL\nPRIMVEC\n")
    with pytest.raises(ValueError, match="total energy"):
        read_structures(bad)
    junk = tmp_path / "junk.xyz"
    junk.write_text("this is not a structure\n")
    with pytest.raises(ValueError, match="junk.xyz"):
        read_structures(junk)


def test_cli_descriptors(tmp_path, capsys):
    out = tmp_path / "g.npz"
    assert main(["descriptors", str(TIO2_TAR), "--limit", "3", "-o", str(out)]) == 0
    data = np.load(out)
    assert data["descriptors"].shape[1] == 70 == len(data["feature_labels"])
    assert data["descriptors"].shape[0] == len(data["symbols"]) == len(data["structure_index"])
    assert main(["descriptors", str(tmp_path / "nothing.xsf")]) == 1
    assert "no such file" in capsys.readouterr().err
