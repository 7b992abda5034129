"""The routing figure of ``shadho report``: where the hardware-aware heuristics sent work.

Three panels: trials per (search space, compute class) as a matrix; which classes each
space was assigned to over time (from the space snapshots the master stores at every
reassignment); and the measured speed of each class on each space, the evidence the
assignment is built on.
"""
from __future__ import annotations

import math
from typing import Any

from shadho.formatting import seconds
from shadho.report_data import (ReportData, assignment_timeline, class_of, class_speeds,
                                routing_counts)
from shadho.report_plots import empty, entry, figure, time_scale


def _matrix(ax: Any, names: list[str], classes: list[str], values: list[list[float]],
            labels: list[list[str]], cmap: str, log: bool = False) -> Any:
    from matplotlib.colors import LogNorm, Normalize

    finite = [v for row in values for v in row if not math.isnan(v)]
    if log and finite and min(finite) > 0:
        norm: Any = LogNorm(vmin=min(finite), vmax=max(max(finite), min(finite) * 1.01))
    else:
        norm = Normalize(vmin=0, vmax=max(finite + [1]))
    im = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto")
    for i, row in enumerate(labels):
        for j, text in enumerate(row):
            v = values[i][j]
            dark = not math.isnan(v) and norm(v) > 0.6
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="white" if dark else "black")
    ax.set_xticks(range(len(classes)), classes, fontsize="small")
    ax.set_yticks(range(len(names)), names, fontsize="small")
    ax.set_xlabel("compute class")
    return im


def _timeline(ax: Any, data: ReportData) -> None:
    lines = assignment_timeline(data)
    classes = data.classes
    t0, t1 = data.span
    end_time = max([t1] + [t for rows in lines.values() for t, _ in rows])
    scale, unit = time_scale(end_time - t0)
    ticks, labels = [], []
    row = 0
    for k, s in enumerate(data.spaces):
        snaps = lines.get(s["id"], [])
        for j, cls in enumerate(classes):
            spans = []
            for n, (when, assigned) in enumerate(snaps):
                until = snaps[n + 1][0] if n + 1 < len(snaps) else end_time
                if cls in assigned and until > when:
                    start, width = (when - t0) / scale, (until - when) / scale
                    if spans and abs(spans[-1][0] + spans[-1][1] - start) < 1e-9:
                        start, width = spans[-1][0], spans.pop()[1] + width  # one bar, no seams
                    spans.append((start, width))
            ax.broken_barh(spans, (row - 0.4, 0.8), color=f"C{k % 10}", alpha=0.25 + 0.35 * (j % 2))
            sent = [(t.submit_time - t0) / scale for t in data.trials if t.space_id == s["id"]
                    and class_of(t) == cls and t.submit_time is not None]
            ax.scatter(sent, [row] * len(sent), marker="|", s=60, color="k", lw=1, zorder=3)
            ticks.append(row)
            labels.append(f"{s['name']} @ {cls}")
            row += 1
        row += 0.5
    ax.set_yticks(ticks, labels, fontsize="x-small")
    ax.invert_yaxis()
    ax.set_xlim(0, max((end_time - t0) / scale, 1e-9))
    ax.set_xlabel(f"{unit} since the first trial")
    ax.grid(alpha=0.3, axis="x")


def plot_routing(data: ReportData) -> dict[str, Any]:
    names, classes, counts = routing_counts(data)
    fig = figure(15, max(3.6, 0.9 + 0.28 * max(1, len(names) * max(1, len(classes)))))
    ax_n, ax_t, ax_s = fig.subplots(1, 3, width_ratios=[1, 1.6, 1])
    titles = ["trials per search space x compute class", "assigned classes over time",
              "measured speed (geometric-mean runtime)"]
    if names and classes and any(any(r) for r in counts):
        _matrix(ax_n, names, classes, [[float(v) for v in r] for r in counts],
                [[str(v) for v in r] for r in counts], "Blues")
    else:
        empty(ax_n, "no finished trials yet")
    if data.stats and names and classes:
        _timeline(ax_t, data)
    else:
        empty(ax_t, "no assignment snapshots yet")
    speeds = class_speeds(data)
    if any(n for row in speeds for _, n in row):
        values = [[v if v is not None else math.nan for v, _ in row] for row in speeds]
        labels = [[f"{seconds(v)}\nn={n}" if v is not None else "-" for v, n in row]
                  for row in speeds]
        _matrix(ax_s, names, classes, values, labels, "Oranges", log=True)
    else:
        empty(ax_s, "no completed trials yet")
    for ax, title in zip((ax_n, ax_t, ax_s), titles):
        ax.set_title(title, fontsize="medium")
    caption = ("Where the hardware-aware routing sent work. Left: finished trials per search space "
               "and compute class. Middle: the classes each space was assigned to, from the "
               "snapshot the master stores at every reassignment (a filled bar: that class may run "
               "that space; a black tick: a trial of that space sent to that class). Right: how fast each class ran each space so far (geometric mean of "
               "completed trials' runtimes, n trials; lower is faster): the measurement the "
               "heuristics learn from. With the heuristics off every class runs every space.")
    return entry(fig, "routing.png", "routing", titles, caption)
