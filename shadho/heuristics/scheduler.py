"""Which search space each compute class samples next.

The driver asks :meth:`Scheduler.pick` for a space each time a slot of a class
needs work (late binding), reports every finished trial to :meth:`observe`, and
calls :meth:`reassign` when :meth:`due` says so; the rows it returns are written
to the results store so users can see why the search went where it went.

Modes:

* ``use_complexity`` / ``use_uncertainty`` (the defaults): spaces are scored by
  ``score = C_s / max(C) * max(U_s, u_min) * P_s`` (:mod:`.complexity`,
  :mod:`.uncertainty`, and the performance term below; a switched off factor is 1), ranked, and spread over
  the classes by :func:`.assignment.assign` using per-(space, class) speeds learned
  online (:mod:`.strength`): every space on at least two classes, the highest-ranked
  ones on the strongest classes, each class drawing from its own weights where its
  comparative advantage lies. Space s receives the budget (its share of the
  compute, which the assignment's market turns into trials on the classes that run
  it best) ``w_s = f / S + (1 - f) * score_s / sum(score)`` with the floor
  ``f = share_floor`` (default 0.5), so every space keeps at least ``f / S`` of it.
  The uncertainty floor is ``u_min = uncertainty_floor / parallelism`` (default
  0.1), with ``parallelism`` the peak number of picks not yet answered by a result
  (1 for sequential ask/tell, about the number of busy slots on a pool). In a
  sequential search a smooth (U ~ 0) but clearly better space must not lose its
  trials to a rough, worse one, so the floor lets the performance term decide;
  with many slots in flight the floor is negligible and a well-understood space
  gives its slots to the ones still uncertain (measured: with the full floor the
  150-worker benchmark reached its target later).
* performance term (``use_performance=True``, the default outside the baseline):
  with ``b_s`` the best loss space s has returned, ``b* = min_s b_s`` and
  ``m = median_s b_s`` over the spaces with a result,

      P_s = exp(-k (b_s - b*) / (m - b*)),   k = performance_sharpness (default 2)

  so the best space has 1, a median space ``e^-k`` and a clearly worse one little
  (its share never drops below the floor). Spaces without a result yet, and all
  spaces while fewer than two have one or when ``m = b*``, have ``P_s = 1``. It is
  scale free (only differences between spaces' best losses matter) and costs O(S).
* the baseline guarantee (default, except when cost aware): budgets are raised
  until every space gets at least the trials per second the hardware-oblivious
  baseline would give it (:func:`.assignment.guarantee_baseline`), so the scores
  only decide where the surplus of comparative advantage goes. Early signals can
  point away from the space holding the optimum, and a search that gave that
  space fewer trials than the baseline reached its target later than no
  heuristics at all. With one class, or classes equally fast everywhere, there is
  no surplus and the split is the baseline's. With ``surplus_share > 0`` (default 0),
  where there is one (the assignment gives ``g`` times the baseline's trials in all),
  every space is first promised ``1 + surplus_share * (g - 1)`` times its baseline rate
  (``g`` from the previous solve, so one market per reassignment) and only the rest
  follows the scores: the space holding the optimum can look worst for most of a run,
  and with only its baseline rate it gets no more trials than without the heuristics.
  Measured (``bench/heterogeneity.py``, 10 seeds, common random numbers): 0.5 helped
  where a class fails one space (failing profile: median time to target 1.08x instead
  of 1.00x, 1 seed below 0.8 instead of 3) but cost the others (sim150 1.94x instead of
  2.17x, the paper-like pool's throughput 1.95x instead of 2.21x), so it is off.
* exploration promise (``explore_results``): a space with ``n_s`` results is promised
  ``max(surplus_share, 1 - n_s / explore_results)`` of the surplus on top of its
  baseline rate, so until it has ``explore_results`` results it is sped up as much as
  the whole search (``g`` times its baseline rate) whatever its score. Why: before a
  space has a few dozen results its score (uncertainty 1 until a surrogate fits, a best
  loss from a handful of random draws) says nothing about where the optimum is, yet the
  market handed the surplus to the best-scored spaces and the space holding the target
  got only its baseline rate; and the sampler borrows same-named parameters across
  spaces, so the other spaces' extra trials also reshaped its early proposals (see
  ``bench/results/heterogeneity.txt``). A space with ``explore_results`` results or
  more is scored as before. Measured at 30 (10 seeds): the failing profile's median time
  to target 1.21x instead of 1.00x (1 seed below 0.8 instead of 3), but sim150's 1.92x
  instead of 2.17x and one paper seed at 0.68, so it is off (0) by default.
* ``cost_aware=True``: the score is further multiplied by each space's expected
  improvement over the best loss so far (relative to the largest; spaces without a
  fit count as the largest), so budgets follow expected improvement and the
  market spends each one where it buys the most trials, i.e. the most expected
  improvement per second of each class's measured runtime for that space.
* pair probes (``probe_pairs``, with two classes or more): a class's pick goes to a
  space it has never run nor been sent, once per pair, before its weights decide
  (:meth:`Scheduler._probe` says why). Measured (10 seeds): the real plan benchmark's
  first halves ran every pair in 5 of 5 seeds instead of 4; simreal-paper's time to
  target 2.71x instead of 1.68x, but sim150's 1.95x instead of 2.17x and two's lowest
  seed 0.63 instead of 0.77 (bench/results/heterogeneity.txt), so it is off by default.
* both heuristics off (and not cost aware): the hardware-oblivious baseline, every
  space on every class, uniform choice.

Decision cost: :meth:`pick` is a bisection in a cached cumulative table and
:meth:`observe` two array updates; :meth:`reassign` refits the uncertainty of the
spaces that gained 10% more results and solves one assignment (about 2 ms for 100 spaces
on 4 classes, i.e. 0.2 ms per result at the default ``reassign_every=10``).
"""
# About 410 lines: a third is the module docstring above, the reference for every
# formula and measured default of the scheduler, kept beside the code it describes.
from __future__ import annotations

