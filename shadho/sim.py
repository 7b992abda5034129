"""A discrete-event simulator that runs the real master on a virtual clock.

:class:`SimulatedManager` is an :class:`~shadho.managers.base.ExecutionManager`:
the unchanged :class:`~shadho.Shadho` driver, its samplers, scheduler and SQLite
store run on top of it exactly as they do on Work Queue. Only the workers are
simulated. Each of W workers belongs to a compute class and runs one task at a
time; a task's loss is the objective computed for real on the sampled params (so
make it cheap: a model or a lookup), and its runtime comes from a model
``runtime(space_id, params, class_key) -> seconds`` (typically a base runtime of
the params divided by the speed of that class on that space) times log-normal
noise. :meth:`~SimulatedManager.wait` jumps the virtual clock to the next
completion at once (nothing sleeps) and reports start and finish times on the
virtual clock, so every time figure in the store is simulated time.

By default a submitted task starts at once on an idle worker (``capacity`` is the
number of idle workers). With ``queue_margin`` set, the simulator behaves like the
Work Queue manager instead: each class accepts its workers plus ``queue_margin``
tasks (``"auto"``: :func:`~shadho.managers.base.default_queue_margin`, the Work
Queue manager's default), waiting tasks start highest priority first (ties first
come, first served), and :meth:`~SimulatedManager.set_priorities` re-orders them,
so the scheduler's queued decisions and priorities are simulated too.
``task_overhead`` seconds are added once per task before its first trial starts
(a worker's interpreter start and file transfers); it and ``failure_rate`` may
differ per class (a mapping, or ``fn(space_id, class_key) -> probability``), as
when :mod:`shadho.planner` replays what a results file measured.

A multi-fidelity search (``simulate(..., fidelity={'name': 'epochs', ...})``) runs rung
by rung as on real workers: the objective gets its budget (``fn(params, epochs=9)``, no
checkpoint folder), and a runtime model that takes the keywords ``budget`` and
``previous`` (the budget its checkpoint holds) gets them, e.g. ``overhead + (budget -
previous) * seconds_per_epoch``.

Run the driver by task count (``timeout=None, max_tasks=N``): its own deadline
uses the wall clock. :func:`simulate` does the wiring and also measures the
scheduler's own decision time (pick, observe, due, reassign, priorities) per task.

Example:
    >>> import os, tempfile
    >>> from shadho import spaces
    >>> spec = {'exclusive': True, 'a': {'x': spaces.uniform(0, 1)}, 'b': {'y': spaces.uniform(0, 1)}}
    >>> res = simulate(spec, lambda p: p.get('x', p.get('y')), {'small': 2, 'big': 2},
    ...                lambda sid, p, c: 1.0 if c == 'big' else 3.0, max_tasks=20, seed=0,
    ...                backend=os.path.join(tempfile.mkdtemp(), 'sim.db'))
    >>> len(res.trials), res.makespan > 0
    (20, True)
"""
from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from shadho.managers import outcome
from shadho.managers.base import ExecutionManager, RunSettings, TaskSpec, TrialOutcome, queue_margin
from shadho.rung_task import call_with_budget, runtime_fields
from shadho.sim_result import SimResult
from shadho.sim_work import Learned, QueuedWork

__all__ = ["VirtualClock", "SimulatedManager", "SimResult", "QueuedWork", "Learned", "simulate"]

RuntimeModel = Callable[[str, dict, Any], float]


