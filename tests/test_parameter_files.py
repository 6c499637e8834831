"""Descriptor parameters from n2p2 ``input.nn`` and aenet ``.stp`` files (each program's documented format),
against the same descriptors built directly, and training on them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from xtalnn.descriptors import ACSF, Chebyshev
from xtalnn.descriptors.parameter_files import (
    BOHR,
    ExtraFunctionsWarning,
    read_aenet,
    read_n2p2,
    read_parameter_files,
)

ELEMENTS = ["Ti", "O"]
RADIAL = [(0.05, 0.0), (0.3, 1.5), (1.2, 2.5)]        # η (Å⁻²), R_s (Å)
ANGULAR = [(0.01, 1.0, 1.0), (0.01, 1.0, -1.0), (0.08, 4.0, 1.0)]  # η, ζ, λ
RC = 5.5


def n2p2_file(path, unit=1.0, cutoff_type="1", g4=True, g5=True, skip=None) -> str:
    """An input.nn as n2p2 documents it (keywords, `symfunction_short <centre> <type> …`), lengths in
    ``unit`` Å; ``skip`` drops one (centre, neighbour) radial set."""
    lines = ["# TiO2 test setup", "number_of_elements 2", "elements O Ti  # n2p2 sorts by atomic number",
             "global_hidden_layers_short 2", "global_nodes_short 10 10", "global_activation_short t t l",
             f"cutoff_type {cutoff_type}", "scale_symmetry_functions", ""]
    for centre in ELEMENTS:
        for neighbour in ELEMENTS:
            if (centre, neighbour) == skip:
                continue
            for eta, rs in RADIAL:
                lines.append(f"symfunction_short {centre} 2 {neighbour} {eta * unit**2:.10g} {rs / unit:.10g} "
                             f"{RC / unit:.10g}")
        for (kind, on), (a, b) in itertools.product(((3, g4), (9, g5)), [("Ti", "Ti"), ("Ti", "O"), ("O", "O")]):
            if on:
                lines += [f"symfunction_short {centre} {kind} {a} {b} {eta * unit**2:.10g} {lam:+.1f} {zeta:.1f} "
                          f"{RC / unit:.10g}" for eta, zeta, lam in ANGULAR]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def aenet_file(path, atom, functions=True, g=4) -> str:
    """A <X>.fingerprint.stp as aenet's documentation lays it out."""
    head = ["DESCR", "  TiO2 test setup", "END DESCR", "", f"ATOM {atom}", "", "ENV  2", "Ti", "O", "", "RMIN 0.75d0", ""]
    if functions:
        body = [f"G=2 type2={n:2s} eta={eta:.6f}  Rs={rs:.4f}  Rc={RC:.4f}" for eta, rs in RADIAL for n in ("O", "Ti")]
        body += [f"G={g} type2={a:2s} type3={b:2s} eta={eta:.6f} lambda= {lam:.1f}  zeta= {zeta:.1f}  Rc={RC:.4f}"
                 for eta, zeta, lam in ANGULAR for a, b in (("O", "O"), ("O", "Ti"), ("Ti", "Ti"))]
        head += ["FUNCTIONS type=Behler2011", str(len(body))] + body
    else:
        head += ["BASIS type=Chebyshev", "radial_Rc = 8.0  radial_N = 16 angular_Rc = 6.5  angular_N = 4"]
    path.write_text("\n".join(head) + "\n")
    return str(path)


def values(descriptor, structures) -> np.ndarray:
    return np.concatenate([descriptor.compute(a) for a in structures])


def test_n2p2_input_nn_gives_the_acsf_it_describes(tio2_structures, tmp_path):
    direct = ACSF(ELEMENTS, RC, g2=RADIAL, g4=ANGULAR, g5=ANGULAR)
    read = read_n2p2(n2p2_file(tmp_path / "input.nn"), ELEMENTS)
    assert read.elements == ELEMENTS and read.cutoff == RC and read.cutoff_function == "cosine"
    assert torch.equal(read.spec(), ACSF(ELEMENTS, RC, g2=sorted(RADIAL), g4=sorted(ANGULAR),
                                         g5=sorted(ANGULAR)).spec())
    # the same functions, in xtalnn's order: equal values column set by column set
    a, b = values(direct, tio2_structures[:3]), values(read, tio2_structures[:3])
    np.testing.assert_allclose(np.sort(a, axis=1), np.sort(b, axis=1), rtol=1e-12, atol=1e-12)
    assert np.abs(a).max() > 0.1
    # Bohr: the same functions written in Bohr and read with length_unit = BOHR
    bohr = read_n2p2(n2p2_file(tmp_path / "bohr.nn", unit=BOHR), ELEMENTS, length_unit=BOHR)
    np.testing.assert_allclose(bohr.spec().numpy(), read.spec().numpy(), rtol=1e-9)
    assert read_n2p2(n2p2_file(tmp_path / "poly.nn", cutoff_type="6 0.0")).cutoff_function == "polynomial"
    assert read_n2p2(tmp_path / "input.nn").elements == ["O", "Ti"]  # the file's order without `elements`
    assert read_parameter_files(tmp_path / "input.nn", ELEMENTS).n_features == read.n_features


