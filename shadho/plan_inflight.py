"""Tasks running when a plan is made: they hold slots, and their trials end in the window.

A results file read while its search runs holds the trials handed to the manager as
RUNNING, with their submit time (Work Queue reports a task's start only with its
result). The planner used to start every simulated worker idle and count only new
trials, which overstated a pool whose slots were held by long trials: in a real run cut
at 18 s, the 1-core class was 7 s into a 10.5 s trial (its rbf kernel) that filled most
of the second half, and the plan, unaware of it, gave that class the whole half.

The RUNNING trials of one class, space and submit time are one task (trials run one
after another in a task: ``hyperparameters_per_task``). A task is known to be running
when one of its trials has finished (or a start is recorded): its current trial began
when the last one ended. A task with no such sign may be running or still queued (a
class's queue holds tasks the scheduler no longer favours, and they may never run): it
is left out, as before. Measured on bench/plan.py: counting those as running from
their submission held the 1-core class's slots with never-run rbf tasks and the plan
fell to 0.5x of the real second half.

A running task's current trial's runtime is drawn from the (space, class) pair's
log-normal (the draw's mean, the model's within-pair spread) given that it has run
that long; its later trials take fresh draws; the slot is busy until the last
ends, and each trial that ends inside the window counts as a completion (or a failure,
at the pair's failure rate). "Now" is the latest start or finish the file records (a
plan of an old file reads it as it was; a submission is not used, as the simulator
stamps those on the wall clock and the rest on its virtual one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from shadho.trial import Trial, TrialState

__all__ = ["InFlight", "Carried", "find_in_flight", "carry"]

#: Tries at drawing a runtime longer than the elapsed one before taking a small overrun.
_TRIES = 64


@dataclass(frozen=True)
class InFlight:
    """A task running when the file was read: space index, class, seconds its current
    trial has run (an upper bound), trials left in it, and its age (for the order)."""

    space: int
    cls: str
    elapsed: float
    trials: int = 1
    age: float = 0.0


@dataclass(frozen=True)
class Carried:
    """A running task's future in one simulation: when each of its trials ends (seconds
    from now) and whether it succeeds."""

    space: int
    cls: str
    ends: tuple[float, ...]
    oks: tuple[bool, ...]

    @property
    def remaining(self) -> float:
        """Seconds until its slot is free."""
        return self.ends[-1]


def file_now(trials: Iterable[Trial]) -> float | None:
    """The latest start or finish the file records (see the module docstring)."""
    times = [v for t in trials for v in (t.finish_time, t.start_time) if v is not None]
    return max(times) if times else None


def find_in_flight(trials: Iterable[Trial], space_index: Mapping[str, int],
                   classes: Iterable[str], default_class: str) -> list[InFlight]:
    """The running tasks of known spaces and classes (see the module docstring).

    >>> from shadho.trial import Trial, TrialState as S
    >>> ts = [Trial(1, "s", "a", S.COMPLETE, {}, submit_time=0.0, start_time=1.0, finish_time=4.0, compute_class="cpu"),
    ...       Trial(2, "s", "a", S.RUNNING, {}, submit_time=0.0, compute_class="cpu"),
    ...       Trial(3, "s", "a", S.COMPLETE, {}, submit_time=2.0, start_time=2.0, finish_time=9.0, compute_class="cpu")]
    >>> find_in_flight(ts, {"a": 0}, ["cpu"], "default")
    [InFlight(space=0, cls='cpu', elapsed=5.0, trials=1, age=9.0)]
    """
    trials = list(trials)
    now = file_now(trials)
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
        starts = [float(t.start_time) for t in running if t.start_time is not None]
        if not ends and not starts:
            continue  # queued or running: the file cannot tell (see the module docstring)
        began = max([submitted] + starts + ends)
        out.append(InFlight(space_index[space], cls, max(0.0, now - began), len(running), now - submitted))
    return out


def carry(items: Iterable[InFlight], mu: np.ndarray, cidx: Mapping[str, int], sd: float,
          fail: np.ndarray, slots: Mapping[str, int], scale: float,
          rng: np.random.Generator) -> list[Carried]:
    """One simulation's futures of the running tasks (see the module docstring).

    ``mu`` holds the draw's log-runtime means (spaces x classes), ``fail`` its failure
    rates; a class's oldest tasks hold its ``slots``, and a pool simulated ``scale``
    times smaller keeps that share of them.
    """
    by_class: dict[str, list[InFlight]] = {}
    for it in items:
        if it.cls in slots:
            by_class.setdefault(it.cls, []).append(it)
    out = []
    for cls, its in by_class.items():
        keep = min(int(slots[cls]), int(math.ceil(len(its) / max(scale, 1.0))))
        c = cidx[cls]
        for it in sorted(its, key=lambda i: -i.age)[:keep]:
            m, p = float(mu[it.space, c]), float(fail[it.space, c])
            t = _longer_than(m, sd, it.elapsed, rng) - it.elapsed
            ends = [t]
            for _ in range(it.trials - 1):
                t += math.exp(m + sd * float(rng.standard_normal()))
                ends.append(t)
            out.append(Carried(it.space, cls, tuple(ends), tuple(not (rng.random() < p) for _ in ends)))
    return out


def _longer_than(mu: float, sd: float, elapsed: float, rng: np.random.Generator) -> float:
    """A log-normal runtime drawn given that it exceeds ``elapsed``."""
    for _ in range(_TRIES):
        r = math.exp(mu + sd * float(rng.standard_normal()))
        if r > elapsed:
            return r
    # Far in the tail: the trial has outrun its pair's runtimes; give it a short rest.
    return elapsed + max(math.exp(mu), 1e-3) * 0.5
