"""The reports a new user sees, checked by screenshot in headless Chromium: the README's
demo (``shadho demo --quick``: real Work Queue workers) and a search whose objective keeps
failing. Set ``SHADHO_SCREENSHOTS=DIR`` to keep the screenshots (docs/ holds copies)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser import browser_page, check_report_page  # noqa: E402
from shadho import Shadho, cli, spaces

from test_report import png_size  # noqa: E402


def _report_and_shot(db: Path, out: Path, name: str, capsys) -> dict:
    assert cli.main(["report", str(db), "-o", str(out)]) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    shot = out / name
    with browser_page(scale=0.6, width=1300, height=1900) as (page, errors):
        seen = check_report_page(page, errors, (out / "index.html").resolve().as_uri(),
                                 len(manifest["plots"]))
        page.screenshot(path=str(shot))  # the first screenful-and-a-half: what a user sees first
    width, height = png_size(shot)
    assert (width, height) == (780, 1140) and shot.stat().st_size < 400_000
    keep = os.environ.get("SHADHO_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, Path(keep) / name)
    return {"manifest": manifest, "seen": seen, "page": (out / "index.html").read_text()}


@pytest.mark.chromium
def test_readme_demo_report(tmp_path, capsys):
    db = tmp_path / "shadho-demo.db"
    proc = subprocess.run([sys.executable, "-m", "shadho", "demo", "--quick", "--backend", str(db)],
                          cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("shadho demo: 20 trials over 4 search spaces"), lines[:3]
    assert not any("warning" in ln.lower() for ln in lines[:3]), lines[:3]
    got = _report_and_shot(db, tmp_path / "report", "report-demo.png", capsys)
    page = got["page"]
    assert "svm-digits" in page and "sampler</td><td class=l>tpe" in page
    assert "small, big" in page and page.count("<tr><td>") >= 10
    kinds = [p["kind"] for p in got["manifest"]["plots"]]
    assert kinds[:5] == ["best_loss", "routing", "runtime", "failures", "importance"]
    assert kinds.count("params") == 4


def _flaky(params):
    if params["lr"] > 0.1:
        raise ValueError(f"learning rate {params['lr']} diverged")
    if params["layers"] == 3:
        raise MemoryError("out of memory with 3 layers")
    return params["lr"]


@pytest.mark.chromium
def test_failing_search_report(tmp_path, capsys):
    db = tmp_path / "failing.db"
    opt = Shadho("failing", _flaky, {"lr": spaces.log10_uniform(-3, 0), "layers": spaces.choice([1, 2, 3])},
                 backend=str(db), max_tasks=24, manager="local", local_workers=2, quiet=True, seed=1)
    opt.run()
    opt.close()
    got = _report_and_shot(db, tmp_path / "report", "report-failing.png", capsys)
    page = got["page"]
    assert "finished trials failed; the most common cause" in page
    assert "ValueError: learning rate &lt;num&gt; diverged" in page
    assert "MemoryError: out of memory with 3 layers" in page
    assert page.count("Traceback (most recent call last)") == 2  # one example per cause
