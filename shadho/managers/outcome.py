"""Reading what a Work Queue task brought back: its result files, why it failed, how often it ran.

Everything here is untrusted input from a worker: sizes are checked before parsing,
and nothing raises (a malformed result is a FAILED trial naming the problem).
:class:`RunCounter` counts how many times each trial was sent to a worker (Work Queue
re-runs a task on another worker when its worker is lost), so that the count is recorded
as the trial's ``attempts`` and capped (``max_runs``).

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
import signal
from typing import Any, Sequence

from shadho.managers import task_shell

_RESULT_MAX_BYTES = 1 << 20


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


def tail_of(path: str, n: int = 1500) -> str:
    """The last ``n`` bytes of a log file ('' when unreadable)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - n))
            return fh.read().decode(errors="replace").strip()
    except OSError:
        return ""


def tries(t: Any) -> int:
    """How many times Work Queue ran task ``t`` (1 when it cannot tell)."""
    try:
        return max(1, int(t._task.try_count))
    except (AttributeError, TypeError, ValueError):
        return 1


def why_failed(wq: Any, t: Any, task_timeout: float | None, category: str) -> str | None:
    """Why task ``t`` failed, from Work Queue's result and the exit status; None: it did not."""
    result, status = t.result, t.return_status
    why = None
    if result == wq.WORK_QUEUE_RESULT_SIGNAL or (status > 128 and result in (
            wq.WORK_QUEUE_RESULT_SUCCESS, wq.WORK_QUEUE_RESULT_OUTPUT_MISSING)):  # the shell's 128+N
        sig = status - 128 if status > 128 else status
        try:
            why = f"task killed by signal {signal.Signals(sig).name}"
        except ValueError:
            why = f"task killed by a signal (status {status})"
    elif result in (wq.WORK_QUEUE_RESULT_TASK_MAX_RUN_TIME, wq.WORK_QUEUE_RESULT_TASK_TIMEOUT):
        why = f"task exceeded task_timeout={task_timeout:g} s and was killed"
    elif result == wq.WORK_QUEUE_RESULT_RESOURCE_EXHAUSTION:
        why = f"task exceeded its resources ({limits(t) or category}) and was killed"
    elif result == wq.WORK_QUEUE_RESULT_MAX_RETRIES:
        why = f"its worker was lost (killed or disconnected) on each of its {tries(t)} runs"
    elif result == wq.WORK_QUEUE_RESULT_DISK_ALLOC_FULL:
        why = "task filled its disk allocation"
    elif result == wq.WORK_QUEUE_RESULT_INPUT_MISSING:
        why = "an input file could not be sent to the worker"
    elif result == wq.WORK_QUEUE_RESULT_FORSAKEN:
        why = "task forsaken by its worker"
    elif result not in (wq.WORK_QUEUE_RESULT_SUCCESS, wq.WORK_QUEUE_RESULT_OUTPUT_MISSING):
        why = f"Work Queue result {t.result_str or result}"
    return why


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


def with_output(why: str, t: Any) -> str:
    text = getattr(t, "output", None) or ""
    if text.startswith("@@shadho slurm="):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    cut, text = task_shell.split_output(text)
    text = text.strip()
    cut += max(0, len(text) - 1500)
    what = f"last output, {cut} earlier bytes cut" if cut else "last output"
    return why + (f"\n--- {what} ---\n{text[-1500:]}" if text else "")
