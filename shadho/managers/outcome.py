"""How every manager turns what happened to a task into trial outcomes: one path, one wording.

A task ends in one of three ways, whatever runs it (a local process, a Work Queue worker,
the simulator):

* each trial answered: the worker's JSON result dict becomes the trial's outcome
  (:func:`answered`, the format of ``shadho_worker.evaluate``);
* a shell command ran: its exit status and ``performance.json`` are merged as the original
  SHADHO did (:func:`command_result`);
* the task ended without answering some trials: the :class:`Cause` (looked up in one table
  per manager: Work Queue's result codes, a local process's exit) says why, and
  :func:`unanswered` blames only the trial that was running; later trials of its batch are
  *lost* (the driver runs them again), and when the worker itself was lost nobody is to blame.

Example:
    >>> describe(Cause.TIMEOUT, timeout=2)
    'task exceeded task_timeout=2 s and was killed'
    >>> [(o.trial_id, o.error, o.lost) for o in unanswered([7, 8], 'task killed by signal SIGSEGV')]
    [(7, 'task killed by signal SIGSEGV', False), (8, None, True)]
    >>> command_result({'status': 'success', 'loss': 1.0}, 3)
    {'status': 'error', 'error': 'command exited with status 3'}
"""
from __future__ import annotations

import enum
import os
import signal
from typing import Any, Sequence

from shadho.managers.base import TrialOutcome

#: Bytes of a task's output quoted in a failed trial's error.
OUTPUT_QUOTE_BYTES = 1500


class Cause(enum.Enum):
    """Why a task ended without an answer for some of its trials."""

    SIGNAL = "signal"              # killed by a signal (facts: signal=the number or the exit status)
    TIMEOUT = "timeout"            # ran past task_timeout (facts: timeout)
    RESOURCES = "resources"        # ran past its compute class's allocation (facts: resources)
    WORKER_LOST = "worker_lost"    # its worker vanished on every run (facts: runs)
    FORSAKEN = "forsaken"          # its worker gave it up
    DISK_FULL = "disk_full"
    INPUT_MISSING = "input_missing"
    EXITED = "exited"              # the process exited before answering (facts: status)
    NO_RESULT = "no_result"        # it ended normally, yet answered nothing
    OTHER = "other"                # anything else the engine reports (facts: result)

    @property
    def worker_lost(self) -> bool:
        """Not the trial's fault: it may run again elsewhere."""
        return self in (Cause.WORKER_LOST, Cause.FORSAKEN)


_MESSAGES = {
    Cause.SIGNAL: "task killed by {signal}",
    Cause.TIMEOUT: "task exceeded task_timeout={timeout:g} s and was killed",
    Cause.RESOURCES: "task exceeded its resources ({resources}) and was killed",
    Cause.WORKER_LOST: "its worker was lost (killed or disconnected) on each of its {runs} runs",
    Cause.FORSAKEN: "task forsaken by its worker",
    Cause.DISK_FULL: "task filled its disk allocation",
    Cause.INPUT_MISSING: "an input file could not be sent to the worker",
    Cause.EXITED: "task exited with status {status} before writing a result",
    Cause.NO_RESULT: "the task wrote no result",
    Cause.OTHER: "task ended with {result}",
}


def describe(cause: Cause, **facts: Any) -> str:
    """The sentence a FAILED trial's error starts with.

    Example:
        >>> describe(Cause.SIGNAL, signal=11), describe(Cause.SIGNAL, signal=200)
        ('task killed by signal SIGSEGV', 'task killed by a signal (status 200)')
    """
    if cause is Cause.SIGNAL:
        facts = {**facts, "signal": signal_text(int(facts["signal"]))}
    return _MESSAGES[cause].format(**facts)


def signal_text(number: int) -> str:
    """``'signal SIGKILL'`` for a signal number (or a shell's 128+N status)."""
    sig = number - 128 if number > 128 else number
    try:
        return f"signal {signal.Signals(sig).name}"
    except ValueError:
        return f"a signal (status {number})"


def answered(trial_id: int, doc: Any, **extra: Any) -> TrialOutcome:
    """A trial's outcome from a worker's JSON result dict; never raises (see
    :meth:`TrialOutcome.from_json`). ``start_time`` / ``finish_time`` in ``extra``
    replace the result's own (the simulator's virtual clock)."""
    return TrialOutcome.from_json(trial_id, doc, **extra)


def unanswered(trial_ids: Sequence[int], error: str, **extra: Any) -> list[TrialOutcome]:
    """Outcomes of a task's trials that got no answer when it ended for ``error``.

    Trials of one task run one after the other, so only the first unanswered one was
    running: it is FAILED with ``error``. The later ones never started; they are *lost*
    (no error), and the driver runs them again.
    """
    return [TrialOutcome(tid, False, error=None if i else error, lost=bool(i), **extra)
            for i, tid in enumerate(trial_ids)]


def command_result(performance: dict[str, Any], status: int) -> dict[str, Any]:
    """A shell-command trial's result: what it wrote in ``performance.json`` (as read by
    ``shadho_worker.read_performance``) and its exit status, as the original SHADHO judged
    them: a non-zero status fails the trial, naming the status (and the file's error)."""
    if status == 0:
        return performance
    why = f"command exited with status {status}"
    if performance.get("status") == "error":
        why += f": {performance.get('error')}"
    return {"status": "error", "error": why}


def with_output(why: str, text: str, cut: int = 0) -> str:
    """``why`` followed by the last :data:`OUTPUT_QUOTE_BYTES` of the task's output
    (``cut``: bytes already left out before ``text``)."""
    text = text.strip()
    cut += max(0, len(text) - OUTPUT_QUOTE_BYTES)
    what = f"last output, {cut} earlier bytes cut" if cut else "last output"
    return why + (f"\n--- {what} ---\n{text[-OUTPUT_QUOTE_BYTES:]}" if text else "")


def tail_of(path: str, n: int = OUTPUT_QUOTE_BYTES) -> str:
    """The last ``n`` bytes of a log file ('' when unreadable)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - n))
            return fh.read().decode(errors="replace").strip()
    except OSError:
        return ""
