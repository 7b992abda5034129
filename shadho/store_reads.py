"""Reads of a shadho results file (the read half of :class:`shadho.store.ResultsStore`).

Every query a reader needs lives here, so status, reports and the command line never
touch SQL: :meth:`StoreReads.snapshot` reads all of one experiment in one read
transaction, :meth:`StoreReads.best_trial` finds the lowest loss in SQL.

Example:
    >>> import tempfile, os
    >>> from shadho.store import ResultsStore, TrialUpdate
    >>> from shadho.trial import TrialState
    >>> with ResultsStore(os.path.join(tempfile.mkdtemp(), 'r.db')) as store:
    ...     exp = store.open_experiment('demo')
    ...     ids = [store.add_trial(exp, 's', {'x': v}, [v]) for v in (3.0, 1.0)]
    ...     _ = store.finish_trials([TrialUpdate(i, TrialState.COMPLETE, loss=v)
    ...                              for i, v in zip(ids, (3.0, 1.0))])
    ...     data = store.snapshot(exp)
    ...     data.key, len(data.trials), store.best_trial(exp).params
    ('demo', 2, {'x': 1.0})
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Collection, Iterator, Sequence

from shadho import lease as _lease
from shadho.errors import StoreError
from shadho.store_schema import SCHEMA_VERSION
from shadho.trial import Trial, TrialState

_TRIAL_COLUMNS = ("id, space_id, state, params, x, loss, results, error, compute_class, worker, "
                  "submit_time, start_time, finish_time, attempts")
#: Columns added since (see :data:`shadho.store_schema.ADDED_TRIAL_COLUMNS`).
_ADDED_COLUMNS = ("task_start_time",)


@dataclass
class ExperimentData:
    """Everything stored about one experiment, read in one transaction.

    ``latest_stats`` maps each space id to its newest heuristics snapshot; ``stats`` holds
    every snapshot, oldest first (only when :meth:`StoreReads.snapshot` was asked for the
    history). ``progress`` is what the master last reported, with ``running_master``.
    """

    exp: int
    key: str
    settings: dict[str, Any] = field(default_factory=dict)
    spaces: list[dict[str, Any]] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)
    latest_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def current_space_ids(self) -> set[str] | None:
        """Ids of the spaces of the spec the last master ran with (None: an old file)."""
        ids = self.settings.get("space_ids")
        return set(ids) if isinstance(ids, list) else None


class StoreReads:
    """The read methods of a results store; the class using it sets ``conn`` and ``path``."""

    conn: sqlite3.Connection
    path: str

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction: a master committing meanwhile is seen entirely or not at all."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("ROLLBACK")

    def snapshot(self, exp: int, history: bool = False) -> ExperimentData:
        """All of experiment ``exp`` in one read transaction (``history``: every space snapshot)."""
        with self.reading():
            row = self.conn.execute("SELECT exp_key FROM experiments WHERE id=?", (exp,)).fetchone()
            if row is None:
                raise StoreError(f"{self.path}: no experiment with id {exp}")
            stats = self.space_stats(exp, latest=not history)
            return ExperimentData(
                exp=exp, key=row[0], settings=self.settings(exp), spaces=self.spaces(exp),
                trials=self.trials(exp), stats=stats if history else [],
                latest_stats={r["space_id"]: r for r in stats},  # rows are oldest first
                progress=self.progress(exp), runs=self.runs(exp))

    # ------------------------------------------------------------ experiments

    def experiment_id(self, exp_key: str) -> int | None:
        row = self.conn.execute("SELECT id FROM experiments WHERE exp_key=?", (exp_key,)).fetchone()
        return None if row is None else int(row[0])

    def experiments(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT exp_key FROM experiments ORDER BY id")]

    def settings(self, exp: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT settings FROM experiments WHERE id=?", (exp,)).fetchone()
        return json.loads(row[0]) if row else {}

    def progress(self, exp: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT progress, owner_pid, owner_host, heartbeat FROM experiments "
                                "WHERE id=?", (exp,)).fetchone()
        if row is None:
            return {}
        out = json.loads(row[0] or "{}")
        out["running_master"] = _lease.running(self.path, exp, row[2], row[3], row[1])
        return out

    def runs(self, exp: int) -> list[dict[str, Any]]:
        """Each master run of ``exp`` (a resume is every run after the first):
        ``{'start': epoch seconds, 'host', 'pid'}``, oldest first (files written before
        runs were recorded give an empty list)."""
        if not self._has_table("runs"):
            return []
        rows = self.conn.execute("SELECT start, host, pid FROM runs WHERE experiment_id=? ORDER BY start",
                                 (exp,))
        return [{"start": r[0], "host": r[1], "pid": r[2]} for r in rows]

    def data_version(self, exp: int) -> tuple[Any, ...]:
        """A cheap marker that changes whenever trials or space snapshots of ``exp`` change
        (``shadho report --serve`` polls it before it rebuilds its page)."""
        with self.reading():
            trials = self.conn.execute(
                "SELECT COUNT(*), SUM(state IN ('COMPLETE','FAILED')), SUM(state='RUNNING'), "
                "MAX(finish_time) FROM trials WHERE experiment_id=?", (exp,)).fetchone()
            stats = self.conn.execute("SELECT COUNT(*) FROM space_stats WHERE experiment_id=?",
                                      (exp,)).fetchone()
        return (*trials, *stats)

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                 (name,)).fetchone() is not None

    # ------------------------------------------------------------ spaces

    def spaces(self, exp: int) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT space_id, name, description FROM spaces WHERE experiment_id=? "
                                 "ORDER BY rowid", (exp,))
        return [{"id": r[0], "name": r[1], **json.loads(r[2])} for r in rows]

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
        sql = f"SELECT {_TRIAL_COLUMNS}, {self._added_columns()} FROM trials WHERE experiment_id=?"
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
                submit_time=r[10], start_time=r[11], finish_time=r[12], attempts=r[13],
                task_start_time=r[14])

    def _added_columns(self) -> str:
        """The added trial columns, NULL for those an older file opened read-only lacks."""
        have = {r[1] for r in self.conn.execute("PRAGMA table_info(trials)")}
        return ", ".join(c if c in have else f"NULL AS {c}" for c in _ADDED_COLUMNS)

    def best_trial(self, exp: int, space_ids: Collection[str] | None = None) -> Trial | None:
        """The lowest-loss COMPLETE trial (ties: the oldest), of ``space_ids`` only when given."""
        sql = "SELECT id FROM trials WHERE experiment_id=? AND state='COMPLETE' AND loss IS NOT NULL"
        args: list[Any] = [exp]
        if space_ids is not None:
            ids = list(space_ids)
            sql += f" AND space_id IN ({','.join('?' * len(ids))})"
            args += ids
        with self.reading():
            row = self.conn.execute(sql + " ORDER BY loss, id LIMIT 1", args).fetchone()
            return None if row is None else self.trials(exp, ids=[row[0]])[0]

    # ------------------------------------------------------------ export

    def export_json(self, exp: int, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The experiment as one JSON-able dict (written to ``path`` when given)."""
        with self.reading():
            key = self.conn.execute("SELECT exp_key FROM experiments WHERE id=?", (exp,)).fetchone()[0]
            doc = {"format": "shadho", "schema_version": SCHEMA_VERSION, "exp_key": key,
                   "settings": self.settings(exp), "spaces": self.spaces(exp),
                   "space_stats": self.space_stats(exp),
                   "trials": [t.to_dict() for t in self.iter_trials(exp)]}
            rungs = self.rungs(exp)
            if rungs:  # a multi-fidelity search: which trial ran which configuration at which budget
                doc["rungs"] = [dataclasses.asdict(r) for r in rungs]
        if path is not None:
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w") as fh:
                json.dump(doc, fh, indent=1, default=str)
            os.replace(tmp, path)
        return doc

    def export_csv(self, exp: int, path: str | os.PathLike[str]) -> None:
        """One row per trial, columns grouped as :mod:`shadho.export` describes."""
        from shadho.export import write_csv

        with self.reading():
            trials, spaces = self.trials(exp), self.spaces(exp)
        write_csv(path, trials, [s["id"] for s in spaces])

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

    def rungs(self, exp: int) -> list[Any]:
        """The experiment's rung records (:class:`shadho.store_rungs.RungRecord`), oldest first
        (none in a search without a fidelity, or a file written before rungs existed)."""
        from shadho.store_rungs import read_rungs

        with self.reading():
            return read_rungs(self.conn, exp)
