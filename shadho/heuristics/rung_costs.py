"""Hardware-aware rungs: what a rung run costs on each class, and which class runs which rung.

A rung run of configuration ``x`` trains ``u`` budget units (epochs): the rung's budget,
less the budget its checkpoint already holds when it continues one. Its runtime on
class ``c`` is modelled as a start-up overhead plus a cost per unit,

    runtime ~ a[s, c] + b[s, c] * u

(model load, CUDA initialisation, data staging, then the training itself), learned per
(search space s, class c) from the finished rung runs by :class:`RungCostModel`:

* the runs of a pair are averaged per distinct ``u`` (one point per rung seen), and the
  line is the least-squares fit through those points, with ``a, b >= 0`` (a negative
  intercept refits through the origin, a negative slope gives the mean);
* thin data is pooled: a pair with fewer than ``min_runs`` runs, or one distinct ``u``,
  takes its class's overhead and its own slope from the class-wide least-squares fit
  ``runtime ~ a_c + b[s, c] * u`` over all the class's points (one overhead for the
  class, one slope per space: the overhead is what its spaces share, told apart by the
  spaces seen at two budgets or more); a pair with no runs takes the class's overhead
  and the mean of its spaces' slopes. A class is *ready* once one of its spaces has
  runs at two distinct ``u``.

:class:`RungRouter` then uses (search space, rung) as the unit of the comparative-
advantage assignment (:func:`shadho.heuristics.assignment.assign`): unit ``(s, k)``
costs ``a + b * u_k`` seconds on class c (``u_k`` the mean units a rung-k run trains),
and ASHA asks for its runs in proportions ``d[s, k] = share_s * prod_{j<k} rate[s, j]``:
``share_s`` the smoothed share of configurations started in space s, ``rate`` each
rung's observed promotion rate (:meth:`RungRouter.demand_of`; before any data, the
textbook ``r_k = sum over brackets b <= k of (bracket b's share) * eta**-(k - b)``). The
market's budgets are set so every unit gets runs in those proportions: starting from
``w = d * min_c t``, a few rounds of ``w[u] = d[u] * min_c p_c * t[u, c]`` with ``p_c``
the class prices of the last solution (at that fixed point every unit buys only at its
lowest price per trial, which is the allocation that finishes the most max-budget runs
per second). Overhead-dominated low rungs then go to the classes whose overhead is
cheapest (small CPU nodes), long promotions to the classes where a budget unit is
cheapest (GPU nodes).

A free slot of class c takes, among the jobs ASHA allows now (every due promotion, and
a new configuration), the first in ASHA's order (highest rung first) of the units the plan
gives c at least a quarter of the runs of; it never waits, so a class with nothing of its
own on offer takes ASHA's first job. The
router is *neutral* (ASHA's own order: the highest promotion first, else a new
configuration) until every class is ready, with one class, or when the plan's
max-budget completions per second are under ``1 + min_gain`` times those of every
class running the same mix of rungs (the heuristics-off behaviour).

Example (hand-worked): class ``cpu`` costs 5 s + 10 s/epoch, ``gpu`` 60 s + 1 s/epoch:

    >>> m = RungCostModel(['s'], ['cpu', 'gpu'])
    >>> for u in (1, 3, 9):
    ...     _ = m.add('s', 'cpu', u, 5 + 10 * u), m.add('s', 'gpu', u, 60 + 1 * u)
    >>> a, b = m.fit()
    >>> a.round(6).tolist(), b.round(6).tolist()
    ([[5.0, 60.0]], [[10.0, 1.0]])
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from shadho.asha import Job, bracket_weights
from shadho.fidelity import Fidelity
from shadho.heuristics.assignment import assign

__all__ = ["RungCostModel", "RungRouter", "line_fit", "rung_demand"]


def line_fit(u: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """``(a, b)`` of the least-squares line ``y ~ a + b u`` with ``a, b >= 0`` (one point:
    through the origin).

    Example:
        >>> line_fit([1, 3], [15, 35])
        (5.0, 10.0)
        >>> line_fit([1, 3], [10, 9])      # a falling line: the mean, no slope
        (9.5, 0.0)
        >>> line_fit([2], [8])
        (0.0, 4.0)
    """
    x, t = np.asarray(u, dtype=float), np.asarray(y, dtype=float)
    if len(x) >= 2 and np.ptp(x) > 0:
        dx = x - x.mean()
        b = float((dx * (t - t.mean())).sum() / (dx * dx).sum())
        a = float(t.mean()) - b * float(x.mean())
        if b < 0:
            return float(t.mean()), 0.0
        if a >= 0:
            return float(a), float(b)
    return 0.0, max(0.0, float((x * t).sum() / max((x * x).sum(), 1e-300)))


class RungCostModel:
    """Overhead and per-unit cost of every (space, class) pair (see the module docstring).

    Args:
        space_ids: the search spaces, in the order of the fitted rows.
        class_keys: the compute classes, in the order of the fitted columns.
        min_runs: runs a pair needs (over two distinct budgets) for its own overhead.
    """

    def __init__(self, space_ids: Sequence[str], class_keys: Sequence[str | None], min_runs: int = 3) -> None:
        self.space_ids, self.class_keys = list(space_ids), list(class_keys)
        self._s = {s: i for i, s in enumerate(self.space_ids)}
        self._c = {c: j for j, c in enumerate(self.class_keys)}
        self.min_runs = int(min_runs)
        #: (space, class) -> units -> [runs, sum of runtimes]
        self._sums: dict[tuple[int, int], dict[float, list[float]]] = {}
        self.busy = np.zeros(len(self.class_keys))
        self.runs = 0

    def space_index(self, space_id: str) -> int | None:
        return self._s.get(space_id)

    def class_index(self, class_key: str | None) -> int | None:
        return self._c.get(class_key)

    def add(self, space_id: str, class_key: str | None, units: float, runtime: float | None) -> bool:
        """One finished rung run that trained ``units`` in ``runtime`` seconds (False:
        not usable: unknown space or class, no runtime, no units)."""
        s, c = self._s.get(space_id), self._c.get(class_key)
        if s is None or c is None or runtime is None or not (runtime > 0 and math.isfinite(runtime)) \
                or not units > 0:
            return False
        cell = self._sums.setdefault((s, c), {}).setdefault(float(units), [0.0, 0.0])
        cell[0] += 1
        cell[1] += float(runtime)
        self.busy[c] += float(runtime)
        self.runs += 1
        return True

    def _points(self, s: int, c: int) -> tuple[list[float], list[float], int]:
        """Pair (s, c)'s distinct units, the mean runtime at each, and its runs."""
        cells = self._sums.get((s, c), {})
        us = sorted(cells)
        return us, [cells[u][1] / cells[u][0] for u in us], int(sum(v[0] for v in cells.values()))

    def ready(self) -> np.ndarray:
        """Per class: one of its spaces ran at two distinct budgets (its overhead can be
        told apart from its cost per unit)."""
        out = np.zeros(len(self.class_keys), dtype=bool)
        for (_, c), cells in self._sums.items():
            out[c] |= len(cells) >= 2
        return out

    def _class_fit(self, c: int) -> tuple[float, np.ndarray]:
        """Class c's overhead and per-space slopes (see the module docstring); spaces it
        never ran get the mean slope of the others."""
        S = len(self.space_ids)
        rows, ys = [], []
        for s in range(S):
            for u, y in zip(*self._points(s, c)[:2]):
                rows.append([1.0] + [u if j == s else 0.0 for j in range(S)])
                ys.append(y)
        if not rows:
            return 0.0, np.zeros(S)
        X, y = np.array(rows), np.array(ys)
        coef = np.linalg.lstsq(X, y, rcond=None)[0]
        if coef[0] < 0:  # no overhead to see: through the origin
            coef = np.concatenate([[0.0], np.linalg.lstsq(X[:, 1:], y, rcond=None)[0]])
        seen = X[:, 1:].any(axis=0)
        slopes = np.clip(coef[1:], 0.0, None)
        slopes[~seen] = slopes[seen].mean()
        return float(coef[0]), slopes

    def fit(self) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)``: ``S x C`` overheads (seconds) and seconds per budget unit."""
        S, C = len(self.space_ids), len(self.class_keys)
        a, b = np.zeros((S, C)), np.zeros((S, C))
        for c in range(C):
            ac, bc = self._class_fit(c)
            a[:, c], b[:, c] = ac, bc
            for s in range(S):
                us, ys, n = self._points(s, c)
                if len(us) >= 2 and n >= self.min_runs:
                    a[s, c], b[s, c] = line_fit(us, ys)
        return a, b

    def seconds(self, space_id: str, class_key: str | None, units: float) -> float:
        """The modelled runtime of one rung run of ``units`` on ``class_key``."""
        a, b = self.fit()
        s, c = self._s[space_id], self._c[class_key]
        return float(a[s, c] + b[s, c] * units)


def rung_demand(fidelity: Fidelity) -> tuple[np.ndarray, np.ndarray]:
    """``(r, u)`` per rung: ASHA's relative number of runs ``r_k`` and the mean budget
    units ``u_k`` a run trains (a promotion continues from the rung below).

    Example:
        >>> r, u = rung_demand(Fidelity('epochs', 1, 9, eta=3))
        >>> r.round(4).tolist(), u.tolist()
        ([1.0, 0.3333, 0.1111], [1.0, 2.0, 6.0])
    """
    K, eta = fidelity.n_rungs, fidelity.eta
    bw = bracket_weights(fidelity)
    r, units = np.zeros(K), np.zeros(K)
    for k in range(K):
        for b in fidelity.bracket_rungs:
            if b <= k:
                n = bw[b] * float(eta) ** -(k - b)
                inc = fidelity.budget(k) - (fidelity.budget(k - 1) if k > b else 0)
                r[k] += n
                units[k] += n * inc
    units = units / np.where(r > 0, r, 1.0)
    return r / r[0] if r[0] > 0 else r, units


class RungRouter:
    """Which class runs which (space, rung) (see the module docstring).

    Args:
        fidelity: the search's budget.
        space_ids, class_keys: as :class:`RungCostModel`.
        min_gain: the planned gain in max-budget completions under which it stays neutral.
        rounds: fixed-point rounds of the market's budgets per :meth:`solve`.
    """

    def __init__(self, fidelity: Fidelity, space_ids: Sequence[str], class_keys: Sequence[str | None], *,
                 min_gain: float = 0.05, rounds: int = 8) -> None:
        self.fidelity = fidelity
        self.model = RungCostModel(space_ids, class_keys)
        self.min_gain, self.rounds = float(min_gain), int(rounds)
        self.demand, self.units = rung_demand(fidelity)
        self.neutral = True
        self.gain = 1.0
        #: Weight (in runs) of the textbook rung proportions in the demand (:meth:`demand_of`).
        self.prior_runs = 20.0
        #: ``(S * K) x C`` pick weights of each class over the units (row ``s * K + k``).
        self.weights: np.ndarray | None = None
        self.seconds: np.ndarray | None = None
        #: ``(S * K) x C`` planned runs per second of each unit on each class.
        self.runs: np.ndarray | None = None
        self._bids: np.ndarray | None = None
        #: ``(S * K) x C`` each class's planned share of each unit's runs.
        self.share = np.zeros((0, 0))
        #: The planned share of a unit's runs from which a class takes it before ASHA's first job.
        self.min_share = 0.25
        self._since = 0

    def observe(self, space_id: str, class_key: str | None, units: float, runtime: float | None) -> None:
        if self.model.add(space_id, class_key, units, runtime):
            self._since += 1

    def due(self, every: int) -> bool:
        """Time to re-plan: ``every`` new runs, or 5% more than at the last plan once that
        is more (the line's estimates settle; a 150-worker search re-planned every 10 runs
        spent a tenth of its master's time there)."""
        return self._since >= max(1, every, 0.05 * (self.model.runs - self._since))

    def unit(self, space_id: str, rung: int) -> int:
        s = self.model.space_index(space_id)
        if s is None:
            raise ValueError(f"unknown search space {space_id!r}")
        return s * self.fidelity.n_rungs + rung

    def demand_of(self, space_share: Sequence[float], counts: Any = None) -> np.ndarray:
        """``S * K`` relative runs ASHA asks of each unit: ``share_s`` times the product of
        the promotion rates below rung k, where the rate of rung j is the runs that reached
        rung j + 1 (promotions waiting for a slot included) over the runs finished at j,
        with ``prior_runs`` runs of the textbook ``1/eta`` (``counts``: ``(reached,
        finished)`` per (space, rung); None: the textbook proportions).

        Why the observed rates: ASHA keeps a configuration promoted when later results
        push it out of the best ``1/eta``, so a sampler that keeps improving promotes far
        more (a simulated TPE search sent 65% of rung-3 results on to rung 4); planning with
        ``eta**-k`` left the top rungs queued on the GPU class (0.71x the heuristics-off
        completions). Rates, not counts: rung 0 takes whatever slots are left, so its count
        says what the classes had spare, not what the higher rungs need."""
        share = np.asarray(space_share, dtype=float)
        if counts is None:
            prior = share[:, None] * self.demand[None, :]
            return (prior / prior.sum()).reshape(-1)
        reached, finished = (np.asarray(x, dtype=float) for x in counts)
        m, eta = self.prior_runs, float(self.fidelity.eta)
        rate = (reached[:, 1:] + m / eta) / (finished[:, :-1] + m)
        d = share[:, None] * np.concatenate([np.ones((len(share), 1)), np.cumprod(np.minimum(rate, 1.0), axis=1)],
                                            axis=1)
        return (d / d.sum()).reshape(-1)

    def solve(self, space_share: Sequence[float], counts: Any = None) -> None:
        """Re-plan from the runtimes so far; ``space_share``: each space's share of new
        configurations (sums to 1); ``counts``: see :meth:`demand_of`."""
        self._since = 0
        C = len(self.model.class_keys)
        if C < 2 or not self.model.ready().all():
            self.neutral = True
            return
        a, b = self.model.fit()
        T = np.maximum(a[:, None, :] + b[:, None, :] * self.units[None, :, None], 1e-6)  # S x K x C
        T = T.reshape(-1, C)
        d = self.demand_of(space_share, counts)
        busy = self.model.busy
        cap = busy / busy.sum() if (busy > 0).all() else np.full(C, 1.0 / C)
        a_ = self._plan(T, d, cap)
        # Runs per second of each unit (per slot of the whole pool): its share of each
        # class's time, times the class's share of the slots, over the seconds per run.
        runs = a_.time * cap[None, :] / T
        n = runs.sum(axis=1)
        self.runs = runs
        planned = float(np.min(n[d > 0] / d[d > 0]))
        oblivious = float((cap / (d[:, None] * T).sum(axis=0)).sum())
        self.gain = planned / oblivious if oblivious > 0 else 1.0
        self.neutral = self.gain < 1.0 + self.min_gain
        self.weights, self.seconds = a_.weights, T
        self.share = runs / np.maximum(runs.sum(axis=1, keepdims=True), 1e-300)

    def _plan(self, T: np.ndarray, d: np.ndarray, cap: np.ndarray) -> Any:
        """The assignment whose budgets give every unit trials in proportion to ``d``."""
        w = d * T.min(axis=1)
        result = None
        for _ in range(self.rounds):
            result = assign(np.ones(len(d)), -np.log(T), cap, share=w / w.sum(), align=0.0,
                            warm=self._bids)
            self._bids = result.bids
            price = result.bids.sum(axis=0) / np.maximum(cap, 1e-300)
            w = np.maximum(d * (price[None, :] * T).min(axis=1), 1e-12)
        return result

    def describe(self) -> str:
        """One line on the plan: its gain, and which class runs most of each rung.

        Example:
            >>> RungRouter(Fidelity('epochs', 1, 9), ['s'], ['cpu', 'gpu']).describe()
            "hardware-aware rungs: ASHA's own order (not every class has run two budgets yet, or nothing to gain)"
        """
        if self.neutral or self.runs is None:
            return ("hardware-aware rungs: ASHA's own order (not every class has run two budgets yet, "
                    "or nothing to gain)")
        K = self.fidelity.n_rungs
        per_rung = self.runs.reshape(-1, K, self.runs.shape[1]).sum(axis=0)  # K x C
        most = per_rung.argmax(axis=1)
        parts = [f"{self.model.class_keys[c]}: rungs {', '.join(str(k) for k in range(K) if most[k] == c)}"
                 for c in sorted(set(most.tolist()))]
        return (f"hardware-aware rungs: planned {self.gain:.2f}x the max-budget completions of every class "
                f"running the same mix; most runs of each rung on {'; '.join(parts)}")

    def choose(self, jobs: Sequence[Job], class_key: str | None, space_of: Callable[[Job], str]) -> Job:
        """One of ``jobs`` (in ASHA's order) for a free slot of ``class_key``: the first
        one when neutral; else the first, in ASHA's order (the highest rung first), of the
        jobs whose unit the plan gives the class at least ``min_share`` of the runs of; ASHA's
        first job when there is none (a slot never waits). ``space_of`` is called in ASHA's
        order and only up to the job taken, so a new configuration's space is not drawn
        when a promotion before it wins.

        Why not a draw by the class's pick weights, or fair queueing on them (0.3 simulated
        hours, 150 workers, seed 0, against the heuristics off): a unit not always on offer
        (a promotion) then gets less than its share, and a GPU slot with no promotion in sight
        started 1-epoch configurations half the time (0.97x); fair queueing followed the plan's
        shares but made top-rung runs wait behind rung-3 ones (0.75x). Taking the highest rung
        among the class's own units: 1.91x."""
        c = self.model.class_index(class_key)
        if self.neutral or self.weights is None or c is None or len(jobs) < 2:
            return jobs[0]
        share = self.share[:, c]
        for j in jobs:
            if share[self.unit(space_of(j), j.rung)] >= self.min_share:
                return j
        return jobs[0]
