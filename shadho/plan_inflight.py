"""Tasks in flight when a plan is made: running ones hold slots, queued ones wait their turn.

A results file read while its search runs holds the trials handed to the manager as
RUNNING, with their submit time. The planner used to start every simulated worker idle
and count only new trials, which overstated a pool whose slots were held by long
trials: in a real run cut at 18 s, the 1-core class was 7 s into a 10.5 s trial (its rbf
kernel) that filled most of the second half, and the plan, unaware of it, gave that
class the whole half.

The RUNNING trials of one class, space and submit time are one task (trials run one
after another in a task: ``hyperparameters_per_task``). A task is running when its
start is recorded (``task_start_time``: the manager reports when a worker took it, see
:meth:`~shadho.managers.base.ExecutionManager.take_starts`) or one of its trials has
finished; its current trial began at the later of its start and its last trial's
finish. In a file that records task starts (any trial has one), a task without one is
still queued. In an older file a task with neither sign may be running or queued and is
left out: counting those as running from their submission held the 1-core class's
slots with never-run rbf tasks, and the plan fell to 0.5x of the real second half of
bench/plan.py.

A running task's current trial's runtime is drawn from the (space, class) pair's
log-normal (the draw's mean plus the residual that the trial's point replays, as a new
simulated trial there would; the model's within-pair spread) given that it has run
that long; its later trials take fresh draws; the slot is busy until the last ends
(:func:`carry`). A queued task goes into its class's simulated queue, oldest first,
ahead of new tasks of equal priority and re-prioritised with them as Work Queue's
queue is (:func:`queue_up`, :class:`~shadho.sim.QueuedWork`): its trials take fresh
draws, and it starts when the simulated master's queue reaches it. Each trial of
either that ends inside the window counts as a completion (or a failure, at the
pair's failure rate). When a task of either kind ends, the simulated scheduler learns its
trials (runtime, success, and the loss of the nearest observed trial to each trial's
point) as the real one learns a returned task: a queued task of a pair the cut never ran
(a class's first linear task, say) teaches the simulated scheduler that pair's runtime,
as it taught the real one, instead of leaving the pair at its guess for the whole plan.
"Now" is the latest start or finish the file records (a plan of an old file reads it as
it was; a submission is not used, as the simulator stamps those on the wall clock and
the rest on its virtual one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from shadho.sim import QueuedWork
from shadho.trial import Trial, TrialState

__all__ = ["InFlight", "Carried", "Waiting", "find_in_flight", "carry", "queue_up", "as_work"]

#: Tries at drawing a runtime longer than the elapsed one before taking a small overrun.
_TRIES = 64


@dataclass(frozen=True)
class InFlight:
    """A task in flight when the file was read: space index, class, seconds its current
    trial has run (an upper bound; 0 when ``queued``), trials left in it, its age (seconds
    since its submission: the order) and whether it waits in its class's queue."""

    space: int
    cls: str
    elapsed: float
    trials: int = 1
    age: float = 0.0
    queued: bool = False
    points: tuple[tuple[float, ...], ...] = ()  # its unfinished trials' encoded points, current first


@dataclass(frozen=True)
class Carried:
    """An in-flight task's future in one simulation: when each of its trials ends (seconds
    from now), whether it succeeds, and when its slot's work began (0: running now)."""

    space: int
    cls: str
    ends: tuple[float, ...]
    oks: tuple[bool, ...]
    start: float = 0.0
    runtimes: tuple[float, ...] = ()  # each trial's whole runtime (the current one's too)
    points: tuple[tuple[float, ...], ...] = ()

    @property
    def remaining(self) -> float:
        """Seconds until its slot is free."""
        return self.ends[-1]

    def busy_until(self, window: float) -> float:
        """Seconds of the window ``[0, window]`` its slot spends on it."""
        return max(0.0, min(self.remaining, window) - min(self.start, window))


@dataclass(frozen=True)
class Waiting:
    """A queued task in one simulation: the work handed to the simulated queue, and its
    trials' runtimes and outcomes (when it starts is the simulation's answer)."""

    work: QueuedWork
    space: int
    runtimes: tuple[float, ...]
    oks: tuple[bool, ...]

    def carried(self, start: float | None) -> Carried | None:
        """Its future once the simulation started it at ``start`` (None: it never ran)."""
        if start is None:
            return None
        ends = tuple(float(start + e) for e in np.cumsum(self.runtimes))
        return Carried(self.space, str(self.work.compute_class), ends, self.oks, float(start), self.runtimes)


