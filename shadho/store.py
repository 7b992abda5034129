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
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from shadho.errors import StoreError, StoreLockedError
from shadho.trial import Trial, TrialState

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    exp_key TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    owner_host TEXT, owner_pid INTEGER, heartbeat REAL,
    progress TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS spaces (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    space_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (experiment_id, space_id)
);
CREATE TABLE IF NOT EXISTS space_stats (
    experiment_id INTEGER NOT NULL,
    space_id TEXT NOT NULL,
    time REAL NOT NULL,
    n_complete INTEGER NOT NULL,
    complexity REAL, uncertainty REAL, rank INTEGER,
    classes TEXT NOT NULL DEFAULT '[]',
    performance REAL, share REAL
);
CREATE INDEX IF NOT EXISTS space_stats_exp ON space_stats(experiment_id, space_id, time);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    space_id TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    x TEXT NOT NULL,
    loss REAL,
    results TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    compute_class TEXT,
    worker TEXT,
    submit_time REAL, start_time REAL, finish_time REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS trials_exp_state ON trials(experiment_id, state);
"""

#: Seconds without a heartbeat after which another host's lock is considered stale.
LOCK_STALE_AFTER = 120.0


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own dead child not yet reaped) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


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
        self._owned: set[int] = set()
        self._last_beat = 0.0
        if readonly and self.path != ":memory:" and not os.path.exists(self.path):
            raise StoreError(f"{self.path}: no such results file")
        try:
            if readonly:
                uri = f"file:{Path(self.path).resolve()}?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
            else:
                self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                                            isolation_level=None)
            self.conn.execute("PRAGMA busy_timeout=30000")
            self._check_or_create()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a shadho results file ({exc})") from None

    # ------------------------------------------------------------ lifecycle

    def _check_or_create(self) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            if tables or self.readonly:
                raise StoreError(f"{self.path}: not a shadho results file (no shadho tables)")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            with self._tx():
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        self.conn.execute(stmt)
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                                  (str(SCHEMA_VERSION),))
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('format', 'shadho')")
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

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type: Any, *_: Any) -> None:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def _tx(self) -> "ResultsStore._Tx":
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        return ResultsStore._Tx(self.conn)

    def flush(self) -> None:
        """Make everything written so far durable (SQLite commits per transaction: no-op)."""

    def close(self) -> None:
        """Release every experiment this store owns and close the file."""
        try:
            for exp in list(self._owned):
                self.release(exp)
        finally:
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
        host, pid = socket.gethostname(), os.getpid()
        with self._tx() as c:
            row = c.execute("SELECT id, owner_host, owner_pid, heartbeat FROM experiments "
                            "WHERE exp_key=?", (exp_key,)).fetchone()
            if row is None:
                cur = c.execute("INSERT INTO experiments (exp_key, created, settings) VALUES (?,?,?)",
                                (exp_key, now, _dumps(settings or {})))
                exp = int(cur.lastrowid)
            else:
                exp, ohost, opid, beat = int(row[0]), row[1], row[2], row[3]
                if lock and opid is not None and not (ohost == host and opid == pid):
                    alive = (_pid_alive(int(opid)) if ohost == host
                             else (beat is not None and now - beat < LOCK_STALE_AFTER))
                    if alive:
                        raise StoreLockedError(
                            f"{self.path}: experiment {exp_key!r} is in use by another master "
                            f"(pid {opid} on {ohost}); stop it first or use another exp_key")
                if settings is not None:
                    c.execute("UPDATE experiments SET settings=? WHERE id=?", (_dumps(settings), exp))
            if lock:
                c.execute("UPDATE experiments SET owner_host=?, owner_pid=?, heartbeat=? WHERE id=?",
                          (host, pid, now, exp))
                self._record_run(c, exp, now, host, pid)
        if lock:
            self._owned.add(exp)
        return exp

    def release(self, exp: int) -> None:
        """Give up ownership of an experiment (a later master may resume it)."""
        with self._tx() as c:
            c.execute("UPDATE experiments SET owner_host=NULL, owner_pid=NULL WHERE id=? AND owner_pid=?",
                      (exp, os.getpid()))
        self._owned.discard(exp)

    def settings(self, exp: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT settings FROM experiments WHERE id=?", (exp,)).fetchone()
        return json.loads(row[0]) if row else {}

    def set_progress(self, exp: int, progress: dict[str, Any]) -> None:
        """Record live figures (workers connected, tasks running) and beat the lock's heartbeat."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE experiments SET progress=?, heartbeat=? WHERE id=?",
                      (_dumps({**progress, "time": now}), now, exp))
        self._last_beat = now

    def progress(self, exp: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT progress, owner_pid, owner_host, heartbeat FROM experiments "
                                "WHERE id=?", (exp,)).fetchone()
        if row is None:
            return {}
        out = json.loads(row[0] or "{}")
        out["running_master"] = row[1] is not None and (
            _pid_alive(int(row[1])) if row[2] == socket.gethostname()
            else (row[3] or 0) > time.time() - LOCK_STALE_AFTER)
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
            return int(cur.lastrowid)

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
                    "attempts=COALESCE(?, attempts) "
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
            raise StoreError("to_dataframe needs pandas: pip install pandas") from None
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
