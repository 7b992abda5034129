"""How a class spends its time, from its finished trials: slots, tasks, dead time per task.

Part of :mod:`shadho.plan_model` (the planner's learned model): the model's dead time per
task and the pool the search ran on come from :func:`class_timing`. A trial that starts
within ``BATCH_GAP`` of a same-space trial's finish ran in the same task
(``hyperparameters_per_task``) and paid no task overhead of its own.

A file read while its search runs ends with tasks in flight, whose slots the finished
trials alone do not show (:func:`in_flight_marks`): the finish of a trial whose task
goes on freed no slot, and a running task whose start is recorded took a slot then.
Left as free slots, each took the place of a later task's real one: in a real run cut
at half time (bench/plan.py, 2 trials per task) the 1-core class's two last waits were
measured as 2.7 s and 6.8 s instead of about 0.4 s, and its dead time per task as 2.6 s.
"""
from __future__ import annotations

import math
from typing import Collection, Sequence

from shadho.trial import Trial

__all__ = ["class_timing", "in_flight_marks", "BATCH_GAP", "RECENT", "MIN_GAPS"]

#: Fraction of a class's span left out, oldest first, when measuring its dead time.
RECENT = 0.5
#: Task waits needed to measure a class's dead time from them (else from its idle time).
MIN_GAPS = 3
#: Seconds between a trial's finish and the next one's start below which both ran in one task.
BATCH_GAP = 0.02


def _continuations(trials: Sequence[Trial]) -> int:
    """Trials that started within ``BATCH_GAP`` of a same-space trial's finish: the later
    trials of a task that runs several (``hyperparameters_per_task``), which pay no
    task overhead of their own."""
    import bisect

    finishes: dict[str, list[float]] = {}
    for t in trials:
        finishes.setdefault(t.space_id, []).append(float(t.finish_time))  # type: ignore[arg-type]
    for v in finishes.values():
        v.sort()
    n = 0
    for t in trials:
        f = finishes[t.space_id]
        i = bisect.bisect_right(f, float(t.start_time))  # type: ignore[arg-type]
        n += i > 0 and float(t.start_time) - f[i - 1] < BATCH_GAP  # type: ignore[arg-type]
    return n


def in_flight_marks(running: Sequence[Trial], finished: Sequence[Trial]) -> tuple[set[int], list[tuple[float, str]]]:
    """What one class's tasks in flight (their ``running`` trials) leave out of the slot
    timeline of its ``finished`` trials (a task: one space and submit time): the ids of
    the finished trials whose task goes on (their finish freed no slot), and the recorded
    start and space of each running task none of whose trials has finished (it took a slot).

    Example:
        >>> from shadho.trial import Trial, TrialState as S
        >>> done = [Trial(1, 's', 'a', S.COMPLETE, {}, submit_time=0.0, start_time=1.0, finish_time=2.0)]
        >>> run = [Trial(2, 's', 'a', S.RUNNING, {}, submit_time=0.0),
        ...        Trial(3, 's', 'a', S.RUNNING, {}, submit_time=1.5, task_start_time=2.1)]
        >>> in_flight_marks(run, done)
        ({1}, [(2.1, 'a')])
    """
    starts: dict[tuple[str, float], list[float]] = {}
    for t in running:
        if t.submit_time is not None:
            starts.setdefault((t.space_id, float(t.submit_time)), []).extend(
                [float(t.task_start_time)] if t.task_start_time is not None else [])
    done: dict[tuple[str, float], list[Trial]] = {}
    for t in finished:
        key = (t.space_id, float(t.submit_time)) if t.submit_time is not None else None
        if key in starts and t.finish_time is not None:
            done.setdefault(key, []).append(t)
    held = {max(ts, key=lambda t: float(t.finish_time)).id for ts in done.values()}  # type: ignore[arg-type]
    taken = sorted((min(v), key[0]) for key, v in starts.items() if v and key not in done)
    return held, taken


