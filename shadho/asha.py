"""Asynchronous successive halving (ASHA) and Hyperband brackets, from the rung history.

The rule (Li et al., "A System for Massively Parallel Hyperparameter Tuning", 2020): when
a slot is free, promote a configuration if one is in the top ``1/eta`` of the results
of its rung so far and has not been promoted from it yet (looking from the highest
rung down); otherwise start a new configuration at its bracket's lowest rung. No rung
waits for stragglers: a rung with ``n`` results promotes ``floor(n / eta)`` of them,
whatever is still running.

Everything is computed from the records (the rung results and the jobs in flight), so
a resumed master decides exactly as the one that stopped: there is no other state.

Example (eta 3, one bracket): nine configurations finished rung 0 with losses 9..1;
the best three (losses 1, 2, 3: configurations 8, 7, 6) are promotable, best first:

    >>> from shadho.fidelity import Fidelity
    >>> f = Fidelity("epochs", 1, 9, eta=3)
    >>> done = [RungResult(c, 0, 9.0 - c) for c in range(9)]
    >>> next_job(done, [], f)
    Job(config=8, rung=1, bracket=0)
    >>> next_job(done, [Job(8, 1)], f)
    Job(config=7, rung=1, bracket=0)
    >>> next_job(done + [RungResult(8, 1, 0.5), RungResult(7, 1, 0.7), RungResult(6, 1, 0.9)],
    ...          [], f)
    Job(config=8, rung=2, bracket=0)
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from shadho.fidelity import Fidelity

__all__ = ["RungResult", "Job", "next_job", "candidates", "promotable", "bracket_weights", "choose_bracket",
           "RungIndex"]


@dataclass(frozen=True)
class RungResult:
    """A configuration's result at one rung (``loss`` None: the rung failed)."""

    config: int
    rung: int
    loss: float | None
    bracket: int = 0


@dataclass(frozen=True)
class Job:
    """What a free slot runs: ``config`` at ``rung`` (``config`` None: a new configuration)."""

    config: int | None
    rung: int
    bracket: int = 0


def promotable(results: Sequence[RungResult], pending: Sequence[Job], fidelity: Fidelity,
               bracket: int = 0) -> list[Job]:
    """Every promotion the rule allows now in ``bracket``, highest rung first, best first."""
    started: set[tuple[int, int]] = {(r.config, r.rung) for r in results}
    started |= {(j.config, j.rung) for j in pending if j.config is not None}
    out: list[Job] = []
    top = fidelity.n_rungs - 1
    for k in range(top - 1, bracket - 1, -1):
        rung = [r for r in results if r.rung == k and r.bracket == bracket]
        ok = sorted((r for r in rung if r.loss is not None and math.isfinite(r.loss)),
                    key=lambda r: (r.loss, r.config))
        # Failed results count toward the rung's size (they were tried) but are never promoted.
        n = len(rung) // fidelity.eta
        out += [Job(r.config, k + 1, bracket) for r in ok[:n] if (r.config, k + 1) not in started]
    return out


def bracket_weights(fidelity: Fidelity) -> list[float]:
    """Hyperband's share of new configurations per bracket: bracket ``b`` (starting at rung
    ``b`` of ``s + 1`` rungs) gets ``ceil((s + 1) / (s - b + 1) * eta**(s - b))`` of an
    iteration's configurations, so every bracket spends about the same budget."""
    s, eta = fidelity.n_rungs - 1, fidelity.eta
    w = [math.ceil((s + 1) / (s - b + 1) * eta ** (s - b)) for b in fidelity.bracket_rungs]
    total = float(sum(w))
    return [x / total for x in w]


def choose_bracket(started: Sequence[int], fidelity: Fidelity) -> int:
    """The bracket for a new configuration: the one furthest below its share, given the
    brackets of the configurations started so far (deterministic, so a resumed master
    chooses as the stopped one would have)."""
    counts = [0] * fidelity.brackets
    for b in started:
        if 0 <= b < len(counts):
            counts[b] += 1
    return _bracket_from_counts(counts, len(started), fidelity)


def _bracket_from_counts(counts: Sequence[int], started: int, fidelity: Fidelity) -> int:
    weights = bracket_weights(fidelity)
    n = started + 1
    return max(range(len(weights)), key=lambda b: (weights[b] * n - counts[b], -b))


