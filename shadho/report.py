"""``shadho report``: PNG plots and one self-contained HTML page that explain a search.

Files written to the output folder:

* ``best_loss.png`` -- 2 panels: every completed trial's loss and the best so far, against
  time (resumes marked) and against trial number; colour = search space, marker = class.
* ``routing.png`` -- 3 panels: trials per search space x compute class, the classes each
  space was assigned to over time, and the measured speed of each class on each space.
* ``runtime.png`` -- 1 panel: runtime per search space x compute class, with counts.
* ``failures.png`` -- 1 panel: failed trials per cause (split by search space); the first
  plot when most finished trials failed.
* ``importance.png`` -- one panel per search space that has hyperparameters (one
  placeholder panel when none has): permutation importance of a random forest.
* ``params_<n>_<space>.png`` -- one per search space that has hyperparameters, one panel
  per hyperparameter (loss vs its value, coloured by trial number, best marked).
* ``index.html`` -- run settings, the 10 best trials, every plot with its caption (embedded
  as base64, so the page is self-contained; each image also links to its PNG), failures
  grouped by cause, and per-space and per-class tables (see :mod:`shadho.report_html`).
* ``manifest.json`` -- each plot's file, kind, space, panel count and titles, caption and
  pixel size, for tools and tests.

The number of panels never depends on the trials: empty stores and failed-only searches
get the same figures, with "no ... yet" written in the empty panels.

``shadho report RESULTS --serve`` serves the same page live (:mod:`shadho.serve`).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Callable

from shadho.plan_report import plan_section
from shadho.report_data import ReportData, load
from shadho.report_failures import failures_section, plot_failures
from shadho.report_html import render_html
from shadho.report_params import plot_importance, plot_params
from shadho.report_plots import plot_best_loss, plot_runtime
from shadho.report_routing import plot_routing
from shadho.trial import TrialState

#: Extra HTML sections after the plots: each gets the data and returns HTML ('' for none).
SECTIONS: list[Callable[[ReportData], str]] = [failures_section, plan_section]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:40] or "space"


def _write_bytes(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def plots(data: ReportData) -> list[dict[str, Any]]:
    """Every figure of the report, as manifest entries holding their PNG bytes."""
    with_dims = [s for s in data.spaces if s.get("dims")]
    out = [plot_best_loss(data), plot_routing(data), plot_runtime(data), plot_failures(data),
           plot_importance(data, with_dims)]
    n_failed = sum(t.state == TrialState.FAILED for t in data.trials)
    if 2 * n_failed > sum(t.state.finished for t in data.trials):
        out.insert(0, out.pop(3))  # mostly failing: what failed comes first
    for i, space in enumerate(data.spaces, 1):
        if space.get("dims"):
            out.append(plot_params(data, space, f"params_{i}_{_slug(space['name'])}.png"))
    return out


def build(data: ReportData, live: dict[str, Any] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The page's HTML and the plot entries (with PNG bytes) for ``data``."""
    figures = plots(data)
    sections = [section(data) for section in SECTIONS]
    return render_html(data, figures, sections, live), figures


def manifest_of(data: ReportData, figures: list[dict[str, Any]]) -> dict[str, Any]:
    return {"experiment": data.snap.experiment, "html": "index.html", "embedded": True,
            "plots": [{k: v for k, v in p.items() if k != "png"} for p in figures]}


def write_report(store: Any, exp: int | None, outdir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the plots, ``index.html`` and ``manifest.json`` of ``exp`` into ``outdir``.

    ``exp`` None stands for a file that holds no experiment yet (empty plots).
    Returns the manifest.
    """
    outdir = os.fspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    data = load(store, exp)
    page, figures = build(data)
    for p in figures:
        _write_bytes(os.path.join(outdir, p["file"]), p["png"])
    _write_bytes(os.path.join(outdir, "index.html"), page.encode("utf-8"))
    manifest = manifest_of(data, figures)
    _write_bytes(os.path.join(outdir, "manifest.json"), json.dumps(manifest, indent=1).encode("utf-8"))
    return manifest