class VirtualClock:
    """Simulated seconds since the start of the run."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SimulatedManager(ExecutionManager):
    """Workers of several compute classes on a virtual clock (see the module docstring).

    Args:
        workers: compute class key -> number of workers (key ``None`` without classes).
        runtime: ``fn(space_id, params, class_key) -> seconds`` of one trial.
        noise: sigma of the log-normal factor applied to every runtime.
        failure_rate: probability that a trial fails (it still takes its time), or
            ``fn(space_id, class_key) -> probability``.
        seed: the simulator's own random stream (runtimes, failures).
        common_noise: draw each trial's runtime noise and failure from (seed, space,
            params) instead of one stream in run order, so two runs (heuristics on and
            off) that propose the same configuration see the same noise whichever worker
            runs it, and whenever: common random numbers for comparing schedulers.
        clock: a shared :class:`VirtualClock` (a new one by default).
        queue_margin: None (start on submit), an int, or ``"auto"`` (see the module doc).
        task_overhead: seconds per task before its first trial starts, or a mapping
            class key -> seconds (classes left out: 0).
        busy: class key -> seconds each of that many workers is still busy at the start
            (work already running, e.g. the trials in flight when a plan is made), or a
            :class:`QueuedWork` each (its ``seconds``, its ``results`` learned at its end);
            those workers yield no outcomes and take tasks once free.
        queued: class key -> :class:`QueuedWork` waiting there at the start, oldest first
            (needs ``queue_margin``): the oldest take the idle workers at once, the rest
            wait ahead of new tasks of equal priority and are re-prioritised with them;
            :attr:`queued_starts` says when each began its first trial.
    """

    def __init__(self, workers: Mapping[str | None, int], runtime: RuntimeModel, *, noise: float = 0.1,
                 failure_rate: float | Callable[[str, Any], float] = 0.0, seed: int | None = None,
                 clock: VirtualClock | None = None, queue_margin: int | str | None = None,
                 task_overhead: float | Mapping[str | None, float] = 0.0,
                 busy: Mapping[str | None, Sequence[float | QueuedWork]] | None = None,
                 queued: Mapping[str | None, Sequence[QueuedWork]] | None = None,
                 common_noise: bool = False) -> None:
        if not workers or any(int(n) < 0 for n in workers.values()):
            raise ValueError(f"workers must map class keys to worker counts >= 0, got {workers!r}")
        self.workers = {k: int(n) for k, n in workers.items()}
        self.runtime = runtime
        self.noise = float(noise)
        self.failure_rate = failure_rate if callable(failure_rate) else float(failure_rate)
        self.rng = np.random.default_rng(seed)
        self.common_noise = bool(common_noise)
        self._noise_seed = int(seed if seed is not None else np.random.SeedSequence().entropy)
        self.clock = clock or VirtualClock()
        self._idle = {k: list(range(n))[::-1] for k, n in self.workers.items()}
        self._events: list[tuple[float, int, str | None, int, list[TrialOutcome]]] = []
        self._seq = 0
        self._learn_at: dict[int, list[tuple[str, Any, float, float | None, bool]]] = {}
        self._objective: Callable[[dict[str, Any]], Any] | None = None
        self.submitted = 0
        if not (queue_margin is None or queue_margin == "auto"
                or (isinstance(queue_margin, int) and not isinstance(queue_margin, bool) and queue_margin >= 0)):
            raise ValueError(f"queue_margin must be None, 'auto' or >= 0, got {queue_margin!r}")
        overheads = task_overhead.values() if isinstance(task_overhead, Mapping) else [task_overhead]
        if not all(isinstance(v, (int, float)) and v >= 0 for v in overheads):
            raise ValueError(f"task_overhead must be seconds >= 0 or a mapping class -> seconds, "
                             f"got {task_overhead!r}")
        self.queue_margin = queue_margin
        self.task_overhead: float | dict[str | None, float] = (
            {k: float(v) for k, v in task_overhead.items()} if isinstance(task_overhead, Mapping)
            else float(task_overhead))
        #: Waiting tasks per class: [-priority, seq, task] (a heap).
        self._queues: dict[str | None, list[list[Any]]] = {k: [] for k in self.workers}
        for key, secs in (busy or {}).items():
            if key not in self._idle or len(secs) > len(self._idle[key]):
                raise ValueError(f"busy: class {key!r} has {len(self._idle.get(key, []))} simulated "
                                 f"worker(s), {len(secs)} busy ones given")
            for dt in secs:
                self._seq += 1
                self._will_learn(dt)
                seconds = dt.seconds if isinstance(dt, QueuedWork) else float(dt)
                heapq.heappush(self._events, (max(seconds, 0.0), self._seq, key, self._idle[key].pop(), []))
        self.queued_starts: dict[int, float] = {}
        #: ``fn([(space_id, class_key, runtime, loss, ok), ...])`` called with the results of
        #: :class:`QueuedWork` as it ends (``simulate`` sets the scheduler's ``warm_start``).
        self.learn: Callable[[list[tuple[str, Any, float, float | None, bool]]], Any] | None = None
        self._started: list[tuple[int, float | None]] = []
        for key, works in (queued or {}).items():
            if key not in self._queues or (works and queue_margin is None):
                raise ValueError(f"queued: class {key!r} is not simulated, or queue_margin is None")
            for w in works:
                self._seq += 1
                heapq.heappush(self._queues[key], [0.0, self._seq, w])
            self._dispatch(key)  # a free worker had taken the oldest already

    def start(self, settings: RunSettings) -> None:
        if not callable(settings.objective):
            raise TypeError("the simulator computes losses in-process: the objective must be a callable")
        missing = {c.name for c in settings.compute_classes} - set(self.workers)
        if missing:
            raise ValueError(f"no simulated workers for compute class(es) {sorted(map(str, missing))}")
        self._objective = settings.objective

    def capacity(self) -> dict[str | None, int]:
        if self.queue_margin is None:
            return {k: len(v) for k, v in self._idle.items()}
        out = {}
        for k, n in self.workers.items():
            margin = queue_margin(self.queue_margin, n)
            busy = n - len(self._idle[k])
            out[k] = max(0, n + margin - busy - len(self._queues[k]))
        return out

    def submit(self, task: TaskSpec) -> None:
        key = task.compute_class
        from shadho.errors import SimulationError

        if key not in self._idle:
            raise SimulationError(f"no simulated workers of class {key!r}")
        if self.queue_margin is None:
            if not self._idle[key]:
                raise SimulationError(f"no idle simulated worker of class {key!r}")
            self._run(task)
            return
        self._seq += 1
        heapq.heappush(self._queues[key], [-float(task.priority), self._seq, task])
        self._dispatch(key)

    def set_priorities(self, priorities: dict[str | None, dict[str, float]]) -> None:
        for key, q in self._queues.items():
            new = priorities.get(key)
            if not new or not q:
                continue
            for item in q:
                p = new.get(item[2].space_id)
                if p is not None:
                    item[0] = -float(p)
            heapq.heapify(q)

    def _dispatch(self, key: str | None) -> None:
        q = self._queues[key]
        while q and self._idle[key]:
            self._run(heapq.heappop(q)[2])

    def _run(self, task: TaskSpec | QueuedWork) -> None:
        import shadho_worker

        assert self._objective is not None or isinstance(task, QueuedWork), "start() first"
        key = task.compute_class
        w = self._idle[key].pop()
        oh = self.task_overhead
        t = self.clock.now + (oh.get(key, 0.0) if isinstance(oh, dict) else oh)
        self._seq += 1
        if isinstance(task, QueuedWork):  # work from before the simulation: no outcomes
            self.queued_starts[task.ref] = t
            self._will_learn(task)
            heapq.heappush(self._events, (t + max(task.seconds, 0.0), self._seq, key, w, []))
            return
        self._started.extend((tid, self.clock.now) for tid, _ in task.trials)
        fail_p = self.failure_rate(task.space_id, key) if callable(self.failure_rate) else self.failure_rate
        outs = []
        for i, (tid, params) in enumerate(task.trials):
            budget = task.budgets[i] if task.budgets else None
            dt = float(self.runtime(task.space_id, params, key, **runtime_fields(self.runtime, budget)))
            rng = self._trial_rng(task.space_id, params, budget) if self.common_noise else self.rng
            if self.noise > 0:
                dt *= math.exp(self.noise * float(rng.standard_normal()))
            dt = max(dt, 1e-9)
            extra = dict(worker=f"{key}-{w}", start_time=t, finish_time=t + dt, compute_class=key)
            if fail_p > 0 and rng.random() < fail_p:
                outs.append(TrialOutcome(tid, False, error="simulated failure", **extra))
            else:  # the worker entry's own evaluation: the same outcome as on real workers
                fn = self._objective if budget is None else call_with_budget(self._objective,
                                                                             {budget.name: budget.value})
                outs.append(outcome.answered(tid, shadho_worker.evaluate(fn, params), **extra))
            t += dt
        self.submitted += 1
        heapq.heappush(self._events, (t, self._seq, key, w, outs))

    def _will_learn(self, work: float | QueuedWork) -> None:
        """Keep the results of the work whose event is pushed next (``self._seq``)."""
        if isinstance(work, QueuedWork) and work.results:
            self._learn_at[self._seq] = [(work.space_id, work.compute_class, *r) for r in work.results]

    def _trial_rng(self, space_id: str, params: dict, budget: Any) -> np.random.Generator:
        """The noise of one configuration (see ``common_noise``)."""
        text = json.dumps([space_id, params, None if budget is None else budget.value],
                          sort_keys=True, default=repr)
        digest = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng([self._noise_seed, digest])

    def wait(self, timeout: float) -> list[TrialOutcome]:
        """Jump to the next completion (all completions at that same instant)."""
        if not self._events:
            return []
        t = self._events[0][0]
        out: list[TrialOutcome] = []
        self.clock.now = max(self.clock.now, t)
        freed, learned = set(), []
        while self._events and self._events[0][0] <= t:
            _, seq, key, w, outs = heapq.heappop(self._events)
            self._idle[key].append(w)
            freed.add(key)
            out.extend(outs)
            learned.extend(self._learn_at.pop(seq, ()))
        if learned and self.learn is not None:
            self.learn(learned)
        for key in freed:
            self._dispatch(key)
        return out

    def take_starts(self) -> list[tuple[int, float | None]]:
        out, self._started = self._started, []
        return out

    @property
    def in_flight(self) -> int:
        return len(self._events) + sum(len(q) for q in self._queues.values())

    def status(self) -> dict[str, Any]:
        return {"workers": sum(self.workers.values()), "running": len(self._events),
                "queued": sum(len(q) for q in self._queues.values()), "virtual_time": self.clock.now}

    def cancel_all(self) -> list[int]:
        ids = [o.trial_id for e in self._events for o in e[4]]
        for q in self._queues.values():
            ids.extend(tid for item in q for tid, _ in item[2].trials)
            q.clear()
        for _, _, key, w, _ in self._events:
            self._idle[key].append(w)
        self._events.clear()
        return ids


class _TimedScheduler:
    """Adds the wall time of every scheduler call to a counter (a transparent proxy)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return attr(*a, **k)
            finally:
                self.seconds += time.perf_counter() - t0
        return timed


