"""Universal machine-learned potentials as reference calculators: CHGNet and SevenNet-0, on CPU.

Both are pretrained on the Materials Project relaxation trajectories (MPtrj, PBE/PBE+U), cover the
whole periodic table, and ship their weights inside their PyPI wheels: nothing is downloaded at run
time. Install them with ``pip install 'xtalnn[universal]'``.

:func:`chgnet`
    CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)), model ``0.3.0`` (the package's
    default), through ``chgnet.model.dynamics.CHGNetCalculator``. Graph network with 5 Å atom and
    3 Å bond graphs, 412,525 parameters, float32.
:func:`sevennet`
    SevenNet-0 (11Jul2024; Park et al., J. Chem. Theory Comput. 20, 4857 (2024)), an equivariant
    NequIP-type network with 5 Å cutoff, through ``sevenn.calculator.SevenNetCalculator``, float32.

Cost of one energy + forces + stress call on this project's machines, one torch thread (per call;
per atom in parentheses):

=====================  =====================  =====================
cell                   CHGNet                 SevenNet-0
=====================  =====================  =====================
anatase Ti4O8 (12)     ~60 ms (5 ms/atom)     ~150 ms (13 ms/atom)
rutile Ti4O8 (12)      ~100 ms (8 ms/atom)    ~160 ms (13 ms/atom)
CaTiO3 Pm-3m (5)       ~45 ms (9 ms/atom)     ~65 ms (13 ms/atom)
CaTiO3 Pnma (20)       ~130 ms (6.5 ms/atom)  ~270 ms (13 ms/atom)
CaTiO3 Pnma (160)      ~1.0 s (6.5 ms/atom)   ~1.9 s (12 ms/atom)
=====================  =====================  =====================

i.e. 10–30 times a classical LAMMPS reference and about as fast as ``tblite``. Give each worker
process one torch thread: a second thread gains little on cells this small, and with the other
core busy two threads are 4–15 times *slower* (spin-waiting).

Both return the package's own ASE calculator with energy (total eV per structure, not per atom),
forces (eV/Å) and stress (eV/Å³, ASE sign: positive under tension, Voigt order xx yy zz yz xz xy).
CHGNet's model predicts stress in GPa; its calculator multiplies by ``ase.units.GPa``, so what ASE
sees is eV/Å³ (checked against finite differences of its energy under strain in
``tests/test_universal.py``). Their numbers are float32 (CHGNet's energy is a ``numpy.float32``):
forces agree with −dE/dx to ~5e-3 eV/Å, not to 1e-6. Read them through ``Atoms.get_stress()``
(Voigt): CHGNet leaves a 3×3 matrix in ``calc.results["stress"]``.

Absolute energies of the two models differ: CHGNet is fitted to MP2020-corrected energies,
SevenNet-0 to raw PBE, so CHGNet is lower by about the oxide correction (0.687 eV per O atom:
0.45 eV/atom for TiO2, 0.40 for CaTiO3). Compare energies only within one model. Both rank TiO2
like PBE, not like experiment: anatase below rutile (CHGNet by 20 meV/atom, SevenNet-0 by 33);
CaTiO3 Pnma is below cubic Pm-3m by 60 and 63 meV/atom.

The factories leave torch's thread count as the caller set it, load the model on the CPU,
silence the packages' banners ("CHGNet will run on cpu", SevenNet's "no tensor product
accelerator" warning) and are plain module-level functions, so ``xtalnn.calculators.universal:chgnet``
works as a ``module:factory`` spec and in :class:`~xtalnn.calculators.registry.CalculatorFactory`
(each worker process builds its own; the calculators also pickle). Importing chgnet takes ~2 s,
sevenn ~2.5 s (e3nn, torch_geometric); building the calculator ~0.4 s (CHGNet) and ~2 s
(SevenNet).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

from ase.calculators.calculator import Calculator

_EXTRA = "pip install 'xtalnn[universal]'"


def chgnet(model: str = "0.3.0", **kwargs: Any) -> Calculator:
    """CHGNet (pretrained ``model``: ``"0.3.0"``, ``"0.2.0"`` or ``"r2scan"``) on the CPU.

    Keyword arguments go to ``CHGNetCalculator`` (e.g. ``on_isolated_atoms="ignore"``).
    """
    try:
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator
    except ImportError as err:
        raise ModuleNotFoundError(
            f"the `chgnet` reference needs the chgnet package: {_EXTRA}"
        ) from err
    # its forward pass calls torch.tensor() on a 0-d tensor that requires grad: harmless, but
    # torch warns about it on the first call
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True",
                            category=UserWarning, module=r"chgnet\.")
    kwargs.setdefault("use_device", "cpu")
    with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet will run on cpu"
        net = CHGNet.load(model_name=model, use_device=kwargs["use_device"], verbose=False)
        return CHGNetCalculator(net, **kwargs)


def sevennet(model: str = "7net-0", **kwargs: Any) -> Calculator:
    """SevenNet on the CPU; ``model`` is a checkpoint path or a pretrained name.

    Pretrained models shipped in the wheel: ``7net-0`` (11Jul2024), ``7net-0_22May2024``,
    ``7net-l3i5`` and ``7net-mf-0`` (multi-fidelity: needs ``modal=``). The other names
    (``7net-omat``, ``7net-mf-ompa``, ``7net-omni``) are downloaded by sevenn on first use, which
    this project's machines cannot do. Keyword arguments go to ``SevenNetCalculator``.
    """
    kwargs.setdefault("device", "cpu")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        # sevenn and e3nn call torch.jit.script at import; the calculator warns that no CUDA
        # tensor-product kernel is enabled
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated")
        warnings.filterwarnings("ignore", message="No tensor product accelerator")
        try:
            from sevenn.calculator import SevenNetCalculator
        except ImportError as err:
            raise ModuleNotFoundError(
                f"the `sevennet` reference needs the sevenn package: {_EXTRA}"
            ) from err
        return SevenNetCalculator(model, **kwargs)
