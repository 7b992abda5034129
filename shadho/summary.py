"""What a run says about its results: the resume line at start, the summary at the end (with the
most common failure and one full traceback when most trials fail), and the original SHADHO's
``to_dataframes()`` view.

Pure functions over trial records; the driver prints what they return on stderr.

Example:
    >>> from shadho.trial import Trial, TrialState as S
    >>> ts = [Trial(1, 'rbf', 'a', S.COMPLETE, {'C': 1.0}, loss=0.5),
    ...       Trial(2, 'rbf', 'a', S.FAILED, {'C': 2.0}, error='ValueError: bad')]
    >>> print(resume_message('svm', ts, max_tasks=2, results='r.db'))
    resuming svm: 2 recorded (1 failed, 1 complete); budget 2 reached; re-run the 1 failed trial(s) with Shadho(..., retry_failed=True) or `shadho retry r.db svm`
"""
from __future__ import annotations

import sys
import threading
from collections import Counter
from typing import Any, Sequence

from shadho.failures import group_failures
from shadho.formatting import number
from shadho.trial import Trial, TrialState, best_of

__all__ = ["resume_message", "end_summary", "failure_report", "retry_candidates", "to_dataframes",
           "say_resume", "say_end", "exit_after_interrupt"]


def retry_candidates(trials: Sequence[Trial]) -> list[Trial]:
    """FAILED trials whose parameters were not evaluated again by a later trial.

    A retry is a new trial with the same search space and working vector, so the failed
    record itself never changes.
    """
    later: dict[tuple[str, tuple[float, ...]], int] = {}
    for t in trials:
        key = (t.space_id, tuple(t.x))
        later[key] = max(later.get(key, 0), t.id)
    return [t for t in trials if t.state is TrialState.FAILED and later[(t.space_id, tuple(t.x))] == t.id]


def _counts(trials: Sequence[Trial]) -> Counter[str]:
    return Counter(t.state.value for t in trials)


def resume_message(exp_key: str, trials: Sequence[Trial], max_tasks: int | None, results: str,
                   retrying: int = 0) -> str | None:
    """One line saying what a resumed experiment found, or None for a new experiment."""
    if not trials:
        return None
    c = _counts(trials)
    parts = [f"{c['FAILED']} failed", f"{c['COMPLETE']} complete"]
    unfinished = c["WAITING"] + c["RUNNING"]
    if unfinished:
        parts.append(f"{unfinished} unfinished (re-run now)")
    msg = f"resuming {exp_key}: {len(trials)} recorded ({', '.join(parts)})"
    if max_tasks is not None:
        msg += f"; budget {max_tasks} reached" if len(trials) >= max_tasks else \
            f"; {max_tasks - len(trials)} of budget {max_tasks} left"
    if retrying:
        msg += f"; re-running {retrying} failed trial(s) (retry_failed=True)"
    else:
        n = len(retry_candidates(trials))
        if n:
            msg += (f"; re-run the {n} failed trial(s) with Shadho(..., retry_failed=True) "
                    f"or `shadho retry {results} {exp_key}`")
    return msg


def end_summary(exp_key: str, trials: Sequence[Trial], elapsed: float | None = None) -> str:
    """The printed summary at the end of ``run()``: counts by state, best loss, its search space
    and parameters."""
    c = _counts(trials)
    took = f" in {elapsed:.0f} s" if elapsed is not None else ""
    lines = [f"shadho: {exp_key}: {len(trials)} trials{took} ({c['COMPLETE']} complete, {c['FAILED']} failed, "
             f"{c['WAITING'] + c['RUNNING']} unfinished)"]
    best = best_of(trials)
    if best is not None:
        lines.append(f"  best loss {number(best.loss, 6)} (trial {best.id}, search space {best.searchspace!r}): "
                     f"{best.params}")
    else:
        lines.append("  no trial completed: see the errors below or `shadho status`")
    return "\n".join(lines)


def failure_report(trials: Sequence[Trial]) -> str | None:
    """When most finished trials failed: the most common cause with one full traceback."""
    c = _counts(trials)
    if not c["FAILED"] or c["FAILED"] <= c["COMPLETE"]:
        return None
    groups = group_failures(trials)
    top = groups[0]
    lines = [f"shadho: {c['FAILED']} of {c['FAILED'] + c['COMPLETE']} finished trials failed; most common "
             f"error ({top.count} trial(s)): {top.message}",
             f"--- error of trial {top.example_trial_id} ---", top.example_traceback.rstrip(), "---"]
    for g in groups[1:4]:
        lines.append(f"  also {g.count} x {g.message} (e.g. trial {g.example_trial_id})")
    if len(groups) > 4:
        lines.append(f"  and {len(groups) - 4} more causes (`shadho status` lists them)")
    return "\n".join(lines)


def to_dataframes(trials: Sequence[Trial], space_names: Sequence[str]) -> list[Any]:
    """One pandas DataFrame per search space (in spec order), one row per trial, as the
    original's ``to_dataframes()``; columns ``params.*`` and ``results.*`` are flattened."""
    try:
        import pandas as pd
    except ImportError:
        from shadho.errors import MissingDependencyError

        raise MissingDependencyError("to_dataframes needs pandas: pip install pandas") from None
    from shadho.export import trial_row

    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in space_names}
    for t in trials:
        rows.setdefault(t.searchspace, []).append(trial_row(t))
    return [pd.DataFrame(r).dropna(axis=1, how="all") if r else pd.DataFrame() for r in rows.values()]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def say_resume(opt: Any, store: Any, exp: int) -> list[int]:
    """At open: re-queue failed trials if ``retry_failed`` asks, and say what was found.

    Returns the ids of the new (retry) trials.
    """
    from shadho.retry import requeue_failed

    prior = store.trials(exp)
    retried = requeue_failed(store, exp) if prior and opt.options.get("retry_failed") else []
    msg = resume_message(opt.exp_key, prior, opt.max_tasks, opt.backend, len(retried))
    if msg:
        _say(f"shadho: {msg}")
    return retried


def say_end(exp_key: str, trials: Sequence[Trial], elapsed: float, quiet: bool) -> None:
    """At the end of ``run()``: the summary (unless ``quiet``) and, when most trials failed,
    the most common error with one traceback (always: a failing search must not be silent)."""
    if not quiet:
        _say(end_summary(exp_key, trials, elapsed))
    report = failure_report(trials)
    if report:
        _say(report)


def exit_after_interrupt() -> None:
    """After Ctrl-C and the clean stop: exit with status 130 from a script; in an interactive
    session or another thread, raise KeyboardInterrupt again instead."""
    interactive = hasattr(sys, "ps1") or bool(sys.flags.interactive)
    if interactive or threading.current_thread() is not threading.main_thread():
        raise KeyboardInterrupt
    _say("shadho: stopped by Ctrl-C; run the script again to resume")
    raise SystemExit(130)
