"""``shadho status`` on a terminal: rich tables, a progress line, failures and a legend.

Example:
    >>> progress_line(Snapshot(file='r.db', finished=3, budget=10, elapsed_s=75.0))
    '3/10 trials done (30%), elapsed 1 min 15 s'
"""
from __future__ import annotations

from typing import Any

from shadho.formatting import duration, number, params_text, rate
from shadho.snapshot import Snapshot

_TABLE = {"title_justify": "left", "padding": (0, 1), "pad_edge": False, "show_edge": False,
          "collapse_padding": True}


def progress_line(snap: Snapshot) -> str:
    """done/budget, elapsed, ETA, running vs queued tasks and failures, in one line."""
    done, budget = snap.finished or 0, snap.budget
    parts = [f"{done}/{budget} trials done ({100 * done / budget:.0f}%)" if budget
             else f"{done} trials done (no budget)"]
    if snap.elapsed_s is not None:
        parts.append(f"elapsed {duration(snap.elapsed_s)}")
    if snap.eta_s is not None:
        parts.append(f"ETA {duration(snap.eta_s)}")
    if snap.master == "running":
        parts.append(f"{number(snap.running)} running, {number(snap.queued)} queued on "
                     f"{number(snap.workers)} workers")
    failed = sum(f["count"] for f in snap.failures)
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts)


#: Abbreviated column headers and what they mean.
ABBREVIATIONS = {"fail": "failed trials", "run": "running", "wait": "waiting to be sent",
                 "/min": "trials finished per minute", "cplx": "complexity (heuristic)",
                 "unc": "uncertainty (heuristic)", "rank": "heuristic rank, 1 = favoured most"}
#: What the rungs table's columns mean (shown with a multi-fidelity search only).
RUNG_ABBREVIATIONS = {"configs": "configurations that reached the rung",
                      "promoted": "promoted into it from the rung below",
                      "budget spent": "the budget (e.g. epochs) of every finished rung run"}


def _spaces_table(snap: Snapshot, table: dict[str, Any]) -> Any:
    from rich.table import Table

    spaces = Table(title="search spaces", **table)
    for col, kw in (("space", {"style": "bold"}), ("done", {}), ("fail", {"style": "red"}),
                    ("run", {}), ("wait", {}), ("best loss", {"style": "green"}), ("/min", {}),
                    ("cplx", {}), ("unc", {}), ("rank", {}), ("classes", {})):
        kw.setdefault("no_wrap", True)
        if col not in ("space", "classes"):
            kw.setdefault("justify", "right")
        spaces.add_column(col, **kw)
    for r in snap.spaces:
        spaces.add_row(r["space"], str(r["done"]), str(r["failed"]), str(r["running"]),
                       str(r["waiting"]), number(r["best_loss"], 4), rate(r["trials_per_min"]),
                       number(r["complexity"], 3), number(r["uncertainty"], 3), number(r["rank"]),
                       ",".join(r["classes"]) or "-")
    return spaces


def _classes_table(snap: Snapshot, table: dict[str, Any]) -> Any:
    from rich.table import Table

    classes = Table(title="compute classes", **table)
    for col in ("class", "done", "fail", "run", "wait", "best loss", "/min", "mean runtime"):
        classes.add_column(col, justify="left" if col == "class" else "right", no_wrap=True,
                           style="bold" if col == "class" else ("red" if col == "fail" else None))
    for r in snap.classes:
        classes.add_row(r["class"], str(r["done"]), str(r["failed"]), str(r["running"]),
                        str(r["waiting"]), number(r["best_loss"], 6), rate(r["trials_per_min"]),
                        duration(r["mean_runtime_s"]))
    return classes


def _rungs_table(snap: Snapshot, table: dict[str, Any]) -> Any:
    """A multi-fidelity search's rungs: configurations, runs, promotions, runs per class."""
    from rich.table import Table

    from shadho.rung_summary import classes_text

    rungs = Table(title=f"rungs (budget spent: {number(snap.budget_spent)})", **table)
    for col in ("rung", "budget", "configs", "finished", "run", "promoted", "finished by class"):
        rungs.add_column(col, justify="left" if col == "finished by class" else "right", no_wrap=True,
                         style="bold" if col == "rung" else None)
    for r in snap.rungs:
        rungs.add_row(str(r["rung"]), number(r["budget"]), str(r["configs"]), str(r["finished"]),
                      str(r["running"]), str(r["promoted"]), classes_text(r))
    return rungs


def render_rich(snap: Snapshot) -> Any:
    """A rich renderable: summary, progress, the tables, current failures and a legend."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = {**_TABLE, "box": box.SIMPLE_HEAD}
    if snap.master == "running":
        master = f"master [green]running[/] (last report {duration(snap.updated)} ago)"
    else:
        master = "master [dim]stopped[/]"
    head = Text.from_markup(
        f"[bold]{snap.experiment or 'no experiment yet'}[/] in {snap.file}: {master}; "
        f"started {snap.started or '-'}; best loss [bold]{number(snap.best_loss, 6)}[/]"
        + (f" ({snap.best_space}: {params_text(snap.best_params)})" if snap.best_space else ""))
    parts: list[Any] = [head, Text(progress_line(snap))]

    best = Table(title="best parameters per space", **table)
    best.add_column("space", style="bold", no_wrap=True)
    best.add_column("best loss", justify="right", style="green", no_wrap=True)
    best.add_column("parameters", overflow="fold")
    for r in snap.spaces:
        best.add_row(r["space"], number(r["best_loss"], 6), params_text(r["best_params"]))
    parts += [_spaces_table(snap, table), best, _classes_table(snap, table)]
    if snap.rungs:
        parts.append(_rungs_table(snap, table))

    if snap.failures:
        fails = Table(title="current failures (by cause)", **table)
        fails.add_column("count", justify="right", style="red")
        fails.add_column("e.g. trial", justify="right")
        fails.add_column("cause", overflow="fold")
        for f in snap.failures[:5]:
            fails.add_row(str(f["count"]), str(f["example_trial"]), f["cause"])
        parts.append(fails)
    legend = {**ABBREVIATIONS, **(RUNG_ABBREVIATIONS if snap.rungs else {})}
    parts.append(Text("legend: " + "; ".join(f"{k}: {v}" for k, v in legend.items()), style="dim"))
    return Group(*parts)


def print_rich(snap: Snapshot) -> None:
    from rich.console import Console

    Console().print(render_rich(snap))


def start_live(snap: Snapshot) -> Any:
    """A started ``rich.live.Live`` showing ``snap``; call ``update``/``stop`` on it."""
    from rich.live import Live

    live = Live(render_rich(snap), auto_refresh=False, transient=False)
    live.start()
    live.refresh()
    return live
