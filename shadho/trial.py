"""Trial records, their states, and which of them is best.

"Best" means one thing everywhere (status, report, the end-of-run summary, ``Shadho.best``
and the store's :meth:`~shadho.store_reads.StoreReads.best_trial`): the lowest loss of a
COMPLETE trial, ties going to the oldest trial.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable


class TrialState(str, enum.Enum):
    """Where a trial stands. A finished trial (COMPLETE or FAILED) never changes again."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.FAILED)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Trial:
    """One evaluation of the objective, as recorded in the results store.

    Reads return fresh copies: mutating one never changes the store.

    Example:
        >>> t = Trial(id=1, searchspace='svm/rbf', space_id='ab12', state=TrialState.COMPLETE,
        ...           params={'C': 1.0}, loss=0.1)
        >>> t.state.finished
        True
    """

    id: int
    searchspace: str
    space_id: str
    state: TrialState
    params: dict[str, Any]
    loss: float | None = None
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    compute_class: str | None = None
    worker: str | None = None
    submit_time: float | None = None
    start_time: float | None = None
    finish_time: float | None = None
    attempts: int = 0
    x: tuple[float, ...] = ()
    #: When the task carrying this trial began running on a worker (None: still queued,
    #: or a file written before task starts were recorded). A task may run several trials
    #: one after another: ``start_time`` is this trial's own start, reported with its result.
    task_start_time: float | None = None

    @property
    def runtime(self) -> float | None:
        """Seconds the objective ran (start to finish), when known."""
        if self.start_time is None or self.finish_time is None:
            return None
        return self.finish_time - self.start_time

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the export format)."""
        return {
            "id": self.id, "searchspace": self.searchspace, "space_id": self.space_id,
            "state": self.state.value, "params": self.params, "loss": self.loss,
            "results": self.results, "error": self.error, "compute_class": self.compute_class,
            "worker": self.worker, "submit_time": self.submit_time, "start_time": self.start_time,
            "finish_time": self.finish_time, "attempts": self.attempts, "x": list(self.x),
            "task_start_time": self.task_start_time,
        }


def completed(trials: Iterable[Trial]) -> list[Trial]:
    """The COMPLETE trials that have a loss, in their order."""
    return [t for t in trials if t.state is TrialState.COMPLETE and t.loss is not None]


def ranked(trials: Iterable[Trial]) -> list[Trial]:
    """The completed trials, best first (lowest loss; ties: the oldest).

    Example:
        >>> ts = [Trial(i, 's', 's', TrialState.COMPLETE, {}, loss=v) for i, v in ((1, .5), (2, .1), (3, .1))]
        >>> [t.id for t in ranked(ts)], best_of(ts).id, best_of([])
        ([2, 3, 1], 2, None)
    """
    return sorted(completed(trials), key=lambda t: (t.loss, t.id))


def best_of(trials: Iterable[Trial]) -> Trial | None:
    """The best completed trial (see :func:`ranked`), or None."""
    done = completed(trials)
    return min(done, key=lambda t: (t.loss, t.id)) if done else None
