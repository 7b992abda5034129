"""The execution-manager interface: where trials run.

The driver's loop is ask -> submit -> wait -> tell. A manager takes
:class:`TaskSpec` objects (one or more trials of one search space) and hands back
:class:`TrialOutcome` objects as they finish. It never unpickles what a worker
sends: outcomes are built from JSON.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from shadho.compute import ComputeClass


def default_queue_margin(slots: int) -> int:
    """Tasks a class keeps waiting beyond its ``slots`` free slots by default: half the
    slots, at least 2 (enough to refill a slot at once, short enough that the
    scheduler's later decisions are not stuck behind a long queue).

    Example:
        >>> default_queue_margin(2), default_queue_margin(150)
        (2, 75)
    """
    return max(2, (int(slots) + 1) // 2)


def queue_margin(setting: int | str | None, slots: int) -> int:
    """Tasks a class keeps waiting beyond its ``slots``: ``setting``, or
    :func:`default_queue_margin` when it is None or ``"auto"``.

    Example:
        >>> queue_margin(None, 10), queue_margin("auto", 10), queue_margin(3, 10)
        (5, 5, 3)
    """
    return default_queue_margin(slots) if setting is None or setting == "auto" else int(setting)


def class_memory_mb(classes: Sequence[ComputeClass], key: str | None,
                    default: float | None = None) -> float | None:
    """The memory limit (MB) of trials of compute class ``key``: the class's own memory
    size when it has one, else ``default`` (the manager's ``memory_mb=``).

    Example:
        >>> big = ComputeClass('big', 'memory', 4000)
        >>> class_memory_mb([big], 'big', 500), class_memory_mb([big], None, 500)
        (4000.0, 500)
    """
    for c in classes:
        if c.name == key and c.resources.get("memory"):
            return float(c.resources["memory"])
    return default


@dataclass(frozen=True)
class FileSpec:
    """A file shipped to (input) or fetched from (output) each task's sandbox."""

    local: str
    remote: str
    cache: bool = True


@dataclass(frozen=True)
class RunSettings:
    """Everything a manager needs to run one experiment's trials.

    Attributes:
        exp_key: the experiment's key.
        objective: a Python callable ``fn(params)`` or a shell command string.
        compute_classes: the classes (empty: one default class, key ``None``).
        inputs / outputs: files shipped to / fetched from each task.
        task_timeout: seconds one trial may run (None: unlimited).
    """

    exp_key: str
    objective: Callable[[dict[str, Any]], Any] | str
    compute_classes: tuple[ComputeClass, ...] = ()
    inputs: tuple[FileSpec, ...] = ()
    outputs: tuple[FileSpec, ...] = ()
    task_timeout: float | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One unit of work: ``trials`` (id, nested params) of one search space.

    ``task_id`` is unique within a run (the driver assigns it).
    """

    task_id: int
    space_id: str
    trials: tuple[tuple[int, dict[str, Any]], ...]
    compute_class: str | None = None
    priority: float = 0.0
    #: One :class:`shadho.rung_task.Budget` per trial when the search has a fidelity (else empty).
    budgets: tuple[Any, ...] = ()


@dataclass
class TrialOutcome:
    """What happened to one trial.

    ``ok`` with a finite ``loss`` is COMPLETE; otherwise FAILED with ``error``.
    ``lost`` means the trial never ran to an answer through no fault of its own
    (its task was cancelled or its worker vanished without a retry): the driver
    runs it again instead of failing it.
    """

    trial_id: int
    ok: bool
    loss: float | None = None
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    worker: str | None = None
    start_time: float | None = None
    finish_time: float | None = None
    compute_class: str | None = None
    lost: bool = False
    #: Times the trial was sent to a worker so far, when the manager counts them.
    attempts: int | None = None

    @classmethod
    def from_json(cls, trial_id: int, doc: Any, **extra: Any) -> "TrialOutcome":
        """Build from a worker's JSON result dict (``shadho_worker.evaluate`` format).

        Never raises: anything malformed becomes a FAILED outcome naming the problem.
        ``start_time`` / ``finish_time`` in ``extra`` replace the result's own times.
        """
        bad = f"malformed result from worker: {str(doc)[:300]}"
        if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
            return cls(trial_id, False, error=bad, **extra)
        extra = {"start_time": _seconds(doc.get("start")), "finish_time": _seconds(doc.get("finish")), **extra}
        if doc["status"] == "error":
            return cls(trial_id, False, error=str(doc.get("error"))[:20000], **extra)
        loss, results = _seconds(doc.get("loss")), doc.get("results", {})
        if loss is None or not isinstance(results, dict):
            return cls(trial_id, False, error=bad, **extra)
        return cls(trial_id, True, loss=loss, results=results, **extra)


def _seconds(value: Any) -> float | None:
    """A finite float from a JSON number, or None (bools, huge ints, NaN, strings...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


class ExecutionManager(ABC):
    """Runs tasks somewhere. Subclasses fill the five abstract members (``start``,
    ``capacity``, ``submit``, ``wait`` and the ``in_flight`` property).

    Lifecycle: ``start(settings)`` once, then any number of ``capacity`` /
    ``submit`` / ``wait`` rounds, then ``stop()``. Optional hooks default to no-ops.
    """

    @abstractmethod
    def start(self, settings: RunSettings) -> None:
        """Prepare to run (start workers, open ports). Called once before submitting."""

    @abstractmethod
    def capacity(self) -> dict[str | None, int]:
        """How many more tasks each compute class should be given now (late binding:
        free slots plus a short queue, never the whole budget)."""

    @abstractmethod
    def submit(self, task: TaskSpec) -> None:
        """Queue one task."""

    @abstractmethod
    def wait(self, timeout: float) -> list[TrialOutcome]:
        """Block up to ``timeout`` seconds; return the outcomes of trials that finished."""

    def stop(self) -> None:
        """Release workers and resources; unfinished tasks are abandoned."""

    def set_priorities(self, priorities: dict[str | None, dict[str, float]]) -> None:
        """Re-prioritise queued tasks: compute class -> space id -> priority (higher first)."""

    def status(self) -> dict[str, Any]:
        """Live figures for progress displays: ``workers``, ``running``, ``queued``."""
        return {}

    def take_starts(self) -> list[tuple[int, float | None]]:
        """``(trial id, epoch seconds)`` for the trials whose task began running on a worker
        since the last call (None: it went back to a queue). The driver stores them as the
        trials' ``task_start_time`` before the outcomes of the same round, so a results file
        read mid-search tells running tasks from queued ones. Default: none known."""
        return []

    @property
    @abstractmethod
    def in_flight(self) -> int:
        """Trials' tasks submitted and not yet reported back (queued or running).

        The driver's loop ends when this is 0 and nothing is left to submit, so a manager
        must count every task until :meth:`wait` has returned all its outcomes (or
        :meth:`cancel_all` dropped it): one that under-counts loses results silently.
        That is why this has no default. Counting a task a little longer, while it winds
        down after its last outcome, is safe.
        """

    def cancel_all(self) -> list[int]:
        """Drop every unfinished task; return the ids of their trials."""
        return []

    def __enter__(self) -> "ExecutionManager":
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


def class_keys(classes: Sequence[ComputeClass]) -> list[str | None]:
    """The keys the driver schedules by: class names, or ``[None]`` without classes."""
    return [c.name for c in classes] or [None]


def task_tag(spec: TaskSpec, trial_id: int | None = None) -> str:
    """The tag a shell-command task gets as its last argument, as in the original SHADHO:
    ``<trial id>.<search space id>.<compute class>``, quoted for the shell.

    Example:
        >>> task_tag(TaskSpec(1, 'ab12', ((7, {}),), 'big gpu'))
        "'7.ab12.big gpu'"
    """
    import shlex

    tid = spec.trials[0][0] if trial_id is None else trial_id
    return shlex.quote(f"{tid}.{spec.space_id}.{spec.compute_class or 'default'}")


def command_with_tag(command: str, tag: str) -> str:
    """``command`` with the task tag (:func:`task_tag`) as its last argument, as the
    original SHADHO ran it, when ``command`` is one simple command (``python train.py``).
    A shell line of several commands or with redirections (``a; b > out``) would pass the
    tag to its last part, so it runs unchanged and finds the tag in ``$SHADHO_TASK_TAG``
    (set for simple commands too).

    Example:
        >>> command_with_tag('python train.py', "'7.ab12.big'")
        "SHADHO_TASK_TAG='7.ab12.big'; export SHADHO_TASK_TAG; python train.py '7.ab12.big'"
        >>> command_with_tag('make; echo 1 > out', "'7.ab12.big'")
        "SHADHO_TASK_TAG='7.ab12.big'; export SHADHO_TASK_TAG; make; echo 1 > out"
    """
    import shlex

    env = f"SHADHO_TASK_TAG={tag}; export SHADHO_TASK_TAG; "
    try:
        lex = shlex.shlex(command, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        simple = not any(tok and set(tok) <= set(";&|<>()") for tok in lex) and "\n" not in command
    except ValueError:  # unbalanced quotes: leave it to the shell to say so
        simple = False
    return env + (f"{command} {tag}" if simple else command)