def file_now(trials: Iterable[Trial]) -> float | None:
    """The latest start or finish the file records (see the module docstring)."""
    times = [v for t in trials for v in (t.finish_time, t.start_time, t.task_start_time) if v is not None]
    return max(times) if times else None


def find_in_flight(trials: Iterable[Trial], space_index: Mapping[str, int],
                   classes: Iterable[str], default_class: str) -> list[InFlight]:
    """The running and queued tasks of known spaces and classes (see the module docstring).

    >>> from shadho.trial import Trial, TrialState as S
    >>> ts = [Trial(1, "s", "a", S.COMPLETE, {}, submit_time=0.0, start_time=1.0, finish_time=4.0, compute_class="cpu"),
    ...       Trial(2, "s", "a", S.RUNNING, {}, submit_time=0.0, compute_class="cpu"),
    ...       Trial(3, "s", "a", S.COMPLETE, {}, submit_time=2.0, start_time=2.0, finish_time=9.0, compute_class="cpu")]
    >>> find_in_flight(ts, {"a": 0}, ["cpu"], "default")
    [InFlight(space=0, cls='cpu', elapsed=5.0, trials=1, age=9.0, queued=False, points=((),))]
    >>> ts += [Trial(4, "s", "a", S.RUNNING, {}, submit_time=3.0, task_start_time=5.0, compute_class="cpu"),
    ...        Trial(5, "s", "a", S.RUNNING, {}, submit_time=6.0, compute_class="cpu")]
    >>> [(f.elapsed, f.queued) for f in find_in_flight(ts, {"a": 0}, ["cpu"], "default")]
    [(5.0, False), (4.0, False), (0.0, True)]
    """
    trials = list(trials)
    now = file_now(trials)
    records_starts = any(t.task_start_time is not None for t in trials)
    known = set(classes)
    tasks: dict[tuple[str, str, float], list[Trial]] = {}
    for t in trials:
        cls = t.compute_class or default_class
        if t.submit_time is not None and t.space_id in space_index and cls in known:
            tasks.setdefault((cls, t.space_id, float(t.submit_time)), []).append(t)
    out = []
    for (cls, space, submitted), ts in tasks.items():
        running = [t for t in ts if t.state == TrialState.RUNNING]
        if not running or now is None:
            continue
        ends = [float(t.finish_time) for t in ts if t.state.finished and t.finish_time is not None]
        starts = [float(v) for t in ts for v in (t.task_start_time, t.start_time if t.state == TrialState.RUNNING else None)
                  if v is not None]
        points = tuple(tuple(t.x) for t in sorted(running, key=lambda t: t.id))
        if not ends and not starts:
            if records_starts:  # not started: waiting in its class's queue
                out.append(InFlight(space_index[space], cls, 0.0, len(running), now - submitted, True, points))
            continue  # an older file: queued or running, it cannot tell (see the module docstring)
        began = max([submitted] + starts + ends)
        out.append(InFlight(space_index[space], cls, max(0.0, now - began), len(running), now - submitted,
                            points=points))
    return out


def _kept(items: Iterable[InFlight], slots: Mapping[str, int], scale: float,
          queued: bool) -> dict[str, list[InFlight]]:
    """Per class, the oldest of its running (or queued) tasks that a pool simulated
    ``scale`` times smaller keeps (that share of them; running ones at most its slots)."""
    by_class: dict[str, list[InFlight]] = {}
    for it in items:
        if it.cls in slots and it.queued == queued:
            by_class.setdefault(it.cls, []).append(it)
    out = {}
    for cls, its in by_class.items():
        keep = int(math.ceil(len(its) / max(scale, 1.0)))
        out[cls] = sorted(its, key=lambda i: -i.age)[:keep if queued else min(int(slots[cls]), keep)]
    return out


#: ``fn(space, point) -> log-runtime residual`` of a trial at that encoded point
#: (:meth:`~shadho.plan_model.LearnedModel.residual_near`).
Residual = Callable[[int, Sequence[float]], float]


