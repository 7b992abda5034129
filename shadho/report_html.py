"""The HTML page of ``shadho report``: one self-contained file (plots embedded as base64).

The page holds the run's settings, the ten best trials, every plot with a caption
that says what it shows, the failures grouped by cause, and the per-space and
per-class tables. When it has loaded, a small script sets ``data-images`` on
``<html>`` to ``ok`` (every image decoded) or ``failed: <files>``. A page served by
``shadho report --serve`` also polls the server and reloads itself when new results
arrived (``live``).
"""
from __future__ import annotations

import base64
import html
import time
from typing import Any, Sequence

from shadho.failures import group_failures
from shadho.formatting import iso_time, number, params_text, seconds
from shadho.report_data import ReportData, settings_rows, top_trials
from shadho.snapshot import Snapshot

_CHECK_IMAGES = """
window.addEventListener('load', function () {
  var bad = [];
  document.querySelectorAll('img').forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) { bad.push(img.dataset.file); }
  });
  document.documentElement.setAttribute('data-images', bad.length ? 'failed: ' + bad.join(' ') : 'ok');
});
"""

# Polls the server's version; reloads when the results changed. A server that went away
# is reported on the page, not as console errors.
_LIVE = """
(function () {
  var root = document.documentElement, note = document.getElementById('live');
  function poll() {
    fetch('version', {cache: 'no-store'}).then(function (r) { return r.json(); }).then(function (v) {
      if (v.version !== root.dataset.version) { window.location.reload(); return; }
      note.textContent = 'live: up to date at ' + new Date().toLocaleTimeString();
      setTimeout(poll, %(ms)d);
    }, function () {
      note.textContent = 'live: the server stopped answering; showing the last results';
      setTimeout(poll, 4 * %(ms)d);
    });
  }
  setTimeout(poll, %(ms)d);
})();
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 1600px; }
h1 { margin-bottom: 0.2em; }
.summary { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.7em; text-align: right; vertical-align: top; }
th { background: #f4f4f4; }
th:first-child, td:first-child, td.l, th.l { text-align: left; }
table.settings td:first-child { color: #555; }
figure { margin: 1.6em 0; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92em; max-width: 70em; margin-top: 0.3em; }
figcaption a { color: #888; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; max-height: 20em; }
#live { color: #2a7; font-size: 0.9em; }
.warn { background: #fff3f0; border-left: 4px solid #d33; padding: 0.5em 0.8em; }
"""


def num(value: Any, digits: int = 4) -> str:
    return html.escape(number(value, digits))


