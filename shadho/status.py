"""``shadho status``: a snapshot of a search, as rich tables or parseable text.

:func:`collect` reads one consistent snapshot from a (read-only) results store;
:func:`render_plain` writes it as tab-separated sections that :func:`parse_plain`
reads back; :func:`render_rich` draws it as rich tables.

The plain format::

    experiment<TAB>svm
    file<TAB>results.db
    master<TAB>running            (or: stopped)
    workers<TAB>2                 (only while the master runs)
    in_flight<TAB>3               (only while the master runs)
    running<TAB>2                 (tasks running on workers; only while the master runs)
    queued<TAB>1                  (tasks waiting for a worker; only while the master runs)
    updated<TAB>1.5               (seconds since the master last wrote its progress)
    updated_at<TAB>2026-01-02T03:04:05.000+00:00
    started<TAB>2026-01-02T03:00:00.000+00:00   (the first trial's submission)
    elapsed_s<TAB>245.0           (seconds from the first trial to now, or to the last result)
    trials<TAB>30                 (all trials)
    finished<TAB>28               (complete + failed)
    budget<TAB>60                 (max_tasks; - without one)
    eta_s<TAB>262.5               (seconds left at the current rate, capped by the timeout)
    best_loss<TAB>0.0123          (-: none yet)
    best_space<TAB>svm/rbf
    best_params<TAB>{"C": 1.0}
    <blank line>
    [spaces]
    space<TAB>done<TAB>failed<TAB>...      (header row, then one row per space)
    <blank line>
    [classes]
    class<TAB>done<TAB>...
    <blank line>
    [failures]
    count<TAB>example_trial<TAB>cause      (failed trials grouped by cause, most common first)
    <blank line>
    [legend]
    column<TAB>meaning                     (what each column means, with its unit)

Missing values are ``-``; numbers are rounded (6 significant digits, seconds to 0.1 s);
times are ISO 8601 (UTC); parameters are JSON objects keyed by the hyperparameter's
path inside its space. Every block ends with a blank line.

Example:
    >>> snap = empty('r.db')
    >>> parse_plain(render_plain(snap))['spaces']
    []
"""
from __future__ import annotations

import json
import math
import time
from typing import Any, Iterable

from shadho import resume
from shadho.export import iso_time
from shadho.failures import group_failures
from shadho.trial import Trial, TrialState

SPACE_COLUMNS = ("space", "done", "failed", "running", "waiting", "best_loss", "trials_per_min",
                 "complexity", "uncertainty", "rank", "classes", "best_params")
CLASS_COLUMNS = ("class", "done", "failed", "running", "waiting", "best_loss", "trials_per_min",
                 "mean_runtime_s")
FAILURE_COLUMNS = ("count", "example_trial", "cause")
HEADER_KEYS = ("experiment", "file", "master", "workers", "in_flight", "running", "queued", "updated",
               "updated_at", "started", "elapsed_s", "trials", "finished", "budget", "eta_s",
               "best_loss", "best_space", "best_params")
#: Keys shown only while a master runs.
LIVE_KEYS = ("workers", "in_flight", "running", "queued")
#: What every column and header key means (``[legend]`` in plain text, a legend in rich).
LEGEND = {
    "done": "trials completed with a loss", "failed": "trials that failed (see [failures])",
    "running": "trials handed to the workers, not finished (running or queued there)",
    "waiting": "trials not yet handed out",
    "best_loss": "lowest loss so far", "trials_per_min": "finished trials per minute",
    "complexity": "search-space complexity (heuristic; higher: harder to search)",
    "uncertainty": "how unsure the sampler still is about the space (heuristic, 0-1)",
    "rank": "order in which the heuristics favour the space (1: most)",
    "classes": "compute classes the space is assigned to",
    "mean_runtime_s": "mean objective runtime in seconds",
    "elapsed_s": "seconds since the first trial", "eta_s": "estimated seconds until the budget or timeout ends",
    "updated": "seconds since the master last reported", "queued": "tasks waiting for a worker",
}

#: The name shown for trials run without compute classes.
DEFAULT_CLASS = "default"


# ---------------------------------------------------------------- collecting

