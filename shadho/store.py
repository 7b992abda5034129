"""The SQLite results store: the single source of truth of a search.

One file holds experiments, their search spaces (with complexity, uncertainty,
rank and assigned compute classes over time) and every trial. The master writes
as results arrive (WAL mode, one transaction per batch); readers such as
``shadho status`` open it read-only while the master runs.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), 'r.db')
    >>> with ResultsStore(path) as store:
    ...     exp = store.open_experiment('demo')
    ...     tid = store.add_trial(exp, 'abc', {'x': 1.0}, [1.0])
    ...     _ = store.finish_trials([TrialUpdate(tid, TrialState.COMPLETE, loss=0.5)])
    ...     [t.loss for t in store.trials(exp)]
    [0.5]
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from shadho import lease as _lease
from shadho import store_integrity as _integrity
from shadho.errors import StoreError
from shadho.store_schema import SCHEMA_VERSION, create_schema
from shadho.trial import Trial, TrialState

#: Seconds without a heartbeat after which a lease whose OS lock is free may be taken over.
LOCK_STALE_AFTER = _lease.LEASE_TTL


@dataclass
class TrialUpdate:
    """A change to one trial, applied with others in one transaction."""

    trial_id: int
    state: TrialState
    loss: float | None = None
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    worker: str | None = None
    start_time: float | None = None
    finish_time: float | None = None
    compute_class: str | None = None
    attempts: int | None = None


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


class ResultsStore:
    """A shadho results file (SQLite).

    Args:
        path: the ``.db``/``.sqlite`` file; created when missing unless ``readonly``.
        readonly: open for reading only (safe while a master writes).
    """

    def __init__(self, path: str | os.PathLike[str], readonly: bool = False) -> None:
        self.path = str(path)
        self.readonly = readonly
        self._owned: dict[int, _lease.Lease] = {}
        self._n_trials: dict[int, tuple[str, int]] = {}
        self._counted = 0.0
        if readonly and self.path != ":memory:" and not os.path.exists(self.path):
            raise StoreError(f"{self.path}: no such results file")
        on_disk = self.path != ":memory:"
        self._existed = on_disk and os.path.exists(self.path)
        self._size = os.path.getsize(self.path) if self._existed else 0
        self._watch: _integrity.FileWatch | None = None
        if on_disk and not readonly and not self._existed:
            _integrity.check_opening(self.path, False, 0)  # deleted, while its side file says it was used?
            # Built aside and linked into place: a reader never sees a file without tables.
            _integrity.create_atomically(self.path, create_schema)
        try:
            factory = _integrity.CheckedConnection
            if readonly:
                uri = f"file:{Path(self.path).resolve()}?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False, factory=factory)
            else:
                self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                            isolation_level=None, factory=factory)
            self.conn.shadho_path = self.path  # type: ignore[attr-defined]
            self.conn.execute("PRAGMA busy_timeout=30000")
            self._check_or_create()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a shadho results file ({exc})") from None
        except BaseException:
            if hasattr(self, "conn"):
                self.conn.close()
            raise
        if on_disk and not readonly:
            self._watch = _integrity.FileWatch(self.path)

    # ------------------------------------------------------------ lifecycle

    def _check_or_create(self) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            if tables or self.readonly:
                raise StoreError(f"{self.path}: not a shadho results file (no shadho tables)")
            if self.path != ":memory:":
                _integrity.check_opening(self.path, self._existed, self._size)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            with self._tx():
                create_schema(self.conn)
            return
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            raise StoreError(f"{self.path}: not a shadho results file (no schema version)")
        if int(row[0]) > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer shadho (schema {row[0]}, "
                             f"this version reads up to {SCHEMA_VERSION}); upgrade shadho")
        if not self.readonly:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            cols = {r[1] for r in self.conn.execute("PRAGMA table_info(space_stats)")}
            for col in ("performance", "share"):  # added after the first files were written
                if col not in cols:
                    self.conn.execute(f"ALTER TABLE space_stats ADD COLUMN {col} REAL")
            _lease.add_columns(self.conn)

    class _Tx:
        def __init__(self, conn: sqlite3.Connection, watch: _integrity.FileWatch | None) -> None:
            self.conn, self.watch = conn, watch

        def __enter__(self) -> sqlite3.Connection:
            if self.watch is not None:
                self.watch.check()  # a file damaged behind our back stops the writes here
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type: Any, *_: Any) -> None:
            if exc_type is None:
                self.conn.execute("COMMIT")
                if self.watch is not None:
                    self.watch.committed()
            elif self.conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                self.conn.execute("ROLLBACK")

    def _tx(self) -> "ResultsStore._Tx":
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        return ResultsStore._Tx(self.conn, self._watch)

    def flush(self) -> None:
        """Make everything written so far durable (SQLite commits per transaction: no-op)."""

    def close(self) -> None:
        """Release every experiment this store owns and close the file."""
        try:
            for exp in list(self._owned):
                self.release(exp)
        finally:
            for held in self._owned.values():  # a release that failed (damaged file) still drops the lock
                held.release(None)
            self.conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # ------------------------------------------------------------ experiments

    def experiment_id(self, exp_key: str) -> int | None:
        row = self.conn.execute("SELECT id FROM experiments WHERE exp_key=?", (exp_key,)).fetchone()
        return None if row is None else int(row[0])

    def experiments(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT exp_key FROM experiments ORDER BY id")]

    def open_experiment(self, exp_key: str, settings: dict[str, Any] | None = None,
                        lock: bool = True) -> int:
        """Create or reopen ``exp_key`` and (with ``lock``) take ownership of it.

        Raises:
            StoreLockedError: a live master already owns this experiment.
        """
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT id FROM experiments WHERE exp_key=?", (exp_key,)).fetchone()
            n = None if row is None else c.execute("SELECT COUNT(*) FROM trials WHERE experiment_id=?",
                                                   (row[0],)).fetchone()[0]
            if lock and self.path != ":memory:":
                _integrity.check_experiment(self.path, exp_key, n)  # data lost since the last master?
            if row is None:
                cur = c.execute("INSERT INTO experiments (exp_key, created, settings) VALUES (?,?,?)",
                                (exp_key, now, _dumps(settings or {})))
                exp = int(cur.lastrowid)
            else:
                exp = int(row[0])
                if settings is not None:  # rolled back if the lease is refused below
                    c.execute("UPDATE experiments SET settings=? WHERE id=?", (_dumps(settings), exp))
            if lock and exp not in self._owned:
                held = _lease.Lease(self.conn, self.path, exp, exp_key)
                if self.path != ":memory:":
                    held.acquire(c)
                self._owned[exp] = held
                self._record_run(c, exp, now, socket.gethostname(), os.getpid())
        if lock:
            self._n_trials[exp] = (exp_key, n or 0)
        return exp

    def release(self, exp: int) -> None:
        """Give up ownership of an experiment (a later master may resume it)."""
        held = self._owned.get(exp)
        if held is None:
            return
        key, n = self._n_trials.get(exp, ("", 0))
        if key and self.path != ":memory:":
            _integrity.record_count(self.path, key, n)
        try:
            with self._tx() as c:
                held.release(c)
        finally:
            held.release(None)
            self._owned.pop(exp, None)

    def settings(self, exp: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT settings FROM experiments WHERE id=?", (exp,)).fetchone()
        return json.loads(row[0]) if row else {}

    def set_progress(self, exp: int, progress: dict[str, Any]) -> None:
        """Record live figures (workers connected, tasks running) and beat the lock's heartbeat."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE experiments SET progress=?, heartbeat=? WHERE id=?",
                      (_dumps({**progress, "time": now}), now, exp))

    def progress(self, exp: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT progress, owner_pid, owner_host, heartbeat FROM experiments "
                                "WHERE id=?", (exp,)).fetchone()
        if row is None:
            return {}
        out = json.loads(row[0] or "{}")
        out["running_master"] = _lease.running(self.path, exp, row[2], row[3], row[1])
        return out

    # ------------------------------------------------------------ spaces

    def register_spaces(self, exp: int, spaces: Sequence[Any]) -> None:
        """Record the experiment's search spaces (idempotent)."""
        with self._tx() as c:
            c.executemany("INSERT OR IGNORE INTO spaces VALUES (?,?,?,?)",
                          [(exp, s.id, s.name, json.dumps(s.describe(), default=str)) for s in spaces])

    def spaces(self, exp: int) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT space_id, name, description FROM spaces WHERE experiment_id=? "
                                 "ORDER BY rowid", (exp,))
        return [{"id": r[0], "name": r[1], **json.loads(r[2])} for r in rows]

    def record_space_stats(self, exp: int, rows: Iterable[dict[str, Any]]) -> None:
        """Append one snapshot per space: n_complete, complexity, uncertainty, rank, classes."""
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "INSERT INTO space_stats (experiment_id, space_id, time, n_complete, complexity, "
                "uncertainty, rank, classes, performance, share) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(exp, r["space_id"], r.get("time", now), r.get("n_complete", 0), r.get("complexity"),
                  r.get("uncertainty"), r.get("rank"), _dumps(list(r.get("classes", []))),
                  r.get("performance"), r.get("share"))
                 for r in rows])

    def space_stats(self, exp: int, latest: bool = False) -> list[dict[str, Any]]:
        """Snapshots over time (or only the newest per space)."""
        cols = {r[1] for r in self.conn.execute("PRAGMA table_info(space_stats)")}
        extra = ", performance, share" if "share" in cols else ", NULL, NULL"
        sql = ("SELECT space_id, time, n_complete, complexity, uncertainty, rank, classes" + extra +
               " FROM space_stats WHERE experiment_id=?")
        if latest:
            sql += (" AND rowid IN (SELECT MAX(rowid) FROM space_stats WHERE experiment_id=? "
                    "GROUP BY space_id)")
            rows = self.conn.execute(sql + " ORDER BY rowid", (exp, exp))
        else:
            rows = self.conn.execute(sql + " ORDER BY rowid", (exp,))
        keys = ("space_id", "time", "n_complete", "complexity", "uncertainty", "rank", "classes",
                "performance", "share")
        return [{**dict(zip(keys, r)), "classes": json.loads(r[6])} for r in rows]

    # ------------------------------------------------------------ trials

    def add_trial(self, exp: int, space_id: str, params: dict[str, Any],
                  x: Sequence[float], compute_class: str | None = None) -> int:
        """Insert a WAITING trial and return its id (the space's name is stored with the space)."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO trials (experiment_id, space_id, state, params, x, compute_class) "
                "VALUES (?,?,?,?,?,?)",
                (exp, space_id, TrialState.WAITING.value, _dumps(params),
                 _dumps([float(v) for v in x]), compute_class))
            if exp in self._owned:
                self._owned[exp].beat(c)
        self._note_trial(exp)
        return int(cur.lastrowid)

    def _note_trial(self, exp: int) -> None:
        """Record the committed trial count in the side file (after the commit: a count may
        lag behind the file, never run ahead of it)."""
        if exp in self._owned and self.path != ":memory:":
            key, n = self._n_trials.get(exp, ("", 0))
            self._n_trials[exp] = (key, n + 1)
            now = time.monotonic()
            if key and now - self._counted >= 1.0:  # at most once a second (a count may lag)
                self._counted = now
                _integrity.record_count(self.path, key, n + 1)

    def mark_submitted(self, trial_ids: Sequence[int], compute_class: str | None,
                       when: float | None = None) -> None:
        """Trials handed to an execution manager: RUNNING, with submit time and class."""
        when = time.time() if when is None else when
        with self._tx() as c:
            c.executemany(
                "UPDATE trials SET state=?, compute_class=?, submit_time=COALESCE(submit_time, ?), "
                "attempts=attempts+1 WHERE id=? AND state IN ('WAITING','RUNNING')",
                [(TrialState.RUNNING.value, compute_class, when, t) for t in trial_ids])

    def finish_trials(self, updates: Sequence[TrialUpdate]) -> int:
        """Apply updates in one transaction. A finished trial is never overwritten.

        Returns the number of trials changed.
        """
        changed = 0
        with self._tx() as c:
            for u in updates:
                loss = u.loss if (u.loss is None or math.isfinite(u.loss)) else None
                cur = c.execute(
                    "UPDATE trials SET state=?, loss=?, results=?, error=?, "
                    "worker=COALESCE(?, worker), start_time=COALESCE(?, start_time), "
                    "finish_time=COALESCE(?, finish_time), compute_class=COALESCE(?, compute_class), "
                    "attempts=MAX(attempts, COALESCE(?, 0)) "
                    "WHERE id=? AND state NOT IN ('COMPLETE','FAILED')",
                    (u.state.value, loss, _dumps(u.results or {}), u.error, u.worker, u.start_time,
                     u.finish_time if u.finish_time is not None else
                     (time.time() if u.state.finished else None),
                     u.compute_class, u.attempts, u.trial_id))
                changed += cur.rowcount
        return changed

    def requeue_running(self, exp: int) -> list[int]:
        """Trials left RUNNING/WAITING by a dead master go back to WAITING; returns their ids."""
        with self._tx() as c:
            ids = [r[0] for r in c.execute(
                "SELECT id FROM trials WHERE experiment_id=? AND state IN ('RUNNING','WAITING') "
                "ORDER BY id", (exp,))]
            c.execute("UPDATE trials SET state='WAITING' WHERE experiment_id=? AND state='RUNNING'",
                      (exp,))
        return ids

    def counts(self, exp: int) -> dict[str, int]:
        """Number of trials per state."""
        out = {s.value: 0 for s in TrialState}
        for state, n in self.conn.execute(
                "SELECT state, COUNT(*) FROM trials WHERE experiment_id=? GROUP BY state", (exp,)):
            out[state] = n
        return out

    def trials(self, exp: int, state: TrialState | None = None,
               ids: Sequence[int] | None = None) -> list[Trial]:
        """Trial records (fresh copies), oldest first."""
        return list(self.iter_trials(exp, state, ids))

    def iter_trials(self, exp: int, state: TrialState | None = None,
                    ids: Sequence[int] | None = None) -> Iterator[Trial]:
        names = {s["id"]: s["name"] for s in self.spaces(exp)}
        sql = ("SELECT id, space_id, state, params, x, loss, results, error, compute_class, worker, "
               "submit_time, start_time, finish_time, attempts FROM trials WHERE experiment_id=?")
        args: list[Any] = [exp]
        if state is not None:
            sql += " AND state=?"
            args.append(TrialState(state).value)
        if ids is not None:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            args.extend(ids)
        for r in self.conn.execute(sql + " ORDER BY id", args):
            yield Trial(
                id=r[0], space_id=r[1], searchspace=names.get(r[1], r[1]), state=TrialState(r[2]),
                params=json.loads(r[3]), x=tuple(json.loads(r[4])), loss=r[5],
                results=json.loads(r[6] or "{}"), error=r[7], compute_class=r[8], worker=r[9],
                submit_time=r[10], start_time=r[11], finish_time=r[12], attempts=r[13])

    # ------------------------------------------------------------ export

    def export_json(self, exp: int, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The experiment as one JSON-able dict (written to ``path`` when given)."""
        key = self.conn.execute("SELECT exp_key FROM experiments WHERE id=?", (exp,)).fetchone()[0]
        doc = {"format": "shadho", "schema_version": SCHEMA_VERSION, "exp_key": key,
               "settings": self.settings(exp), "spaces": self.spaces(exp),
               "space_stats": self.space_stats(exp),
               "trials": [t.to_dict() for t in self.iter_trials(exp)]}
        if path is not None:
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w") as fh:
                json.dump(doc, fh, indent=1, default=str)
            os.replace(tmp, path)
        return doc

    def export_csv(self, exp: int, path: str | os.PathLike[str]) -> None:
        """One row per trial, columns grouped as :mod:`shadho.export` describes."""
        from shadho.export import write_csv

        write_csv(path, self.iter_trials(exp), [s["id"] for s in self.spaces(exp)])

    def to_dataframe(self, exp: int) -> Any:
        """A pandas DataFrame, one row per trial, columns as in the CSV export (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            from shadho.errors import MissingDependencyError

            raise MissingDependencyError("to_dataframe needs pandas: pip install pandas") from None
        from shadho.export import trial_rows

        rows, cols = trial_rows(self.iter_trials(exp), [s["id"] for s in self.spaces(exp)],
                                none_param=None)
        return pd.DataFrame(rows, columns=cols)

    # ------------------------------------------------------------ reads for reports
    # Master runs (a resume is every run after the first) and a cheap change marker that
    # ``shadho report --serve`` polls before it rebuilds its page.

    def runs(self, exp: int) -> list[dict[str, Any]]:
        """Each master run of ``exp``: ``{'start': epoch seconds, 'host', 'pid'}``, oldest first
        (files written before runs were recorded give an empty list)."""
        if not self._has_table("runs"):
            return []
        rows = self.conn.execute("SELECT start, host, pid FROM runs WHERE experiment_id=? ORDER BY start",
                                 (exp,))
        return [{"start": r[0], "host": r[1], "pid": r[2]} for r in rows]

    def data_version(self, exp: int) -> tuple[Any, ...]:
        """A tuple that changes whenever trials or space snapshots of ``exp`` change."""
        trials = self.conn.execute(
            "SELECT COUNT(*), SUM(state IN ('COMPLETE','FAILED')), SUM(state='RUNNING'), MAX(finish_time) "
            "FROM trials WHERE experiment_id=?", (exp,)).fetchone()
        stats = self.conn.execute("SELECT COUNT(*) FROM space_stats WHERE experiment_id=?",
                                  (exp,)).fetchone()
        return (*trials, *stats)

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                 (name,)).fetchone() is not None

    def _record_run(self, c: sqlite3.Connection, exp: int, now: float, host: str, pid: int) -> None:
        c.execute("CREATE TABLE IF NOT EXISTS runs (experiment_id INTEGER NOT NULL, start REAL NOT NULL, "
                  "host TEXT, pid INTEGER)")
        c.execute("INSERT INTO runs VALUES (?,?,?,?)", (exp, now, host, pid))