def _task_gaps(trials: Sequence[Trial], since: float, held: Collection[int] = (),
               taken: Sequence[tuple[float, str]] = ()) -> list[float]:
    """Seconds each task of one class waited for its slot, for the tasks started after
    ``since``: a finish frees a slot, and the next task start that does not continue a
    task (see :func:`_continuations`) takes the slot freed earliest (Work Queue fills
    free slots in order). Tasks that found no freed slot (the first on each worker)
    are left out. The finishes of ``held`` trials free none, and the ``taken`` starts of
    tasks in flight take one without a wait measured (see :func:`in_flight_marks`)."""
    from collections import deque

    events = sorted([(float(t.finish_time), 0, t.space_id) for t in trials if t.id not in held]  # type: ignore[arg-type]
                    + [(float(t.start_time), 1, t.space_id) for t in trials]  # type: ignore[arg-type]
                    + [(when, 2, space) for when, space in taken])
    free: deque[tuple[float, str]] = deque()
    gaps = []
    for when, kind, space in events:
        if kind == 0:
            free.append((when, space))
            continue
        if kind == 2:
            if free:
                free.popleft()
            continue
        cont = next((i for i, (f, sp) in enumerate(free) if sp == space and 0 <= when - f < BATCH_GAP), None)
        if cont is not None:
            del free[cont]
        elif free:
            freed, _ = free.popleft()
            if when >= since:
                gaps.append(when - freed)
    return gaps


def class_timing(trials: Sequence[Trial], running: Sequence[Trial] = ()) -> dict[str, float]:
    """Slots, tasks, dead time per task, span and busy seconds of one class's finished trials
    (``running``: its trials in flight, see :func:`in_flight_marks`).

    The dead time is measured over the latest ``1 - RECENT`` of the span, and not before
    all the class's slots first ran at once (workers connecting one by one at the start
    are not a steady cost), to its last finish; the trials still running then are
    counted with their expected age.
    """
    timed = [t for t in trials if t.start_time is not None and t.finish_time is not None
             and t.finish_time >= t.start_time]
    spans = [(float(t.start_time), float(t.finish_time)) for t in timed]  # type: ignore[arg-type]
    if not spans:
        return {"slots": 0, "dead": math.nan, "span": 0.0, "busy": 0.0, "n": 0, "tasks": 0}
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    now = peak = 0
    full = events[0][0]
    for when, step in events:  # ties: a finish (-1) sorts before a start
        now += step
        if now > peak:
            peak, full = now, when
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    # The latest half of the span, once every slot ran: a search's dead time falls as
    # its workers warm up (measured: 1.0 s per task in a real search's first 40 s,
    # 0.67 s in the next 40), and the latest figures are the ones that go on.
    full = max(full, first + RECENT * (last - first))
    busy = sum(max(0.0, b - max(a, full)) for a, b in spans)
    tasks = max(1, len(spans) - _continuations(timed))
    started = max(1, round(sum(a >= full for a, _ in spans) * tasks / len(spans)))
    # At the end every slot but the one that finished last runs a trial begun earlier; a
    # trial running at a given moment is length-biased, so its expected age is
    # E[T^2] / (2 E[T]), not E[T] / 2 (a slot on a 9 s trial among 0.1 s ones).
    durations = [b - a for a, b in spans]
    age = sum(d * d for d in durations) / max(2 * sum(durations), 1e-12)
    # The tasks known to be in flight (see in_flight_marks) have run since their start or
    # their last trial's finish; only the slots left unknown take the expected age.
    held, taken = in_flight_marks(running, timed)
    since = [float(t.finish_time) for t in timed if t.id in held] + [w for w, _ in taken]  # type: ignore[arg-type]
    known = sum(max(0.0, last - max(w, full)) for w in since)
    idle = peak * (last - full) - busy - known - max(0, peak - 1 - len(since)) * age
    gaps = _task_gaps(timed, full, held, taken)
    dead = sum(gaps) / len(gaps) if len(gaps) >= MIN_GAPS else max(0.0, idle / started)
    return {"slots": peak, "dead": dead, "span": last - first,
            "busy": sum(b - a for a, b in spans), "n": len(spans), "tasks": tasks,
            "first": first, "last": last}