def flatten(params: Any, prefix: str = "") -> dict[str, Any]:
    """Nested params as ``{'dotted.path': value}``.

    Example:
        >>> flatten({'svm': {'rbf': {'C': 1.0, 'kernel': 'rbf'}}})
        {'svm.rbf.C': 1.0, 'svm.rbf.kernel': 'rbf'}
    """
    if isinstance(params, dict):
        out: dict[str, Any] = {}
        for k, v in params.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: params}


def short_labels(labels: Iterable[str]) -> dict[str, str]:
    """Dotted labels without the prefix they share (``svm.rbf.C`` -> ``C``).

    Example:
        >>> short_labels(['svm.rbf.C', 'svm.rbf.gamma'])
        {'svm.rbf.C': 'C', 'svm.rbf.gamma': 'gamma'}
        >>> short_labels(['a.x', 'b.x'])
        {'a.x': 'a.x', 'b.x': 'b.x'}
    """
    labels = list(labels)
    parts = [lab.split(".") for lab in labels]
    common = 0
    if parts:
        shortest = min(len(p) for p in parts)
        while common < shortest - 1 and len({p[common] for p in parts}) == 1:
            common += 1
    return {lab: ".".join(p[common:]) for lab, p in zip(labels, parts)}


def space_params(params: dict[str, Any], dims: Iterable[str]) -> dict[str, Any]:
    """The sampled hyperparameters of a trial, by short name (all params when no dims)."""
    flat = flatten(params)
    dims = [d for d in dims if d in flat]
    if not dims:
        return flat
    names = short_labels(dims)
    return {names[d]: flat[d] for d in dims}


def _rate(n: int, first: float | None, last: float | None) -> float | None:
    if n == 0 or first is None or last is None:
        return None
    return n / max((last - first) / 60.0, 1e-9) if last > first else None


def _group_row(trials: list[Trial], start: float | None, end: float | None) -> dict[str, Any]:
    by_state = {s: 0 for s in TrialState}
    for t in trials:
        by_state[t.state] += 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.loss is not None]
    best = min(complete, key=lambda t: (t.loss, t.id)) if complete else None
    finished = by_state[TrialState.COMPLETE] + by_state[TrialState.FAILED]
    return {"done": by_state[TrialState.COMPLETE], "failed": by_state[TrialState.FAILED],
            "running": by_state[TrialState.RUNNING], "waiting": by_state[TrialState.WAITING],
            "best_loss": best.loss if best else None, "best_trial": best,
            "trials_per_min": _rate(finished, start, end)}


def collect(store: Any, exp: int, exp_key: str | None = None, all_spaces: bool = False) -> dict[str, Any]:
    """One consistent snapshot of experiment ``exp`` (a JSON-able dict).

    All reads happen in one read transaction, so a master committing meanwhile is
    seen entirely or not at all. Only the spaces of the spec the master last ran with
    count, unless ``all_spaces`` (see :mod:`shadho.resume`).
    """
    with store.reading():
        spaces = store.spaces(exp)
        trials = store.trials(exp)
        stats = {r["space_id"]: r for r in store.space_stats(exp, latest=True)}
        progress = store.progress(exp)
        key = exp_key or next((k for k in store.experiments() if store.experiment_id(k) == exp), "?")
        settings = store.settings(exp)
        runs = store.runs(exp)
        current = resume.current_space_ids(store, exp)
    if current is not None and not all_spaces:
        spaces, trials = [s for s in spaces if s["id"] in current], [t for t in trials if t.space_id in current]
    spaces = resume.label_spaces(spaces, current)
    return _snapshot(store.path, key, settings, spaces, trials, stats, progress, runs)


