"""The op library stands alone: loadable by path, callable from TorchScript, without our Python."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from xtalnn.ops import library_path


def test_library_path_exists():
    path = library_path()
    assert os.path.isfile(path) and path.endswith(".so")


def test_load_and_script_without_importing_xtalnn(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, torch
        torch.ops.load_library({library_path()!r})

        @torch.jit.script
        def descriptors(species: torch.Tensor, positions: torch.Tensor, cell: torch.Tensor,
                        spec: torch.Tensor) -> torch.Tensor:
            pbc = torch.tensor([True, True, True])
            edge_index, shifts = torch.ops.xtalnn.neighbor_list(positions, cell, pbc, 3.0)
            vec = positions[edge_index[1]] - positions[edge_index[0]] + shifts.to(positions.dtype) @ cell
            return torch.ops.xtalnn.chebyshev(species, edge_index, vec, positions.shape[0], spec)

        positions = torch.tensor([[0.0, 0.0, 0.0], [1.3, 1.4, 1.2]], dtype=torch.float64, requires_grad=True)
        cell = torch.eye(3, dtype=torch.float64) * 2.7
        spec = torch.tensor([1, 3.0, 4, 3.0, 3, 0, 0.0], dtype=torch.float64)
        G = descriptors(torch.tensor([0, 0]), positions, cell, spec)
        G.sum().backward()
        assert G.shape == (2, 9), G.shape
        assert torch.isfinite(positions.grad).all()
        assert not any(m.startswith("xtalnn") for m in sys.modules), "xtalnn was imported"
        descriptors.save({str(tmp_path / "f.pt")!r})
        print("ok")
        """
    )
    (tmp_path / "host.py").write_text(script)  # TorchScript needs the source on disk
    result = subprocess.run([sys.executable, "host.py"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_dlopen_from_a_host_without_torch():
    """A C++ host (LAMMPS) dlopens the library directly: its torch dependencies must resolve."""
    script = f"import ctypes, sys; ctypes.CDLL({library_path()!r}); assert 'torch' not in sys.modules; print('ok')"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
