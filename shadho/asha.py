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

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from shadho.fidelity import Fidelity

__all__ = ["RungResult", "Job", "next_job", "candidates", "promotable", "bracket_weights", "choose_bracket",
           "bracket_by_counts"]


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
    counts = [0] * len(fidelity.bracket_rungs)
    for b in started:
        if 0 <= b < len(counts):
            counts[b] += 1
    return bracket_by_counts(counts, len(started), fidelity)


def bracket_by_counts(counts: Sequence[int], n_started: int, fidelity: Fidelity) -> int:
    """:func:`choose_bracket` given how many configurations each bracket has started
    (``n_started`` of them in all, counting any outside the brackets)."""
    weights = bracket_weights(fidelity)
    n = n_started + 1
    return max(range(len(weights)), key=lambda b: (weights[b] * n - counts[b], -b))


def _new_job(results: Sequence[RungResult], pending: Sequence[Job], fidelity: Fidelity) -> Job:
    """A new configuration, in the bracket furthest below its share."""
    first: dict[int, int] = {}
    for r in results:
        first.setdefault(r.config, r.bracket)
    for j in pending:
        if j.config is not None:
            first.setdefault(j.config, j.bracket)
    b = choose_bracket(list(first.values()) + [j.bracket for j in pending if j.config is None], fidelity)
    return Job(None, b, b)


def next_job(results: Iterable[RungResult], pending: Iterable[Job], fidelity: Fidelity) -> Job:
    """What the next free slot runs: a promotion when one is due (the highest rung first,
    over all brackets), else a new configuration in the bracket :func:`choose_bracket` picks.

    Args:
        results: every rung result so far.
        pending: the jobs submitted and not finished (their promotions are not repeated).
    """
    results, pending = list(results), list(pending)
    best: Job | None = None
    for b in fidelity.bracket_rungs:
        jobs = promotable(results, pending, fidelity, b)
        if jobs and (best is None or jobs[0].rung > best.rung):
            best = jobs[0]
    if best is not None:
        return best
    return _new_job(results, pending, fidelity)


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
    promotions.sort(key=lambda j: -j.rung)  # stable: brackets, then the rule's best-first order
    return promotions + [_new_job(results, pending, fidelity)]
