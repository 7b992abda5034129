"""What ``shadho status`` and the report say of a multi-fidelity search's rungs.

One row per rung: its budget, the configurations that reached it, how many of them
finished it, how many are running it, how many were promoted into it (rather than
started there by their bracket) and its finished runs per compute class (where
hardware-aware rungs sent them); plus the budget spent over all finished rung runs.
Read from the store's trial and rung rows alone, so a reader needs no master.

Example:
    >>> import tempfile, os
    >>> from shadho.store import ResultsStore, TrialUpdate
    >>> from shadho.trial import TrialState
    >>> with ResultsStore(os.path.join(tempfile.mkdtemp(), 'r.db')) as store:
    ...     exp = store.open_experiment('mf')
    ...     a = store.add_rung_trial(exp, 's', {'x': 1}, [1.0], None, rung=0, budget=1)
    ...     b = store.add_rung_trial(exp, 's', {'x': 1}, [1.0], None, config=a, rung=1, budget=3)
    ...     _ = store.finish_trials([TrialUpdate(a, TrialState.COMPLETE, loss=0.5)])
    ...     s = rung_summary(store, exp)
    >>> [(r['rung'], r['budget'], r['configs'], r['finished'], r['promoted']) for r in s['rungs']]
    [(0, 1.0, 1, 1, 0), (1, 3.0, 1, 0, 1)]
    >>> s['budget_spent'], render_rungs(s).splitlines()[0]
    (1.0, 'rung  budget  configs  finished  running  promoted')
"""
from __future__ import annotations

from typing import Any

from shadho.trial import TrialState

__all__ = ["rung_summary", "render_rungs", "classes_text"]


def rung_summary(store: Any, exp: int) -> dict[str, Any] | None:
    """The rungs of ``exp`` (None: not a multi-fidelity search)."""
    records = store.rungs(exp)
    if not records:
        return None
    trials = {t.id: t for t in store.iter_trials(exp)}
    rows: dict[int, dict[str, Any]] = {}
    spent = 0.0
    for r in records:
        row = rows.setdefault(r.rung, {"rung": r.rung, "budget": r.budget, "configs": 0, "finished": 0,
                                       "running": 0, "promoted": 0, "classes": {}})
        t = trials.get(r.trial_id)
        state = t.state if t is not None else None
        row["configs"] += 1
        row["promoted"] += r.config_id != r.trial_id
        if state is not None and state.finished:
            row["finished"] += 1
            spent += r.budget
            key = t.compute_class or "-"  # type: ignore[union-attr]
            row["classes"][key] = row["classes"].get(key, 0) + 1
        elif state == TrialState.RUNNING:
            row["running"] += 1
    return {"rungs": [rows[k] for k in sorted(rows)], "budget_spent": spent}


def render_rungs(summary: dict[str, Any]) -> str:
    """The summary as a small plain-text table."""
    keys = ("rung", "budget", "configs", "finished", "running", "promoted")
    lines = ["  ".join(keys)]
    for row in summary["rungs"]:
        lines.append("  ".join(f"{row[k]:g}".rjust(len(k)) for k in keys))
    lines.append(f"budget spent: {summary['budget_spent']:g}")
    return "\n".join(lines)


def classes_text(row: dict[str, Any]) -> str:
    """A rung row's finished runs per class, most first: ``'cpu 30, gpu 2'`` (``'-'``: none).

    Example:
        >>> classes_text({'classes': {'gpu': 2, 'cpu': 30}}), classes_text({'classes': {}})
        ('cpu 30, gpu 2', '-')
    """
    items = sorted((row.get("classes") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {n}" for k, n in items) or "-"
