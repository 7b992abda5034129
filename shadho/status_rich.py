"""``shadho status`` on a terminal: rich tables, a progress line, failures and a legend.

Example:
    >>> from shadho.status import empty
    >>> progress_line({**empty('r.db'), 'finished': 3, 'budget': 10, 'elapsed_s': 75.0})
    '3/10 trials done (30%), elapsed 1 min 15 s'
"""
from __future__ import annotations

import math
from typing import Any

_TABLE = {"title_justify": "left", "padding": (0, 1), "pad_edge": False, "show_edge": False,
          "collapse_padding": True}


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "-"
    return str(value)


def fmt_rate(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def fmt_duration(seconds: float | None) -> str:
    """Rounded, with units.

    Example:
        >>> [fmt_duration(s) for s in (4.26, 75, 7322)]
        ['4.3 s', '1 min 15 s', '2 h 2 min']
    """
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def fmt_params(params: dict[str, Any] | None) -> str:
    if not params:
        return "-"
    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def progress_line(snap: dict[str, Any]) -> str:
    """done/budget, elapsed, ETA, running vs queued tasks and failures, in one line."""
    done, budget = snap.get("finished") or 0, snap.get("budget")
    parts = [f"{done}/{budget} trials done ({100 * done / budget:.0f}%)" if budget
             else f"{done} trials done (no budget)"]
    if snap.get("elapsed_s") is not None:
        parts.append(f"elapsed {fmt_duration(snap['elapsed_s'])}")
    if snap.get("eta_s") is not None:
        parts.append(f"ETA {fmt_duration(snap['eta_s'])}")
    if snap.get("master") == "running":
        parts.append(f"{fmt(snap.get('running'))} running, {fmt(snap.get('queued'))} queued on "
                     f"{fmt(snap.get('workers'))} workers")
    failed = sum(f["count"] for f in snap.get("failures") or [])
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts)


#: Abbreviated column headers and what they mean.
ABBREVIATIONS = {"fail": "failed trials", "run": "running", "wait": "waiting to be sent",
                 "/min": "trials finished per minute", "cplx": "complexity (heuristic)",
                 "unc": "uncertainty (heuristic)", "rank": "heuristic rank, 1 = favoured most"}


def _spaces_table(snap: dict[str, Any], table: dict[str, Any]) -> Any:
    from rich.table import Table

    spaces = Table(title="search spaces", **table)
    for col, kw in (("space", {"style": "bold"}), ("done", {}), ("fail", {"style": "red"}),
                    ("run", {}), ("wait", {}), ("best loss", {"style": "green"}), ("/min", {}),
                    ("cplx", {}), ("unc", {}), ("rank", {}), ("classes", {})):
        kw.setdefault("no_wrap", True)
        if col not in ("space", "classes"):
            kw.setdefault("justify", "right")
        spaces.add_column(col, **kw)
    for r in snap["spaces"]:
        spaces.add_row(r["space"], str(r["done"]), str(r["failed"]), str(r["running"]),
                       str(r["waiting"]), fmt(r["best_loss"], 4), fmt_rate(r["trials_per_min"]),
                       fmt(r["complexity"], 3), fmt(r["uncertainty"], 3), fmt(r["rank"]),
                       ",".join(r["classes"]) or "-")
    return spaces


def _classes_table(snap: dict[str, Any], table: dict[str, Any]) -> Any:
    from rich.table import Table

    classes = Table(title="compute classes", **table)
    for col in ("class", "done", "fail", "run", "wait", "best loss", "/min", "mean runtime"):
        classes.add_column(col, justify="left" if col == "class" else "right", no_wrap=True,
                           style="bold" if col == "class" else ("red" if col == "fail" else None))
    for r in snap["classes"]:
        classes.add_row(r["class"], str(r["done"]), str(r["failed"]), str(r["running"]),
                        str(r["waiting"]), fmt(r["best_loss"], 6), fmt_rate(r["trials_per_min"]),
                        fmt_duration(r["mean_runtime_s"]))
    return classes


def render_rich(snap: dict[str, Any]) -> Any:
    """A rich renderable: summary, progress, the tables, current failures and a legend."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = {**_TABLE, "box": box.SIMPLE_HEAD}
    if snap.get("master") == "running":
        master = f"master [green]running[/] (last report {fmt_duration(snap.get('updated'))} ago)"
    else:
        master = "master [dim]stopped[/]"
    head = Text.from_markup(
        f"[bold]{snap.get('experiment') or 'no experiment yet'}[/] in {snap['file']}: {master}; "
        f"started {snap.get('started') or '-'}; best loss [bold]{fmt(snap.get('best_loss'), 6)}[/]"
        + (f" ({snap['best_space']}: {fmt_params(snap.get('best_params'))})"
           if snap.get("best_space") else ""))
    parts: list[Any] = [head, Text(progress_line(snap))]

    best = Table(title="best parameters per space", **table)
    best.add_column("space", style="bold", no_wrap=True)
    best.add_column("best loss", justify="right", style="green", no_wrap=True)
    best.add_column("parameters", overflow="fold")
    for r in snap["spaces"]:
        best.add_row(r["space"], fmt(r["best_loss"], 6), fmt_params(r["best_params"]))
    parts += [_spaces_table(snap, table), best, _classes_table(snap, table)]

    if snap.get("failures"):
        fails = Table(title="current failures (by cause)", **table)
        fails.add_column("count", justify="right", style="red")
        fails.add_column("e.g. trial", justify="right")
        fails.add_column("cause", overflow="fold")
        for f in snap["failures"][:5]:
            fails.add_row(str(f["count"]), str(f["example_trial"]), f["cause"])
        parts.append(fails)
    parts.append(Text("legend: " + "; ".join(f"{k}: {v}" for k, v in ABBREVIATIONS.items()),
                      style="dim"))
    return Group(*parts)


def print_rich(snap: dict[str, Any]) -> None:
    from rich.console import Console

    Console().print(render_rich(snap))


def start_live(snap: dict[str, Any]) -> Any:
    """A started ``rich.live.Live`` showing ``snap``; call ``update``/``stop`` on it."""
    from rich.live import Live

    live = Live(render_rich(snap), auto_refresh=False, transient=False)
    live.start()
    live.refresh()
    return live
