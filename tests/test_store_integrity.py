"""The results file under attack (issue 12): the lease, a full disk, damage behind the master's back.

Masters run as real processes; "another host" is a master whose host name is patched
and whose OS locks are switched off (as on a filesystem that does not share them), and
"another PID namespace" is a real one (``unshare --pid``).
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from typing import Any

import pytest

from shadho.errors import StoreDamagedError
from shadho.store import ResultsStore


_MASTER = """
import socket, sys, time
from shadho import Shadho, spaces, lease
host, n, sleep, ofd, page_limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
if host != "-":
    socket.gethostname = lambda: host
if ofd == "no-os-locks":  # as on a filesystem that does not share locks between hosts
    lease._OFD_SETLK = lease._OFD_GETLK = None
def slow(p, s=sleep):
    import time
    time.sleep(s)
    return p["x"]
opt = Shadho("e", slow, {{"x": spaces.uniform(0, 1)}}, backend={db!r}, max_tasks=n, local_workers=2,
             quiet=True, timeout=120, seed=1)
if page_limit:
    c = opt.open().store.conn
    c.execute(f"PRAGMA max_page_count={{c.execute('PRAGMA page_count').fetchone()[0] + page_limit}}")
opt.run()
print("DONE", len(opt.trials), flush=True)
"""


def _script(tmp_path: Any, db: str) -> str:
    path = tmp_path / "master.py"
    path.write_text(_MASTER.format(db=db))
    return str(path)


def _start(script: str, host: str = "-", n: int = 10, sleep: float = 0.3, ofd: str = "os-locks",
           page_limit: int = 0, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen([*prefix, sys.executable, script, host, str(n), str(sleep), ofd, str(page_limit)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(script: str, **kw: Any) -> subprocess.CompletedProcess:
    p = _start(script, **kw)
    out, err = p.communicate(timeout=180)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _complete(db: str) -> int:
    try:
        with ResultsStore(db, readonly=True) as s:
            return s.counts(1)["COMPLETE"]
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def _wait_for(pred: Any, limit: float) -> bool:
    end = time.time() + limit
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _stop(p: subprocess.Popen) -> tuple[str, str]:
    if p.poll() is None:
        p.kill()
    return p.communicate(timeout=60)


# ---------------------------------------------------------------- the lease


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_a_master_in_another_pid_namespace_is_refused(db, tmp_path):
    script = _script(tmp_path, db)
    first = _start(script, n=60)  # 18 s: still running when the second starts on a loaded machine
    try:
        assert _wait_for(lambda: _complete(db) >= 1, 60)
        probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.fail(f"unshare --pid does not work here: {probe.stderr!r}")
        second = _run(script, n=50, prefix=("unshare", "--pid", "--fork"))
        assert second.returncode != 0 and "StoreLockedError" in second.stderr, second.stderr[-2000:]
        assert "in use by another master" in second.stderr
        out, err = first.communicate(timeout=120)
    finally:
        _stop(first)
    assert first.returncode == 0, err[-2000:]
    with ResultsStore(db, readonly=True) as s:
        assert [t.id for t in s.trials(1)] == list(range(1, 61))  # the second master added nothing


def test_a_master_on_another_host_is_refused_while_the_heartbeat_is_fresh(db, tmp_path):
    script = _script(tmp_path, db)
    first = _start(script, host="host-a", n=400, ofd="no-os-locks")  # still running when the second starts
    try:
        assert _wait_for(lambda: _complete(db) >= 1, 60)
        second = _run(script, host="host-b", n=500, ofd="no-os-locks")
        assert first.poll() is None
        assert second.returncode != 0 and "in use by another master" in second.stderr, second.stderr[-2000:]
        assert "on host-a" in second.stderr
    finally:
        _stop(first)


def test_a_master_that_exits_cleanly_releases_the_lease_at_once(db, tmp_path):
    script = _script(tmp_path, db)
    # The script never calls close(): its lease ends with the process.
    assert _run(script, host="host-a", n=4, sleep=0.0, ofd="no-os-locks").returncode == 0
    t0 = time.time()
    again = _run(script, host="host-b", n=8, sleep=0.0, ofd="no-os-locks")
    assert again.returncode == 0 and "DONE 8" in again.stdout, again.stderr[-2000:]
    assert time.time() - t0 < 30


def test_a_killed_master_on_another_host_is_taken_over_after_the_lease_ttl(db, tmp_path, monkeypatch):
    from shadho import lease

    script = _script(tmp_path, db)
    first = _start(script, host="host-a", n=200, ofd="no-os-locks")
    try:
        assert _wait_for(lambda: _complete(db) >= 1, 60)
    finally:
        first.send_signal(signal.SIGKILL)
        _stop(first)
    with ResultsStore(db) as s:  # no OS lock can tell: the heartbeat decides
        monkeypatch.setattr(lease, "_OFD_SETLK", None)
        monkeypatch.setattr("socket.gethostname", lambda: "host-b")
        with pytest.raises(Exception, match="in use by another master"):
            s.open_experiment("e")
        s.conn.execute("UPDATE experiments SET heartbeat=heartbeat-?", (lease.LEASE_TTL + 1,))
        s.open_experiment("e")


def test_a_killed_master_on_this_host_is_taken_over_at_once(db, tmp_path):
    script = _script(tmp_path, db)
    first = _start(script, n=200)
    try:
        assert _wait_for(lambda: _complete(db) >= 1, 60)
    finally:
        first.send_signal(signal.SIGKILL)
        _stop(first)
    again = _run(script, n=_complete(db) + 3, sleep=0.0)  # its OS lock went with it
    assert again.returncode == 0, again.stderr[-2000:]


# ---------------------------------------------------------------- a full disk


def test_a_full_disk_says_results_are_safe_and_how_to_resume(db, tmp_path):
    script = _script(tmp_path, db)
    r = _run(script, n=400, sleep=0.0, page_limit=3)
    assert r.returncode != 0
    assert "StoreFullError" in r.stderr and "is full" in r.stderr, r.stderr[-3000:]
    assert "safe" in r.stderr and "run the same script again to resume" in r.stderr
    assert "sqlite3." not in r.stderr and "During handling" not in r.stderr, r.stderr[-3000:]
    assert r.stderr.count("Traceback") == 1, r.stderr[-3000:]
    done = _complete(db)
    assert done >= 1
    again = _run(script, n=done + 5, sleep=0.0)  # space freed (no page limit): resume
    assert again.returncode == 0 and f"DONE {done + 5}" in again.stdout, again.stderr[-2000:]


# ---------------------------------------------------------------- damage behind the master's back


@pytest.mark.parametrize("damage", ["truncate", "delete-wal", "replace"])
def test_a_results_file_damaged_mid_run_stops_the_master_loudly(db, tmp_path, damage):
    script = _script(tmp_path, db)
    first = _start(script, n=200, sleep=0.05)
    try:
        assert _wait_for(lambda: _complete(db) >= 3 and os.path.exists(db + "-wal"), 60)
        if damage == "truncate":
            os.truncate(db, 0)
        elif damage == "delete-wal":
            os.unlink(db + "-wal")
        else:
            shutil.copy(db, db + ".copy")
            os.replace(db + ".copy", db)
        out, err = first.communicate(timeout=120)
    finally:
        _stop(first)
    assert first.returncode != 0 and "DONE" not in out, (out, err[-2000:])
    assert "StoreDamagedError" in err and "while this master was writing it" in err, err[-3000:]


def test_a_resume_after_the_wal_was_lost_refuses_to_go_on(db, tmp_path):
    script = _script(tmp_path, db)
    first = _start(script, n=200, sleep=0.05)
    try:
        assert _wait_for(lambda: _complete(db) >= 3, 60)
        os.unlink(db + "-wal")  # then the master dies: its last commits die with the WAL
        first.send_signal(signal.SIGKILL)
    finally:
        _stop(first)
    again = _run(script, n=10, sleep=0.0)
    assert again.returncode != 0 and "StoreDamagedError" in again.stderr, again.stderr[-2000:]
    assert "lost data" in again.stderr or "no shadho tables" in again.stderr or "is empty" in again.stderr


def test_a_resume_on_an_emptied_file_refuses_to_start_afresh(db, tmp_path):
    script = _script(tmp_path, db)
    assert _run(script, n=4, sleep=0.0).returncode == 0
    os.truncate(db, 0)
    again = _run(script, n=4, sleep=0.0)
    assert again.returncode != 0 and "is empty, but its side file" in again.stderr, again.stderr[-2000:]
    with pytest.raises(StoreDamagedError):
        ResultsStore(db)


def _zero_pages(db: str) -> None:
    with sqlite3.connect(db) as c:
        page = c.execute("PRAGMA page_size").fetchone()[0]
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(db)
    with open(db, "r+b") as fh:  # every page but the first (the schema) becomes zeros
        fh.seek(page)
        fh.write(b"\0" * (size - page))


def test_pages_of_zeros_give_a_clear_error_wherever_the_file_is_opened(db, tmp_path):
    script = _script(tmp_path, db)
    assert _run(script, n=30, sleep=0.0).returncode == 0
    _zero_pages(db)
    shadho = [sys.executable, "-m", "shadho"]
    for args in (["status", db], ["export", "--format", "csv", "-o", str(tmp_path / "out.csv"), db]):
        r = subprocess.run(shadho + args, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "damaged" in r.stderr, (args, r.stderr[-2000:])
        assert "Traceback" not in r.stderr, r.stderr[-2000:]
    again = _run(script, n=40, sleep=0.0)
    assert again.returncode != 0 and "StoreDamagedError" in again.stderr and "damaged" in again.stderr
    assert "sqlite3.DatabaseError" not in again.stderr, again.stderr[-2000:]
    with pytest.raises(StoreDamagedError, match="damaged"):
        with ResultsStore(db, readonly=True) as s:
            s.trials(1)

