"""``shadho report --serve``: the live page, in headless Chromium, against a running search."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from browser import browser_page, check_report_page  # noqa: E402
from shadho.serve import ReportServer


def _writer(tmp_path: Path, db: Path, n: int, sleep: float) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from shadho import Shadho, spaces
        def objective(p):
            time.sleep({sleep})
            return (p['x'] - 0.3) ** 2
        opt = Shadho('live', objective, {{'x': spaces.uniform(-1, 1), 'k': spaces.choice([None, 'a'])}},
                     backend={str(db)!r}, max_tasks={n}, local_workers=2, quiet=True, seed=0)
        opt.run()
        print(sum(t.state == 'COMPLETE' for t in opt.trials))
    """))
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_experiment(db: Path, writer: subprocess.Popen, deadline: float) -> None:
    from shadho.store import ResultsStore

    while time.time() < deadline and writer.poll() is None:
        if db.exists():
            try:
                with ResultsStore(db, readonly=True) as store:
                    if store.experiments():
                        return
            except Exception:  # noqa: BLE001 - the writer may be creating the file right now
                pass
        time.sleep(0.1)
    pytest.fail("the search never created its experiment")


def _trials_on_page(page) -> int | None:
    try:
        return int(page.evaluate("document.documentElement.dataset.trials"))
    except Exception:  # noqa: BLE001 - the page is reloading
        return None


@pytest.mark.chromium
def test_live_page_updates_as_trials_finish(tmp_path):
    db = tmp_path / "live.db"
    n = 40
    writer = _writer(tmp_path, db, n, sleep=0.5)
    server = None
    try:
        _wait_for_experiment(db, writer, time.time() + 120)
        server = ReportServer(str(db), port=0, interval=0.3)
        assert server._httpd.server_address[0] == "127.0.0.1"  # localhost unless told otherwise
        server.start()
        seen: list[int] = []
        with browser_page() as (page, errors):
            check_report_page(page, errors, server.url, n_plots=5 + 1)
            deadline = time.time() + 240
            while time.time() < deadline:
                value = _trials_on_page(page)
                if value is not None and (not seen or value != seen[-1]):
                    seen.append(value)
                if writer.poll() is not None and seen and seen[-1] == n:
                    break
                time.sleep(0.2)
            out, err = writer.communicate(timeout=120)
            assert writer.returncode == 0, err
            assert out.split() == [str(n)]  # the master was never blocked and lost nothing
            assert seen[-1] == n and len(seen) >= 2 and seen == sorted(seen), seen
            check_report_page(page, errors, server.url, n_plots=5 + 1)
        info = json.loads(urllib.request.urlopen(server.url + "version", timeout=30).read())
        assert info["trials"] == n
        png = urllib.request.urlopen(server.url + "best_loss.png", timeout=30).read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        if server is not None:
            server.stop()
        if writer.poll() is None:
            writer.kill()


def test_serve_from_the_command_line(tmp_path):
    from searches import run_search

    db = tmp_path / "r.db"
    run_search(db, max_tasks=4, classes=False)
    before = db.read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "shadho", "report", str(db), "--serve", "--port", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "serving" in line and "http://localhost:" in line and "read-only" in line, line
        url = line.split(" at ")[1].split()[0]
        page = urllib.request.urlopen(url, timeout=60).read().decode()
        assert 'data-trials="4"' in page and "data-version=" in page
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "nope", timeout=60)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert db.read_bytes() == before  # read-only


def test_serve_errors_are_one_line(tmp_path, capsys):
    from shadho import cli

    assert cli.main(["report", str(tmp_path / "missing.db"), "--serve", "--port", "0"]) == 1
    assert cli.main(["report", str(tmp_path / "missing.db")]) == 1
    err = capsys.readouterr().err
    assert "no such results file" in err and "-o DIR" in err and "Traceback" not in err
