"""``shadho status`` as text: the plain and JSON renderers of a :class:`~shadho.snapshot.Snapshot`.

:func:`~shadho.snapshot.collect` reads one consistent snapshot from a (read-only)
results store; :func:`render_plain` writes it as tab-separated sections that
:func:`parse_plain` reads back; :func:`render_json` writes it as one JSON object;
:func:`shadho.status_rich.render_rich` draws it as rich tables.

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
from typing import Any, Mapping

from shadho.formatting import flatten, number, short_labels, space_params
from shadho.snapshot import DEFAULT_CLASS, LIVE_KEYS, Snapshot, collect, empty

__all__ = ["collect", "empty", "render_plain", "render_json", "parse_plain", "Snapshot", "LEGEND",
           "flatten", "short_labels", "space_params", "DEFAULT_CLASS"]

SPACE_COLUMNS = ("space", "done", "failed", "running", "waiting", "best_loss", "trials_per_min",
                 "complexity", "uncertainty", "rank", "classes", "best_params")
CLASS_COLUMNS = ("class", "done", "failed", "running", "waiting", "best_loss", "trials_per_min",
                 "mean_runtime_s")
FAILURE_COLUMNS = ("count", "example_trial", "cause")
HEADER_KEYS = ("experiment", "file", "master", "workers", "in_flight", "running", "queued", "updated",
               "updated_at", "started", "elapsed_s", "trials", "finished", "budget", "eta_s",
               "best_loss", "best_space", "best_params")
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

#: The ``[rungs]`` section of a multi-fidelity search, and what its columns mean.
RUNG_COLUMNS = ("rung", "budget", "configs", "finished", "running", "promoted")
RUNG_LEGEND = {"budget_spent": "the budget (e.g. epochs) of every finished rung run",
               "rung": "rung of the budget (0: the lowest)", "budget": "the budget a rung runs to",
               "configs": "configurations that reached the rung", "finished": "rung runs finished",
               "promoted": "configurations promoted into the rung from the one below"}

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
        return f"{value:.1f}" if seconds else number(value, digits)
    if isinstance(value, (dict, list)):
        return json.dumps(_rounded(value), separators=(", ", ": "), default=str)
    return " ".join(str(value).split())  # no tabs or newlines inside a cell


def _is_seconds(key: str) -> bool:
    return key.endswith("_s") or key == "updated"


def render_json(snap: Snapshot) -> str:
    """The snapshot as one line of JSON (``shadho status --json``)."""
    return json.dumps(snap.to_dict(), default=str)


def render_plain(snap: Snapshot | Mapping[str, Any]) -> str:
    """Tab-separated sections (see the module docstring); ends with a blank line.
    ``snap`` may also be the JSON form (:meth:`Snapshot.to_dict`, ``shadho status --json``)."""
    if not isinstance(snap, Snapshot):
        snap = Snapshot.from_dict(snap)
    lines = []
    for key in HEADER_KEYS:
        if key in LIVE_KEYS and snap.master != "running":
            continue
        lines.append(f"{key}\t{_cell(getattr(snap, key), _is_seconds(key))}")
    lines.append("")
    for section, columns in (("spaces", SPACE_COLUMNS), ("classes", CLASS_COLUMNS),
                             ("failures", FAILURE_COLUMNS)):
        lines.append(f"[{section}]")
        lines.append("\t".join(columns))
        for row in getattr(snap, section):
            lines.append("\t".join(_cell(row.get(c), _is_seconds(c), 3 if c == "trials_per_min" else 6)
                                    for c in columns))
        lines.append("")
    if snap.rungs:  # a multi-fidelity search
        lines.insert(lines.index(""), f"budget_spent\t{_cell(snap.budget_spent)}")  # the header's end
        lines += ["[rungs]", "\t".join(RUNG_COLUMNS)]
        lines += ["\t".join(_cell(row.get(c)) for c in RUNG_COLUMNS) for row in snap.rungs] + [""]
    lines.append("[legend]")
    lines.append("column\tmeaning")
    lines.extend(f"{k}\t{v}" for k, v in {**LEGEND, **(RUNG_LEGEND if snap.rungs else {})}.items())
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
