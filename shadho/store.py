"""The SQLite results store: the single source of truth of a search.

One file holds experiments, their search spaces (with complexity, uncertainty,
rank and assigned compute classes over time) and every trial. The master writes
as results arrive (WAL mode, one transaction per batch); readers such as
``shadho status`` open it read-only while the master runs. This module holds the
writes; the reads are in :mod:`shadho.store_reads`, the tables in
:mod:`shadho.store_schema`, the ownership lease in :mod:`shadho.lease`.

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
from typing import Any, Callable, Iterable, Sequence

from shadho import lease as _lease
from shadho import store_integrity as _integrity
from shadho.errors import StoreError
from shadho.store_reads import ExperimentData, StoreReads
from shadho.store_schema import SCHEMA_VERSION, add_trial_columns, create_schema
from shadho.trial import TrialState

__all__ = ["ResultsStore", "TrialUpdate", "ExperimentData", "SCHEMA_VERSION", "LOCK_STALE_AFTER"]

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


#: Commits between the WAL checkpoints the store runs itself (automatic ones are off).
_CHECKPOINT_EVERY = 100


class ResultsStore(StoreReads):
    """A shadho results file (SQLite): the writes here, the reads from :class:`StoreReads`.

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
            # Checkpoints only after a commit found the file intact (see _Tx): an automatic
            # one inside COMMIT could write the WAL's pages back into a file truncated behind
            # our back, and the damage would no longer show (seen once in CI).
            self.conn.execute("PRAGMA wal_autocheckpoint=0")

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
            add_trial_columns(self.conn)
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
                    self.watch.check()  # damage during the transaction, before a checkpoint hides it
                    self.watch.commits += 1
                    if self.watch.commits % _CHECKPOINT_EVERY == 0:
                        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
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

    def abandon(self) -> None:
        """Close the file without releasing or writing anything: for an open that failed
        half-way, so that the error which stopped it is the one raised."""
        self.conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # ------------------------------------------------------------ experiments

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

    def set_progress(self, exp: int, progress: dict[str, Any]) -> None:
        """Record live figures (workers connected, tasks running) and beat the lock's heartbeat."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE experiments SET progress=?, heartbeat=? WHERE id=?",
                      (_dumps({**progress, "time": now}), now, exp))

    # ------------------------------------------------------------ spaces

    def register_spaces(self, exp: int, spaces: Sequence[Any]) -> None:
        """Record the experiment's search spaces (idempotent)."""
        with self._tx() as c:
            c.executemany("INSERT OR IGNORE INTO spaces VALUES (?,?,?,?)",
                          [(exp, s.id, s.name, json.dumps(s.describe(), default=str)) for s in spaces])

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

    # ------------------------------------------------------------ trials

    def add_trial(self, exp: int, space_id: str, params: dict[str, Any],
                  x: Sequence[float], compute_class: str | None = None) -> int:
        """Insert a WAITING trial and return its id (the space's name is stored with the space)."""
        return self._add_trial(exp, space_id, params, x, compute_class)

    def _add_trial(self, exp: int, space_id: str, params: dict[str, Any], x: Sequence[float],
                   compute_class: str | None, then: Callable[[sqlite3.Connection, int], None] | None = None) -> int:
        """:meth:`add_trial`; ``then(conn, trial_id)`` writes more in the same transaction."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO trials (experiment_id, space_id, state, params, x, compute_class) "
                "VALUES (?,?,?,?,?,?)",
                (exp, space_id, TrialState.WAITING.value, _dumps(params),
                 _dumps([float(v) for v in x]), compute_class))
            if then is not None:
                then(c, int(cur.lastrowid))
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
        """Trials handed to an execution manager: RUNNING, with submit time and class (a
        trial sent again waits in the manager's queue: its task start is cleared)."""
        when = time.time() if when is None else when
        with self._tx() as c:
            c.executemany(
                "UPDATE trials SET state=?, compute_class=?, submit_time=COALESCE(submit_time, ?), "
                "task_start_time=NULL, attempts=attempts+1 WHERE id=? AND state IN ('WAITING','RUNNING')",
                [(TrialState.RUNNING.value, compute_class, when, t) for t in trial_ids])

    def mark_started(self, starts: Sequence[tuple[int, float | None]]) -> None:
        """``(trial id, time)``: the task carrying the trial began running on a worker at
        that time (None: it went back to the manager's queue). Finished trials keep theirs.

        Example:
            >>> import os, tempfile
            >>> with ResultsStore(os.path.join(tempfile.mkdtemp(), 'r.db')) as st:
            ...     exp = st.open_experiment('e'); tid = st.add_trial(exp, 's', {}, [])
            ...     st.mark_submitted([tid], None, when=1.0); st.mark_started([(tid, 2.5)])
            ...     st.trials(exp)[0].task_start_time
            2.5
        """
        if not starts:
            return
        with self._tx() as c:
            c.executemany("UPDATE trials SET task_start_time=? WHERE id=? AND state='RUNNING'",
                          [(when, int(tid)) for tid, when in starts])

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
            c.execute("UPDATE trials SET state='WAITING', task_start_time=NULL WHERE experiment_id=? "
                      "AND state='RUNNING'", (exp,))
        return ids

    def restore(self, exp: int, doc: dict[str, Any]) -> None:
        """Insert the spaces and trials of an exported experiment ``doc`` (see
        :meth:`export_json`) into ``exp``, keeping their ids."""
        with self._tx() as c:
            c.executemany("INSERT OR IGNORE INTO spaces VALUES (?,?,?,?)",
                          [(exp, s["id"], s["name"], json.dumps(s)) for s in doc.get("spaces", [])])
            c.executemany(
                "INSERT INTO trials (id, experiment_id, space_id, state, params, x, loss, results, "
                "error, compute_class, worker, submit_time, start_time, finish_time, attempts, "
                "task_start_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(t["id"], exp, t["space_id"], t["state"], _dumps(t["params"]), _dumps(t["x"]),
                  t["loss"], _dumps(t["results"]), t["error"], t["compute_class"], t["worker"],
                  t["submit_time"], t["start_time"], t["finish_time"], t["attempts"],
                  t.get("task_start_time"))  # exported before task starts were recorded: none
                 for t in doc.get("trials", [])])

    def _record_run(self, c: sqlite3.Connection, exp: int, now: float, host: str, pid: int) -> None:
        c.execute("CREATE TABLE IF NOT EXISTS runs (experiment_id INTEGER NOT NULL, start REAL NOT NULL, "
                  "host TEXT, pid INTEGER)")
        c.execute("INSERT INTO runs VALUES (?,?,?,?)", (exp, now, host, pid))

    # ------------------------------------------------------------ rungs (multi-fidelity)

    def add_rung_trial(self, exp: int, space_id: str, params: dict[str, Any], x: Sequence[float],
                       compute_class: str | None, *, rung: int, budget: float, config: int | None = None,
                       bracket: int = 0) -> int:
        """Insert a WAITING trial that runs ``config`` (None: a new configuration) at ``rung``,
        with its rung record in the same transaction (see :mod:`shadho.store_rungs`)."""
        from shadho.store_rungs import insert_rung

        return self._add_trial(exp, space_id, params, x, compute_class,
                               lambda c, tid: insert_rung(c, tid, config, rung, bracket, budget))
