"""What ``shadho report`` reads from a results file, and the tables it derives.

:func:`load` reads everything in one read transaction (a master committing meanwhile
is seen entirely or not at all) into a :class:`ReportData`; the other functions are
pure computations over it, shared by the plots and the HTML page.

Example:
    >>> data = ReportData.empty('r.db')
    >>> routing_counts(data)
    ([], [], [])
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from shadho.formatting import space_params
from shadho.snapshot import DEFAULT_CLASS, Snapshot, empty, summarize
from shadho.trial import Trial, completed, ranked


@dataclass
class ReportData:
    """One consistent read of an experiment: ``snap`` is its :class:`~shadho.snapshot.Snapshot`;
    ``spaces`` and ``trials`` hold every space, also those no longer in the spec; ``stats`` the
    space snapshots over time; ``runs`` the master runs.

    Example:
        >>> ReportData.empty('r.db').classes
        []
    """

    snap: Snapshot
    settings: dict[str, Any] = field(default_factory=dict)
    spaces: list[dict[str, Any]] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def empty(cls, path: str) -> "ReportData":
        return cls(snap=empty(path))

    @property
    def classes(self) -> list[str]:
        return [r["class"] for r in self.snap.classes]

    @property
    def span(self) -> tuple[float, float]:
        """First and last event time (submit, start or finish) of any trial."""
        times = [v for t in self.trials for v in (t.submit_time, t.start_time, t.finish_time)
                 if v is not None]
        return (min(times), max(times)) if times else (0.0, 1.0)

    def space_name(self, space_id: str) -> str:
        return next((s["name"] for s in self.spaces if s["id"] == space_id), space_id)

    def space_index(self, space_id: str) -> int:
        return next((i for i, s in enumerate(self.spaces) if s["id"] == space_id), 0)


def load(store: Any, exp: int | None) -> ReportData:
    """Read experiment ``exp`` of ``store`` (None: a file without experiments)."""
    if exp is None:
        return ReportData.empty(store.path)
    from shadho.rung_summary import rung_summary

    with store.reading():  # one read transaction for everything
        read = store.snapshot(exp, history=True)
        rungs = rung_summary(store, exp)
    snap = summarize(read, store.path)
    if rungs:
        snap = dataclasses.replace(snap, rungs=rungs["rungs"], budget_spent=rungs["budget_spent"])
    data = ReportData(snap=snap, settings=read.settings, spaces=list(read.spaces),
                      trials=read.trials, stats=read.stats, runs=read.runs)
    known = {s["id"] for s in data.spaces}
    for sid in sorted({t.space_id for t in data.trials} - known):  # spaces no longer registered
        data.spaces.append({"id": sid, "name": sid, "dims": {}})
    return data


def class_of(t: Trial) -> str:
    return t.compute_class or DEFAULT_CLASS


def top_trials(data: ReportData, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` best completed trials: id, loss, space, parameters, class, worker, runtime."""
    dims = {s["id"]: list(s.get("dims", {})) for s in data.spaces}
    best = ranked(data.trials)[:n]
    return [{"id": t.id, "loss": t.loss, "space": t.searchspace,
             "params": space_params(t.params, dims.get(t.space_id, [])), "class": class_of(t),
             "worker": t.worker, "runtime_s": t.runtime} for t in best]


def routing_counts(data: ReportData) -> tuple[list[str], list[str], list[list[int]]]:
    """Space names, class names and the trials run per (space, class), failures included."""
    names = [s["name"] for s in data.spaces]
    classes = data.classes
    counts = [[0] * len(classes) for _ in names]
    col = {c: j for j, c in enumerate(classes)}
    for t in data.trials:
        if t.state.finished and class_of(t) in col:
            counts[data.space_index(t.space_id)][col[class_of(t)]] += 1
    return names, classes, counts


def class_speeds(data: ReportData) -> list[list[tuple[float | None, int]]]:
    """Per (space, class): the geometric-mean runtime of its completed trials and their count.

    This is the measurement the heuristics' runtime model converges to (see
    :mod:`shadho.heuristics.strength`); None where a pair has no completed trial.
    """
    classes = data.classes
    sums = [[(0.0, 0) for _ in classes] for _ in data.spaces]
    col = {c: j for j, c in enumerate(classes)}
    for t in completed(data.trials):
        rt = t.runtime
        if rt is None or class_of(t) not in col:
            continue
        i, j = data.space_index(t.space_id), col[class_of(t)]
        total, n = sums[i][j]
        sums[i][j] = (total + math.log(max(rt, 1e-6)), n + 1)
    return [[(math.exp(total / n) if n else None, n) for total, n in row] for row in sums]


def assignment_timeline(data: ReportData) -> dict[str, list[tuple[float, list[str]]]]:
    """Per space id: ``(time, assigned classes)`` from each stored snapshot, oldest first."""
    out: dict[str, list[tuple[float, list[str]]]] = {}
    for row in sorted(data.stats, key=lambda r: r["time"]):
        classes = [DEFAULT_CLASS if c is None else c for c in row.get("classes", [])]
        out.setdefault(row["space_id"], []).append((row["time"], classes))
    return out


def settings_rows(data: ReportData) -> list[tuple[str, str]]:
    """The run's settings as (label, text) pairs for the report's header."""
    s = data.settings
    if not s:
        return []

    def onoff(key: str) -> str:
        return "-" if key not in s else ("on" if s[key] else "off")

    timeout = s.get("timeout")
    runs = data.runs
    return [
        ("sampler", str(s.get("method", "-"))),
        ("budget", f"{s['max_tasks']} trials" if s.get("max_tasks") is not None else "none"),
        ("timeout", f"{timeout:g} s" if isinstance(timeout, (int, float)) else "none"),
        ("compute classes", ", ".join(s.get("compute_classes") or []) or "none (one default class)"),
        ("heuristics", f"complexity {onoff('use_complexity')}, uncertainty {onoff('use_uncertainty')}"),
        ("seed", str(s.get("seed", "-"))),
        ("master runs", f"{len(runs)} ({len(runs) - 1} resumes)" if runs else "not recorded"),
    ]
