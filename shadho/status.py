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
    updated<TAB>1.5               (seconds since the master last wrote its progress)
    trials<TAB>30                 (all trials)
    best_loss<TAB>0.0123          (-: none yet)
    best_space<TAB>svm/rbf
    best_params<TAB>{"C": 1.0}
    <blank line>
    [spaces]
    space<TAB>done<TAB>failed<TAB>...      (header row, then one row per space)
    <blank line>
    [classes]
    class<TAB>done<TAB>...

Missing values are ``-``; parameters are JSON objects keyed by the hyperparameter's
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
from shadho.trial import Trial, TrialState

SPACE_COLUMNS = ("space", "done", "failed", "running", "waiting", "best_loss", "trials_per_min",
                 "complexity", "uncertainty", "rank", "classes", "best_params")
CLASS_COLUMNS = ("class", "done", "failed", "running", "waiting", "best_loss", "trials_per_min",
                 "mean_runtime_s")
HEADER_KEYS = ("experiment", "file", "master", "workers", "in_flight", "updated", "trials",
               "best_loss", "best_space", "best_params")

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
    conn = store.conn
    in_tx = conn.in_transaction
    if not in_tx:
        conn.execute("BEGIN")
    try:
        spaces = store.spaces(exp)
        trials = store.trials(exp)
        stats = {r["space_id"]: r for r in store.space_stats(exp, latest=True)}
        progress = store.progress(exp)
        key = exp_key or next((k for k in store.experiments() if store.experiment_id(k) == exp), "?")
        settings = store.settings(exp)
        current = resume.current_space_ids(store, exp)
    finally:
        if not in_tx:
            conn.execute("ROLLBACK")
    if current is not None and not all_spaces:
        spaces, trials = [s for s in spaces if s["id"] in current], [t for t in trials if t.space_id in current]
    spaces = resume.label_spaces(spaces, current)
    now = time.time()
    running_master = bool(progress.get("running_master"))
    starts = [t.submit_time for t in trials if t.submit_time is not None]
    ends = [t.finish_time for t in trials if t.finish_time is not None]
    start = min(starts) if starts else None
    end = now if running_master else (max(ends) if ends else None)

    dims_of = {s["id"]: list(s.get("dims", {})) for s in spaces}
    names = {s["id"]: s["name"] for s in spaces}
    order = [s["id"] for s in spaces] + sorted({t.space_id for t in trials} - set(names))
    space_rows = []
    for sid in order:
        group = [t for t in trials if t.space_id == sid]
        row = _group_row(group, start, end)
        best = row.pop("best_trial")
        st = stats.get(sid, {})
        space_rows.append({
            "space": names.get(sid, sid), "space_id": sid, **row,
            "complexity": st.get("complexity"), "uncertainty": st.get("uncertainty"),
            "rank": st.get("rank"),
            "classes": [DEFAULT_CLASS if c is None else c for c in st.get("classes", [])],
            "best_params": space_params(best.params, dims_of.get(sid, [])) if best else None})

    declared = list(settings.get("compute_classes") or [])
    seen = {t.compute_class or DEFAULT_CLASS for t in trials}
    class_order = declared + sorted(seen - set(declared))
    class_rows = []
    for cls in class_order:
        group = [t for t in trials if (t.compute_class or DEFAULT_CLASS) == cls]
        row = _group_row(group, start, end)
        row.pop("best_trial")
        runtimes = [t.runtime for t in group if t.runtime is not None]
        class_rows.append({"class": cls, **row,
                           "mean_runtime_s": sum(runtimes) / len(runtimes) if runtimes else None})

    overall = _group_row(trials, start, end)
    best = overall["best_trial"]
    beat = progress.get("time")
    return {
        "experiment": key, "file": store.path,
        "master": "running" if running_master else "stopped",
        "workers": progress.get("workers") if running_master else None,
        "in_flight": progress.get("in_flight") if running_master else None,
        "updated": (now - beat) if isinstance(beat, (int, float)) else None,
        "trials": len(trials),
        "best_loss": best.loss if best else None,
        "best_space": best.searchspace if best else None,
        "best_params": space_params(best.params, dims_of.get(best.space_id, [])) if best else None,
        "spaces": space_rows, "classes": class_rows,
    }