def simulate(spec: Mapping[str, Any], objective: Callable[[dict[str, Any]], Any],
             workers: Mapping[str | None, int], runtime: RuntimeModel, *, max_tasks: int,
             compute_classes: Sequence[dict[str, Any]] | None = None, method: Any = "random",
             use_complexity: bool = True, use_uncertainty: bool = True, cost_aware: bool = False,
             reassign_every: int = 10, noise: float = 0.1,
             failure_rate: float | Callable[[str, Any], float] = 0.0,
             seed: int | None = 0, backend: str | None = None, exp_key: str = "sim",
             queue_margin: int | str | None = None,
             task_overhead: float | Mapping[str | None, float] = 0.0,
             prepare_scheduler: Callable[[Any], None] | None = None,
             busy: Mapping[str | None, Sequence[float | QueuedWork]] | None = None,
             queued: Mapping[str | None, Sequence[QueuedWork]] | None = None,
             common_noise: bool = False, pick_seed: int | None = None,
             **options: Any) -> SimResult:
    """Run the real driver on simulated workers for ``max_tasks`` trials.

    Args:
        workers: class name -> worker count; classes not described in
            ``compute_classes`` are added as ``(name, 'cores', 1)``.
        compute_classes: ``add_compute_class`` keyword dicts (``name``, ``resource``,
            ``value``, ...), e.g. to declare cores the scheduler starts from.
        backend: the SQLite results file (a temporary one by default). A file that
            already holds ``exp_key`` is resumed: its trials are the samplers' history
            and count toward ``max_tasks``; ``SimResult.trials`` holds every trial.
        failure_rate, queue_margin, task_overhead, busy, queued, common_noise: see
            :class:`SimulatedManager`.
        pick_seed: seed the scheduler's picks (which space a free slot samples) apart
            from ``seed``, which keeps the samplers' draws and the noise: two runs that
            differ only in where and when trials run (a noise floor for comparisons).
        prepare_scheduler: called with the driver's scheduler before the run starts
            (e.g. :meth:`~shadho.heuristics.scheduler.Scheduler.warm_start` it with
            what an earlier run measured).
    """
    from shadho.driver import Shadho

    clock = VirtualClock()
    manager = SimulatedManager(workers, runtime, noise=noise, failure_rate=failure_rate,
                               seed=None if seed is None else seed + 7919, clock=clock,
                               queue_margin=queue_margin, task_overhead=task_overhead, busy=busy,
                               queued=queued, common_noise=common_noise)
    tmp = None
    if backend is None:
        tmp = tempfile.mkdtemp(prefix="shadho-sim-")
        backend = os.path.join(tmp, "sim.db")
    opt = Shadho(exp_key, objective, spec, method=method, backend=backend, timeout=None,
                 max_tasks=max_tasks, seed=seed, use_complexity=use_complexity,
                 use_uncertainty=use_uncertainty, manager=manager, quiet=True, cost_aware=cost_aware,
                 reassign_every=reassign_every, **options)
    _add_classes(opt, workers, compute_classes)
    try:
        study = opt.open()
        study.clock = clock  # the scheduler's rows carry simulated times
        if pick_seed is not None:
            study.reseed_picks(pick_seed)
        if prepare_scheduler is not None:
            prepare_scheduler(study.scheduler)
        timed = _TimedScheduler(study.scheduler)
        study.scheduler = timed  # type: ignore[assignment]
        if hasattr(timed, "warm_start"):  # earlier work's results: learned, no pick answered
            manager.learn = timed.warm_start
        t0 = time.perf_counter()
        opt.run()
        wall = time.perf_counter() - t0
        trials = opt.trials
        stats = opt.store.space_stats(opt.exp_id)
        names = {s.id: s.name for s in opt.spaces}
    finally:
        opt.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return SimResult(trials, clock.now, timed.seconds, wall, stats, names, dict(manager.queued_starts))


def _add_classes(opt: Any, workers: Mapping[str | None, int],
                 compute_classes: Sequence[dict[str, Any]] | None) -> None:
    """The classes described in ``compute_classes``, then ``(name, 'cores', 1)`` for the rest."""
    described = {c["name"] for c in compute_classes or ()}
    for c in compute_classes or ():
        opt.add_compute_class(**c)
    for name in workers:
        if name is not None and name not in described:
            opt.add_compute_class(name, "cores", 1)
