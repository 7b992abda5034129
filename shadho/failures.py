"""Failed trials grouped by cause, most common first.

A pure function over trial records: the end-of-run summary and ``shadho status`` both
use it, so "most trials fail with the same error" is said once, with one traceback.

Example:
    >>> from shadho.trial import Trial, TrialState
    >>> tb = 'Traceback (most recent call last):\\n  File "obj.py", line 3\\nValueError: bad C 0.25\\n'
    >>> ts = [Trial(i, 's', 'x', TrialState.FAILED, {}, error=tb.replace('0.25', str(i / 7)))
    ...       for i in range(1, 4)]
    >>> [(g.message, g.count, g.example_trial_id) for g in group_failures(ts)]
    [('ValueError: bad C <num>', 3, 1)]
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from shadho.trial import Trial, TrialState

__all__ = ["FailureGroup", "group_failures", "failure_cause"]

_MAX_MESSAGE = 200
# Parts of an error line that differ between trials failing for the same reason: object
# addresses, floats (a parameter value in the message), and per-task sandbox folders.
_MASKS = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x<addr>"),
    (re.compile(r"(?<![\w.])[-+]?\d+\.\d*(?:[eE][-+]?\d+)?|(?<![\w.])\d+[eE][-+]?\d+"), "<num>"),
    (re.compile(r"/(?:tmp|var/tmp)/[^\s'\"]+"), "<tmpdir>"),
)


@dataclass(frozen=True)
class FailureGroup:
    """Failed trials sharing one cause.

    Attributes:
        message: the normalised one-line cause (the exception line of a traceback).
        count: how many failed trials have this cause.
        example_trial_id: the lowest trial id with this cause.
        example_traceback: that trial's full error text.
    """

    message: str
    count: int
    example_trial_id: int
    example_traceback: str


def failure_cause(error: str | None) -> str:
    """One normalised line naming why a trial failed.

    For a Python traceback it is the last ``Type: message`` line; otherwise the first non-empty
    line. Addresses, floats and temporary paths are masked so equal causes compare equal.

    Example:
        >>> failure_cause('command exited with status 2: oops\\nmore')
        'command exited with status 2: oops'
        >>> failure_cause(None)
        'unknown error'
    """
    lines = [ln.strip() for ln in (error or "").splitlines() if ln.strip()]
    if not lines:
        return "unknown error"
    line = lines[0]
    if any(ln.startswith("Traceback (most recent call last)") for ln in lines):
        # The exception line is the last one that is not a frame, source line or caret marker.
        tail = [ln for ln in lines if not ln.startswith(("File ", "Traceback ", "^", "~"))]
        line = tail[-1] if tail else lines[-1]
    for pattern, repl in _MASKS:
        line = pattern.sub(repl, line)
    line = " ".join(line.split())
    return line if len(line) <= _MAX_MESSAGE else line[:_MAX_MESSAGE - 3] + "..."


def group_failures(trials: Iterable[Trial]) -> list[FailureGroup]:
    """Group the FAILED trials among ``trials`` by :func:`failure_cause`, most common first.

    Ties are broken by the earliest trial, so the order is stable. Other states are ignored.
    """
    groups: dict[str, list[Trial]] = {}
    for t in trials:
        if t.state is TrialState.FAILED:
            groups.setdefault(failure_cause(t.error), []).append(t)
    out = []
    for message, members in groups.items():
        first = min(members, key=lambda t: t.id)
        out.append(FailureGroup(message, len(members), first.id, first.error or ""))
    out.sort(key=lambda g: (-g.count, g.example_trial_id))
    return out
