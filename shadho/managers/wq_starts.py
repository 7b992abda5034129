"""When Work Queue started each task: the start of a task, recorded while it runs.

Work Queue reports a task's times only with its result, so a results file read while a
search runs could not tell a task running on a worker from one waiting in the manager's
queue (both RUNNING trials with a submit time). :class:`StartWatch` asks the manager for
the state of the tasks in flight (``q.task_state(taskid)``, ``WORK_QUEUE_TASK_RUNNING``
once dispatched), at most every ``every`` seconds (one poll of 2,000 tasks in flight took
about 1 ms here, cctools 8.0), and for a task newly running takes the time Work Queue began
sending the task to its worker (the task's ``time_when_commit_start``, microseconds;
the poll's own time when it is missing). A task seen running that is back in the queue
(``WORK_QUEUE_TASK_READY``: its worker was lost, Work Queue retries it elsewhere) loses
its start. A task that started and ended between two polls gets its start when collected.

The poll only reads: the manager dispatches inside ``wait()``, so a start reaches the
store at most about one ``wait()`` plus ``every`` seconds after it happened (its time is
the dispatch's own).
"""
from __future__ import annotations

import time
from typing import Any, Mapping

__all__ = ["StartWatch", "dispatched_at"]


def dispatched_at(task: Any) -> float | None:
    """The epoch seconds Work Queue began sending ``task`` to a worker, when it says."""
    try:
        usec = task._task.time_when_commit_start
    except AttributeError:
        return None
    return usec / 1e6 if isinstance(usec, (int, float)) and usec > 0 else None


class StartWatch:
    """The starts of Work Queue tasks, for :meth:`ExecutionManager.take_starts`.

    Each pending entry has ``trials`` (``(trial id, params)`` pairs), ``wq_task`` and a
    ``started`` attribute (None until seen running), which the watch sets.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> w = StartWatch(every=0.0)
        >>> p = NS(trials=((7, {}),), wq_task=None, started=None)
        >>> w.collected(p, NS(_task=NS(time_when_commit_start=2_500_000)))
        >>> w.take(), w.take()
        ([(7, 2.5)], [])
    """

    def __init__(self, every: float = 0.5) -> None:
        self.every = float(every)
        self._last = -float("inf")
        self._starts: list[tuple[int, float | None]] = []

    def poll(self, wq: Any, q: Any, pending: Mapping[int, Any]) -> None:
        """Look at the tasks in flight (rate-limited to once per ``every`` seconds)."""
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        running, ready = wq.WORK_QUEUE_TASK_RUNNING, wq.WORK_QUEUE_TASK_READY
        for tid, p in pending.items():
            if p.started is None:
                if q.task_state(tid) == running:
                    self._mark(p, dispatched_at(p.wq_task) or time.time())
            elif q.task_state(tid) == ready:  # back in the queue: its worker was lost
                self._mark(p, None)

    def collected(self, p: Any, task: Any) -> None:
        """A finished task that no poll saw running: its start from the task itself."""
        if p.started is None:
            self._mark(p, dispatched_at(task) or time.time())

    def take(self) -> list[tuple[int, float | None]]:
        """The ``(trial id, start or None)`` changes since the last call."""
        out, self._starts = self._starts, []
        return out

    def _mark(self, p: Any, when: float | None) -> None:
        p.started = when
        self._starts.extend((tid, when) for tid, _ in p.trials)
