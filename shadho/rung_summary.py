"""What ``shadho status`` and the report say of a multi-fidelity search's rungs.

One row per rung: its budget, the configurations that reached it, how many of them
finished it, how many are running it, and how many were promoted into it (rather than
started there by their bracket); plus the budget spent over all finished rung runs.
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

__all__ = ["rung_summary", "render_rungs"]


def rung_summary(store: Any, exp: int) -> dict[str, Any] | None:
    """The rungs of ``exp`` (None: not a multi-fidelity search)."""
    records = store.rungs(exp)
    if not records:
        return None
    states = {t.id: t.state for t in store.iter_trials(exp)}
    rows: dict[int, dict[str, Any]] = {}
    spent = 0.0
    for r in records:
        row = rows.setdefault(r.rung, {"rung": r.rung, "budget": r.budget, "configs": 0, "finished": 0,
                                       "running": 0, "promoted": 0})
        state = states.get(r.trial_id)
        row["configs"] += 1
        row["promoted"] += r.config_id != r.trial_id
        if state is not None and state.finished:
            row["finished"] += 1
            spent += r.budget
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
