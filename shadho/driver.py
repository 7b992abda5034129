"""The ``Shadho`` driver: store + samplers + heuristics + manager, in one loop.

The loop is ask -> submit -> wait -> tell. Asking is late: a trial's search space
and parameters are chosen at the moment a slot of a compute class needs work.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import os
import signal
import tempfile
import threading
import time
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from shadho import resume
from shadho.compute import ComputeClass
from shadho.config import LegacyConfig, add_legacy_files, configure, did_you_mean, legacy_kwargs
from shadho.errors import ShadhoError
from shadho.heuristics.scheduler import Scheduler
from shadho.managers.base import ExecutionManager, FileSpec, RunSettings, TaskSpec, TrialOutcome
from shadho.samplers import History, make_sampler
from shadho.samplers.startup import SearchContext
from shadho.spaces import SearchSpace, split
from shadho.store import ResultsStore, TrialUpdate
from shadho.summary import exit_after_interrupt, say_end, say_resume
from shadho.original_api import OriginalApi
from shadho.tracebacks import SourceMap
from shadho.trial import Trial, TrialState

log = logging.getLogger("shadho")

_MANAGERS = ("local", "workqueue")


class _Stop(Exception):
    """Raised from the SIGTERM handler to stop the loop cleanly."""


class Shadho(OriginalApi):
    """A hyperparameter search over a nested-dict spec.

    Args:
        exp_key: the experiment's name in the results file (same key: resume).
        cmd: the objective: a callable ``fn(params) -> loss | {'loss': ..., ...}``
            or a shell command run on workers (see ``shadho_worker.run``).
        spec: the search-space spec (see :mod:`shadho.spaces`).
        method: sampler: ``'random'``, ``'tpe'``, ``'bayes'``/``'gp'``, a Sampler or a callable.
        backend: results file: ``.db``/``.sqlite`` (SQLite) or ``.json``.
        timeout: seconds of searching (None or negative: no limit).
        max_tasks: one global budget of trials for the whole experiment.
        max_queued_tasks: most tasks queued per compute class beyond free slots.
        await_pending: at timeout, wait for running trials instead of abandoning them.
        max_resubmissions: times a FAILED trial is run again with the same params.
        seed: makes a sequential run exactly reproducible.
        use_complexity, use_uncertainty: the hardware-aware heuristics (both off:
            hardware-oblivious baseline).
        manager: ``'local'``, ``'workqueue'`` or an ExecutionManager.
        local_workers: processes (local manager) or local Work Queue workers.
        quiet: no progress output.
        **options: further settings (``task_timeout``, ``hyperparameters_per_task``,
            ``password``, ``port``, ``name``, ``catalog``, ``worker_python``,
            ``reassign_every``, ``cost_aware``, ``memory_mb``).

    Example:
        >>> import tempfile, os
        >>> from shadho import Shadho, spaces
        >>> db = os.path.join(tempfile.mkdtemp(), 'r.db')
        >>> opt = Shadho('doc', lambda p: (p['x'] - 1) ** 2, {'x': spaces.uniform(-5, 5)},
        ...              backend=db, max_tasks=8, seed=1, quiet=True, local_workers=2)
        >>> _ = opt.run()
        >>> len(opt.trials), opt.best['loss'] < 25
        (8, True)
    """

    _OPTIONS = {
        "task_timeout": None, "hyperparameters_per_task": 1, "password": None, "port": 0,
        "name": None, "catalog": None, "worker_python": None, "reassign_every": 10,
        "cost_aware": False, "memory_mb": None, "sampler_options": None, "worker_options": None,
        "retry_failed": False,
    }

    def __init__(self, exp_key: str, cmd: Callable[..., Any] | str, spec: Mapping[str, Any],
                 method: Any = "random", backend: str | os.PathLike[str] = "results.db",
                 timeout: float | None = 600, max_tasks: int | None = None, max_queued_tasks: int = 100,
                 await_pending: bool = False, max_resubmissions: int = 0, seed: int | None = None,
                 use_complexity: bool = True, use_uncertainty: bool = True,
                 manager: str | ExecutionManager | None = None, local_workers: Any = None,
                 quiet: bool = False, **options: Any) -> None:
        options, legacy = legacy_kwargs(options)
        unknown = sorted(set(options) - set(self._OPTIONS))
        if unknown:
            valid = sorted(list(inspect.signature(Shadho.__init__).parameters)[1:-1] + list(self._OPTIONS))
            hint = "".join(did_you_mean(u, valid) for u in unknown[:1])
            raise TypeError(f"Shadho() got unknown argument(s) {', '.join(unknown)}{hint}; valid: {', '.join(valid)}")
        if not isinstance(exp_key, str) or not exp_key:
            raise ValueError(f"exp_key must be a non-empty string, got {exp_key!r}")
        if not (callable(cmd) or (isinstance(cmd, str) and cmd.strip())):
            raise TypeError(f"cmd must be a callable objective or a shell command string, got {cmd!r}")
        if max_tasks is not None and (isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 0):
            raise ValueError(f"max_tasks must be None or an int >= 0, got {max_tasks!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
            raise TypeError(f"timeout must be seconds (a number) or None, got {timeout!r}")
        if not isinstance(max_queued_tasks, int) or max_queued_tasks < 1:
            raise ValueError(f"max_queued_tasks must be an int >= 1, got {max_queued_tasks!r}")
        if not isinstance(max_resubmissions, int) or max_resubmissions < 0:
            raise ValueError(f"max_resubmissions must be an int >= 0, got {max_resubmissions!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        if isinstance(manager, str) and manager not in _MANAGERS:
            raise ValueError(f"unknown manager {manager!r}; valid: {', '.join(_MANAGERS)} or an ExecutionManager")
        if manager is not None and not isinstance(manager, (str, ExecutionManager)):
            raise TypeError(f"manager must be {', '.join(_MANAGERS)} or an ExecutionManager, got {manager!r}")
        for flag, val in (("await_pending", await_pending), ("use_complexity", use_complexity),
                          ("use_uncertainty", use_uncertainty), ("quiet", quiet)):
            if not isinstance(val, (bool, np.bool_)):
                raise TypeError(f"{flag} must be True or False, got {val!r}")
        if local_workers is not None and not (
                (isinstance(local_workers, int) and not isinstance(local_workers, bool) and local_workers >= 0)
                or (isinstance(local_workers, (list, tuple)) and all(isinstance(w, dict) for w in local_workers))):
            raise TypeError("local_workers must be None, an int >= 0 or a list of worker specs "
                            f"(dicts with cores, memory, features), got {local_workers!r}")
        port = options.get("port", 0)
        if not ((isinstance(port, int) and not isinstance(port, bool) and 0 <= port < 65536) or (
                isinstance(port, (list, tuple)) and len(port) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536 for v in port)
                and port[0] <= port[1])):
            raise ValueError(f"port must be an int in 0..65535 (0: any free port) or a [lo, hi] range, got {port!r}")
        backend = os.fspath(backend)
        if not backend.endswith((".db", ".sqlite", ".sqlite3", ".json")):
            raise ValueError(f"backend must be a .db/.sqlite (SQLite) or .json path, got {backend!r}")
        self.options = {**self._OPTIONS, **options}
        hpt = self.options["hyperparameters_per_task"]
        if isinstance(hpt, bool) or not isinstance(hpt, int) or hpt < 1:
            raise ValueError(f"hyperparameters_per_task must be an int >= 1, got {hpt!r}")
        o = self.options
        for key in ("name", "catalog", "password", "worker_python"):
            if o[key] is not None and not isinstance(o[key], (str, os.PathLike)):
                raise TypeError(f"{key} must be a string or None, got {o[key]!r}")
        if not isinstance(o["cost_aware"], (bool, np.bool_)):
            raise TypeError(f"cost_aware must be True or False, got {o['cost_aware']!r}")
        ra = o["reassign_every"]
        if isinstance(ra, bool) or not isinstance(ra, int) or ra < 1:
            raise ValueError(f"reassign_every must be an int >= 1, got {ra!r}")
        mem = o["memory_mb"]
        if mem is not None and (isinstance(mem, bool) or not isinstance(mem, (int, float)) or mem <= 0):
            raise ValueError(f"memory_mb must be a positive number of MB or None, got {mem!r}")
        for key in ("sampler_options", "worker_options"):
            if o[key] is not None and not isinstance(o[key], dict):
                raise TypeError(f"{key} must be a dict of keyword arguments or None, got {o[key]!r}")
        if o["password"] is not None and not os.path.isfile(o["password"]):
            raise ValueError(f"password file {o['password']!r} does not exist")
        tt = self.options["task_timeout"]
        if tt is not None and (isinstance(tt, bool) or not isinstance(tt, (int, float)) or tt <= 0):
            raise ValueError(f"task_timeout must be a positive number of seconds or None, got {tt!r}")

        self.exp_key = exp_key
        self.cmd = cmd
        self.spec = spec
        self.spaces: list[SearchSpace] = split(spec)
        self.sampler = make_sampler(method, **(self.options["sampler_options"] or {}))
        self.method = method
        self.backend = backend
        self.timeout = None if timeout is None or timeout < 0 else float(timeout)
        self.max_tasks = max_tasks
        self.max_queued_tasks = max_queued_tasks
        self.await_pending = await_pending
        self.max_resubmissions = max_resubmissions
        self.seed = seed
        self.use_complexity = use_complexity
        self.use_uncertainty = use_uncertainty
        self.manager_choice = manager if manager is not None else ("local" if callable(cmd) else "workqueue")
        if self.manager_choice == "workqueue":
            from shadho.managers.wq_setup import require_work_queue
            require_work_queue()  # before any file exists: the fix, not a traceback at run()
        self.local_workers = local_workers
        self.quiet = quiet
        self.compute_classes: list[ComputeClass] = []
        self.input_files: list[FileSpec] = []
        self.output_files: list[FileSpec] = []
        self._store: ResultsStore | None = None
        self._exp: int | None = None
        self._space_by_id = {s.id: s for s in self.spaces}
        self._histories: dict[str, History] = {}
        self._rngs: dict[str, np.random.Generator] = {}
        self._requeue: list[tuple[int, str, dict[str, Any], tuple[float, ...]]] = []
        self._attempts: dict[int, int] = {}
        self._live: dict[int, tuple[str, tuple[float, ...]]] = {}
        self._created = 0
        self._task_seq = 0
        self._best_loss: float | None = None
        self._scheduler: Scheduler | None = None
        self._manager: ExecutionManager | None = None
        self._sources = SourceMap.of(cmd) if callable(cmd) else SourceMap({})
        self.config = LegacyConfig(self.manager_choice if isinstance(self.manager_choice, str) else None,
                                   o["name"], o["port"], o["password"])
        for key, why, value in legacy:
            warnings.warn(f"Shadho(): {why}", DeprecationWarning, stacklevel=2)
            if key == "files":
                add_legacy_files(self, value)

    # ------------------------------------------------------------ store

    def _open(self) -> None:
        if self._store is not None:
            return
        if self.backend.endswith(".json"):
            from shadho.store_json import JsonMirroredStore
            store: ResultsStore = JsonMirroredStore(self.backend)
        else:
            store = ResultsStore(self.backend)
        settings = {"method": self.method if isinstance(self.method, str) else repr(self.method),
                    "max_tasks": self.max_tasks, "timeout": self.timeout, "seed": self.seed,
                    "compute_classes": [c.name for c in self.compute_classes],
                    "use_complexity": self.use_complexity, "use_uncertainty": self.use_uncertainty,
                    "spaces": [s.name for s in self.spaces], "space_ids": [s.id for s in self.spaces]}
        try:
            previous = resume.previous_space_ids(store, self.exp_key)
            exp = store.open_experiment(self.exp_key, settings)
            resume.report_spec_changes(store, exp, self.exp_key, self.spaces, previous)
            store.register_spaces(exp, self.spaces)
        except BaseException:
            store.conn.close()
            raise
        self._store, self._exp = store, exp
        say_resume(self, store, exp)  # what resume found; retry_failed=True re-queues failures
        self._histories = {s.id: History(s.dim) for s in self.spaces}
        # Optional sampler hook: all spaces' histories and the budget (see Sampler.bind).
        bind = getattr(self.sampler, "bind", None)
        if callable(bind):
            bind(SearchContext(tuple(self.spaces), self._histories, self.max_tasks))
        base = [self.seed] if self.seed is not None else []
        for i, s in enumerate(self.spaces):
            ss = np.random.SeedSequence(base + [i]) if base else np.random.SeedSequence()
            self._rngs[s.id] = np.random.default_rng(ss)
        self._rng = np.random.default_rng(np.random.SeedSequence(base + [10**6]) if base else None)
        self._requeue.clear()
        waiting = set(store.requeue_running(exp))
        self._created = 0  # retries count toward max_tasks, yet run even when it is reached
        for t in store.iter_trials(exp):
            self._created += 1
            self._attempts[t.id] = t.attempts
            hist = self._histories.get(t.space_id)
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
                self._requeue.append((t.id, t.space_id, t.params, tuple(t.x)))
                hist.add_pending(t.id, t.x)
        if self._requeue:
            log.info("resuming %s: %d trials re-queued", self.exp_key, len(self._requeue))

    def _consider_best(self, loss: float | None) -> None:
        if loss is not None and (self._best_loss is None or loss < self._best_loss):
            self._best_loss = loss

    def close(self) -> None:
        """Release the results file (a later run with the same exp_key resumes)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self) -> ResultsStore:
        self._open()
        assert self._store is not None
        return self._store

    # ------------------------------------------------------------ ask / tell

    def _budget_left(self) -> float:
        return math.inf if self.max_tasks is None else self.max_tasks - self._created

    def _new_trials(self, space: SearchSpace, n: int, class_key: str | None
                    ) -> list[tuple[int, dict[str, Any], tuple[float, ...]]]:
        hist, rng = self._histories[space.id], self._rngs[space.id]
        out = []
        for _ in range(n):
            x = np.asarray(self.sampler.suggest(space, hist, rng), dtype=float)
            params = space.params(x)
            xt = tuple(float(v) for v in x)
            tid = self.store.add_trial(self._exp, space.id, params, xt, class_key)
            hist.add_pending(tid, xt)
            self._created += 1
            self._attempts[tid] = 0
            out.append((tid, params, xt))
        return out

    def ask(self, compute_class: str | None = None) -> Trial:
        """A new trial to evaluate yourself; report it with :meth:`tell`.

        Example:
            >>> import tempfile, os
            >>> from shadho import Shadho, spaces
            >>> opt = Shadho('ask', lambda p: 0, {'x': spaces.uniform(0, 1)}, quiet=True,
            ...              backend=os.path.join(tempfile.mkdtemp(), 'r.db'))
            >>> t = opt.ask(); _ = opt.tell(t, t.params['x'] ** 2); opt.best['loss'] >= 0
            True
        """
        self._open()
        scheduler = self._get_scheduler()
        space = self._space_by_id[scheduler.pick(compute_class, self._rng)]
        (tid, params, x), = self._new_trials(space, 1, compute_class)
        self.store.mark_submitted([tid], compute_class)
        self._live[tid] = (space.id, x)
        return self.store.trials(self._exp, ids=[tid])[0]

    def tell(self, trial: Trial | int, result: Any) -> Trial:
        """Record ``result`` (a loss, a dict with ``'loss'``, or an Exception) for ``trial``."""
        import shadho_worker

        self._open()
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
            t = self.store.trials(self._exp, ids=[tid])
            if not t:
                raise ValueError(f"no trial {tid} in experiment {self.exp_key!r}")
            if t[0].state.finished:
                raise ValueError(f"trial {tid} is already {t[0].state.value}")
            self._live[tid] = (t[0].space_id, tuple(t[0].x))
        self._tell([out], resubmit=False)
        return self.store.trials(self._exp, ids=[tid])[0]

    def _tell(self, outcomes: Sequence[TrialOutcome], resubmit: bool = True) -> None:
        updates: list[TrialUpdate] = []
        scheduler = self._get_scheduler()
        for o in outcomes:
            live = self._live.get(o.trial_id)
            if live is None:
                continue  # a duplicate report (e.g. a retried task): the first one counts
            space_id, x = live
            hist = self._histories[space_id]
            if o.lost or (not o.ok and resubmit and self._attempts.get(o.trial_id, 1) <= self.max_resubmissions):
                del self._live[o.trial_id]
                space = self._space_by_id[space_id]
                self._requeue.append((o.trial_id, space_id, space.params(x), x))
                if not o.lost:
                    log.info("trial %d failed (%s); resubmitting", o.trial_id, (o.error or "")[:80])
                continue
            del self._live[o.trial_id]
            runtime = (o.finish_time - o.start_time) if (o.finish_time and o.start_time) else None
            if o.ok and not _json_safe(o.results):
                # A worker's result is untrusted: NaN or odd values in its metrics must fail the
                # trial, not the store's strict JSON writer (which would stop the master).
                o = dataclasses.replace(o, ok=False, error="malformed result from worker: metrics are not "
                                        "strict JSON (NaN, Infinity or non-JSON values)")
            if o.ok and o.loss is not None:
                hist.complete(o.trial_id, x, o.loss)
                updates.append(TrialUpdate(o.trial_id, TrialState.COMPLETE, loss=o.loss, results=o.results,
                                           worker=o.worker, start_time=o.start_time, attempts=o.attempts,
                                           finish_time=o.finish_time, compute_class=o.compute_class))
            else:
                hist.fail(o.trial_id)
                error = self._sources.restore(o.error)  # the user's file and line, not <dynamic-code>
                updates.append(TrialUpdate(o.trial_id, TrialState.FAILED, error=error or "unknown error",
                                           worker=o.worker, start_time=o.start_time, attempts=o.attempts,
                                           finish_time=o.finish_time, compute_class=o.compute_class))
            scheduler.observe(space_id, o.compute_class, runtime, o.loss if o.ok else None, o.ok)
        if updates:
            self.store.finish_trials(updates)
            for u in updates:
                if u.state == TrialState.COMPLETE:
                    self._consider_best(u.loss)
        if scheduler.due():
            self._reassign()

    def _get_scheduler(self) -> Scheduler:
        if self._scheduler is None:
            self._scheduler = _make_scheduler(self)
            self._replay_into(self._scheduler)
        return self._scheduler

    def _replay_into(self, scheduler: Scheduler) -> None:
        """Resume: the scheduler learns every finished trial in the store (runtimes per
        (space, class), successes, best losses) and solves its assignment once, so a
        restarted master routes as the uninterrupted one would have."""
        if self._store is None or self._exp is None:
            return
        done = (TrialState.COMPLETE, TrialState.FAILED)
        results = [(t.space_id, t.compute_class, t.runtime,
                    t.loss if t.state == TrialState.COMPLETE else None, t.state == TrialState.COMPLETE)
                   for t in self._store.iter_trials(self._exp)
                   if t.state in done and t.space_id in self._space_by_id]
        if results and scheduler.warm_start(results):
            scheduler.reassign(self._histories)

    def _reassign(self) -> None:
        scheduler = self._get_scheduler()
        rows = scheduler.reassign(self._histories)
        if rows:
            self.store.record_space_stats(self._exp, rows)
        if self._manager is not None:
            self._manager.set_priorities(scheduler.priorities())

    # ------------------------------------------------------------ the loop

    def _make_manager(self) -> ExecutionManager:
        m = self.manager_choice
        if isinstance(m, ExecutionManager):
            return m
        if m == "local":
            from shadho.managers.local import LocalManager
            lw = self.local_workers
            if lw is not None and not isinstance(lw, int):
                lw = len(lw)
            return LocalManager(workers=lw, memory_mb=self.options["memory_mb"])
        from shadho.managers.workqueue import WorkQueueManager
        return WorkQueueManager(local_workers=self.local_workers, port=self.options["port"],
                                password=self.options["password"], name=self.options["name"],
                                catalog=self.options["catalog"], worker_python=self.options["worker_python"],
                                max_queued_tasks=self.max_queued_tasks,
                                **{"memory_mb": self.options["memory_mb"], **(self.options["worker_options"] or {})})

    def _next_task(self, class_key: str | None) -> TaskSpec | None:
        k = self.options["hyperparameters_per_task"]
        if self._requeue:
            tid, space_id, params, x = self._requeue.pop(0)
            items = [(tid, params, x)]
            while len(items) < k:
                j = next((i for i, r in enumerate(self._requeue) if r[1] == space_id), None)
                if j is None:
                    break
                r = self._requeue.pop(j)
                items.append((r[0], r[2], r[3]))
            space = self._space_by_id[space_id]
            for tid_, _, x_ in items:
                self._histories[space_id].add_pending(tid_, x_)
        else:
            n = int(min(k, self._budget_left()))
            if n <= 0:
                return None
            space = self._space_by_id[self._get_scheduler().pick(class_key, self._rng)]
            items = self._new_trials(space, n, class_key)
        ids = [t[0] for t in items]
        self.store.mark_submitted(ids, class_key)
        for tid, _, x in items:
            self._attempts[tid] = self._attempts.get(tid, 0) + 1
            self._live[tid] = (space.id, x)
        self._task_seq += 1
        prio = self._get_scheduler().priorities().get(class_key, {}).get(space.id, 0.0)
        return TaskSpec(self._task_seq, space.id, tuple((t[0], t[1]) for t in items), class_key, prio)

    def run(self) -> list[Trial]:
        """Search until the budget or the timeout ends; returns the trial records.

        Afterwards ``best`` and ``trials`` hold the results. SIGTERM or Ctrl-C stop
        the search cleanly: workers are released and unfinished trials re-run on resume.
        """
        from shadho.progress import make_progress

        configure(self)  # opt.config (the original's way) changes options up to here
        self._open()
        manager = self._manager = self._make_manager()
        settings = RunSettings(
            exp_key=self.exp_key, objective=self.cmd, compute_classes=tuple(self.compute_classes),
            inputs=tuple(self.input_files), outputs=tuple(self.output_files),
            task_timeout=self.options["task_timeout"])
        progress = make_progress(self.quiet, self.max_tasks, self.timeout)
        old_handler = None
        if threading.current_thread() is threading.main_thread():
            def _on_term(signum: int, frame: Any) -> None:
                raise _Stop()
            old_handler = signal.signal(signal.SIGTERM, _on_term)
        start = time.time()
        deadline = math.inf if self.timeout is None else start + self.timeout
        last_beat, interrupted = 0.0, False
        try:
            manager.start(settings)
            self._reassign()
            while True:
                now = time.time()
                timed_out = now >= deadline
                if not timed_out:
                    for key, n in manager.capacity().items():
                        for _ in range(n):
                            task = self._next_task(key)
                            if task is None:
                                break
                            manager.submit(task)
                if manager.in_flight == 0 and (timed_out or (not self._requeue and self._budget_left() <= 0)):
                    break
                if timed_out and not self.await_pending:
                    break
                outcomes = manager.wait(min(1.0, max(0.0, deadline - now)) if not timed_out else 1.0)
                self._tell(outcomes)
                if now - last_beat >= 2.0:
                    last_beat = now
                    counts = self.store.counts(self._exp)
                    st = manager.status()
                    self.store.set_progress(self._exp, {**st, "in_flight": manager.in_flight})
                    progress.update(done=counts["COMPLETE"], failed=counts["FAILED"],
                                    running=min(st.get("running", 0), manager.in_flight),
                                    dispatched=manager.in_flight, workers=st.get("workers", 0),
                                    best=self._best_loss)
        except (KeyboardInterrupt, _Stop) as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            log.warning("shadho: stopping on request; unfinished trials will re-run on resume")
        finally:
            try:
                self._tell(manager.wait(0))
            except Exception as exc:  # noqa: BLE001 - stopping must go on
                resume.log_stop_error(exc)
            for tid in manager.cancel_all():
                self._live.pop(tid, None)
            manager.stop()
            self._manager = None
            resume.record_run_end(self._store, self._exp, progress, self._best_loss)
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
        say_end(self.exp_key, self.trials, time.time() - start, self.quiet)
        if interrupted:
            exit_after_interrupt()  # status 130 after the clean stop, as Ctrl-C should
        return self.trials

    # ------------------------------------------------------------ results

    @property
    def port(self) -> int | None:
        """The Work Queue manager's port while :meth:`run` works (None otherwise)."""
        return getattr(self._manager, "port", None)

    @property
    def password_file(self) -> str | None:
        """The password file remote workers must be given while :meth:`run` works."""
        return getattr(self._manager, "password_file", None) or self.options["password"]

    @property
    def trials(self) -> list[Trial]:
        """Every trial of this experiment (fresh copies), oldest first."""
        return self.store.trials(self._exp)

    @property
    def best(self) -> dict[str, Any] | None:
        """``{'loss', 'params', 'results', 'searchspace', 'id', 'compute_class', 'worker'}``
        of the lowest-loss COMPLETE trial of the current spec's spaces, or None."""
        return self.best_of()

    def best_of(self, all_spaces: bool = False) -> dict[str, Any] | None:
        """Like :attr:`best`; ``all_spaces=True`` also sees spaces removed from the spec since."""
        return resume.best_trial(self.store, self._exp, None if all_spaces else list(self._space_by_id))

    def __enter__(self) -> "Shadho":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _make_scheduler(opt: Shadho) -> Scheduler:
    try:
        from shadho.heuristics import make_scheduler
    except ImportError:
        make_scheduler = None
    kwargs = dict(use_complexity=opt.use_complexity, use_uncertainty=opt.use_uncertainty,
                  cost_aware=opt.options["cost_aware"], reassign_every=opt.options["reassign_every"])
    if make_scheduler is not None:
        return make_scheduler(opt.spaces, opt.compute_classes, **kwargs)
    return Scheduler(opt.spaces, opt.compute_classes, **kwargs)
