"""Failures in ``shadho report``: failed trials grouped by cause (:mod:`shadho.failures`),
as a bar chart (split by search space) and an HTML section with one example traceback
per cause."""
from __future__ import annotations

import html
import textwrap
from typing import Any

from shadho.failures import failure_cause, group_failures
from shadho.report_data import ReportData
from shadho.report_plots import empty, entry, figure
from shadho.trial import TrialState

#: Causes drawn in the chart (the page lists them all).
MAX_BARS = 8


def plot_failures(data: ReportData) -> dict[str, Any]:
    groups = group_failures(data.trials)[:MAX_BARS]
    fig = figure(12, max(2.6, 1.0 + 0.45 * len(groups)))
    ax = fig.subplots(1, 1)
    n_failed = sum(t.state == TrialState.FAILED for t in data.trials)
    title = f"failed trials by cause ({n_failed} of {len(data.trials)} trials)"
    if groups:
        labels = [textwrap.shorten(g.message, 70, placeholder="...") for g in groups]
        left = [0] * len(groups)
        causes = [(t.space_id, failure_cause(t.error)) for t in data.trials if t.state == TrialState.FAILED]
        for s in data.spaces:
            counts = [causes.count((s["id"], g.message)) for g in groups]
            if any(counts):
                ax.barh(labels, counts, left=left, color=f"C{data.space_index(s['id']) % 10}",
                        label=s["name"])
                left = [a + b for a, b in zip(left, counts)]
        for y, g in enumerate(groups):
            ax.text(g.count, y, f" {g.count}", va="center", fontsize="small")
        ax.invert_yaxis()
        ax.set_xlabel("failed trials")
        ax.tick_params(axis="y", labelsize="small")
        ax.legend(loc="lower right", fontsize="x-small")
        ax.set_xlim(0, max(g.count for g in groups) * 1.12)
        ax.grid(alpha=0.3, axis="x")
    else:
        empty(ax, "no failed trials")
    ax.set_title(title)
    caption = ("Why trials failed: failed trials grouped by the cause in their error (numbers, "
               "addresses and temporary paths masked so equal causes group together), most common "
               "first, split by search space. The section 'Failures' below shows one example "
               "traceback per cause.")
    return entry(fig, "failures.png", "failures", [title], caption)


def failures_section(data: ReportData) -> str:
    """The page's 'Failures' section: each cause, its count and one example traceback."""
    groups = group_failures(data.trials)
    if not groups:
        return '<h2 id="failures">Failures</h2><p>No trial failed.</p>'
    names = {t.id: t.searchspace for t in data.trials}
    items = []
    for g in groups:
        items.append(
            f"<li><b>{g.count}</b> &times; <code>{html.escape(g.message)}</code>"
            f"<details><summary>example: trial {g.example_trial_id} "
            f"({html.escape(names.get(g.example_trial_id, '?'))})</summary>"
            f"<pre>{html.escape(g.example_traceback)}</pre></details></li>")
    return f'<h2 id="failures">Failures</h2><ul class=failures>{"".join(items)}</ul>'
