"""The plan section of ``shadho report`` (one of its ``SECTIONS``): predicted vs observed throughput.

The search checks its own planner: :func:`shadho.planner.plan_trials` learns from
the trials finished in the first half of the search's time and plans the second
half on the pool the search ran on (each class's peak number of trials at once);
the section's table puts the predicted successful trials per hour of each compute
class and search space beside what the second half did. A search too short to
split (fewer than ``MIN_TRIALS`` finished trials in either half) gets a sentence
saying so instead.

Example:
    >>> 'nothing to plan from' in plan_section_html(None, [], {})
    True
"""
from __future__ import annotations

import html
from typing import Any

from shadho.errors import ShadhoError
from shadho.formatting import number
from shadho.trial import TrialState

__all__ = ["plan_section", "plan_section_html", "self_check"]

MIN_TRIALS = 10
_SAMPLES = 3


def self_check(rows: list[dict[str, Any]], trials: list[Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Plan the second half of the search from its first half; compare with what it did.

    Returns ``{'hours', 'pool', 'rows': [(kind, name, observed/h, Range)], 'notes'}``.

    Raises:
        PlanError: too few finished trials to split the search in two.
    """
    from shadho.plan_model import DEFAULT_CLASS, PlanError
    from shadho.planner import plan_trials

    done = [t for t in trials if t.state.finished and t.start_time is not None and t.finish_time is not None]
    if len(done) < 2 * MIN_TRIALS:
        raise PlanError(f"{len(done)} finished trials: too few to check a plan (needs {2 * MIN_TRIALS})")
    t0, t1 = min(t.start_time for t in done), max(t.finish_time for t in done)
    half = (t0 + t1) / 2
    first = [t for t in done if t.finish_time <= half]
    second = [t for t in done if t.finish_time > half and t.state == TrialState.COMPLETE]
    if len(first) < MIN_TRIALS or len(second) < MIN_TRIALS:
        raise PlanError("too few trials in one half of the search to check a plan")
    hours = (t1 - half) / 3600.0
    p = plan_trials(rows, first, settings, pool=dict(_observed_pool(first)), hours=hours,
                    samples=_SAMPLES, max_sim_trials=1000)
    pred = p.prediction
    out = []
    for c, r in pred.per_class.items():
        n = sum((t.compute_class or DEFAULT_CLASS) == c for t in second)
        out.append(("class", c, n / hours, r))
    names = {s["id"]: s["name"] for s in rows}
    for s, r in pred.per_space.items():
        n = sum(names.get(t.space_id) == s for t in second)
        out.append(("space", s, n / hours, r))
    out.append(("total", "all", len(second) / hours, pred.throughput))
    return {"hours": hours, "pool": p.pool, "rows": out, "notes": pred.notes}


def _observed_pool(trials: list[Any]) -> dict[str, int]:
    from shadho.plan_model import DEFAULT_CLASS
    from shadho.plan_timing import class_timing

    by: dict[str, list[Any]] = {}
    for t in trials:
        by.setdefault(t.compute_class or DEFAULT_CLASS, []).append(t)
    return {c: max(1, int(class_timing(ts)["slots"])) for c, ts in by.items()}


def plan_section_html(rows: list[dict[str, Any]] | None, trials: list[Any],
                      settings: dict[str, Any]) -> str:
    """The section as HTML (a heading, a sentence and a table, or a sentence why not)."""
    head = "<h2>Plan check: predicted vs observed throughput</h2>\n"
    if not rows:
        return head + "<p>No experiment yet: nothing to plan from.</p>\n"
    try:
        chk = self_check(rows, trials, settings)
    except (ShadhoError, ValueError) as exc:
        return head + f"<p>No plan check: {html.escape(str(exc))}.</p>\n"
    from shadho.plan_inputs import format_pool

    body = "".join(
        f"<tr><td>{kind}</td><td>{html.escape(name)}</td><td>{number(float(obs))}</td>"
        f"<td>{number(float(r.mid))}</td><td>{number(float(r.low))}-{number(float(r.high))}</td>"
        f"<td>{number(r.mid / obs if obs else None, 3)}</td>"
        f"<td>{'yes' if r.assumed else ''}</td></tr>"
        for kind, name, obs, r in chk["rows"])
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in chk["notes"])
    return (head + f"<p>A plan made from the first half of this search (the trials finished by then) "
            f"for the pool it ran on ({html.escape(format_pool(chk['pool']))}), against what the "
            f"second half ({number(chk['hours'] * 60, 3)} minutes) did: successful trials per hour.</p>\n"
            "<table><tr><th>per</th><th>name</th><th>observed</th><th>predicted</th><th>range</th>"
            f"<th>ratio</th><th>assumed</th></tr>\n{body}</table>\n"
            + (f"<ul>{notes}</ul>\n" if notes else ""))


def plan_section(data: Any) -> str:
    """The section of ``shadho report`` (one of :data:`shadho.report.SECTIONS`), from its
    :class:`~shadho.report_data.ReportData`."""
    return plan_section_html(data.spaces, data.trials, data.settings)
