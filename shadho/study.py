"""The study: one experiment's trials, asked for and told about, over the results store.

A :class:`Study` holds what the search has learned (the samplers' histories, the
scheduler, the best loss, the budget left) and rebuilds all of it from the store when it
opens, so a restarted master continues where the last one stopped. The driver's loop and
the ask/tell API both go through it: :meth:`Study.next_task` and :meth:`Study.ask` choose
new trials, :meth:`Study.record` and :meth:`Study.tell` take their results.

Example:
    >>> import os, tempfile
    >>> from shadho import spaces
    >>> from shadho.samplers import make_sampler
    >>> from shadho.settings import SearchSettings
    >>> s = SearchSettings('doc', os.path.join(tempfile.mkdtemp(), 'r.db'), max_tasks=2, seed=0)
    >>> study = Study.open(s, spaces.split({'x': spaces.uniform(0, 1)}), make_sampler('random'), [])
    >>> t = study.ask(); _ = study.tell(t, 0.5); study.best_loss, study.budget_left()
    (0.5, 1)
    >>> study.store.close()
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from typing import Any, Callable, Sequence

import numpy as np

from shadho import study_asha
from shadho.checkpoints import CheckpointStore
from shadho.compute import ComputeClass
from shadho.errors import ConfigError
from shadho.heuristics import make_scheduler
from shadho.heuristics.scheduler import Scheduler
from shadho.managers.base import TaskSpec, TrialOutcome
from shadho.samplers import History
from shadho.samplers.startup import SearchContext
from shadho.settings import SearchSettings
from shadho.spaces import SearchSpace
from shadho.resume import open_store
from shadho.store import ResultsStore, TrialUpdate
from shadho.study_rungs import RungBook
from shadho.tracebacks import SourceMap
from shadho.trial import Trial, TrialState

__all__ = ["Study", "open_store"]

log = logging.getLogger("shadho")

#: A trial waiting to (re)run: (id, space id, params, encoded point).
Requeued = tuple[int, str, dict[str, Any], tuple[float, ...]]


class Study:
    """One experiment's search state over its results store (see the module docstring).

    Build one with :meth:`open`. ``scheduler`` and ``clock`` are public hooks: a simulator
    sets a virtual ``clock`` and may wrap the ``scheduler`` (e.g. to time its calls).
    """

    def __init__(self, store: ResultsStore, exp: int, settings: SearchSettings,
                 spaces: Sequence[SearchSpace], sampler: Any, classes: Sequence[ComputeClass],
                 sources: SourceMap | None = None) -> None:
        self.store, self.exp, self.settings = store, exp, settings
        self.spaces, self.sampler = list(spaces), sampler
        # The caller's list itself: classes added before the scheduler is first built still count.
        self.classes = classes
        self.space_by_id = {s.id: s for s in self.spaces}
        self.sources = sources or SourceMap({})
        self.histories: dict[str, History] = {s.id: History(s.dim) for s in self.spaces}
        #: Trials waiting to run (resumed, lost or resubmitted), oldest first.
        self.requeued: list[Requeued] = []
        self.best_loss: float | None = None
        self.created = 0  # retries count toward max_tasks, yet run even when it is reached
        self._attempts: dict[int, int] = {}
        self._live: dict[int, tuple[str, tuple[float, ...]]] = {}
        self._task_seq = 0
        self._scheduler: Any = None
        self._clock: Callable[[], float] | None = None
        bind = getattr(sampler, "bind", None)  # optional hook: all histories and the budget
        if callable(bind):
            bind(SearchContext(tuple(self.spaces), self.histories, settings.max_tasks))
        seed = settings.seed if settings.seed is not None else np.random.SeedSequence().entropy
        self._seed = int(seed)
        self._space_index = {s.id: i for i, s in enumerate(self.spaces)}
        #: Proposals each space has had (its stored trials on resume): the key of the next one's draws.
        self._proposed: dict[str, int] = {s.id: 0 for s in self.spaces}
        self._rng = np.random.default_rng(np.random.SeedSequence([self._seed, 10**6]))
        #: The rung records and checkpoints of a multi-fidelity search (None without a fidelity).
        self.rungs: RungBook | None = None
        self.checkpoints: CheckpointStore | None = None
        #: Hardware-aware rungs (:func:`shadho.study_asha.router`; built on first use).
        self.rung_router: Any = None
        if settings.fidelity is not None:
            self.rungs = RungBook(settings.fidelity, {s.id: s.dim for s in self.spaces})
            self.checkpoints = CheckpointStore.for_settings(settings)
        self._replay_trials()

    @classmethod
    def open(cls, settings: SearchSettings, spaces: Sequence[SearchSpace], sampler: Any,
             classes: Sequence[ComputeClass], method: Any = "random", sources: SourceMap | None = None,
             on_open: Callable[[ResultsStore, int], Any] | None = None) -> "Study":
        """Open the results file and rebuild the study from the trials it holds
        (``on_open(store, exp)`` runs first, e.g. to re-queue failed trials)."""
        store, exp = open_store(settings, spaces, classes, method)
        try:
            if on_open is not None:
                on_open(store, exp)
            return cls(store, exp, settings, spaces, sampler, classes, sources)
        except BaseException:
            store.close()
            raise

    def _replay_trials(self) -> None:
        """Resume: stored trials become the histories; unfinished ones wait to run again."""
        store, exp = self.store, self.exp
        waiting = set(store.requeue_running(exp))
        for t in store.iter_trials(exp):
            self.created += 1
            self._attempts[t.id] = t.attempts
            if t.space_id in self._proposed:
                self._proposed[t.space_id] += 1
            hist = self.histories.get(t.space_id)
            if hist is None:
                if t.id in waiting:  # a space no longer in the spec: its pending trials are dropped
                    store.finish_trials([TrialUpdate(t.id, TrialState.FAILED,
                                                     error="search space removed from the spec")])
                continue
            if t.state == TrialState.COMPLETE and t.loss is not None:
                hist.complete(None, t.x, t.loss)
                self._consider_best(t.loss)
            elif t.state == TrialState.FAILED:
                hist.fail(None)
            elif t.id in waiting:
                self.requeued.append((t.id, t.space_id, t.params, tuple(t.x)))
                hist.add_pending(t.id, t.x)
        if self.rungs is not None:
            self.rungs.load(store.rungs(exp), {t.id: t for t in store.iter_trials(exp)}, _rung_loss)
        if self.requeued:
            log.info("resuming %s: %d trials re-queued", self.settings.exp_key, len(self.requeued))

    def _consider_best(self, loss: float | None) -> None:
        if loss is not None and (self.best_loss is None or loss < self.best_loss):
            self.best_loss = loss

    # ------------------------------------------------------------ hooks

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler (built on first use, taught every finished trial in the store)."""
        if self._scheduler is None:
            s = self.settings
            scheduler = make_scheduler(self.spaces, self.classes, use_complexity=s.use_complexity,
                                       use_uncertainty=s.use_uncertainty, cost_aware=s.cost_aware,
                                       reassign_every=s.reassign_every)
            if self._clock is not None:
                scheduler.clock = self._clock
            self._scheduler = scheduler
            self._replay_into(scheduler)
        return self._scheduler

    @scheduler.setter
    def scheduler(self, scheduler: Any) -> None:
        self._scheduler = scheduler

    @property
    def clock(self) -> Callable[[], float] | None:
        """Where the scheduler's times come from (None: the wall clock)."""
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        if self._scheduler is not None:
            self._scheduler.clock = clock

    def _replay_into(self, scheduler: Scheduler) -> None:
        """Resume: the scheduler learns every finished trial in the store (runtimes per
        (space, class), successes, best losses) and solves its assignment once, so a
        restarted master routes as the uninterrupted one would have."""
        done = (TrialState.COMPLETE, TrialState.FAILED)
        results = [(t.space_id, t.compute_class, t.runtime,
                    t.loss if t.state == TrialState.COMPLETE else None, t.state == TrialState.COMPLETE)
                   for t in self.store.iter_trials(self.exp)
                   if t.state in done and t.space_id in self.space_by_id]
        if results and scheduler.warm_start(results):
            scheduler.reassign(self.histories)

    def reassign(self) -> dict[Any, dict[str, float]]:
        """Solve the assignment again, record its per-space figures; returns the priorities."""
        rows = self.scheduler.reassign(self.histories)
        if rows:
            self.store.record_space_stats(self.exp, rows)
        return self.scheduler.priorities()

    # ------------------------------------------------------------ ask

    def budget_left(self) -> float:
        """New trials the budget still allows (infinite without ``max_tasks``)."""
        return math.inf if self.settings.max_tasks is None else self.settings.max_tasks - self.created

    def done(self) -> bool:
        """No trial waits to run again and the budget allows no new one."""
        return not self.requeued and self.budget_left() <= 0

    def proposal_rng(self, space: SearchSpace) -> np.random.Generator:
        """The random stream of ``space``'s next proposal, keyed by (seed, space, how many
        proposals the space has had) and counted as used.

        Why per proposal: the k-th configuration of a space then draws the same numbers
        whichever class runs it, whatever the other spaces did and however many draws the
        sampler's earlier calls took. The heuristics change where and when trials run, not
        the draws behind the configurations, so a search with and one without them are
        compared on common random numbers (``bench/heterogeneity.py``), and a resumed
        search continues each space's sequence instead of restarting it.
        """
        k = self._proposed[space.id]
        self._proposed[space.id] = k + 1
        return np.random.default_rng(np.random.SeedSequence([self._seed, self._space_index[space.id], k]))

    def reseed_picks(self, seed: int) -> None:
        """Draw the scheduler's picks from a stream of their own (the samplers' draws keep
        theirs): two searches that differ only in which space each free slot samples."""
        self._rng = np.random.default_rng(np.random.SeedSequence([int(seed), 10**6]))

    def _new_trials(self, space: SearchSpace, n: int, class_key: str | None
                    ) -> list[tuple[int, dict[str, Any], tuple[float, ...]]]:
        hist = self.histories[space.id]
        out = []
        for _ in range(n):
            x = np.asarray(self.sampler.suggest(space, hist, self.proposal_rng(space)), dtype=float)
            params = space.params(x)
            xt = tuple(float(v) for v in x)
            tid = self.store.add_trial(self.exp, space.id, params, xt, class_key)
            hist.add_pending(tid, xt)
            self.created += 1
            self._attempts[tid] = 0
            out.append((tid, params, xt))
        return out

    def _take_requeued(self, k: int) -> tuple[SearchSpace, list[tuple[int, dict[str, Any], tuple[float, ...]]]]:
        """The oldest waiting trial and up to ``k - 1`` more of its space."""
        tid, space_id, params, x = self.requeued.pop(0)
        items = [(tid, params, x)]
        while len(items) < k:
            j = next((i for i, r in enumerate(self.requeued) if r[1] == space_id), None)
            if j is None:
                break
            r = self.requeued.pop(j)
            items.append((r[0], r[2], r[3]))
        for tid_, _, x_ in items:
            self.histories[space_id].add_pending(tid_, x_)
        return self.space_by_id[space_id], items

    def next_task(self, class_key: str | None) -> TaskSpec | None:
        """The next task for a free slot of ``class_key``: waiting trials first, then new
        ones of the space the scheduler picks; None when the budget is spent."""
        k = self.settings.hyperparameters_per_task
        if self.requeued:
            space, items = self._take_requeued(k)
        else:
            n = int(min(k, self.budget_left()))
            if n <= 0:
                return None
            if self.rungs is not None:
                space, items = study_asha.new_items(self, class_key, n)
            else:
                space = self.space_by_id[self.scheduler.pick(class_key, self._rng)]
                items = self._new_trials(space, n, class_key)
        self.store.mark_submitted([t[0] for t in items], class_key)
        for tid, _, x in items:
            self._attempts[tid] = self._attempts.get(tid, 0) + 1
            self._live[tid] = (space.id, x)
        self._task_seq += 1
        prio = self.scheduler.priorities().get(class_key, {}).get(space.id, 0.0)
        budgets = study_asha.budgets(self, [t[0] for t in items]) if self.rungs is not None else ()
        return TaskSpec(self._task_seq, space.id, tuple((t[0], t[1]) for t in items), class_key, prio, budgets)

    def ask(self, compute_class: str | None = None) -> Trial:
        """A new trial to evaluate yourself; report it with :meth:`tell`."""
        if self.rungs is not None:
            raise ConfigError("ask() of a search with a fidelity is not supported yet (a trial would need its "
                              "budget and checkpoint): use run(), or a search without fidelity=")
        space = self.space_by_id[self.scheduler.pick(compute_class, self._rng)]
        (tid, params, x), = self._new_trials(space, 1, compute_class)
        self.store.mark_submitted([tid], compute_class)
        self._live[tid] = (space.id, x)
        return self.store.trials(self.exp, ids=[tid])[0]

    # ------------------------------------------------------------ tell

    def tell(self, trial: Trial | int, result: Any) -> Trial:
        """Record ``result`` (a loss, a dict with ``'loss'``, or an Exception) for ``trial``."""
        import shadho_worker

        tid = trial if isinstance(trial, int) else trial.id
        if isinstance(result, BaseException):
            out = TrialOutcome(tid, False, error=f"{type(result).__name__}: {result}")
        else:
            try:
                loss, metrics = shadho_worker.normalize_result(result)
                out = TrialOutcome(tid, True, loss=loss, results=metrics)
            except shadho_worker.ResultError as exc:
                out = TrialOutcome(tid, False, error=f"bad result: {exc}")
        if tid not in self._live:
            t = self.store.trials(self.exp, ids=[tid])
            if not t:
                raise ValueError(f"no trial {tid} in experiment {self.settings.exp_key!r}")
            if t[0].state.finished:
                raise ValueError(f"trial {tid} is already {t[0].state.value}")
            self._live[tid] = (t[0].space_id, tuple(t[0].x))
        self.record([out], resubmit=False)
        return self.store.trials(self.exp, ids=[tid])[0]

    def record(self, outcomes: Sequence[TrialOutcome], resubmit: bool = True) -> bool:
        """Store ``outcomes``; lost trials (and failed ones with resubmissions left, when
        ``resubmit``) wait to run again. Returns True when the scheduler reassigned."""
        scheduler = self.scheduler  # built before this batch is stored (it replays the store)
        updates = [u for u in (self._outcome(o, resubmit) for o in outcomes) if u is not None]
        if updates:
            self.store.finish_trials(updates)
            for u in updates:
                if u.state == TrialState.COMPLETE:
                    self._consider_best(u.loss)
            if self.rungs is not None:
                study_asha.take_results(self, updates)
        if scheduler.due():
            self.reassign()
            return True
        return False

    def _outcome(self, o: TrialOutcome, resubmit: bool) -> TrialUpdate | None:
        """The store update for one outcome (None: requeued or a duplicate report)."""
        live = self._live.pop(o.trial_id, None)
        if live is None:
            return None  # a duplicate report (e.g. a retried task): the first one counts
        space_id, x = live
        if o.lost or (not o.ok and resubmit
                      and self._attempts.get(o.trial_id, 1) <= self.settings.max_resubmissions):
            self.requeued.append((o.trial_id, space_id, self.space_by_id[space_id].params(x), x))
            if not o.lost:
                log.info("trial %d failed (%s); resubmitting", o.trial_id, (o.error or "")[:80])
            return None
        runtime = (o.finish_time - o.start_time) if (o.finish_time and o.start_time) else None
        if o.ok and not _json_safe(o.results):
            # A worker's result is untrusted: NaN or odd values in its metrics must fail the
            # trial, not the store's strict JSON writer (which would stop the master).
            o = dataclasses.replace(o, ok=False, error="malformed result from worker: metrics are not "
                                    "strict JSON (NaN, Infinity or non-JSON values)")
        common = dict(worker=o.worker, start_time=o.start_time, attempts=o.attempts,
                      finish_time=o.finish_time, compute_class=o.compute_class)
        if o.ok and o.loss is not None:
            self.histories[space_id].complete(o.trial_id, x, o.loss)
            update = TrialUpdate(o.trial_id, TrialState.COMPLETE, loss=o.loss, results=o.results, **common)
        else:
            self.histories[space_id].fail(o.trial_id)
            error = self.sources.restore(o.error)  # the user's file and line, not <dynamic-code>
            update = TrialUpdate(o.trial_id, TrialState.FAILED, error=error or "unknown error", **common)
        self.scheduler.observe(space_id, o.compute_class, runtime, o.loss if o.ok else None, o.ok)
        return update

    def live_ids(self) -> list[int]:
        """The trials submitted and not yet reported back."""
        return list(self._live)

    def budget_spent(self) -> float | None:
        """The budget of every finished rung run so far (None without a fidelity)."""
        return None if self.rungs is None else self.rungs.budget_spent()

    def drop_live(self, trial_ids: Sequence[int]) -> None:
        """Forget trials a stopping manager cancelled (they re-run on resume)."""
        for tid in trial_ids:
            self._live.pop(tid, None)


def _rung_loss(t: Trial) -> float | None | bool:
    """A stored rung trial's result: its loss, None (failed) or False (not finished)."""
    if t.state == TrialState.COMPLETE:
        return t.loss
    return None if t.state == TrialState.FAILED else False


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