def next_job(results: Iterable[RungResult], pending: Iterable[Job], fidelity: Fidelity) -> Job:
    """What the next free slot runs: a promotion when one is due (the highest rung first,
    over all brackets), else a new configuration in the bracket :func:`choose_bracket` picks.

    Args:
        results: every rung result so far.
        pending: the jobs submitted and not finished (their promotions are not repeated).
    """
    return candidates(results, pending, fidelity)[0]


def candidates(results: Iterable[RungResult], pending: Iterable[Job], fidelity: Fidelity) -> list[Job]:
    """Every job the rule allows now, in its order: the due promotions of all brackets
    (highest rung first; at one rung the lower bracket first, best first), then the new
    configuration. The first is :func:`next_job`'s; a hardware-aware slot may take another
    (:mod:`shadho.heuristics.rung_costs`).

    Example:
        >>> f = Fidelity("epochs", 1, 9, eta=3)
        >>> done = [RungResult(c, 0, 9.0 - c) for c in range(6)]
        >>> candidates(done, [], f)
        [Job(config=5, rung=1, bracket=0), Job(config=4, rung=1, bracket=0), Job(config=None, rung=0, bracket=0)]
    """
    results, pending = list(results), list(pending)
    promotions = [j for b in fidelity.bracket_rungs for j in promotable(results, pending, fidelity, b)]
    promotions.sort(key=lambda j: -j.rung)  # stable: brackets, then ASHA's best-first order
    first: dict[int, int] = {}
    for r in results:
        first.setdefault(r.config, r.bracket)
    for j in pending:
        if j.config is not None:
            first.setdefault(j.config, j.bracket)
    b = choose_bracket(list(first.values()) + [j.bracket for j in pending if j.config is None], fidelity)
    return promotions + [Job(None, b, b)]


class RungIndex:
    """The rung results kept sorted as they arrive, so :meth:`candidates` gives
    :func:`candidates`' jobs, in its order, without sorting every result on every call
    (a search of 10,000 rung runs on 150 workers spent most of its master's time there).

    Example:
        >>> f = Fidelity("epochs", 1, 9, eta=3)
        >>> index = RungIndex(f)
        >>> for c in range(6):
        ...     index.add(RungResult(c, 0, 9.0 - c))
        >>> index.candidates([Job(5, 1)]) == candidates([RungResult(c, 0, 9.0 - c) for c in range(6)], [Job(5, 1)], f)
        True
    """

    def __init__(self, fidelity: Fidelity) -> None:
        self.fidelity = fidelity
        self._ok: dict[tuple[int, int], list[tuple[float, int]]] = {}  # (bracket, rung) -> (loss, config)
        self._n: dict[tuple[int, int], int] = {}
        self._done: set[tuple[int, int]] = set()
        self._bracket: dict[int, int] = {}  # config -> the bracket of its first result
        self._counts = [0] * fidelity.brackets

    def add(self, r: RungResult) -> None:
        key = (r.bracket, r.rung)
        self._n[key] = self._n.get(key, 0) + 1
        self._done.add((r.config, r.rung))
        if r.loss is not None and math.isfinite(r.loss):
            bisect.insort(self._ok.setdefault(key, []), (r.loss, r.config))
        if r.config not in self._bracket:
            self._bracket[r.config] = r.bracket
            if 0 <= r.bracket < len(self._counts):
                self._counts[r.bracket] += 1

    def candidates(self, pending: Sequence[Job]) -> list[Job]:
        """As :func:`candidates` over the results added so far."""
        f = self.fidelity
        running = {(j.config, j.rung) for j in pending if j.config is not None}
        promotions: list[Job] = []
        for b in f.bracket_rungs:
            for k in range(f.n_rungs - 2, b - 1, -1):
                n = self._n.get((b, k), 0) // f.eta
                promotions += [Job(c, k + 1, b) for _, c in self._ok.get((b, k), [])[:n]
                               if (c, k + 1) not in self._done and (c, k + 1) not in running]
        promotions.sort(key=lambda j: -j.rung)
        counts, started, seen = list(self._counts), len(self._bracket), set()
        for j in pending:
            if j.config is None or (j.config not in self._bracket and j.config not in seen):
                if j.config is not None:
                    seen.add(j.config)
                started += 1
                if 0 <= j.bracket < len(counts):
                    counts[j.bracket] += 1
        b = _bracket_from_counts(counts, started, f)
        return promotions + [Job(None, b, b)]
