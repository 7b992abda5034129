"""The SQLite results store: round trip, resume, locks, bad files, export, crash safety."""
from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from shadho.errors import StoreError, StoreLockedError
from shadho.spaces import split, uniform
from shadho.store import ResultsStore, TrialUpdate
from shadho.store_json import JsonMirroredStore
from shadho.trial import TrialState

SPACES = split({"exclusive": True, "a": {"x": uniform(0, 1)}, "b": {"y": uniform(0, 1)}})


def _fill(store: ResultsStore, exp: int, n: int = 4) -> list[int]:
    ids = [store.add_trial(exp, SPACES[i % 2].id, {"p": i}, [i / 10]) for i in range(n)]
    store.mark_submitted(ids, "cls")
    return ids


def _experiment(store: ResultsStore, n: int, settings: dict | None = None) -> tuple[int, list[int]]:
    """Experiment 'e' with both spaces registered and ``n`` running trials."""
    exp = store.open_experiment("e", settings)
    store.register_spaces(exp, SPACES)
    return exp, _fill(store, exp, n)


def test_round_trip(db):
    with ResultsStore(db) as s:
        exp = s.open_experiment("e", {"k": 1})
        s.register_spaces(exp, SPACES)
        ids = _fill(s, exp)
        s.finish_trials([TrialUpdate(ids[0], TrialState.COMPLETE, loss=0.25, results={"acc": 0.9},
                                     worker="w1", start_time=1.0, finish_time=2.0),
                         TrialUpdate(ids[1], TrialState.FAILED, error="boom")])
    with ResultsStore(db, readonly=True) as r:
        exp = r.experiment_id("e")
        ts = r.trials(exp)
        assert [t.state for t in ts] == [TrialState.COMPLETE, TrialState.FAILED, TrialState.RUNNING,
                                         TrialState.RUNNING]
        assert ts[0].loss == 0.25 and ts[0].results == {"acc": 0.9} and ts[0].worker == "w1"
        assert ts[0].runtime == 1.0 and ts[0].compute_class == "cls" and ts[0].attempts == 1
        assert ts[0].searchspace == "a" and ts[1].error == "boom" and ts[0].params == {"p": 0}
        assert r.settings(exp) == {"k": 1}
        assert r.counts(exp)["RUNNING"] == 2


def test_finished_trial_is_never_overwritten(db):
    with ResultsStore(db) as s:
        exp = s.open_experiment("e")
        (tid,) = _fill(s, exp, 1)
        assert s.finish_trials([TrialUpdate(tid, TrialState.COMPLETE, loss=1.0)]) == 1
        assert s.finish_trials([TrialUpdate(tid, TrialState.FAILED, error="late")]) == 0
        assert s.trials(exp)[0].loss == 1.0 and s.trials(exp)[0].state == TrialState.COMPLETE


def test_requeue_running_for_resume(db):
    with ResultsStore(db) as s:
        exp = s.open_experiment("e")
        ids = _fill(s, exp, 3)
        s.finish_trials([TrialUpdate(ids[0], TrialState.COMPLETE, loss=1.0)])
        assert s.requeue_running(exp) == ids[1:]
        assert s.counts(exp)["WAITING"] == 2