def _centres(it: InFlight, m: float, resid: Residual | None) -> list[float]:
    """Log-runtime centre of each of the task's trials: the pair's mean plus, where its
    point is known, the residual new simulated trials replay there (the kernel's cost
    depends on its parameters: a task queued with a slow configuration is slow)."""
    return [m + (resid(it.space, it.points[k]) if resid is not None and k < len(it.points) else 0.0)
            for k in range(it.trials)]


def carry(items: Iterable[InFlight], mu: np.ndarray, cidx: Mapping[str, int], sd: float,
          fail: np.ndarray, slots: Mapping[str, int], scale: float,
          rng: np.random.Generator, resid: Residual | None = None) -> list[Carried]:
    """One simulation's futures of the running tasks (see the module docstring).

    ``mu`` holds the draw's log-runtime means (spaces x classes), ``fail`` its failure
    rates, ``resid`` the residual of a trial's point; a class's oldest tasks hold its
    ``slots``, and a pool simulated ``scale`` times smaller keeps that share of them.
    """
    out = []
    for cls, its in _kept(items, slots, scale, queued=False).items():
        c = cidx[cls]
        for it in its:
            m, p = float(mu[it.space, c]), float(fail[it.space, c])
            first, *rest = _centres(it, m, resid)
            runs = [_longer_than(first, sd, it.elapsed, rng)]
            runs += [math.exp(r + sd * float(rng.standard_normal())) for r in rest]
            ends = tuple(float(e) for e in np.cumsum(runs) - it.elapsed)
            out.append(Carried(it.space, cls, ends, tuple(not (rng.random() < p) for _ in ends),
                               runtimes=tuple(runs), points=it.points))
    return out


def queue_up(items: Iterable[InFlight], space_ids: Sequence[str], mu: np.ndarray, cidx: Mapping[str, int],
             sd: float, fail: np.ndarray, slots: Mapping[str, int], scale: float,
             rng: np.random.Generator, loss: Callable[[int, Sequence[float]], float] | None = None,
             resid: Residual | None = None) -> list[Waiting]:
    """One simulation's queued tasks, oldest first (see the module docstring):
    ``space_ids`` are the simulated spaces' ids, ``loss(space, point)`` a trial's loss (the
    results the simulated scheduler learns when a task ends), the rest as in :func:`carry`."""
    out: list[Waiting] = []
    for cls, its in _kept(items, slots, scale, queued=True).items():
        c = cidx[cls]
        for it in its:
            m, p = float(mu[it.space, c]), float(fail[it.space, c])
            runs = tuple(math.exp(r + sd * float(rng.standard_normal())) for r in _centres(it, m, resid))
            oks = tuple(not (rng.random() < p) for _ in runs)
            work = QueuedWork(len(out), space_ids[it.space], cls, float(sum(runs)),
                              results=_results(runs, oks, it.space, it.points, loss))
            out.append(Waiting(work, it.space, runs, oks))
    return out


def _results(runs: Sequence[float], oks: Sequence[bool], space: int, points: Sequence[Sequence[float]],
             loss: Callable[[int, Sequence[float]], float] | None) -> tuple[tuple[float, float | None, bool], ...]:
    """(runtime, loss, ok) of each trial, as :class:`~shadho.sim.QueuedWork` takes them; no
    loss when its point is unknown (the scheduler still learns the runtime)."""
    out = []
    for i, (r, ok) in enumerate(zip(runs, oks)):
        known = loss is not None and ok and i < len(points)
        out.append((float(r), loss(space, points[i]) if known else None, bool(ok)))
    return tuple(out)


def as_work(c: Carried, space_id: str, loss: Callable[[int, Sequence[float]], float] | None = None) -> QueuedWork:
    """A running task's future as :class:`~shadho.sim.QueuedWork` for a busy worker: its
    slot's remaining seconds, its trials' results learned when it ends."""
    return QueuedWork(-1, space_id, c.cls, c.remaining,
                      results=_results(c.runtimes, c.oks, c.space, c.points, loss))


def _longer_than(mu: float, sd: float, elapsed: float, rng: np.random.Generator) -> float:
    """A log-normal runtime drawn given that it exceeds ``elapsed``."""
    for _ in range(_TRIES):
        r = math.exp(mu + sd * float(rng.standard_normal()))
        if r > elapsed:
            return r
    # Far in the tail: the trial has outrun its pair's runtimes; give it a short rest.
    return elapsed + max(math.exp(mu), 1e-3) * 0.5
