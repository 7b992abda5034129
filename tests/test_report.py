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

from searches import SPEC, objective, run_search  # noqa: E402

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
    assert [p["panels"] for p in by_kind["trials_per_class"]] == [1]
    assert [p["panels"] for p in by_kind["runtime"]] == [1]
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


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is not installed (apt-get install -y chromium)")


def _dump_dom(page: Path) -> str:
    proc = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                           "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.chromium
def test_html_opens_in_headless_chromium(report, tmp_path):
    out, manifest = report
    dom = _dump_dom(out / "index.html")
    assert 'data-images="ok"' in dom
    assert dom.count("<img ") == len(manifest["plots"])
    # The check itself can fail: a page with a corrupt image reports it.
    page = (out / "index.html").read_text()
    broken = re.sub(r'base64,[A-Za-z0-9+/=]+" data-file="runtime.png"',
                    'base64,AAAA" data-file="runtime.png"', page)
    (tmp_path / "broken.html").write_text(broken)
    assert 'data-images="failed: runtime.png"' in _dump_dom(tmp_path / "broken.html")


def test_empty_store(tmp_path, capsys):
    db = tmp_path / "empty.db"
    ResultsStore(db).close()
    manifest = write(capsys, db, tmp_path / "out")
    check_plots(tmp_path / "out", manifest)
    assert [(p["kind"], p["panels"]) for p in manifest["plots"]] == [
        ("best_loss", 2), ("trials_per_class", 1), ("runtime", 1)]
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
    assert kinds[:3] == ["best_loss", "trials_per_class", "runtime"]
    page = (tmp_path / "out" / "index.html").read_text()
    assert "no completed trials yet" in page


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
