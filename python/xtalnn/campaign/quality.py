"""The model measured where the search needs it: on the low-energy candidates, not on a random split.

- :func:`candidate_error`: for the structures of one cycle (or of the final GA) that the model ranked
  lowest, the RMSE (eV/atom) between the energies the model predicted before the oracle saw them
  (``model_energy``, the GA's fitness) and the oracle's single points. This is the campaign's
  convergence criterion (``[convergence] max_candidate_rmse``).
- :func:`final_quality`: the final model on the final report: its RMSE on the ``top`` final candidates
  it ranked lowest, its error on the oracle-relaxed ground state, and the position of that ground
  state in the model's own ranking of the final candidates, before any oracle relaxation.
"""

from __future__ import annotations

import math

import numpy as np


def candidate_error(rows, top: int) -> dict:
    """``{"rmse", "n", "max_error"}`` (eV/atom) over the ``top`` rows with the lowest ``model_energy``.

    ``rows``: labelled frame-0 rows (status ok) that carry the predicting model's ``model_energy``.
    """
    scored = sorted((r for r in rows if r.get("model_energy") is not None and math.isfinite(r.model_energy)),
                    key=lambda r: r.model_energy)[:top]
    if not scored:
        return {"rmse": float("nan"), "n": 0, "max_error": float("nan")}
    errors = np.array([r.model_energy - r.oracle_energy for r in scored])
    return {"rmse": float(np.sqrt(np.mean(errors**2))), "n": len(scored), "max_error": float(np.max(np.abs(errors)))}


def final_quality(store, model_path: str | None, ground_state: dict | None, top: int = 10) -> dict:
    """The final model on the final candidates (see the module docstring).

    ``ground_state``: the report's best ranked entry (``row_id`` of the oracle-relaxed structure, or of
    the single point when none was relaxed; ``oracle_energy`` in eV/atom). Returns ``top_rmse``,
    ``top_n``, ``ground_state_model_energy``, ``ground_state_error`` (model − oracle, eV/atom) and
    ``ground_state_model_rank`` (1-based position, by model energy, of the first final candidate that
    matches the ground state; None when none does).
    """
    from xtalnn.search.dedup import structure_matcher

    finals = [r for r in store.rows(origin="final", frame=0, status="ok")
              if r.get("model_energy") is not None and math.isfinite(r.model_energy)]
    out = {"top_n": min(top, len(finals)), **{f"top_{k}": v for k, v in candidate_error(finals, top).items()
                                                if k != "n"}}
    out.update(ground_state_model_energy=None, ground_state_error=None, ground_state_model_rank=None)
    if ground_state is None or model_path is None or not finals:
        return out
    from pymatgen.io.ase import AseAtomsAdaptor

    row = store.db.get(id=ground_state["row_id"])
    target = row.toatoms()
    out["ground_state_model_energy"] = _model_energy(model_path, target, row.get("pressure", 0.0))
    out["ground_state_error"] = out["ground_state_model_energy"] - ground_state["oracle_energy"]
    reference = AseAtomsAdaptor.get_structure(target)
    for rank, row in enumerate(sorted(finals, key=lambda r: r.model_energy), 1):
        if structure_matcher().fit(AseAtomsAdaptor.get_structure(row.toatoms()), reference):
            out["ground_state_model_rank"] = rank
            break
    return out


def _model_energy(model_path: str, atoms, pressure: float = 0.0) -> float:
    """The model's energy per atom (eV/atom) of ``atoms``; its enthalpy per atom under ``pressure`` (GPa)."""
    import warnings

    from xtalnn.potential.calculator import XtalnnCalculator

    atoms = atoms.copy()
    atoms.calc = XtalnnCalculator(model_path, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        energy = float(atoms.get_potential_energy())
    from xtalnn.search.relax import enthalpy_per_atom

    return enthalpy_per_atom(energy, atoms.get_volume(), len(atoms), pressure)
