"""One summary of a search at a moment: the :class:`Snapshot` every renderer draws.

:func:`collect` reads it from a (read-only) results store in one read transaction;
:func:`summarize` builds it from what :meth:`ResultsStore.snapshot` read. The renderers
are :func:`shadho.status.render_plain` (text), :func:`shadho.status.render_json` (JSON),
:func:`shadho.status_rich.render_rich` (a terminal) and :mod:`shadho.report_html` (HTML).

Example:
    >>> snap = empty('r.db')
    >>> snap.master, snap.trials, snap.to_dict()['spaces']
    ('stopped', 0, [])
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from shadho import resume
from shadho.failures import group_failures
from shadho.formatting import iso_time, space_params
from shadho.store_reads import ExperimentData
from shadho.trial import Trial, TrialState, best_of

__all__ = ["Snapshot", "collect", "summarize", "empty", "DEFAULT_CLASS", "LIVE_KEYS"]

#: The name shown for trials run without compute classes.
DEFAULT_CLASS = "default"
#: Figures known only while a master runs (None otherwise).
LIVE_KEYS = ("workers", "in_flight", "running", "queued")


@dataclass(frozen=True)
class Snapshot:
    """A search at one moment: header figures, one row per search space and per compute
    class, and the failures grouped by cause (rows are dicts keyed by column name; see
    :mod:`shadho.status` for what each means). ``to_dict()`` is its JSON form.

    Example:
        >>> Snapshot(file='r.db', trials=3).to_dict()['trials']
        3
    """

    experiment: str | None = None
    file: str = ""
    master: str = "stopped"
    workers: int | None = None
    in_flight: int | None = None
    running: int | None = None
    queued: int | None = None
    updated: float | None = None
    updated_at: str | None = None
    started: str | None = None
    elapsed_s: float | None = None
    trials: int = 0
    finished: int = 0
    budget: int | None = None
    eta_s: float | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    best_loss: float | None = None
    best_space: str | None = None
    best_params: dict[str, Any] | None = None
    spaces: list[dict[str, Any]] = field(default_factory=list)
    classes: list[dict[str, Any]] = field(default_factory=list)
    #: A multi-fidelity search's rungs (:func:`shadho.rung_summary.rung_summary`; empty otherwise).
    rungs: list[dict[str, Any]] = field(default_factory=list)
    budget_spent: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as a JSON-able dict (fields in order)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Snapshot":
        """A snapshot from its JSON form (keys it does not know are ignored).

        Example:
            >>> Snapshot.from_dict({'file': 'r.db', 'trials': 2, 'new_key': 1}).trials
            2
        """
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})


def empty(path: str) -> Snapshot:
    """The snapshot of a results file that holds no experiment yet."""
    return Snapshot(file=path)


def collect(store: Any, exp: int, exp_key: str | None = None, all_spaces: bool = False) -> Snapshot:
    """The snapshot of experiment ``exp``, read in one read transaction (a master committing
    meanwhile is seen entirely or not at all). Only the spaces of the spec the master last
    ran with count, unless ``all_spaces`` (see :mod:`shadho.resume`)."""
    from shadho.rung_summary import rung_summary

    with store.reading():
        data = store.snapshot(exp)
        rungs = rung_summary(store, exp)
    snap = summarize(data, store.path, exp_key, all_spaces)
    if rungs:
        snap = dataclasses.replace(snap, rungs=rungs["rungs"], budget_spent=rungs["budget_spent"])
    return snap


def summarize(data: ExperimentData, path: str, exp_key: str | None = None,
              all_spaces: bool = False) -> Snapshot:
    """The snapshot of what :meth:`ResultsStore.snapshot` read from the file ``path``."""
    spaces, trials, current = data.spaces, data.trials, data.current_space_ids
    if current is not None and not all_spaces:
        spaces, trials = [s for s in spaces if s["id"] in current], [t for t in trials if t.space_id in current]
    spaces = resume.label_spaces(spaces, current)
    now = time.time()
    progress, settings, runs = data.progress, data.settings, data.runs
    running_master = bool(progress.get("running_master"))
    starts = [t.submit_time for t in trials if t.submit_time is not None]
    ends = [t.finish_time for t in trials if t.finish_time is not None]
    start = min(starts) if starts else None
    end = now if running_master else (max(ends) if ends else None)

    dims_of = {s["id"]: list(s.get("dims", {})) for s in spaces}
    overall = _group_row(trials, start, end)
    best = overall["best_trial"]
    beat = progress.get("time")
    beat = beat if isinstance(beat, (int, float)) else None
    finished = overall["done"] + overall["failed"]
    return Snapshot(
        experiment=exp_key or data.key, file=path, master="running" if running_master else "stopped",
        **{k: progress.get(k) if running_master else None for k in LIVE_KEYS},
        updated=None if beat is None else now - beat, updated_at=iso_time(beat),
        started=iso_time(start), elapsed_s=_elapsed(start, end, runs, running_master, now),
        trials=len(trials), finished=finished, budget=settings.get("max_tasks"),
        eta_s=_eta(settings, runs, trials, finished, start, now) if running_master else None,
        failures=[{"count": g.count, "example_trial": g.example_trial_id, "cause": g.message}
                  for g in group_failures(trials)],
        best_loss=best.loss if best else None, best_space=best.searchspace if best else None,
        best_params=space_params(best.params, dims_of.get(best.space_id, [])) if best else None,
        spaces=_space_rows(spaces, trials, data.latest_stats, start, end),
        classes=_class_rows(settings, trials, start, end))


def _rate(n: int, first: float | None, last: float | None) -> float | None:
    if n == 0 or first is None or last is None:
        return None
    return n / max((last - first) / 60.0, 1e-9) if last > first else None


def _group_row(trials: list[Trial], start: float | None, end: float | None) -> dict[str, Any]:
    by_state = {s: 0 for s in TrialState}
    for t in trials:
        by_state[t.state] += 1
    best = best_of(trials)
    finished = by_state[TrialState.COMPLETE] + by_state[TrialState.FAILED]
    return {"done": by_state[TrialState.COMPLETE], "failed": by_state[TrialState.FAILED],
            "running": by_state[TrialState.RUNNING], "waiting": by_state[TrialState.WAITING],
            "best_loss": best.loss if best else None, "best_trial": best,
            "trials_per_min": _rate(finished, start, end)}


def _space_rows(spaces: list[dict[str, Any]], trials: list[Trial], stats: dict[str, Any],
                start: float | None, end: float | None) -> list[dict[str, Any]]:
    dims_of = {s["id"]: list(s.get("dims", {})) for s in spaces}
    names = {s["id"]: s["name"] for s in spaces}
    order = [s["id"] for s in spaces] + sorted({t.space_id for t in trials} - set(names))
    rows = []
    for sid in order:
        row = _group_row([t for t in trials if t.space_id == sid], start, end)
        best = row.pop("best_trial")
        st = stats.get(sid, {})
        rows.append({
            "space": names.get(sid, sid), "space_id": sid, **row,
            "complexity": st.get("complexity"), "uncertainty": st.get("uncertainty"),
            "rank": st.get("rank"),
            "classes": [DEFAULT_CLASS if c is None else c for c in st.get("classes", [])],
            "best_params": space_params(best.params, dims_of.get(sid, [])) if best else None})
    return rows


def _class_rows(settings: dict[str, Any], trials: list[Trial], start: float | None,
                end: float | None) -> list[dict[str, Any]]:
    declared = list(settings.get("compute_classes") or [])
    seen = {t.compute_class or DEFAULT_CLASS for t in trials}
    rows = []
    for cls in declared + sorted(seen - set(declared)):
        group = [t for t in trials if (t.compute_class or DEFAULT_CLASS) == cls]
        row = _group_row(group, start, end)
        row.pop("best_trial")
        runtimes = [t.runtime for t in group if t.runtime is not None]
        rows.append({"class": cls, **row,
                     "mean_runtime_s": sum(runtimes) / len(runtimes) if runtimes else None})
    return rows


def _elapsed(start: float | None, end: float | None, runs: list[dict[str, Any]], running: bool,
             now: float) -> float | None:
    """Seconds from the first trial (or, before one, from the run's start) to now or the last result."""
    if start is None and running and runs:
        start = runs[-1]["start"]
    if start is None:
        return None
    return max(0.0, (now if running else (end or start)) - start)


def _eta(settings: dict[str, Any], runs: list[dict[str, Any]], trials: list[Trial], finished: int,
         start: float | None, now: float) -> float | None:
    """Seconds until the budget is spent at this run's rate so far, capped by its timeout."""
    etas = []
    budget = settings.get("max_tasks")
    since = runs[-1]["start"] if runs else start  # a resumed run's rate, not the gap before it
    if budget is not None and since is not None and now > since:
        n = sum(1 for t in trials if t.state.finished and (t.finish_time or 0) >= since)
        if n:
            etas.append(max(0.0, budget - finished) * (now - since) / n)
    timeout = settings.get("timeout")
    if isinstance(timeout, (int, float)) and runs:
        etas.append(max(0.0, runs[-1]["start"] + timeout - now))
    return min(etas) if etas else None
