"""``shadho report``: PNG plots with known panel counts and a self-contained HTML page."""
from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import matplotlib  # noqa: E402,F401 - a test extra; missing must fail, not skip

from shadho import Shadho  # noqa: E402
from shadho import cli  # noqa: E402
from shadho.store import ResultsStore  # noqa: E402

from browser import browser_page, check_report_page  # noqa: E402
from searches import SPEC, objective, rung_search, run_search  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def always_fails(params):
    raise RuntimeError("broken objective")


DIMS = {"svm/linear": ["C"], "svm/rbf": ["C", "gamma"], "svm/poly": ["C", "degree", "coef"]}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def write(capsys, db: Path, out: Path, *extra: str) -> dict:
    rc = cli.main(["report", str(db), "-o", str(out), *extra])
    _, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads((out / "manifest.json").read_text())


def check_plots(out: Path, manifest: dict) -> None:
    for p in manifest["plots"]:
        assert png_size(out / p["file"]) == (p["width"], p["height"])
        assert p["panels"] == len(p["panel_titles"])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    run_search(base / "r.db")
    out = base / "out"
    rc = cli.main(["report", str(base / "r.db"), "-o", str(out)])
    assert rc == 0
    return out, json.loads((out / "manifest.json").read_text())


def test_plots_and_panel_counts(report):
    out, manifest = report
    check_plots(out, manifest)
    by_kind = {}
    for p in manifest["plots"]:
        by_kind.setdefault(p["kind"], []).append(p)
    assert [p["panels"] for p in by_kind["best_loss"]] == [2]
    assert [p["panels"] for p in by_kind["routing"]] == [3]
    assert [p["panels"] for p in by_kind["runtime"]] == [1]
    with ResultsStore(out.parent / "r.db", readonly=True) as store:
        n_failed = store.counts(store.experiment_id("t"))["FAILED"]
        trials = store.trials(store.experiment_id("t"))
    boxes = by_kind["runtime"][0]["boxes"]  # one box per (space, class), labelled with its count
    assert sum(b["n"] for b in boxes) == sum(t.runtime is not None for t in trials)
    for b in boxes:
        assert b["n"] == sum(1 for t in trials if t.searchspace == b["space"] and t.compute_class == b["class"]
                             and t.runtime is not None)
    assert n_failed > 0  # degree 5 fails
    assert [p["panel_titles"] for p in by_kind["failures"]] == [
        [f"failed trials by cause ({n_failed} of 30 trials)"]]
    assert [p["panel_titles"] for p in by_kind["importance"]] == [list(DIMS)]
    params = {p["space"]: p for p in by_kind["params"]}
    assert set(params) == set(DIMS)
    for name, dims in DIMS.items():
        assert params[name]["panels"] == len(dims)
        assert params[name]["panel_titles"] == dims  # coef is categorical: still one panel
    assert manifest["experiment"] == "t" and manifest["embedded"] is True


def test_panel_counts_follow_the_stored_spaces(report, tmp_path):
    out, manifest = report
    with ResultsStore(out.parent / "r.db", readonly=True) as store:
        stored = store.spaces(store.experiment_id("t"))
    params = {p["space_id"]: p["panels"] for p in manifest["plots"] if p["kind"] == "params"}
    assert params == {s["id"]: len(s["dims"]) for s in stored}


def test_html_embeds_and_links_every_plot(report):
    out, manifest = report
    page = (out / "index.html").read_text()
    assert "<title>shadho report: t</title>" in page
    for name in DIMS:
        assert name in page
    for p in manifest["plots"]:
        assert f'href="{p["file"]}"' in page
        m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)" data-file="'
                      + re.escape(p["file"]) + '"', page)
        assert m, p["file"]
        assert base64.b64decode(m.group(1)) == (out / p["file"]).read_bytes()
    assert page.count("<img ") == len(manifest["plots"])