def empty(path: str) -> dict[str, Any]:
    """The snapshot of a results file that holds no experiment yet."""
    return {"experiment": None, "file": path, "master": "stopped", "workers": None,
            "in_flight": None, "updated": None, "trials": 0, "best_loss": None,
            "best_space": None, "best_params": None, "spaces": [], "classes": []}


# ---------------------------------------------------------------- plain text

def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return " ".join(str(value).split())  # no tabs or newlines inside a cell


def render_plain(snap: dict[str, Any]) -> str:
    """Tab-separated sections (see the module docstring); ends with a blank line."""
    lines = []
    for key in HEADER_KEYS:
        if key in ("workers", "in_flight") and snap.get("master") != "running":
            continue
        lines.append(f"{key}\t{_cell(snap.get(key))}")
    lines.append("")
    for section, columns in (("spaces", SPACE_COLUMNS), ("classes", CLASS_COLUMNS)):
        lines.append(f"[{section}]")
        lines.append("\t".join(columns))
        for row in snap[section]:
            lines.append("\t".join(_cell(row.get(c)) for c in columns))
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
            out[section].append({h: (c if h in ("space", "class") else _parse_cell(c))
                                 for h, c in zip(header, cells)})
    return out


# ---------------------------------------------------------------- rich

def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "-"
    return str(value)


def _fmt_rate(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _fmt_params(params: dict[str, Any] | None) -> str:
    if not params:
        return "-"
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


_TABLE = {"title_justify": "left", "padding": (0, 1), "pad_edge": False, "show_edge": False,
          "collapse_padding": True}


def render_rich(snap: dict[str, Any]) -> Any:
    """A rich renderable: a summary line, the spaces table and the classes table."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = {**_TABLE, "box": box.SIMPLE_HEAD}

    if snap.get("master") == "running":
        master = (f"master [green]running[/], {_fmt(snap.get('workers'))} workers, "
                  f"{_fmt(snap.get('in_flight'))} tasks in flight")
    else:
        master = "master [dim]stopped[/]"
    head = Text.from_markup(
        f"[bold]{snap.get('experiment') or 'no experiment yet'}[/] in {snap['file']}: {master}; "
        f"{snap['trials']} trials, best loss [bold]{_fmt(snap.get('best_loss'), 6)}[/]"
        + (f" ({snap['best_space']}: {_fmt_params(snap.get('best_params'))})"
           if snap.get("best_space") else ""))

    spaces = Table(title="search spaces", **table)
    for col, kw in (("space", {"style": "bold"}), ("done", {}), ("fail", {"style": "red"}),
                    ("run", {}), ("wait", {}), ("best loss", {"style": "green"}), ("/min", {}),
                    ("cplx", {}), ("unc", {}), ("rank", {}), ("classes", {})):
        kw.setdefault("no_wrap", True)
        if col not in ("space", "classes", "best params"):
            kw.setdefault("justify", "right")
        spaces.add_column(col, **kw)
    for r in snap["spaces"]:
        spaces.add_row(r["space"], str(r["done"]), str(r["failed"]), str(r["running"]),
                       str(r["waiting"]), _fmt(r["best_loss"], 4), _fmt_rate(r["trials_per_min"]),
                       _fmt(r["complexity"], 3), _fmt(r["uncertainty"], 3), _fmt(r["rank"]),
                       ",".join(r["classes"]) or "-")

    best = Table(title="best parameters per space", **table)
    best.add_column("space", style="bold", no_wrap=True)
    best.add_column("best loss", justify="right", style="green", no_wrap=True)
    best.add_column("parameters", overflow="fold")
    for r in snap["spaces"]:
        best.add_row(r["space"], _fmt(r["best_loss"], 6), _fmt_params(r["best_params"]))

    classes = Table(title="compute classes", **table)
    for col in ("class", "done", "fail", "run", "wait", "best loss", "/min", "mean runtime (s)"):
        classes.add_column(col, justify="left" if col == "class" else "right", no_wrap=True,
                           style="bold" if col == "class" else ("red" if col == "fail" else None))
    for r in snap["classes"]:
        classes.add_row(r["class"], str(r["done"]), str(r["failed"]), str(r["running"]),
                        str(r["waiting"]), _fmt(r["best_loss"], 6), _fmt_rate(r["trials_per_min"]),
                        _fmt(r["mean_runtime_s"], 3))
    return Group(head, spaces, best, classes)


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