def test_n2p2_files_xtalnn_cannot_represent_are_refused_by_line(tmp_path):
    path = n2p2_file(tmp_path / "input.nn")
    text = open(path).read()
    radial = "symfunction_short Ti 2 O 0.05 0 5.5"
    angular = "symfunction_short Ti 3 Ti Ti 0.01 +1.0 1.0 5.5"
    assert radial in text and angular in text
    for k, (old, new, message) in enumerate([
            ("cutoff_type 1", "cutoff_type 2 0.5", "cutoff_type 2 0.5 has no xtalnn counterpart"),
            (radial, radial.replace("5.5", "6.0"), "cutoff 6.0 differs"),
            (radial, "symfunction_short Ti 12 0.05 0 5.5", "type 12 has no xtalnn counterpart"),
            (angular, angular + " 0.7", "angular shift"),
            (radial, radial[:-6], "cannot read")]):
        bad = tmp_path / f"bad{k}.nn"
        bad.write_text(text.replace(old, new, 1))
        with pytest.raises(ValueError, match=message):
            read_n2p2(bad, ELEMENTS)
    with pytest.raises(ValueError, match="not the model's"):
        read_n2p2(path, ["Ti", "Si"])


def test_different_sets_per_element_become_their_union_with_a_warning(tio2_structures, tmp_path):
    path = n2p2_file(tmp_path / "input.nn", g5=False, skip=("O", "O"))
    with pytest.warns(ExtraFunctionsWarning, match="union"):
        read = read_n2p2(path, ELEMENTS)
    assert read.n_features == 2 * len(RADIAL) + 3 * len(ANGULAR)


def test_aenet_behler2011_and_chebyshev_setups(tio2_structures, tmp_path):
    stps = [aenet_file(tmp_path / f"{e}.fingerprint.stp", e) for e in ELEMENTS]
    read = read_aenet(stps, ELEMENTS)
    assert torch.equal(read.spec(), ACSF(ELEMENTS, RC, g2=sorted(RADIAL), g4=sorted(ANGULAR)).spec())
    wide = read_aenet([aenet_file(tmp_path / f"{e}.g5.stp", e, g=5) for e in ELEMENTS])
    assert wide.elements == ELEMENTS and len(wide.g5) == len(ANGULAR) and len(wide.g4) == 0
    cheb = read_parameter_files([aenet_file(tmp_path / f"{e}.cheb.stp", e, functions=False) for e in ELEMENTS],
                                ["O", "Ti"])
    direct = Chebyshev(["O", "Ti"], 8.0, 16, 6.5, 4)
    assert isinstance(cheb, Chebyshev) and torch.equal(cheb.spec(), direct.spec())
    np.testing.assert_array_equal(values(cheb, tio2_structures[:2]), values(direct, tio2_structures[:2]))
    mixed = [stps[0], aenet_file(tmp_path / "O.other.stp", "O", functions=False)]
    with pytest.raises(ValueError, match="mix descriptor kinds"):
        read_aenet(mixed)
    bad = tmp_path / "bad.stp"
    bad.write_text(open(stps[0]).read().replace("G=2 type2=O ", "G=3 type2=O  kappa=1.0", 1))
    with pytest.raises(ValueError, match="G=3 has no xtalnn counterpart"):
        read_aenet([bad, stps[1]])


@pytest.mark.parametrize("via", ["api", pytest.param("cli", marks=pytest.mark.slow)])  # the CLI: +15 s
def test_training_on_a_parameter_file(via, tio2_structures, tmp_path):
    """`descriptor_file` / `xtalnn train --descriptor-file input.nn --descriptor-file-unit …`: the model
    file's descriptor is the file's (written in Bohr here)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from ase.io import write

    import xtalnn
    from xtalnn.potential.config import TrainConfig
    from xtalnn.potential.modelfile import load_model
    from xtalnn.potential.train import train

    write(tmp_path / "d.extxyz", [a for a in tio2_structures if len(a) <= 24][:8], format="extxyz")
    path = n2p2_file(tmp_path / "input.nn", unit=BOHR)
    if via == "api":
        train(TrainConfig(elements=ELEMENTS, descriptor_file=path, descriptor_file_unit=BOHR, hidden=[6], epochs=1,
                          threads=1, max_time=None), [tmp_path / "d.extxyz"], tmp_path / "m.pt", progress=False)
    else:
        env = {**os.environ, "PYTHONPATH": str(Path(xtalnn.__file__).resolve().parents[1])}
        result = subprocess.run([sys.executable, "-m", "xtalnn.cli", "train", "--data", str(tmp_path / "d.extxyz"),
                                 "--elements", "Ti", "O", "--descriptor-file", path, "--descriptor-file-unit",
                                 str(BOHR), "--hidden", "6", "--epochs", "1", "--threads", "1", "--quiet", "-o",
                                 str(tmp_path / "m.pt")], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    module, meta = load_model(tmp_path / "m.pt")
    np.testing.assert_allclose(module.spec.numpy(), read_n2p2(n2p2_file(tmp_path / "a.nn"), ELEMENTS).spec().numpy(),
                               rtol=1e-9)
    assert meta["descriptor"]["source"] == [path] and meta["descriptor"]["kind"] == "acsf"
