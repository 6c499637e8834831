"""The potential model file: one TorchScript archive (``torch.jit.script`` + ``torch.jit.save``).

The scripted module follows the contract in :mod:`xtalnn.potential.model`. The extra file
``xtalnn_potential.json`` carries everything else a caller needs, readable without torch
(the archive is a zip)::

    {"format": "xtalnn-potential", "format_version": 1,
     "units": {"energy": "eV", "length": "Å", "force": "eV/Å", "stress": "eV/Å^3"},
     "elements": ["Ti", "O"], "cutoff": 6.5,
     "descriptor": {"kind": "acsf", ...constructor arguments...}, "spec": [...],
     "reference_energies": {"Ti": ..., "O": ...},
     "scaling": {"shift": [[...]], "scale": [[...]]},
     "descriptor_range": {"min": [[...]], "max": [[...]]},   # per element over the training set
     "training_data": {"fingerprint": "sha256…", "n_train": …, "sources": [...]},
     "network": {"hidden": [...], "activation": "tanh"}, "config": {...}, "metrics": {...}}

Loading from C++ or plain Python needs only torch and the op library::

    torch.ops.load_library(path_to_libxtalnn_ops_so)
    model = torch.jit.load("model.pt")
"""

from __future__ import annotations

import json
import os
import zipfile
from datetime import datetime, timezone

import torch

from xtalnn.io.archive import DamagedFileError, verify_zip
from xtalnn.io.atomic import atomic_write
from xtalnn.potential.model import FORMAT_VERSION, Potential

METADATA_FILE = "xtalnn_potential.json"
FORMAT = "xtalnn-potential"
UNITS = {"energy": "eV", "length": "Å", "force": "eV/Å", "stress": "eV/Å^3"}


class ModelFormatError(ValueError):
    """A file that is not an xtalnn potential, or one of an incompatible format version."""


def model_metadata(model: Potential, **extra) -> dict:
    """The JSON metadata of ``model`` (buffers as lists) merged with ``extra``."""
    elements = list(model.elements)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "units": UNITS,
        "elements": elements,
        "cutoff": model.cutoff,
        "spec": model.spec.tolist(),
        "reference_energies": dict(zip(elements, model.reference_energies.tolist())),
        "scaling": {"shift": model.shift.tolist(), "scale": model.scale.tolist()},
        "descriptor_range": {"min": model.descriptor_min.tolist(), "max": model.descriptor_max.tolist()},
        "network": {"hidden": list(model.hidden), "activation": model.activation,
                    "n_features": model.n_features},
        "forward": "forward(species int64[N], edge_index int64[2,E], edge_vec float64[E,3], n_local int) "
                   "-> atomic_energy float64[n_local] (eV)",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def save_model(model: Potential, path, **metadata) -> dict:
    """Script ``model`` and write it with its metadata to ``path`` (temp file + rename: never half-written)."""
    from xtalnn.ops import load_library

    load_library()
    meta = model_metadata(model, **metadata)
    was_training = model.training
    scripted = torch.jit.script(model.eval())
    model.train(was_training)
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files={METADATA_FILE: json.dumps(meta)}))
    return meta


def read_metadata(path) -> dict:
    """The metadata of a model file, read from the archive without loading the module; the archive's
    checksums are verified first (:func:`xtalnn.io.archive.verify_zip`), so a damaged file is refused."""
    try:
        verify_zip(path, "TorchScript model file")
    except DamagedFileError as err:
        raise ModelFormatError(str(err)) from None
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(f"extra/{METADATA_FILE}")]
            if not names:
                raise ModelFormatError(f"{path}: not an xtalnn potential (no {METADATA_FILE} inside)")
            meta = json.loads(archive.read(names[0]))
    except (zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFormatError(f"{path}: not a TorchScript model file ({err})") from err
    if not isinstance(meta, dict):
        raise ModelFormatError(f"{path}: {METADATA_FILE} is not a JSON object")
    if meta.get("format") != FORMAT:
        raise ModelFormatError(f"{path}: format {meta.get('format')!r} is not {FORMAT!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: model file format version {version} is not supported by this xtalnn "
            f"(reads version {FORMAT_VERSION}); re-export it with a matching xtalnn (`xtalnn export`)"
        )
    return meta


def load_model(path, map_location: str = "cpu"):
    """``(scripted_module, metadata)``; the op library is loaded first. Refuses other format versions."""
    from xtalnn.ops import load_library

    meta = read_metadata(path)
    load_library()
    try:
        module = torch.jit.load(str(path), map_location=map_location)
    except RuntimeError as err:
        raise ModelFormatError(f"{path}: not a loadable TorchScript model ({str(err).splitlines()[0]})") from None
    if int(module.format_version) != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: module format version {module.format_version} != {FORMAT_VERSION}")
    return module.eval(), meta
