"""The managers' shared parts on their own: scratch folders, Work Queue's result-code table.

(The managers themselves: tests/test_manager_conformance.py, one suite for all of them.)
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from shadho.managers import tmpdirs, wq_results
from shadho.managers.outcome import Cause
from shadho.managers.workqueue import import_work_queue


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_stale_run_folders_of_dead_masters_are_removed_and_no_other(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = time.time() - 2 * tmpdirs.STALE_AFTER_S
    dead, alive, young, other = (tmp_path / f"shadho-x-{_dead_pid()}-ab12", tmp_path / f"shadho-x-{os.getpid()}-cd34",
                                 tmp_path / f"shadho-x-{_dead_pid()}-ef56", tmp_path / "shadho-x-notapid-gh78")
    for d in (dead, alive, young, other):
        d.mkdir()
        (d / "f").write_text("x")
        if d is not young:
            os.utime(d, (old, old))
    assert tmpdirs.remove_stale("shadho-x-") == [str(dead)]
    assert not dead.exists() and alive.exists() and young.exists() and other.exists()


def test_a_run_folder_is_private_and_removed(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = tmpdirs.make_run_folder("shadho-y-")
    assert os.stat(folder).st_mode & 0o777 == 0o700
    assert tmpdirs._master_pid(os.path.basename(folder), "shadho-y-") == os.getpid()
    tmpdirs.remove(folder)
    tmpdirs.remove(folder)  # gone already: nothing to do
    assert not os.path.exists(folder)


def test_every_result_code_of_the_table_is_one_of_work_queue_s():
    wq = import_work_queue()  # the real module: a renamed code would silently read as "ran"
    assert all(hasattr(wq, name) for name in wq_results.RESULT_CAUSES)
    assert all(hasattr(wq, name) for name in wq_results._RAN)


@pytest.mark.parametrize("result, status, cause", [
    ("WORK_QUEUE_RESULT_SUCCESS", 0, None),
    ("WORK_QUEUE_RESULT_SUCCESS", 137, Cause.SIGNAL),          # the shell's 128 + SIGKILL
    ("WORK_QUEUE_RESULT_OUTPUT_MISSING", 1, None),              # ran: its exit status tells
    ("WORK_QUEUE_RESULT_SIGNAL", 9, Cause.SIGNAL),
    ("WORK_QUEUE_RESULT_TASK_MAX_RUN_TIME", 0, Cause.TIMEOUT),
    ("WORK_QUEUE_RESULT_MAX_RETRIES", 0, Cause.WORKER_LOST),
    ("WORK_QUEUE_RESULT_FORSAKEN", 0, Cause.FORSAKEN),
])
def test_work_queue_results_map_to_causes(result: str, status: int, cause: Cause | None):
    wq = import_work_queue()
    # The fields a finished Work Queue task exposes (a real one needs a run: see test_workqueue.py).
    t = SimpleNamespace(result=getattr(wq, result), return_status=status, result_str=result,
                        limits_exceeded=None, output="")
    assert wq_results.cause_of(wq, t) is cause
    why = wq_results.why_failed(wq, t, 2.0, "big")
    assert (why is None) == (cause is None)
    if cause is Cause.SIGNAL:
        assert why == "task killed by signal SIGKILL"
    if cause is not None:
        assert cause.worker_lost == (cause in (Cause.WORKER_LOST, Cause.FORSAKEN))
