"""``shadho report``: PNG plots and one self-contained HTML page of a search.

Files written to the output folder:

* ``best_loss.png`` -- 2 panels: best loss so far vs time, overall and per search space.
* ``trials_per_class.png`` -- 1 panel: finished trials per compute class over time.
* ``runtime.png`` -- 1 panel: runtime distribution per search space x compute class.
* ``params_<n>_<space>.png`` -- one per search space that has hyperparameters, with one
  panel per hyperparameter (loss vs its value; failed trials as red crosses at the top;
  categorical values on a labelled axis, log domains on a log axis).
* ``index.html`` -- a summary table and every plot, embedded as base64 so the page is
  self-contained (it can be mailed or moved alone); each image also links to its PNG.
  When the page has loaded, a small script sets ``data-images`` on ``<html>`` to ``ok``
  (every image decoded) or ``failed: <files>``.
* ``manifest.json`` -- each plot's file, kind, space, title, number of panels, panel
  titles and pixel size, for tools and tests.

The number of panels never depends on the data: empty stores and failed-only searches
get the same figures, with "no ... yet" written in the empty panels.

Matplotlib is driven through its object API on the Agg canvas: no pyplot, no global
backend switch, nothing shown on screen.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import time
from typing import Any, Sequence

from shadho.status import DEFAULT_CLASS, collect, flatten, short_labels
from shadho.trial import Trial, TrialState

DPI = 100
_CATEGORICAL = ("choice", "exhaustive")
_LOG = ("log", "ln_", "log10", "log2")


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str) -> tuple[int, int]:
    width, height = fig.canvas.get_width_height()  # fixed size: no bbox_inches='tight'
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    _write_bytes(path, buf.getvalue())
    return int(width), int(height)


def _write_bytes(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _time_scale(span: float) -> tuple[float, str]:
    if span > 2 * 3600:
        return 3600.0, "hours"
    if span > 300:
        return 60.0, "minutes"
    return 1.0, "seconds"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:40] or "space"


def _positive_log(values: Sequence[float]) -> bool:
    pos = [v for v in values if v is not None]
    return bool(pos) and min(pos) > 0 and max(pos) / min(pos) > 100


# ---------------------------------------------------------------- plots

def _best_curve(trials: Sequence[Trial], t0: float, scale: float) -> tuple[list[float], list[float]]:
    xs, ys, best = [], [], math.inf
    for t in sorted(trials, key=lambda t: t.finish_time or 0):
        if t.state == TrialState.COMPLETE and t.loss is not None and t.finish_time is not None:
            if t.loss < best:
                best = t.loss
                xs.append((t.finish_time - t0) / scale)
                ys.append(best)
    return xs, ys


def plot_best_loss(trials: Sequence[Trial], spaces: Sequence[dict[str, Any]], t0: float, t1: float,
                   path: str) -> dict[str, Any]:
    scale, unit = _time_scale(t1 - t0)
    fig = _figure(11, 4)
    ax_all, ax_sp = fig.subplots(1, 2)
    titles = ["best loss, overall", "best loss per search space"]
    end = (t1 - t0) / scale
    xs, ys = _best_curve(trials, t0, scale)
    if xs:
        done = [t for t in trials if t.state == TrialState.COMPLETE and t.loss is not None
                and t.finish_time is not None]
        ax_all.scatter([(t.finish_time - t0) / scale for t in done], [t.loss for t in done],
                       s=10, color="0.7", label="trials", zorder=1)
        ax_all.step(xs + [end], ys + ys[-1:], where="post", color="C0", lw=2, label="best so far")
        ax_all.legend(loc="upper right", fontsize="small")
        if _positive_log([t.loss for t in done]):
            ax_all.set_yscale("log")
        drawn = 0
        for i, s in enumerate(spaces):
            sx, sy = _best_curve([t for t in trials if t.space_id == s["id"]], t0, scale)
            if sx:
                ax_sp.step(sx + [end], sy + sy[-1:], where="post", color=f"C{i % 10}", label=s["name"])
                drawn += 1
        ax_sp.legend(loc="upper right", fontsize="small")
        if _positive_log(ys):
            ax_sp.set_yscale("log")
        for ax in (ax_all, ax_sp):
            ax.set_xlabel(f"{unit} since the first trial")
            ax.set_ylabel("loss")
            ax.grid(alpha=0.3)
    else:
        _empty(ax_all, "no completed trials yet")
        _empty(ax_sp, "no completed trials yet")
    for ax, title in zip((ax_all, ax_sp), titles):
        ax.set_title(title)
    return _entry(fig, path, "best_loss", titles)


def plot_trials_per_class(trials: Sequence[Trial], classes: Sequence[str], t0: float, t1: float,
                          path: str) -> dict[str, Any]:
    scale, unit = _time_scale(t1 - t0)
    fig = _figure(7, 4)
    ax = fig.subplots(1, 1)
    title = "finished trials per compute class"
    finished = [t for t in trials if t.state.finished and t.finish_time is not None]
    if finished:
        end = (t1 - t0) / scale
        for i, cls in enumerate(classes):
            times = sorted((t.finish_time - t0) / scale for t in finished
                           if (t.compute_class or DEFAULT_CLASS) == cls)
            if not times:
                continue
            n_failed = sum(1 for t in finished if (t.compute_class or DEFAULT_CLASS) == cls
                           and t.state == TrialState.FAILED)
            ax.step([0.0] + times + [end], [0] + list(range(1, len(times) + 1)) + [len(times)],
                     where="post", color=f"C{i % 10}",
                     label=f"{cls} ({len(times)} trials, {n_failed} failed)")
        ax.legend(loc="upper left", fontsize="small")
        ax.set_xlabel(f"{unit} since the first trial")
        ax.set_ylabel("finished trials")
        ax.grid(alpha=0.3)
    else:
        _empty(ax, "no finished trials yet")
    ax.set_title(title)
    return _entry(fig, path, "trials_per_class", [title])


def plot_runtime(trials: Sequence[Trial], spaces: Sequence[dict[str, Any]], classes: Sequence[str],
                 path: str) -> dict[str, Any]:
    groups: list[tuple[str, list[float]]] = []
    for s in spaces:
        for cls in classes:
            rt = [t.runtime for t in trials if t.space_id == s["id"] and t.runtime is not None
                  and (t.compute_class or DEFAULT_CLASS) == cls]
            if rt:
                groups.append((f"{s['name']}\n@ {cls}", rt))
    fig = _figure(max(7.0, 0.9 * len(groups) + 2), 4.5)
    ax = fig.subplots(1, 1)
    title = "runtime per search space x compute class"
    if groups:
        ax.boxplot([g[1] for g in groups], showfliers=True)
        ax.set_xticks(range(1, len(groups) + 1), [g[0] for g in groups], fontsize="small",
                      rotation=30 if len(groups) > 4 else 0)
        ax.set_ylabel("runtime (seconds)")
        if _positive_log([v for g in groups for v in g[1]]):
            ax.set_yscale("log")
        ax.grid(alpha=0.3, axis="y")
    else:
        _empty(ax, "no trial runtimes yet")
    ax.set_title(title)
    return _entry(fig, path, "runtime", [title])


def _is_categorical(dim: dict[str, Any], values: Sequence[Any]) -> bool:
    if dim.get("type") in _CATEGORICAL:
        return True
    return any(isinstance(v, (str, bool, list, dict)) or v is None for v in values)


def plot_params(space: dict[str, Any], trials: Sequence[Trial], path: str) -> dict[str, Any]:
    """Loss vs each hyperparameter of ``space``: one panel per hyperparameter."""
    dims: dict[str, dict[str, Any]] = space.get("dims", {})
    labels = list(dims)
    names = short_labels(labels)
    n = len(labels)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = _figure(4.0 * ncols + 0.5, 3.3 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for extra in axes[n:]:
        fig.delaxes(extra)
    mine = [t for t in trials if t.space_id == space["id"]]
    done = [t for t in mine if t.state == TrialState.COMPLETE and t.loss is not None]
    failed = [t for t in mine if t.state == TrialState.FAILED]
    flat_done = [flatten(t.params) for t in done]
    flat_failed = [flatten(t.params) for t in failed]
    log_y = _positive_log([t.loss for t in done])
    titles = []
    for ax, label in zip(axes, labels):
        name = names[label]
        titles.append(name)
        ax.set_title(name)
        xs = [f.get(label) for f in flat_done]
        xf = [f.get(label) for f in flat_failed]
        if not done and not failed:
            _empty(ax, "no finished trials yet")
            continue
        dim = dims[label]
        if _is_categorical(dim, xs + xf):
            cats = [json.dumps(v) if not isinstance(v, str) else v for v in dim.get("values", [])]
            for v in xs + xf:
                key = v if isinstance(v, str) else json.dumps(v)
                if key not in cats:
                    cats.append(key)
            pos = {c: i for i, c in enumerate(cats)}

            def place(v: Any, k: int) -> float:
                # A small deterministic spread so equal values stay visible.
                return pos[v if isinstance(v, str) else json.dumps(v)] + ((k * 0.618) % 1 - 0.5) * 0.3

            xdone = [place(v, k) for k, v in enumerate(xs)]
            xfail = [place(v, k) for k, v in enumerate(xf)]
            ax.set_xticks(range(len(cats)), cats, fontsize="small",
                          rotation=30 if len(cats) > 4 else 0)
            ax.set_xlim(-0.6, len(cats) - 0.4)
        else:
            xdone = [float(v) for v in xs]
            xfail = [float(v) for v in xf]
            if str(dim.get("type", "")).startswith(_LOG) and min(xdone + xfail) > 0:
                ax.set_xscale("log")
        if done:
            ax.scatter(xdone, [t.loss for t in done], s=14, color="C0", alpha=0.8)
            if log_y:
                ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "no completed trials yet", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
            ax.set_yticks([])
        if failed:
            ax.scatter(xfail, [0.97] * len(xfail), marker="x", color="C3", s=20,
                       transform=ax.get_xaxis_transform(), label=f"failed ({len(failed)})")
            # Markers drawn in axes coordinates do not widen the x range by themselves.
            ax.update_datalim([(x, 1.0) for x in xfail], updatey=False)
            ax.autoscale_view()
            ax.legend(loc="lower right", fontsize="x-small")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    fig.suptitle(f"loss vs hyperparameters: {space['name']}")
    entry = _entry(fig, path, "params", titles)
    entry["space"] = space["name"]
    entry["space_id"] = space["id"]
    return entry


def _entry(fig: Any, path: str, kind: str, titles: list[str]) -> dict[str, Any]:
    panels = len(fig.axes)
    width, height = _save(fig, path)
    return {"file": os.path.basename(path), "kind": kind, "panels": panels,
            "panel_titles": titles, "width": width, "height": height}


# ---------------------------------------------------------------- the page

_SCRIPT = """
window.addEventListener('load', function () {
  var bad = [];
  document.querySelectorAll('img').forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) { bad.push(img.dataset.file); }
  });
  document.documentElement.setAttribute('data-images', bad.length ? 'failed: ' + bad.join(' ') : 'ok');
});
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: right; }
th:first-child, td:first-child, td.params { text-align: left; }
figure { margin: 2em 0; }
img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #666; font-size: 0.9em; }
"""


def _num(value: Any, digits: int = 6) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _params_text(params: dict[str, Any] | None) -> str:
    if not params:
        return "-"
    return html.escape(", ".join(f"{k}={_num(v, 4) if isinstance(v, float) else v}"
                                 for k, v in params.items()))


def render_html(snap: dict[str, Any], plots: Sequence[dict[str, Any]], pngs: dict[str, bytes]) -> str:
    title = f"shadho report: {snap.get('experiment') or 'no experiment'}"
    rows = "".join(
        f"<tr><td>{html.escape(r['space'])}</td><td>{r['done']}</td><td>{r['failed']}</td>"
        f"<td>{r['running'] + r['waiting']}</td><td>{_num(r['best_loss'])}</td>"
        f"<td class=params>{_params_text(r['best_params'])}</td></tr>" for r in snap["spaces"])
    crow = "".join(
        f"<tr><td>{html.escape(r['class'])}</td><td>{r['done']}</td><td>{r['failed']}</td>"
        f"<td>{r['running'] + r['waiting']}</td><td>{_num(r['best_loss'])}</td>"
        f"<td>{_num(r['mean_runtime_s'], 3)}</td></tr>" for r in snap["classes"])
    figures = []
    for p in plots:
        data = base64.b64encode(pngs[p["file"]]).decode("ascii")
        caption = html.escape(p.get("space") and f"{p['kind']}: {p['space']}" or p["kind"])
        figures.append(
            f'<figure id="{html.escape(p["file"])}"><img src="data:image/png;base64,{data}" '
            f'data-file="{html.escape(p["file"])}" width="{p["width"]}" height="{p["height"]}" '
            f'alt="{caption}"><figcaption>{caption} &mdash; <a href="{html.escape(p["file"])}">'
            f'{html.escape(p["file"])}</a></figcaption></figure>')
    best = (f"best loss <b>{_num(snap['best_loss'])}</b> in {html.escape(snap['best_space'])} "
            f"({_params_text(snap['best_params'])})" if snap.get("best_space") else "no completed trials yet")
    return f"""<!DOCTYPE html>