def _snapshot(path: str, key: str, settings: dict[str, Any], spaces: list[dict[str, Any]],
              trials: list[Trial], stats: dict[str, Any], progress: dict[str, Any],
              runs: list[dict[str, Any]]) -> dict[str, Any]:
    now = time.time()
    running_master = bool(progress.get("running_master"))
    starts = [t.submit_time for t in trials if t.submit_time is not None]
    ends = [t.finish_time for t in trials if t.finish_time is not None]
    start = min(starts) if starts else None
    end = now if running_master else (max(ends) if ends else None)

    dims_of = {s["id"]: list(s.get("dims", {})) for s in spaces}
    space_rows = _space_rows(spaces, trials, stats, start, end)
    class_rows = _class_rows(settings, trials, start, end)
    overall = _group_row(trials, start, end)
    best = overall["best_trial"]
    beat = progress.get("time")
    live = {k: progress.get(k) if running_master else None for k in LIVE_KEYS}
    finished = overall["done"] + overall["failed"]
    return {
        "experiment": key, "file": path,
        "master": "running" if running_master else "stopped", **live,
        "updated": (now - beat) if isinstance(beat, (int, float)) else None,
        "updated_at": iso_time(beat) if isinstance(beat, (int, float)) else None,
        "started": iso_time(start), "elapsed_s": _elapsed(start, end, runs, running_master, now),
        "trials": len(trials), "finished": finished, "budget": settings.get("max_tasks"),
        "eta_s": _eta(settings, runs, trials, finished, start, now) if running_master else None,
        "failures": [{"count": g.count, "example_trial": g.example_trial_id, "cause": g.message}
                     for g in group_failures(trials)],
        "best_loss": best.loss if best else None,
        "best_space": best.searchspace if best else None,
        "best_params": space_params(best.params, dims_of.get(best.space_id, [])) if best else None,
        "spaces": space_rows, "classes": class_rows,
    }


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


def empty(path: str) -> dict[str, Any]:
    """The snapshot of a results file that holds no experiment yet."""
    out: dict[str, Any] = {k: None for k in HEADER_KEYS}
    out.update(file=path, master="stopped", trials=0, finished=0, spaces=[], classes=[], failures=[])
    return out


# ---------------------------------------------------------------- plain text

def _rounded(value: Any) -> Any:
    """Floats inside parameters to 6 significant digits."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _cell(value: Any, seconds: bool = False, digits: int = 6) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.1f}" if seconds else f"{value:.{digits}g}"
    if isinstance(value, (dict, list)):
        return json.dumps(_rounded(value), separators=(", ", ": "), default=str)
    return " ".join(str(value).split())  # no tabs or newlines inside a cell


def _is_seconds(key: str) -> bool:
    return key.endswith("_s") or key == "updated"


def render_plain(snap: dict[str, Any]) -> str:
    """Tab-separated sections (see the module docstring); ends with a blank line."""
    lines = []
    for key in HEADER_KEYS:
        if key in LIVE_KEYS and snap.get("master") != "running":
            continue
        lines.append(f"{key}\t{_cell(snap.get(key), _is_seconds(key))}")
    lines.append("")
    for section, columns in (("spaces", SPACE_COLUMNS), ("classes", CLASS_COLUMNS),
                             ("failures", FAILURE_COLUMNS)):
        lines.append(f"[{section}]")
        lines.append("\t".join(columns))
        for row in snap.get(section, []):
            lines.append("\t".join(_cell(row.get(c), _is_seconds(c), 3 if c == "trials_per_min" else 6)
                                    for c in columns))
        lines.append("")
    lines.append("[legend]")
    lines.append("column\tmeaning")
    lines.extend(f"{k}\t{v}" for k, v in LEGEND.items())
    lines.append("")
    return "\n".join(lines) + "\n"


def _parse_cell(text: str) -> Any:
    if text == "-":
        return None
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_plain(text: str) -> dict[str, Any]:
    """Read :func:`render_plain`'s output (the last block when ``--watch`` printed several).

    Example:
        >>> parse_plain('experiment\\tx\\n\\n[spaces]\\nspace\\tdone\\na/b\\t3\\n\\n')
        {'experiment': 'x', 'spaces': [{'space': 'a/b', 'done': 3}]}
    """
    blocks = [b for b in text.split("\nexperiment\t") if b.strip()]
    if len(blocks) > 1:
        text = "experiment\t" + blocks[-1]
    out: dict[str, Any] = {}
    section: str | None = None
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            section, header = None, None
            continue
        if line.startswith("[") and line.endswith("]"):
            section, header = line[1:-1], None
            out[section] = []
            continue
        cells = line.split("\t")
        if section is None:
            out[cells[0]] = _parse_cell(cells[1]) if len(cells) > 1 else None
        elif header is None:
            header = cells
        else:
            out[section].append({h: (c if h in ("space", "class", "cause", "meaning")
                                     else _parse_cell(c))
                                 for h, c in zip(header, cells)})
    return out