def test_second_master_gets_a_lock_error_and_dead_owner_is_taken_over(db):
    code = textwrap.dedent(f"""
        import sys, time
        from shadho.store import ResultsStore
        s = ResultsStore({db!r}); s.open_experiment('e'); print('locked', flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with ResultsStore(db) as s:
            with pytest.raises(StoreLockedError, match="in use by another master"):
                s.open_experiment("e")
            s.open_experiment("other")  # other experiments in the same file are free
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with ResultsStore(db) as s:  # the owner died: the lock is stale
        s.open_experiment("e")


@pytest.mark.parametrize("content,msg", [
    (b"hello, this is text\n" * 10, "not a shadho results file"),
    (b"", None),
])
def test_bad_files(tmp_path, content, msg):
    p = tmp_path / "x.db"
    p.write_bytes(content)
    if msg is None:  # an empty file is a new, empty database
        ResultsStore(str(p)).close()
        return
    with pytest.raises(StoreError, match=msg):
        ResultsStore(str(p))


def test_foreign_sqlite_newer_schema_truncated_and_missing(tmp_path, db):
    foreign = tmp_path / "foreign.db"
    c = sqlite3.connect(foreign)
    c.execute("CREATE TABLE users (id INTEGER)")
    c.commit()
    c.close()
    with pytest.raises(StoreError, match="not a shadho results file"):
        ResultsStore(str(foreign))
    with ResultsStore(db) as s:
        exp = s.open_experiment("e")
        _fill(s, exp, 50)
    c = sqlite3.connect(db)
    c.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    c.commit()
    c.close()
    with pytest.raises(StoreError, match="newer shadho"):
        ResultsStore(db)
    with pytest.raises(StoreError, match="no such results file"):
        ResultsStore(str(tmp_path / "missing.db"), readonly=True)
    trunc = tmp_path / "trunc.db"
    data = open(db, "rb").read()
    trunc.write_bytes(data[:100])
    with pytest.raises(StoreError):
        s = ResultsStore(str(trunc))
        s.trials(1)


def test_export_json_csv_dataframe(db, tmp_path):
    with ResultsStore(db) as s:
        exp, ids = _experiment(s, 2)
        s.finish_trials([TrialUpdate(ids[0], TrialState.COMPLETE, loss=0.5, results={"m": {"k": 1}})])
        doc = s.export_json(exp, tmp_path / "out.json")
        assert json.load(open(tmp_path / "out.json")) == json.loads(json.dumps(doc))
        assert doc["trials"][0]["loss"] == 0.5 and len(doc["spaces"]) == 2
        s.export_csv(exp, tmp_path / "out.csv")
        rows = list(csv.DictReader(open(tmp_path / "out.csv")))
        assert rows[0]["params.p"] == "0" and rows[0]["results.m.k"] == "1" and rows[0]["state"] == "COMPLETE"
        df = s.to_dataframe(exp)
        assert list(df["state"]) == ["COMPLETE", "RUNNING"]


def test_json_store_round_trip(tmp_path):
    path = str(tmp_path / "r.json")
    s = JsonMirroredStore(path)
    exp = s.open_experiment("e")
    s.register_spaces(exp, SPACES)
    ids = _fill(s, exp, 2)
    s.finish_trials([TrialUpdate(ids[0], TrialState.COMPLETE, loss=0.5)])
    s.close()
    s2 = JsonMirroredStore(path)
    exp = s2.open_experiment("e")
    assert [t.loss for t in s2.trials(exp)] == [0.5, None]
    s2.close()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(StoreError, match="not a shadho JSON results file"):
        JsonMirroredStore(str(tmp_path / "bad.json"))


def test_kill_during_writes_leaves_a_readable_store(db):
    """SIGKILL a writer at random moments: the file always opens and passes integrity_check."""
    code = textwrap.dedent(f"""
        from shadho.store import ResultsStore, TrialUpdate
        from shadho.trial import TrialState
        s = ResultsStore({db!r}); exp = s.open_experiment('e')
        i = 0
        while True:
            t = s.add_trial(exp, 's', {{'i': i}}, [0.0]); s.mark_submitted([t], None)
            s.finish_trials([TrialUpdate(t, TrialState.COMPLETE, loss=float(i))]); i += 1
    """)
    for delay in (0.3, 0.55, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", code])
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with ResultsStore(db) as s:
            assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            exp = s.open_experiment("e")
            done = s.trials(exp, state=TrialState.COMPLETE)
            assert all(t.loss == t.params["i"] for t in done)
    assert os.path.getsize(db) > 0


def test_space_stats_over_time_with_performance_and_share(db):
    with ResultsStore(db) as s:
        exp = s.open_experiment("e")
        s.register_spaces(exp, SPACES)
        s.record_space_stats(exp, [{"space_id": SPACES[0].id, "n_complete": 1, "complexity": 2.0,
                                    "uncertainty": 1.0, "rank": 1, "classes": ["a", "b"],
                                    "performance": 0.5, "share": 0.7}])
        s.record_space_stats(exp, [{"space_id": SPACES[0].id, "n_complete": 5, "rank": 2, "classes": ["a"]}])
        rows = s.space_stats(exp)
        assert [r["n_complete"] for r in rows] == [1, 5]
        assert rows[0]["performance"] == 0.5 and rows[0]["share"] == 0.7 and rows[0]["classes"] == ["a", "b"]
        (latest,) = s.space_stats(exp, latest=True)
        assert latest["rank"] == 2 and latest["classes"] == ["a"]


# ---------------------------------------------------------------- reads for readers

def test_best_trial_is_the_lowest_loss_oldest_first_and_follows_space_ids(db):
    with ResultsStore(db) as s:
        exp, ids = _experiment(s, 5)
        assert s.best_trial(exp) is None
        losses = [0.5, 0.2, 0.3, 0.2, None]
        s.finish_trials([TrialUpdate(i, TrialState.COMPLETE if v is not None else TrialState.FAILED, loss=v)
                         for i, v in zip(ids, losses)])
        assert s.best_trial(exp).id == ids[1]  # a tie goes to the older trial
        assert s.best_trial(exp, [SPACES[0].id]).id == ids[2]  # ids 0, 2, 4 are space a
        assert s.best_trial(exp, []) is None


def test_snapshot_reads_one_experiment_in_one_transaction(db):
    with ResultsStore(db) as s:
        exp, _ = _experiment(s, 3, {"space_ids": [SPACES[0].id]})
        s.record_space_stats(exp, [{"space_id": SPACES[0].id, "rank": 2}])
        s.record_space_stats(exp, [{"space_id": SPACES[0].id, "rank": 1}])
    with ResultsStore(db, readonly=True) as r:
        data = r.snapshot(r.experiment_id("e"))
        assert not r.conn.in_transaction  # the read transaction ended
        full = r.snapshot(r.experiment_id("e"), history=True)
    assert data.key == "e" and len(data.trials) == 3 and [sp["id"] for sp in data.spaces] == [sp.id for sp in SPACES]
    assert data.latest_stats[SPACES[0].id]["rank"] == 1 and data.stats == []
    assert [row["rank"] for row in full.stats] == [2, 1]
    assert data.current_space_ids == {SPACES[0].id} and data.progress["running_master"] is False
    assert len(data.runs) == 1
    with ResultsStore(db, readonly=True) as r, pytest.raises(StoreError, match="no experiment"):
        r.snapshot(99)


def test_restore_keeps_ids_and_values(db, tmp_path):
    with ResultsStore(db) as s:
        exp, ids = _experiment(s, 3)
        s.finish_trials([TrialUpdate(ids[1], TrialState.COMPLETE, loss=0.1, results={"acc": 1.0})])
        doc = s.export_json(exp)
    with ResultsStore(tmp_path / "copy.db") as c:
        exp = c.open_experiment("e")
        c.restore(exp, doc)
        assert [t.to_dict() for t in c.trials(exp)] == doc["trials"]
        assert c.spaces(exp) == doc["spaces"]


def test_task_starts_are_recorded_cleared_on_resubmission_and_resume(db):
    with ResultsStore(db) as s:
        exp = s.open_experiment("e")
        ids = _fill(s, exp, 3)
        assert [t.task_start_time for t in s.trials(exp)] == [None] * 3  # all queued
        s.mark_started([(ids[0], 10.0), (ids[1], 11.0)])
        s.finish_trials([TrialUpdate(ids[0], TrialState.COMPLETE, loss=1.0, start_time=10.2)])
        s.mark_started([(ids[0], 99.0), (ids[1], None)])  # finished: kept; back in the queue: cleared
        assert [t.task_start_time for t in s.trials(exp)] == [10.0, None, None]
        s.mark_started([(ids[1], 12.0), (ids[2], 13.0)])
        s.mark_submitted([ids[1]], "cls")  # sent again (its worker was lost): queued again
        assert [t.task_start_time for t in s.trials(exp)] == [10.0, None, 13.0]
        assert s.trials(exp)[0].start_time == 10.2  # the trial's own start stays apart
        assert s.requeue_running(exp) == ids[1:]
        assert [t.task_start_time for t in s.trials(exp)] == [10.0, None, None]


def _as_old_file(path) -> None:
    """Make ``path`` a file written before task starts were recorded (no such column)."""
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE trials DROP COLUMN task_start_time")
    con.commit()
    con.close()


def test_a_file_without_task_starts_opens_read_only_and_gains_the_column_when_written(db):
    with ResultsStore(db) as s:
        exp = s.open_experiment("e")
        ids = _fill(s, exp, 2)
        s.finish_trials([TrialUpdate(ids[0], TrialState.COMPLETE, loss=1.0)])
    _as_old_file(db)
    with ResultsStore(db, readonly=True) as r:
        ts = r.trials(r.experiment_id("e"))
        assert [t.task_start_time for t in ts] == [None, None] and ts[0].loss == 1.0
        assert [t["task_start_time"] for t in r.export_json(r.experiment_id("e"))["trials"]] == [None, None]
    con = sqlite3.connect(db)
    assert "task_start_time" not in {r[1] for r in con.execute("PRAGMA table_info(trials)")}  # reading changed nothing
    con.close()
    with ResultsStore(db) as s:  # a master resumes the old file
        exp = s.open_experiment("e")
        s.mark_started([(ids[1], 5.0)])
        assert [t.task_start_time for t in s.trials(exp)] == [None, 5.0]


def test_export_without_task_starts_restores(db, tmp_path):
    with ResultsStore(db) as s:
        exp, ids = _experiment(s, 2)
        s.mark_started([(ids[0], 3.0)])
        doc = s.export_json(exp)
    assert [t["task_start_time"] for t in doc["trials"]] == [3.0, None]
    for t in doc["trials"]:
        del t["task_start_time"]  # an export made before task starts were recorded
    with ResultsStore(tmp_path / "copy.db") as c:
        exp = c.open_experiment("e")
        c.restore(exp, doc)
        assert [t.task_start_time for t in c.trials(exp)] == [None, None]
