"""The figures of ``shadho report`` about progress and cost: best loss against time and
trial number, and runtime per search space and compute class; plus the figure helpers
every report figure uses.

Matplotlib is driven through its object API on the Agg canvas: no pyplot, no global
backend switch, nothing shown on screen, safe in a background thread. Each plot
function returns a manifest entry (file, kind, panels, panel titles, caption, size)
with the PNG bytes under ``png``.
"""
from __future__ import annotations

import io
import math
from typing import Any, Sequence

from shadho.formatting import number
from shadho.report_data import ReportData, class_of
from shadho.trial import completed, ranked

DPI = 100
#: One marker per compute class (cycled), one colour per search space.
MARKERS = "osD^vP<>Xh"


def figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def entry(fig: Any, file: str, kind: str, titles: list[str], caption: str) -> dict[str, Any]:
    """Render ``fig`` to PNG bytes and describe it for the manifest."""
    width, height = fig.canvas.get_width_height()  # fixed size: no bbox_inches='tight'
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return {"file": file, "kind": kind, "panels": len(fig.axes) - getattr(fig, "_shadho_bars", 0),
            "panel_titles": titles, "caption": caption, "width": int(width), "height": int(height),
            "png": buf.getvalue()}


def colorbar(fig: Any, mappable: Any, ax: Any, label: str) -> None:
    """A colour bar that is not counted as a panel."""
    fig.colorbar(mappable, ax=ax, label=label)
    fig._shadho_bars = getattr(fig, "_shadho_bars", 0) + 1


def empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def time_scale(span: float) -> tuple[float, str]:
    if span > 2 * 3600:
        return 3600.0, "hours"
    if span > 300:
        return 60.0, "minutes"
    return 1.0, "seconds"


def positive_log(values: Sequence[float | None]) -> bool:
    """Whether values span enough decades (all positive) to read better on a log axis."""
    pos = [v for v in values if v is not None]
    return bool(pos) and min(pos) > 0 and max(pos) / min(pos) > 100


def space_color(data: ReportData, space_id: str) -> str:
    return f"C{data.space_index(space_id) % 10}"


def class_marker(classes: Sequence[str], cls: str) -> str:
    return MARKERS[classes.index(cls) % len(MARKERS)] if cls in classes else "x"


# ---------------------------------------------------------------- best loss