def params_html(params: dict[str, Any] | None) -> str:
    return html.escape(params_text(params))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "",
           left: Sequence[int] = ()) -> str:
    th = "".join(f"<th{' class=l' if j in left else ''}>{html.escape(h)}</th>" for j, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{' class=l' if j in left else ''}>{c}</td>"
                                    for j, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<table class="{cls}"><tr>{th}</tr>{body}</table>'


def _settings(data: ReportData) -> str:
    rows = settings_rows(data)
    if not rows:
        return "<p>No run settings recorded yet.</p>"
    return _table(("setting", "value"), [(html.escape(k), html.escape(v)) for k, v in rows],
                  "settings", left=(1,))


def _top(data: ReportData) -> str:
    top = top_trials(data)
    if not top:
        return "<p>No completed trials yet.</p>"
    rows = [(str(i), str(r["id"]), num(r["loss"], 6), html.escape(r["space"]), params_html(r["params"]),
             html.escape(r["class"]), html.escape(r["worker"] or "-"),
             seconds(r["runtime_s"]))
            for i, r in enumerate(top, 1)]
    return _table(("rank", "trial", "loss", "search space", "parameters", "class", "worker", "runtime"),
                  rows, left=(3, 4, 5, 6))


def _figure(p: dict[str, Any]) -> str:
    data = base64.b64encode(p["png"]).decode("ascii")
    f = html.escape(p["file"])
    return (f'<figure id="{f}"><img src="data:image/png;base64,{data}" data-file="{f}" '
            f'width="{p["width"]}" height="{p["height"]}" alt="{html.escape(p["panel_titles"][0])}">'
            f'<figcaption>{html.escape(p["caption"])} <a href="{f}">{f}</a></figcaption></figure>')


def _tables(snap: Snapshot) -> str:
    spaces = [(html.escape(r["space"]), str(r["done"]), str(r["failed"]), str(r["running"] + r["waiting"]),
               num(r["best_loss"], 6), params_html(r["best_params"])) for r in snap.spaces]
    classes = [(html.escape(r["class"]), str(r["done"]), str(r["failed"]), str(r["running"] + r["waiting"]),
                num(r["best_loss"], 6),
                seconds(r["mean_runtime_s"])) for r in snap.classes]
    return (_rungs(snap) + "<h2>Search spaces</h2>" +
            _table(("space", "done", "failed", "pending", "best loss", "best parameters"), spaces,
                   left=(5,)) +
            "<h2>Compute classes</h2>" +
            _table(("class", "done", "failed", "pending", "best loss", "mean runtime"), classes))


def _rungs(snap: Snapshot) -> str:
    """A multi-fidelity search's rungs ('' for a search without a fidelity)."""
    if not snap.rungs:
        return ""
    from shadho.rung_summary import classes_text

    rows = [(str(r["rung"]), num(r["budget"]), str(r["configs"]), str(r["finished"]), str(r["running"]),
             str(r["promoted"]), html.escape(classes_text(r))) for r in snap.rungs]
    return (f'<h2 id="rungs">Rungs</h2><p>Budget spent: <b>{num(snap.budget_spent)}</b> over '
            f'{sum(r["finished"] for r in snap.rungs)} finished rung runs; a configuration is promoted '
            f'to the next rung when it is in the best 1/eta of its rung so far.</p>' +
            _table(("rung", "budget", "configurations", "finished", "running", "promoted",
                    "finished by class"), rows, left=(6,)))


def _summary(data: ReportData) -> str:
    snap = data.snap
    best = (f"best loss <b>{num(snap.best_loss, 6)}</b> in {html.escape(snap.best_space)} "
            f"({params_html(snap.best_params)})" if snap.best_space else "no completed trials yet")
    t0, _ = data.span
    started = f"started {iso_time(t0)}; " if data.trials else ""
    groups = group_failures(data.trials)
    n_failed = sum(g.count for g in groups)
    warn = ""
    if groups:
        finished = n_failed + sum(r["done"] for r in snap.spaces)
        warn = (f'<p class="warn">{n_failed} of {finished} finished trials failed; the most common '
                f'cause ({groups[0].count}&times;): <code>{html.escape(groups[0].message)}</code>. '
                f'See <a href="#failures">Failures</a> for every cause and an example traceback.</p>')
    return (f'<p class="summary">{html.escape(snap.file)}: {snap.trials} trials '
            f'({sum(r["done"] for r in snap.spaces)} complete, '
            f'{sum(r["failed"] for r in snap.spaces)} failed); {best}.</p>'
            f'<p>{started}master {html.escape(snap.master)}; page written '
            f'{html.escape(iso_time(time.time()) or "")}.</p>{warn}')


def render_html(data: ReportData, plots: Sequence[dict[str, Any]], sections: Sequence[str] = (),
                live: dict[str, Any] | None = None) -> str:
    """The page. ``sections`` are extra HTML blocks placed after the plots (failures, plans);
    ``live`` (``{'version': str, 'interval_s': float}``) makes the page poll and reload."""
    title = f"shadho report: {data.snap.experiment or 'no experiment'}"
    figures = "".join(_figure(p) for p in plots)
    script = _CHECK_IMAGES
    attrs = f'data-trials="{data.snap.trials}"'
    note = ""
    if live is not None:
        script += _LIVE % {"ms": int(live["interval_s"] * 1000)}
        attrs += f' data-version="{html.escape(live["version"])}"'
        note = '<p id="live">live: this page reloads itself when new results arrive</p>'
    return f"""<!DOCTYPE html>
<html lang="en" data-images="loading" {attrs}>
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
{note}{_summary(data)}
<h2>Run settings</h2>
{_settings(data)}
<h2>Top 10 trials</h2>
{_top(data)}
<h2>Plots</h2>
{figures}
{''.join(sections)}
{_tables(data.snap)}
<script>{script}</script>
</body>
</html>
"""
