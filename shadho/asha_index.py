"""The ASHA rule of :mod:`shadho.asha`, kept up to date result by result.

:func:`shadho.asha.next_job` recomputes every rung's ranking from all results at each
free slot: O(results log results) per decision, 8 ms at 5,000 rung results, which a
master with hundreds of workers pays for every task. :class:`RungIndex` keeps, per
(bracket, rung), the sorted keys ``(loss, config)`` of the configurations not yet
promoted from it and of those already promoted, so a decision costs
O(rungs x (jobs in flight + log results)). It decides exactly as ``next_job`` does
on the same results and jobs in flight (``tests/test_asha.py`` checks this on random
histories); ``next_job`` stays the reference statement of the rule.

Example (the worked example of :mod:`shadho.asha`):
    >>> from shadho.asha import RungResult, Job
    >>> from shadho.fidelity import Fidelity
    >>> index = RungIndex(Fidelity("epochs", 1, 9, eta=3))
    >>> for c in range(9):
    ...     index.add(RungResult(c, 0, 9.0 - c))
    >>> index.next_job([])
    Job(config=8, rung=1, bracket=0)
    >>> index.next_job([Job(8, 1)])
    Job(config=7, rung=1, bracket=0)
"""
from __future__ import annotations

import math
from bisect import bisect_left, insort
from typing import Iterable

from shadho.asha import Job, RungResult, bracket_by_counts
from shadho.fidelity import Fidelity

__all__ = ["RungIndex"]

Key = tuple[float, int]  # (loss, config): the rule's order within a rung


class _Rung:
    """One (bracket, rung): its size and its finite results, split by promotion."""

    __slots__ = ("size", "waiting", "promoted")

    def __init__(self) -> None:
        self.size = 0  # every result, failed ones too (they were tried)
        self.waiting: list[Key] = []  # finite results whose config has no result one rung up
        self.promoted: list[Key] = []  # finite results whose config has one


class RungIndex:
    """Rung results indexed for the ASHA decision (see the module docstring).

    Args:
        fidelity: the search's rungs, brackets and eta.
    """

    def __init__(self, fidelity: Fidelity) -> None:
        self.fidelity = fidelity
        self._rungs: dict[tuple[int, int], _Rung] = {}
        self._done: set[tuple[int, int]] = set()  # (config, rung) with a result
        self._key: dict[tuple[int, int], list[tuple[int, Key]]] = {}  # (config, rung) -> [(bracket, key)]
        self._first_bracket: dict[int, int] = {}  # config -> bracket of its first result
        self._per_bracket = [0] * len(fidelity.bracket_rungs)  # configs started, by that bracket

    def _rung(self, bracket: int, rung: int) -> _Rung:
        at = self._rungs.get((bracket, rung))
        if at is None:
            at = self._rungs[(bracket, rung)] = _Rung()
        return at

    def add(self, r: RungResult) -> None:
        """File one rung result (in any order: a result one rung up may come first)."""
        if r.config not in self._first_bracket:
            self._first_bracket[r.config] = r.bracket
            if 0 <= r.bracket < len(self._per_bracket):
                self._per_bracket[r.bracket] += 1
        rung = self._rung(r.bracket, r.rung)
        rung.size += 1
        if r.loss is not None and math.isfinite(r.loss):
            key = (float(r.loss), r.config)
            self._key.setdefault((r.config, r.rung), []).append((r.bracket, key))
            insort(rung.promoted if (r.config, r.rung + 1) in self._done else rung.waiting, key)
        if (r.config, r.rung) not in self._done:
            self._done.add((r.config, r.rung))
            for bracket, key in self._key.get((r.config, r.rung - 1), ()):
                below = self._rung(bracket, r.rung - 1)
                i = bisect_left(below.waiting, key)
                if i < len(below.waiting) and below.waiting[i] == key:
                    del below.waiting[i]
                    insort(below.promoted, key)

    def _best(self, bracket: int, k: int, running: set[tuple[int, int]]) -> Job | None:
        """The best promotion from rung ``k`` of ``bracket``, if the rule allows one."""
        at = self._rungs.get((bracket, k))
        if at is None:
            return None
        n, skipped = at.size // self.fidelity.eta, 0
        for key in at.waiting:
            rank = bisect_left(at.promoted, key) + skipped  # promoted configs ahead of it
            if rank >= n:
                return None  # every later one ranks lower still
            if (key[1], k + 1) in running:
                skipped += 1  # promoted already, by a job still in flight
                continue
            return Job(key[1], k + 1, bracket)
        return None

    def next_job(self, pending: Iterable[Job]) -> Job:
        """What the next free slot runs, as :func:`shadho.asha.next_job` decides it."""
        pending = list(pending)
        running = {(j.config, j.rung) for j in pending if j.config is not None}
        top = self.fidelity.n_rungs - 1
        best: Job | None = None
        for b in self.fidelity.bracket_rungs:
            for k in range(top - 1, b - 1, -1):
                if best is not None and k + 1 <= best.rung:
                    break
                job = self._best(b, k, running)
                if job is not None:
                    best = job
                    break
        if best is not None:
            return best
        counts, n = list(self._per_bracket), len(self._first_bracket)
        seen: set[int] = set()
        for j in pending:  # configurations started by a job in flight (new ones: config None)
            if j.config is not None and (j.config in self._first_bracket or j.config in seen):
                continue
            if j.config is not None:
                seen.add(j.config)
            n += 1
            if 0 <= j.bracket < len(counts):
                counts[j.bracket] += 1
        b = bracket_by_counts(counts, n, self.fidelity)
        return Job(None, b, b)