def _best_steps(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    xs, ys, best = [], [], math.inf
    for x, y in sorted(points):
        if y < best:
            best = y
            xs.append(x)
            ys.append(y)
    return xs, ys


def _legends(ax: Any, data: ReportData, classes: Sequence[str]) -> None:
    from matplotlib.lines import Line2D

    spaces = [Line2D([], [], ls="", marker="o", color=space_color(data, s["id"]), label=s["name"])
              for s in data.spaces]
    marks = [Line2D([], [], ls="", marker=class_marker(classes, c), color="0.3", label=f"class {c}")
             for c in classes] if len(classes) > 1 else []
    extra = [Line2D([], [], color="k", lw=1.5, label="best so far"),
             Line2D([], [], ls="", marker="*", ms=14, color="gold", mec="k", label="best trial")]
    ax.legend(handles=spaces + marks + extra, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize="small", borderaxespad=0)


def _loss_panel(ax: Any, data: ReportData, xs: dict[int, float], xlabel: str, end: float) -> None:
    done = [t for t in completed(data.trials) if t.id in xs]
    classes = data.classes
    groups: dict[tuple[str, str], list[Any]] = {}
    for t in done:  # one scatter per (space, class): fast with thousands of trials
        groups.setdefault((t.space_id, class_of(t)), []).append(t)
    for (sid, cls), members in groups.items():
        ax.scatter([xs[t.id] for t in members], [t.loss for t in members], s=22,
                   color=space_color(data, sid), marker=class_marker(classes, cls), alpha=0.75,
                   linewidths=0.5, zorder=2)
    sx, sy = _best_steps([(xs[t.id], t.loss) for t in done])
    ax.step(sx + [end], sy + sy[-1:], where="post", color="k", lw=1.5, zorder=3)
    best = ranked(done)[0]  # the caller draws this panel only when a trial completed
    ax.scatter([xs[best.id]], [best.loss], marker="*", s=260, color="gold", edgecolors="k", zorder=4)
    ax.annotate(f"best: {number(best.loss)}\n#{best.id} {best.searchspace}", (xs[best.id], best.loss),
                xytext=(8, 12), textcoords="offset points", fontsize="x-small")
    if positive_log([t.loss for t in done]):
        ax.set_yscale("log")
    ax.margins(y=0.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)


def plot_best_loss(data: ReportData) -> dict[str, Any]:
    t0, t1 = data.span
    scale, unit = time_scale(t1 - t0)
    fig = figure(13, 4.3)
    ax_time, ax_num = fig.subplots(1, 2)
    titles = ["loss and best so far vs time", "loss and best so far vs trial number"]
    done = [t for t in completed(data.trials) if t.finish_time is not None]
    if done:
        at = {t.id: (t.finish_time - t0) / scale for t in done}
        _loss_panel(ax_time, data, at, f"{unit} since the first trial", (t1 - t0) / scale)
        for k, run in enumerate(data.runs[1:], 1):
            x = (run["start"] - t0) / scale
            ax_time.axvline(x, color="C3", ls="--", lw=1)
            ax_time.text(x, 0.02, f" resume {k}", color="C3", fontsize="x-small", rotation=90,
                         transform=ax_time.get_xaxis_transform(), va="bottom")
        _loss_panel(ax_num, data, {t.id: float(t.id) for t in done}, "trial number",
                    float(max(t.id for t in data.trials)))
        _legends(ax_num, data, data.classes)
    else:
        empty(ax_time, "no completed trials yet")
        empty(ax_num, "no completed trials yet")
    for ax, title in zip((ax_time, ax_num), titles):
        ax.set_title(title)
    caption = ("Every completed trial's loss (colour: search space; marker: compute class) and "
               "the best loss found so far (black steps), against the time the trial finished "
               "(left; dashed red lines: the search was resumed) and against its trial number "
               "(right). The gold star is the best trial.")
    out = entry(fig, "best_loss.png", "best_loss", titles, caption)
    out["resumes_marked"] = len(data.runs[1:]) if done else 0
    return out


# ---------------------------------------------------------------- runtime

def plot_runtime(data: ReportData) -> dict[str, Any]:
    groups: list[tuple[str, list[float], int]] = []
    counts = []
    for s in data.spaces:
        for cls in data.classes:
            mine = [t for t in data.trials if t.space_id == s["id"] and class_of(t) == cls]
            rt = [t.runtime for t in mine if t.runtime is not None]
            if rt:
                groups.append((f"{s['name']}\n@ {cls}\nn={len(rt)}", rt, data.space_index(s["id"])))
                counts.append({"space": s["name"], "class": cls, "n": len(rt)})
    fig = figure(min(16.0, max(7.0, 1.2 * len(groups) + 1.5)), 4.6)
    ax = fig.subplots(1, 1)
    title = "runtime per search space and compute class"
    if groups:
        parts = ax.boxplot([g[1] for g in groups], showfliers=True, patch_artist=True,
                           medianprops={"color": "k"})
        for box, g in zip(parts["boxes"], groups):
            box.set_facecolor(f"C{g[2] % 10}")
            box.set_alpha(0.5)
        ax.set_xticks(range(1, len(groups) + 1), [g[0] for g in groups], fontsize="x-small",
                      rotation=30 if len(groups) > 12 else 0)
        ax.set_ylabel("runtime (seconds)")
        if positive_log([v for g in groups for v in g[1]]):
            ax.set_yscale("log")
        ax.grid(alpha=0.3, axis="y")
    else:
        empty(ax, "no trial runtimes yet")
    ax.set_title(title)
    caption = ("How long the objective ran (start to finish on the worker), per search space and "
               "compute class; n is the number of trials behind each box (failed trials included "
               "when their runtime is known). Boxes span the middle half, whiskers the rest.")
    out = entry(fig, "runtime.png", "runtime", [title], caption)
    out["boxes"] = counts
    return out
