"""Reading what a Work Queue task brought back: its result files, why it failed, how often it ran.

Everything here is untrusted input from a worker: sizes are checked before parsing,
and nothing raises (a malformed result is a FAILED trial naming the problem). Work Queue's
result codes map to shadho's :class:`~shadho.managers.outcome.Cause` through one table,
:data:`RESULT_CAUSES`. :class:`RunCounter` counts how many times each trial was sent to a
worker (Work Queue re-runs a task on another worker when its worker is lost), so that the
count is recorded as the trial's ``attempts`` and capped (``max_runs``).

Nothing here imports Work Queue: the module object is passed in (see
:func:`shadho.managers.workqueue.import_work_queue`).

Example:
    >>> c = RunCounter(max_runs=5)
    >>> c.retries_for([1, 2])   # Work Queue may run a fresh task 5 times in all
    4
    >>> c.ran([1, 2], 5); c.may_rerun(1)
    False
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Sequence

from shadho.managers import outcome, task_shell
from shadho.managers.base import RunSettings, TrialOutcome
from shadho.managers.outcome import Cause, describe

_RESULT_MAX_BYTES = 1 << 20
#: The first line of a shell-command task's output: the batch job its worker runs in.
SLURM_MARK = "@@shadho slurm="

#: Work Queue's result codes (names in its module) -> why the task failed. Codes that are
#: not here (SUCCESS, OUTPUT_MISSING) mean the task ran: its exit status and files tell.
RESULT_CAUSES = {
    "WORK_QUEUE_RESULT_SIGNAL": Cause.SIGNAL,
    "WORK_QUEUE_RESULT_TASK_MAX_RUN_TIME": Cause.TIMEOUT,
    "WORK_QUEUE_RESULT_TASK_TIMEOUT": Cause.TIMEOUT,
    "WORK_QUEUE_RESULT_RESOURCE_EXHAUSTION": Cause.RESOURCES,
    "WORK_QUEUE_RESULT_MAX_RETRIES": Cause.WORKER_LOST,
    "WORK_QUEUE_RESULT_FORSAKEN": Cause.FORSAKEN,
    "WORK_QUEUE_RESULT_DISK_ALLOC_FULL": Cause.DISK_FULL,
    "WORK_QUEUE_RESULT_INPUT_MISSING": Cause.INPUT_MISSING,
}
_RAN = ("WORK_QUEUE_RESULT_SUCCESS", "WORK_QUEUE_RESULT_OUTPUT_MISSING")


class RunCounter:
    """Times each trial was sent to a worker, and whether it may be sent again."""

    def __init__(self, max_runs: int = 5) -> None:
        if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 2:
            raise ValueError(f"max_runs must be an int >= 2 (Work Queue runs a task at least twice when "
                             f"its worker is lost), got {max_runs!r}")
        self.max_runs = max_runs
        self.runs: dict[int, int] = {}

    def retries_for(self, trials: Sequence[int]) -> int:
        """Work Queue's ``max_retries`` for a task of ``trials``: what is left of their runs.
        (Work Queue allows at least one retry: a task is only sent when two runs are left.)"""
        left = self.max_runs - max((self.runs.get(t, 0) for t in trials), default=0)
        return max(1, left - 1)

    def ran(self, trials: Sequence[int], times: int) -> None:
        for t in trials:
            self.runs[t] = self.runs.get(t, 0) + max(1, int(times))

    def may_rerun(self, trial: int) -> bool:
        return self.max_runs - self.runs.get(trial, 0) >= 2

    def lost_error(self, trial: int) -> str:
        return (f"trial sent to workers {self.runs.get(trial, 0)} times and its worker was lost each time "
                f"(killed or disconnected); not run again (max_runs={self.max_runs})")


def outcomes(wq: Any, t: Any, settings: RunSettings, key: str | None, trials: Sequence[tuple[int, Any]],
             result_path: str, category: str, runs: RunCounter) -> list[TrialOutcome]:
    """The outcomes of ``trials``, run by finished Work Queue task ``t`` for class ``key``,
    whose result file came back to ``result_path``, in trial order."""
    host = clean(getattr(t, "hostname", None)) or "unknown"
    doc: dict[str, Any] = {}
    if callable(settings.objective):
        doc = read_json(result_path)
        host = clean(doc.get("host")) or host
        slurm = clean(doc.get("slurm"))
    else:
        slurm = slurm_job(t)
    # Answered trials keep their own times (a batch's trials run one after the other);
    # failed and lost ones get the task's.
    extra = {"worker": f"{host}/slurm:{slurm}" if slurm else host, "compute_class": key}
    times = {"start_time": usec(getattr(t, "execute_cmd_start", None)),
             "finish_time": usec(getattr(t, "execute_cmd_finish", None)) or time.time()}
    why = why_failed(wq, t, settings.task_timeout, category)
    if not callable(settings.objective):
        return [_command_outcome(trials[0][0], t, result_path, why, {**extra, **times})]
    if "error" in doc and why is None:  # the objective could not be loaded
        err = str(doc["error"])[:20000]
        return [TrialOutcome(tid, False, error=err, **extra, **times) for tid, _ in trials]
    cause = cause_of(wq, t)
    return _callable_outcomes(t, trials, doc, why, runs if cause is not None and cause.worker_lost else None,
                              extra, times)


def _command_outcome(tid: int, t: Any, result_path: str, why: str | None, extra: dict[str, Any]) -> TrialOutcome:
    """A shell-command trial: the original protocol (exit status + performance.json)."""
    if why is None:
        res = outcome.command_result(read_performance(result_path), t.return_status)
        if t.return_status == 0:
            return outcome.answered(tid, res, **extra)
        why = res["error"]
    return TrialOutcome(tid, False, error=with_output(why, t), **extra)


def _callable_outcomes(t: Any, trials: Sequence[tuple[int, Any]], doc: dict[str, Any], why: str | None,
                       lost_worker: RunCounter | None, extra: dict[str, Any],
                       times: dict[str, Any]) -> list[TrialOutcome]:
    """A callable's trials: each answered one from the result file; the others blamed or lost
    (``lost_worker``: the worker vanished, so none is to blame while its reruns last)."""
    results = doc.get("trials") if isinstance(doc.get("trials"), dict) else {}
    out = {tid: outcome.answered(tid, results[str(tid)], **extra) for tid, _ in trials if str(tid) in results}
    left = [tid for tid, _ in trials if tid not in out]
    if left and lost_worker is not None:  # not the trials' fault: they run again, up to max_runs times
        for tid in left:
            again = lost_worker.may_rerun(tid)
            out[tid] = TrialOutcome(tid, False, error=None if again else lost_worker.lost_error(tid),
                                    lost=again, **extra, **times)
    elif left:
        status = t.return_status
        if why is None:
            why = describe(Cause.EXITED, status=status) if status else describe(Cause.NO_RESULT)
        out.update((o.trial_id, o) for o in outcome.unanswered(left, with_output(why, t), **extra, **times))
    return [out[tid] for tid, _ in trials]


def tries(t: Any) -> int:
    """How many times Work Queue ran task ``t`` (1 when it cannot tell)."""
    try:
        return max(1, int(t._task.try_count))
    except (AttributeError, TypeError, ValueError):
        return 1


def cause_of(wq: Any, t: Any) -> Cause | None:
    """Why task ``t`` failed, from :data:`RESULT_CAUSES` and its exit status; None: it ran."""
    result, status = t.result, t.return_status
    ran = result in {getattr(wq, name, None) for name in _RAN}
    if ran and status > 128:  # the shell's 128+N: killed by signal N
        return Cause.SIGNAL
    for name, cause in RESULT_CAUSES.items():
        if result == getattr(wq, name, object()):
            return cause
    return None if ran else Cause.OTHER


def why_failed(wq: Any, t: Any, task_timeout: float | None, category: str) -> str | None:
    """Why task ``t`` failed, in words; None: it did not."""
    cause = cause_of(wq, t)
    if cause is None:
        return None
    return describe(cause, signal=t.return_status, timeout=task_timeout or 0,
                    resources=limits(t) or category, runs=tries(t),
                    result=f"Work Queue result {t.result_str or t.result}")


def clean(value: Any, n: int = 200) -> str | None:
    if value is None:
        return None
    s = str(value).strip()[:n]
    return s or None


def usec(v: Any) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v / 1e6 if v > 0 else None


def read_json(path: str) -> dict[str, Any]:
    try:
        size = os.path.getsize(path)
    except OSError:
        return {}
    if size > _RESULT_MAX_BYTES * 20:
        return {"error": f"result file is {size} bytes (limit {_RESULT_MAX_BYTES * 20})"}
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, ValueError, RecursionError) as exc:
        return {"error": f"malformed result file from the worker: {type(exc).__name__}: {str(exc)[:200]}"}
    return doc if isinstance(doc, dict) else {"error": f"malformed result file from the worker: {str(doc)[:200]}"}


def read_performance(path: str) -> dict[str, Any]:
    import shadho_worker

    return shadho_worker.read_performance(path)


def limits(t: Any) -> str:
    try:
        lim = t.limits_exceeded
        return ", ".join(f"{k}" for k in ("cores", "memory", "disk", "gpus", "wall_time")
                         if getattr(lim, k, -1) not in (-1, None)) if lim is not None else ""
    except Exception:  # noqa: BLE001 - only for the message
        return ""


def slurm_job(t: Any) -> str | None:
    """The batch job a shell-command task's worker ran in (its first output line)."""
    first = (getattr(t, "output", None) or "").split("\n", 1)[0]
    return clean(first[len(SLURM_MARK):]) if first.startswith(SLURM_MARK) else None


def output(t: Any) -> tuple[int, str]:
    """``(bytes cut, the rest)`` of what the task printed, without shadho's own first line."""
    text = getattr(t, "output", None) or ""
    if text.startswith(SLURM_MARK):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return task_shell.split_output(text)


def with_output(why: str, t: Any) -> str:
    """``why`` followed by the end of what task ``t`` printed."""
    cut, text = output(t)
    return outcome.with_output(why, text, cut)