def test_empty_store(tmp_path, capsys):
    db = tmp_path / "empty.db"
    ResultsStore(db).close()
    manifest = write(capsys, db, tmp_path / "out")
    check_plots(tmp_path / "out", manifest)
    assert [(p["kind"], p["panels"]) for p in manifest["plots"]] == [
        ("best_loss", 2), ("routing", 3), ("runtime", 1), ("failures", 1), ("importance", 1)]
    assert (tmp_path / "out" / "index.html").exists()


def test_experiment_without_trials(tmp_path, capsys):
    db = tmp_path / "none.db"
    run_search(db, max_tasks=0)
    manifest = write(capsys, db, tmp_path / "out")
    check_plots(tmp_path / "out", manifest)
    params = {p["space"]: p["panels"] for p in manifest["plots"] if p["kind"] == "params"}
    assert params == {k: len(v) for k, v in DIMS.items()}


def test_failed_only_trials(tmp_path, capsys):
    db = tmp_path / "failed.db"
    run_search(db, fn=always_fails, max_tasks=8, classes=False)
    manifest = write(capsys, db, tmp_path / "out")
    check_plots(tmp_path / "out", manifest)
    kinds = [p["kind"] for p in manifest["plots"]]
    assert kinds[:5] == ["failures", "best_loss", "routing", "runtime", "importance"]  # failures first
    page = (tmp_path / "out" / "index.html").read_text()
    assert "no completed trials yet" in page
    assert "8 of 8 finished trials failed; the most common cause (8&times;)" in page
    failures = page[page.index('<h2 id="failures">Failures</h2>'):]
    assert "<b>8</b> &times; <code>RuntimeError: broken objective</code>" in failures
    assert "Traceback (most recent call last)" in failures and "example: trial 1" in failures


def test_report_picks_the_experiment(tmp_path, capsys):
    db = tmp_path / "two.db"
    run_search(db, max_tasks=3, classes=False)
    opt = Shadho("other", objective, {"svm": SPEC["svm"]["rbf"]}, backend=str(db), max_tasks=3,
                 quiet=True, seed=1, local_workers=1)
    opt.run()
    opt.close()
    rc = cli.main(["report", str(db), "-o", str(tmp_path / "o")])
    assert rc == 1 and "--exp" in capsys.readouterr().err
    manifest = write(capsys, db, tmp_path / "o", "--exp", "other")
    assert manifest["experiment"] == "other"
    assert [p["panels"] for p in manifest["plots"] if p["kind"] == "params"] == [2]


# ---------------------------------------------------------------- what the page says

def test_header_settings_and_top_ten(report):
    out, _ = report
    page = (out / "index.html").read_text()
    for text in ("<h2>Run settings</h2>", "sampler", "budget", "30 trials", "timeout",
                 "small, big", "complexity on, uncertainty on", "1 (0 resumes)", "<h2>Top 10 trials</h2>"):
        assert text in page, text
    with ResultsStore(out.parent / "r.db", readonly=True) as store:
        trials = store.trials(store.experiment_id("t"))
    best = sorted((t for t in trials if t.loss is not None), key=lambda t: (t.loss, t.id))[:10]
    top = page[page.index("<h2>Top 10 trials</h2>"):page.index("<h2>Plots</h2>")]
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td>", top)
    assert [int(r[1]) for r in rows] == [t.id for t in best]
    assert best[0].worker and best[0].worker in top


def test_captions_explain_and_name_the_importance_method(report):
    out, manifest = report
    for p in manifest["plots"]:
        assert len(p["caption"]) > 80 and p["file"] not in p["caption"]
    imp = next(p for p in manifest["plots"] if p["kind"] == "importance")
    assert "RandomForestRegressor" in imp["caption"] and "permutation" in imp["caption"]


