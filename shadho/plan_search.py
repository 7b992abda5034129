"""The cheapest pool that runs N more trials within H hours (``shadho plan --trials N --hours H``).

Candidate mixes: the given pool's mix of classes (a class given with count 0 is
left out of it), and each class of the pool alone when it can run every search
space. For each mix one simulation at the given counts gives the time ``T1``; the
counts are scaled by ``1.05 T1 / H`` (rounded up) and simulated again, and scaled
once or twice more while the time is still over H. The cost of a pool is its price
per hour times its time to finish (the whole pool is paid until the last trial);
without prices every worker-hour costs 1 (the smallest pool wins).
The cheapest pool within H gets a full prediction (all ``samples``).

The times scale about as ``1 / workers`` only while the master is not the
bottleneck; a mix the master caps above H is reported as infeasible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from shadho.plan_inputs import format_pool
from shadho.plan_model import LearnedModel

__all__ = ["PoolChoice", "cheapest_pool"]

_CORRECTIONS = 2
_MARGIN = 1.05


@dataclass(frozen=True)
class PoolChoice:
    """The cheapest pool found (``feasible`` False when none finishes within the hours).

    ``tried`` holds ``(pool, hours to finish, cost)`` of every pool simulated; ``unit``
    is ``'price'`` (the given prices) or ``'worker-hours'`` (none were given).
    """

    pool: dict[str, tuple[int, int]] | None
    prediction: Any
    feasible: bool
    tried: tuple[tuple[str, float, float], ...]
    reason: str = ""
    unit: str = "price"


def _mixes(model: LearnedModel, pool: Mapping[str, tuple[int, int]]) -> list[dict[str, tuple[int, int]]]:
    base = {c: v for c, v in pool.items() if v[0] > 0}
    out = [base]
    for c, (count, slots) in pool.items():
        alone = {c: (max(1, count), slots)}
        if alone != base and all(model.can_run(s, c) for s in range(len(model.names))):
            out.append(alone)
    return out


def _scaled(pool: Mapping[str, tuple[int, int]], k: float) -> dict[str, tuple[int, int]]:
    return {c: (max(1, int(math.ceil(n * k - 1e-9))), s) for c, (n, s) in pool.items()}


def cheapest_pool(predict: Callable[[dict[str, tuple[int, int]], int], Any], model: LearnedModel,
                  pool: Mapping[str, tuple[int, int]], hours: float, prices: Mapping[str, float],
                  samples: int = 3, unit: str = "price") -> PoolChoice:
    """Search pools (see the module docstring); ``predict(pool, samples)`` is one prediction
    whose cost uses ``prices`` (one per class of ``pool``)."""
    tried: list[tuple[str, float, float]] = []
    best: tuple[float, dict[str, tuple[int, int]]] | None = None
    capped = []
    for mix in _mixes(model, pool):
        cur = dict(mix)
        for step in range(_CORRECTIONS + 2):
            p = predict(cur, 1)
            t, cost = p.time_to_finish.mid, p.cost.mid
            tried.append((format_pool(cur), t, cost))
            if t <= hours:
                if best is None or cost < best[0]:
                    best = (cost, dict(cur))
                if step > 0:
                    break
            if p.master_bound and t > hours:
                capped.append(format_pool(cur))
                break
            nxt = _scaled(cur, _MARGIN * t / hours) if step == 0 else (
                _scaled(cur, _MARGIN * t / hours) if t > hours else None)
            if nxt is None or nxt == cur:
                break
            cur = nxt
    if best is None:
        why = (f"the master caps {', '.join(capped)} above {hours:g} h" if capped
               else f"no pool tried finishes within {hours:g} h")
        return PoolChoice(None, None, False, tuple(tried), why, unit)
    return PoolChoice(best[1], predict(best[1], samples), True, tuple(tried), "", unit)