import bisect
import math
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from shadho.compute import ComputeClass
from shadho.heuristics.assignment import Assignment, assign, baseline_trials, shares_from_scores
from shadho.heuristics.complexity import complexities
from shadho.heuristics.strength import RuntimeModel
from shadho.heuristics.uncertainty import Fit, expected_improvement, fit_surrogate
from shadho.history import History
from shadho.spaces import SearchSpace

__all__ = ["Scheduler", "make_scheduler"]


class Scheduler:
    """Ranks spaces and assigns them to compute classes (see the module docstring).

    Example:
        >>> from shadho.spaces import split, uniform
        >>> sp = split({'exclusive': True, 'a': {'x': uniform(0, 1)}, 'b': {'y': uniform(0, 1)}})
        >>> s = Scheduler(sp, [])
        >>> s.pick(None, np.random.default_rng(0)) in {x.id for x in sp}
        True
        >>> base = Scheduler(sp, [], use_complexity=False, use_uncertainty=False)
        >>> base.baseline
        True
    """

    def __init__(self, spaces: Sequence[SearchSpace], classes: Sequence[ComputeClass], *,
                 use_complexity: bool = True, use_uncertainty: bool = True, cost_aware: bool = False,
                 reassign_every: int = 10, use_performance: bool = True,
                 share_floor: float = 0.5, uncertainty_floor: float = 0.1,
                 performance_sharpness: float = 2.0, guarantee: bool | None = None,
                 surplus_share: float = 0.0, explore_results: int = 0, probe_pairs: bool = False) -> None:
        #: Every space gets at least the trials per second the baseline would give it
        #: (default: on, except in the cost-aware mode, which is asked to drop spaces
        #: with no expected improvement).
        self.guarantee = (not cost_aware) if guarantee is None else bool(guarantee)
        #: With the guarantee, the throughput gain over the baseline (learned speeds)
        #: below which the scheduler makes the baseline's decisions.
        self.min_gain = 0.05
        if not 0.0 <= surplus_share <= 1.0:
            raise ValueError(f"surplus_share must be in [0, 1], got {surplus_share!r}")
        #: With the guarantee, the share of the throughput gain every space gets on top
        #: of its baseline rate (the rest goes by score).
        self.surplus_share = float(surplus_share)
        self._gain = 1.0  # the last solve's total trials over the baseline's
        #: With the guarantee, results a space needs before its score may take its share of
        #: the surplus away (see :meth:`surplus_promise`); 0: never promised.
        self.explore_results = int(explore_results)
        if self.explore_results < 0:
            raise ValueError(f"explore_results must be >= 0, got {explore_results!r}")
        self._neutral = False
        #: Each class's first pick of a space it never ran goes to that space (see :meth:`pick`).
        self.probe_pairs = bool(probe_pairs)
        self._probed: set[tuple[int, int]] = set()
        self._probes_left: set[int] = set(range(len(classes))) if len(classes) > 1 else set()
        self.performance_sharpness = float(performance_sharpness)
        if not 0.0 <= uncertainty_floor <= 1.0:
            raise ValueError(f"uncertainty_floor must be in [0, 1], got {uncertainty_floor!r}")
        self.uncertainty_floor = float(uncertainty_floor)
        if not 0.0 < share_floor <= 1.0:
            raise ValueError(f"share_floor must be in (0, 1], got {share_floor!r}")
        self.spaces = list(spaces)
        self.classes = list(classes)
        self.keys: list[str | None] = [c.name for c in classes] or [None]
        self.use_complexity = use_complexity
        self.use_uncertainty = use_uncertainty
        self.cost_aware = cost_aware
        self.reassign_every = max(1, int(reassign_every))
        self.baseline = not (use_complexity or use_uncertainty or cost_aware)
        # The performance term refines the heuristics; it never turns the baseline on.
        self.use_performance = use_performance and not self.baseline
        self.share_floor = float(share_floor)
        #: Proportional-response rounds per reassignment (warm-started from the last).
        self.market_rounds = 30
        #: Where the rows' ``time`` comes from (a simulator sets a virtual clock).
        self.clock: Callable[[], float] = time.time
        self._since = 0
        self._picks = 0
        self._observed = 0
        #: Peak number of picks not yet answered by a result (tasks in flight): 1 for
        #: sequential ask/tell, about the worker count on a pool.
        self.parallelism = 1
        self._ids = [s.id for s in self.spaces]
        self._sidx = {s: i for i, s in enumerate(self._ids)}
        self._cidx = {k: j for j, k in enumerate(self.keys)}
        self._complexity = np.array(complexities(self.spaces), dtype=float)
        declared = [c.declared_speed for c in self.classes] or [1.0]
        self.runtimes = RuntimeModel(len(self.spaces), declared)
        self._fits: dict[str, tuple[int, Fit | None]] = {}  # space id -> (n at fit, fit)
        self._uncertainty = np.ones(len(self.spaces))
        self._best: float | None = None
        self._space_best = np.full(len(self.spaces), np.inf)
        self._performance = np.ones(len(self.spaces))
        self._share = np.full(len(self.spaces), 1.0 / max(1, len(self.spaces)))
        self.assignment: Assignment | None = None
        self._cum: list[list[float]] = []
        self._cum_all: list[float] = []
        self._prio: dict[str | None, dict[str, float]] = {k: {i: 0.0 for i in self._ids} for k in self.keys}
        self._zero_prio = self._prio  # the baseline's priorities (all 0), kept when _prio is re-solved
        if not self.baseline and self.spaces:
            self._solve({})

    # ------------------------------------------------------------ the driver's calls

    def observe(self, space_id: str, class_key: str | None, runtime: float | None,
                loss: float | None, ok: bool) -> None:
        """One finished trial (loss None when it failed)."""
        self._since += 1
        self._observed += 1
        if ok and loss is not None and (self._best is None or loss < self._best):
            self._best = float(loss)
        s, c = self._sidx.get(space_id), self._cidx.get(class_key)
        if ok and loss is not None and s is not None and loss < self._space_best[s]:
            self._space_best[s] = float(loss)
        if s is not None and c is not None:
            self.runtimes.add(s, c, None if runtime is None else float(runtime), ok)

    def warm_start(self, results: Iterable[tuple[str, str | None, float | None, float | None, bool]]
                   ) -> int:
        """Learn from finished trials of an earlier run: ``(space_id, class_key, runtime,
        loss, ok)`` each, as :meth:`observe` takes them. Unlike :meth:`observe` they answer
        no pick of this run (the tasks-in-flight count behind the uncertainty floor is left
        as it was) and trigger no reassignment. Returns the number of results learned.

        Example:
            >>> from shadho.spaces import split, uniform
            >>> sp = split({'x': uniform(0, 1)})
            >>> s = Scheduler(sp, [])
            >>> s.warm_start([(sp[0].id, None, 2.0, 0.5, True)]), s.due(), s.parallelism
            (1, False, 1)
        """
        n = 0
        for space_id, class_key, runtime, loss, ok in results:
            self.observe(space_id, class_key, runtime, loss, ok)
            n += 1
        self._since -= n
        self._observed -= n
        return n

    def due(self) -> bool:
        return self._since >= self.reassign_every

    def reassign(self, histories: Mapping[str, History]) -> list[dict[str, Any]]:
        """Recompute rankings and assignments; return one stats row per space."""
        self._since = 0
        now = self.clock()
        if self.baseline:
            return [{"space_id": s.id, "n_complete": histories[s.id].n, "classes": self.keys,
                     "complexity": float(self._complexity[i]), "time": now}
                    for i, s in enumerate(self.spaces)]
        self._solve(histories)
        a = self.assignment
        assert a is not None
        rows = []
        for i, s in enumerate(self.spaces):
            h = histories.get(s.id)
            rows.append({"space_id": s.id, "n_complete": h.n if h is not None else 0,
                         "complexity": float(self._complexity[i]),
                         "uncertainty": float(self._uncertainty[i]), "rank": int(a.rank[i]),
                         "performance": float(self._performance[i]),
                         "share": float(self._share[i]),
                         "classes": (list(self.keys) if self._neutral
                                     else [self.keys[c] for c in np.flatnonzero(a.mask[i])]),
                         "time": now})
        return rows

    def pick(self, class_key: str | None, rng: np.random.Generator) -> str:
        """The id of the space the next trial of ``class_key`` samples."""
        self._picks += 1
        if self._picks - self._observed > self.parallelism:
            self.parallelism = self._picks - self._observed
        if self.baseline or self._neutral:
            return self._ids[int(rng.integers(len(self._ids)))]
        c = self._cidx.get(class_key)
        cum = self._cum[c] if c is not None else self._cum_all
        u = float(rng.random())  # drawn even for a probe: the random stream does not depend on it
        if self.probe_pairs and c in self._probes_left:
            probe = self._probe(c)
            if probe is not None:
                return self._ids[probe]
        i = bisect.bisect_right(cum, u * cum[-1])
        return self._ids[min(i, len(self._ids) - 1)]

    def _probe(self, c: int) -> int | None:
        """A space class ``c`` has never run nor been sent, else None. A pair never run has
        only the additive guess of its runtime, blind to comparative advantage (real run: 40 s
        without a linear trial on the 1-core class that runs linear best; the plan from those
        results predicted a quarter of that class's trials). One trial per pair settles it."""
        tried = self.runtimes.tries[:, c]
        for s in range(len(self._ids)):
            if tried[s] == 0 and (s, c) not in self._probed:
                self._probed.add((s, c))
                return s
        self._probes_left.discard(c)
        return None

    def priorities(self) -> dict[str | None, dict[str, float]]:
        """Work Queue priority of each space's tasks per class (higher runs first): the
        class's own pick weight for its assigned spaces, 0 elsewhere.

        Not the rank: Work Queue keeps a short queue of waiting tasks per class and runs
        the highest priority first, so a rank-ordered priority let the top-ranked spaces
        overtake the class's queued tasks of cheap low-ranked ones (real run, seed 0: the
        1-core class ran 8 linear trials and 16 of the kernels the accelerator runs 4-8x
        faster). Ordered by the class's own weight, a queue favours the spaces where the
        class's comparative advantage lies."""
        return self._zero_prio if self._neutral else self._prio

    # ------------------------------------------------------------ internals

    def weights(self) -> dict[str | None, dict[str, float]]:
        """Each class's pick distribution over space ids (uniform in the baseline)."""
        if self.baseline or self._neutral or self.assignment is None:
            return {k: {i: 1.0 / len(self._ids) for i in self._ids} for k in self.keys}
        W = self.assignment.weights
        return {k: {i: float(W[s, c]) for s, i in enumerate(self._ids)} for c, k in enumerate(self.keys)}

    def effective_uncertainty_floor(self) -> float:
        """``u_min = uncertainty_floor / parallelism`` (see the module docstring)."""
        return self.uncertainty_floor / max(1, self.parallelism)

    def performance(self) -> np.ndarray:
        """``P_s`` of each space (see the module docstring)."""
        b = self._space_best
        seen = np.isfinite(b)
        P = np.ones(len(b))
        if seen.sum() < 2:
            return P
        best = float(b[seen].min())
        scale = float(np.median(b[seen])) - best
        if not scale > 0 or not math.isfinite(scale):
            return P
        P[seen] = np.exp(-self.performance_sharpness * (b[seen] - best) / scale)
        return P

    def scores(self, histories: Mapping[str, History]) -> np.ndarray:
        """``C_s / max(C)`` times ``max(U_s, u_min)`` times ``P_s`` (each factor when its heuristic is
        on), times the relative expected improvement when cost aware."""
        S = len(self.spaces)
        score = np.ones(S)
        if self.use_complexity:
            cmax = self._complexity.max() if S else 0.0
            score *= self._complexity / cmax if cmax > 0 else 1.0
        fits: list[Fit | None] = []
        for i, sp in enumerate(self.spaces):
            h = histories.get(sp.id)
            if h is None:
                fits.append(None)
                continue
            cached = self._fits.get(sp.id)
            # Refit when the space has 10% (at least 5) more finished trials than at its
            # last fit: the uncertainty barely moves between, and at 10,000 workers
            # refitting on every result would cost more than the 1 ms budget per task.
            if cached is None or h.n >= max(cached[0] + 5, 1.1 * cached[0]) or h.n < cached[0]:
                lo = [d.low for d in sp.domains]
                hi = [d.high for d in sp.domains]
                fit = fit_surrogate(h.X, h.y, lo, hi) if sp.dim else None
                cached = (h.n, fit)
                self._fits[sp.id] = cached
            fits.append(cached[1])
            self._uncertainty[i] = 1.0 if cached[1] is None else cached[1].uncertainty
        if self.use_uncertainty:
            score *= np.maximum(self._uncertainty, self.effective_uncertainty_floor())
        self._performance = self.performance() if self.use_performance else np.ones(S)
        score *= self._performance
        if self.cost_aware:
            ei = np.array([np.nan if (v := expected_improvement(f, self._best)) is None else v
                           for f in fits])
            top = np.nanmax(ei) if np.isfinite(ei).any() else np.nan
            rel = np.where(np.isfinite(ei), ei / top, 1.0) if top and top > 0 else np.ones(S)
            score *= np.clip(rel, 0.0, 1.0)
        return score

    def surplus_promise(self, histories: Mapping[str, History]) -> np.ndarray:
        """Per space, the share of the surplus promised on top of its baseline rate:
        ``max(surplus_share, 1 - n_s / explore_results)`` (see the module docstring).

        Example:
            >>> from shadho.spaces import split, uniform
            >>> sp = split({'x': uniform(0, 1)})
            >>> Scheduler(sp, [], explore_results=20).surplus_promise({}).tolist()
            [1.0]
        """
        S = len(self.spaces)
        share = np.full(S, self.surplus_share)
        if self.explore_results > 0:
            n = np.array([histories[s.id].n if s.id in histories else 0 for s in self.spaces], dtype=float)
            share = np.maximum(share, np.clip(1.0 - n / self.explore_results, 0.0, 1.0))
        return share

    def _solve(self, histories: Mapping[str, History]) -> None:
        score = self.scores(histories)
        # Log successful trials per second: a pair that fails its trials buys nothing.
        success = self.runtimes.log_success()
        L = success - self.runtimes.log_mean_runtime()
        share = shares_from_scores(score, self.share_floor)
        self._share = share
        warm = self.assignment.bids if self.assignment is not None else None
        cap = self.runtimes.capacity()
        floor = baseline_trials(L, cap, success) if self.guarantee else None  # see guarantee_baseline
        # Every space is promised a part of the surplus the last solve found (see the
        # module docstring): one solve per reassignment, not two.
        low = None if floor is None else floor * (1.0 + self.surplus_promise(histories)
                                                  * max(0.0, self._gain - 1.0))
        a = assign(score, L, cap, share=share, iters=self.market_rounds, warm=warm, minimum=low)
        self.assignment = a
        # Nothing to gain from the hardware (one class, or no comparative advantage):
        # make the baseline's decisions, so ON costs nothing where it cannot help.
        total = float(floor.sum()) if floor is not None else 0.0
        self._gain = float(a.trials.sum()) / total if total > 0 else 1.0
        self._neutral = floor is not None and (len(self.keys) < 2 or self._gain < 1.0 + self.min_gain)
        self._cum = [np.cumsum(a.weights[:, c]).tolist() for c in range(len(self.keys))]
        self._cum_all = np.cumsum(share).tolist()
        self._prio = {k: {i: float(a.weights[s, c]) if a.mask[s, c] else 0.0
                          for s, i in enumerate(self._ids)}
                      for c, k in enumerate(self.keys)}


def make_scheduler(spaces: Sequence[SearchSpace], classes: Sequence[ComputeClass],
                   **settings: Any) -> Scheduler:
    """The scheduler the driver uses: :class:`Scheduler` with ``settings`` as its keywords."""
    return Scheduler(spaces, classes, **settings)