def test_data_tables_behind_the_plots(report):
    from shadho import report_data
    from shadho.report_params import importance

    out, _ = report
    with ResultsStore(out.parent / "r.db", readonly=True) as store:
        data = report_data.load(store, store.experiment_id("t"))
    names, classes, counts = report_data.routing_counts(data)
    assert names == list(DIMS) and classes == ["small", "big"]
    assert sum(map(sum, counts)) == 30
    speeds = report_data.class_speeds(data)
    assert sum(n for row in speeds for _, n in row) == sum(t.loss is not None for t in data.trials)
    timeline = report_data.assignment_timeline(data)
    assert set(timeline) == {s["id"] for s in data.spaces}
    # C matters in every space (the loss grows with (C-1)^2); the space with the most
    # completed trials (how 30 trials split over 3 spaces depends on the workers' timing).
    done = [t.space_id for t in data.trials if t.loss is not None]
    space = max(data.spaces, key=lambda s: done.count(s["id"]))
    rows = importance(space, data.trials)
    assert rows is not None and rows[0][0] == "C" and rows[0][1] > rows[1][1]


def test_a_multi_fidelity_report_shows_rungs_promotions_and_budget_spent(tmp_path, capsys, report):
    rung_search(tmp_path / "mf.db")
    write(capsys, tmp_path / "mf.db", tmp_path / "out")
    page = (tmp_path / "out" / "index.html").read_text()
    assert '<h2 id="rungs">Rungs</h2>' in page and "Budget spent: <b>12</b> over 8 finished rung runs" in page
    rows = re.findall(r"<tr>((?:<td[^>]*>[^<]*</td>)+)</tr>", page.split('id="rungs"')[1].split("</table>")[0])
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", r) for r in rows]
    assert cells == [["0", "1", "6", "6", "0", "0", "cpu 6"], ["1", "3", "2", "2", "0", "2", "gpu 2"],
                     ["2", "9", "1", "0", "1", "1", "-"]]
    out, _ = report
    assert 'id="rungs"' not in (out / "index.html").read_text()  # a search without a fidelity


def test_none_is_a_category_not_null():
    from shadho.report_params import _positions, label

    xs, cats = _positions({"type": "choice", "values": [None, "a"]}, [None, "a", None])
    assert cats == ["None", "a"] and [round(x) for x in xs] == [0, 1, 0]
    assert label(None) == "None" and label(False) == "False"


def test_resumes_are_marked(tmp_path, capsys):
    db = tmp_path / "resumed.db"
    run_search(db, max_tasks=4, classes=False)
    run_search(db, max_tasks=8, classes=False)
    with ResultsStore(db, readonly=True) as store:
        runs = store.runs(store.experiment_id("t"))
    assert len(runs) == 2 and runs[0]["start"] < runs[1]["start"]
    manifest = write(capsys, db, tmp_path / "out")
    assert "2 (1 resumes)" in (tmp_path / "out" / "index.html").read_text()
    assert manifest["plots"][0]["kind"] == "best_loss" and manifest["plots"][0]["resumes_marked"] == 1


# ---------------------------------------------------------------- in a browser

@pytest.mark.chromium
def test_page_renders_in_headless_chromium(report, tmp_path):
    out, manifest = report
    with browser_page() as (page, errors):
        seen = check_report_page(page, errors, (out / "index.html").resolve().as_uri(),
                                 len(manifest["plots"]))
        assert sorted(seen["decoded"]) == sorted(p["file"] for p in manifest["plots"])
        assert {"Run settings", "Top 10 trials", "Plots"} <= set(seen["headings"])
        page.screenshot(path=str(tmp_path / "shot.png"), full_page=True)
    assert png_size(tmp_path / "shot.png")[1] > 1000
    # The check itself can fail: a page with a corrupt image reports it.
    page_text = (out / "index.html").read_text()
    broken = re.sub(r'base64,[A-Za-z0-9+/=]+" data-file="runtime.png"',
                    'base64,AAAA" data-file="runtime.png"', page_text)
    (tmp_path / "broken.html").write_text(broken)
    with browser_page() as (page, errors):
        page.goto((tmp_path / "broken.html").resolve().as_uri())
        page.wait_for_function("document.documentElement.dataset.images !== 'loading'")
        assert page.evaluate("document.documentElement.dataset.images") == "failed: runtime.png"