<html lang="en" data-images="loading">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
<script>{_SCRIPT}</script>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(snap['file'])}: {snap['trials']} trials; {best}.
Written {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>
<h2>Search spaces</h2>
<table><tr><th>space</th><th>done</th><th>failed</th><th>pending</th><th>best loss</th>
<th>best parameters</th></tr>
{rows}</table>
<h2>Compute classes</h2>
<table><tr><th>class</th><th>done</th><th>failed</th><th>pending</th><th>best loss</th>
<th>mean runtime (s)</th></tr>
{crow}</table>
<h2>Plots</h2>
{''.join(figures)}
</body>
</html>
"""


def write_report(store: Any, exp: int | None, outdir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the plots, ``index.html`` and ``manifest.json`` of ``exp`` into ``outdir``.

    ``exp`` None stands for a file that holds no experiment yet (empty plots).
    Returns the manifest.
    """
    from shadho.status import empty

    outdir = os.fspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    if exp is None:
        snap, spaces, trials = empty(store.path), [], []
    else:
        conn = store.conn
        conn.execute("BEGIN")  # one snapshot for every read
        try:
            snap = collect(store, exp)
            spaces = store.spaces(exp)
            trials = store.trials(exp)
        finally:
            conn.execute("ROLLBACK")
    known = {s["id"] for s in spaces}
    for sid in sorted({t.space_id for t in trials} - known):  # spaces no longer registered
        spaces.append({"id": sid, "name": sid, "dims": {}})
    classes = [r["class"] for r in snap["classes"]]
    times = [v for t in trials for v in (t.submit_time, t.start_time, t.finish_time) if v is not None]
    t0 = min(times) if times else 0.0
    t1 = max(times) if times else 1.0

    plots: list[dict[str, Any]] = []
    join = os.path.join
    plots.append(plot_best_loss(trials, spaces, t0, t1, join(outdir, "best_loss.png")))
    plots.append(plot_trials_per_class(trials, classes, t0, t1, join(outdir, "trials_per_class.png")))
    plots.append(plot_runtime(trials, spaces, classes, join(outdir, "runtime.png")))
    for i, space in enumerate(spaces, 1):
        if space.get("dims"):
            name = f"params_{i}_{_slug(space['name'])}.png"
            plots.append(plot_params(space, trials, join(outdir, name)))

    pngs = {}
    for p in plots:
        with open(join(outdir, p["file"]), "rb") as fh:
            pngs[p["file"]] = fh.read()
    from shadho.plan_report import with_plan_section

    page = with_plan_section(render_html(snap, plots, pngs), store, exp)
    _write_bytes(join(outdir, "index.html"), page.encode("utf-8"))
    manifest = {"experiment": snap.get("experiment"), "html": "index.html", "embedded": True,
                "plots": plots}
    _write_bytes(join(outdir, "manifest.json"), json.dumps(manifest, indent=1).encode("utf-8"))
    return manifest
