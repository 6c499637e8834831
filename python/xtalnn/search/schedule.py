"""How a worker process shares its evaluations between the GA runs it holds.

A search runs one population per (crystal system, seed); a worker process advances several of them,
one evaluation at a time. ``"equal"`` sharing (the seed paper: every population gets the same
budget) takes them in turn. ``"adaptive"`` sharing spends where the search is going: every run
publishes the lowest energy it has found on a :class:`Scoreboard` that all processes of the search
see, and each process gives its runs evaluations in proportion to :func:`share_weights` of their rank
among *all* runs — the lowest-energy run gets a full share, the next half of it, and so on, never
less than a floor so that no system is abandoned. A run's own results never depend on the sharing
(its random numbers are its own); only how far each run gets within a budget does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SHARING = ("adaptive", "equal")


class Scoreboard:
    """The lowest energy per atom (eV/atom) found so far by each run of a search, by run index;
    ``inf`` until a run has one. Backed by a list, or by a ``multiprocessing`` shared array that
    forked or spawned worker processes write to and read from (one writer per entry)."""

    def __init__(self, n_runs: int, shared=None):
        self.values = shared if shared is not None else [math.inf] * n_runs

    def report(self, run: int, energy_per_atom: float) -> None:
        """Record ``energy_per_atom`` for ``run`` if it is its lowest so far (NaN is ignored)."""
        if energy_per_atom < self.values[run]:
            self.values[run] = float(energy_per_atom)

    def snapshot(self) -> list[float]:
        return list(self.values)


def share_weights(best: Sequence[float]) -> list[float]:
    """Share of each run from every run's lowest energy (eV/atom; ``inf``: none yet): ``2**-rank``
    among the runs that have one (rank 0 = lowest energy, ties in run order), at least
    ``1 / (2 n)`` for ``n`` runs; a run without an energy yet gets a full share (1)."""
    n = len(best)
    floor = 1.0 / (2 * n) if n else 1.0
    ranked = sorted((e, k) for k, e in enumerate(best) if math.isfinite(e))
    weights = [1.0] * n
    for rank, (_, k) in enumerate(ranked):
        weights[k] = max(0.5 ** rank, floor)
    return weights


def next_run(active: Sequence[int], given: Sequence[int], weights: Sequence[float]) -> int:
    """The run of ``active`` furthest below its share: smallest ``(given + 1) / weight`` (then the
    lowest index), ``given`` = evaluations it has had, ``weights`` = its share (by run index)."""
    return min(active, key=lambda k: ((given[k] + 1) / weights[k], k))


__all__ = ["SHARING", "Scoreboard", "next_run", "share_weights"]
