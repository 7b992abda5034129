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

import heapq
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from shadho.managers.base import ExecutionManager, RunSettings, TaskSpec, TrialOutcome
from shadho.trial import Trial, TrialState

__all__ = ["VirtualClock", "SimulatedManager", "SimResult", "simulate"]

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
        failure_rate: probability that a trial fails (it still takes its time).
        seed: the simulator's own random stream (runtimes, failures).
        clock: a shared :class:`VirtualClock` (a new one by default).
    """

    def __init__(self, workers: Mapping[str | None, int], runtime: RuntimeModel, *, noise: float = 0.1,
                 failure_rate: float = 0.0, seed: int | None = None, clock: VirtualClock | None = None) -> None:
        if not workers or any(int(n) < 0 for n in workers.values()):
            raise ValueError(f"workers must map class keys to worker counts >= 0, got {workers!r}")
        self.workers = {k: int(n) for k, n in workers.items()}
        self.runtime = runtime
        self.noise = float(noise)
        self.failure_rate = float(failure_rate)
        self.rng = np.random.default_rng(seed)
        self.clock = clock or VirtualClock()
        self._idle = {k: list(range(n))[::-1] for k, n in self.workers.items()}
        self._events: list[tuple[float, int, str | None, int, list[TrialOutcome]]] = []
        self._seq = 0
        self._objective: Callable[[dict[str, Any]], Any] | None = None
        self.submitted = 0

    def start(self, settings: RunSettings) -> None:
        if not callable(settings.objective):
            raise TypeError("the simulator computes losses in-process: the objective must be a callable")
        missing = {c.name for c in settings.compute_classes} - set(self.workers)
        if missing:
            raise ValueError(f"no simulated workers for compute class(es) {sorted(map(str, missing))}")
        self._objective = settings.objective

    def capacity(self) -> dict[str | None, int]:
        return {k: len(v) for k, v in self._idle.items()}

    def submit(self, task: TaskSpec) -> None:
        import shadho_worker

        assert self._objective is not None, "start() first"
        key = task.compute_class
        idle = self._idle.get(key)
        if not idle:
            raise RuntimeError(f"no idle simulated worker of class {key!r}")
        w = idle.pop()
        t = self.clock.now
        outs = []
        for tid, params in task.trials:
            dt = float(self.runtime(task.space_id, params, key))
            if self.noise > 0:
                dt *= math.exp(self.noise * float(self.rng.standard_normal()))
            dt = max(dt, 1e-9)
            extra = dict(worker=f"{key}-{w}", start_time=t, finish_time=t + dt, compute_class=key)
            if self.failure_rate > 0 and self.rng.random() < self.failure_rate:
                outs.append(TrialOutcome(tid, False, error="simulated failure", **extra))
            else:
                try:
                    loss, metrics = shadho_worker.normalize_result(self._objective(params))
                    outs.append(TrialOutcome(tid, True, loss=loss, results=metrics, **extra))
                except Exception as exc:  # noqa: BLE001 - a failing objective is a FAILED trial
                    outs.append(TrialOutcome(tid, False, error=f"{type(exc).__name__}: {exc}", **extra))
            t += dt
        self._seq += 1
        self.submitted += 1
        heapq.heappush(self._events, (t, self._seq, key, w, outs))

    def wait(self, timeout: float) -> list[TrialOutcome]:
        """Jump to the next completion (all completions at that same instant)."""
        if not self._events:
            return []
        t = self._events[0][0]
        out: list[TrialOutcome] = []
        while self._events and self._events[0][0] <= t:
            _, _, key, w, outs = heapq.heappop(self._events)
            self._idle[key].append(w)
            out.extend(outs)
        self.clock.now = max(self.clock.now, t)
        return out

    @property
    def in_flight(self) -> int:
        return len(self._events)

    def status(self) -> dict[str, Any]:
        return {"workers": sum(self.workers.values()), "running": len(self._events), "queued": 0,
                "virtual_time": self.clock.now}

    def cancel_all(self) -> list[int]:
        ids = [o.trial_id for e in self._events for o in e[4]]
        for _, _, key, w, _ in self._events:
            self._idle[key].append(w)
        self._events.clear()
        return ids


@dataclass
class SimResult:
    """What one simulated run produced (times are virtual seconds)."""

    trials: list[Trial]
    makespan: float
    decision_seconds: float  # wall-clock time spent inside the scheduler
    wall_seconds: float
    space_stats: list[dict[str, Any]] = field(default_factory=list)
    space_names: dict[str, str] = field(default_factory=dict)

    @property
    def decision_ms_per_task(self) -> float:
        return 1e3 * self.decision_seconds / max(1, len(self.trials))

    def completions(self) -> tuple[np.ndarray, np.ndarray]:
        """Finish times (sorted) and losses of the COMPLETE trials."""
        done = [(t.finish_time, t.loss) for t in self.trials
                if t.state == TrialState.COMPLETE and t.finish_time is not None]
        done.sort()
        return (np.array([d[0] for d in done], dtype=float), np.array([d[1] for d in done], dtype=float))

    def throughput(self, until: float) -> float:
        """Successful trials per hour finished by virtual time ``until``."""
        f, _ = self.completions()
        return 3600.0 * float((f <= until).sum()) / until

    def time_to(self, target: float) -> float:
        """First virtual time a loss <= ``target`` was seen (inf if never)."""
        f, y = self.completions()
        hit = np.flatnonzero(y <= target)
        return float(f[hit[0]]) if len(hit) else math.inf

    def best_at(self, t: float) -> float:
        f, y = self.completions()
        m = f <= t
        return float(y[m].min()) if m.any() else math.inf

    def best_curve(self) -> tuple[np.ndarray, np.ndarray]:
        f, y = self.completions()
        return f, np.minimum.accumulate(y) if len(y) else y


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
             reassign_every: int = 10, noise: float = 0.1, failure_rate: float = 0.0,
             seed: int | None = 0, backend: str | None = None, exp_key: str = "sim",
             **options: Any) -> SimResult:
    """Run the real driver on simulated workers for ``max_tasks`` trials.

    Args:
        workers: class name -> worker count; classes not described in
            ``compute_classes`` are added as ``(name, 'cores', 1)``.
        compute_classes: ``add_compute_class`` keyword dicts (``name``, ``resource``,
            ``value``, ...), e.g. to declare cores the scheduler starts from.
        backend: the SQLite results file (a temporary one by default).
    """
    from shadho.driver import Shadho

    clock = VirtualClock()
    manager = SimulatedManager(workers, runtime, noise=noise, failure_rate=failure_rate,
                               seed=None if seed is None else seed + 7919, clock=clock)
    tmp = None
    if backend is None:
        tmp = tempfile.mkdtemp(prefix="shadho-sim-")
        backend = os.path.join(tmp, "sim.db")
    opt = Shadho(exp_key, objective, spec, method=method, backend=backend, timeout=None,
                 max_tasks=max_tasks, seed=seed, use_complexity=use_complexity,
                 use_uncertainty=use_uncertainty, manager=manager, quiet=True, cost_aware=cost_aware,
                 reassign_every=reassign_every, **options)
    described = {c["name"] for c in compute_classes or ()}
    for c in compute_classes or ():
        opt.add_compute_class(**c)
    for name in workers:
        if name is not None and name not in described:
            opt.add_compute_class(name, "cores", 1)
    try:
        opt._open()
        timed = _TimedScheduler(opt._get_scheduler())
        if hasattr(timed._inner, "clock"):
            timed._inner.clock = clock
        opt._scheduler = timed  # type: ignore[assignment]
        t0 = time.perf_counter()
        opt.run()
        wall = time.perf_counter() - t0
        trials = opt.trials
        stats = opt.store.space_stats(opt._exp)
        names = {s.id: s.name for s in opt.spaces}
    finally:
        opt.close()
        if tmp is not None:
            for f in os.listdir(tmp):
                os.remove(os.path.join(tmp, f))
            os.rmdir(tmp)
    return SimResult(trials, clock.now, timed.seconds, wall, stats, names)
