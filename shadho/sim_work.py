"""Work the simulator is handed from before it started (:class:`QueuedWork`).

:mod:`shadho.planner` plans from a results file read while its search runs: the tasks
in flight then hold workers (``busy``) or wait in their classes' queues (``queued``) of
:class:`~shadho.sim.SimulatedManager`, and what they return is learned by the simulated
scheduler as the real one learns a returned task.

Example:
    >>> w = QueuedWork(0, "space-id", "cpu", 4.0, results=((2.0, 0.31, True), (2.0, None, False)))
    >>> w.seconds, len(w.results)
    (4.0, 2)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Learned", "QueuedWork"]

#: One trial of work from before the simulation as the scheduler learns it: (runtime in
#: seconds, loss or None, succeeded).
Learned = tuple[float, float | None, bool]


@dataclass(frozen=True)
class QueuedWork:
    """A task already waiting in a class's queue when the simulation starts (``queued``), or
    still running on a worker (``busy``): it yields no outcomes to the driver; once a worker
    takes it (after the class's task overhead) it holds the worker ``seconds`` (``busy``:
    from the start). ``ref`` names it in :attr:`~shadho.sim.SimulatedManager.queued_starts`. When it
    ends, its ``results`` go to :attr:`~shadho.sim.SimulatedManager.learn` (the real master's scheduler
    learns a task's trials when the task returns)."""

    ref: int
    space_id: str
    compute_class: Any
    seconds: float
    trials: tuple[Any, ...] = ()
    results: tuple[Learned, ...] = ()
