"""The SQLite schema of a shadho results file (see :mod:`shadho.store`).

Example:
    >>> import sqlite3
    >>> c = sqlite3.connect(':memory:'); create_schema(c)
    >>> c.execute("SELECT value FROM meta WHERE key='format'").fetchone()
    ('shadho',)
"""
from __future__ import annotations

import sqlite3

from shadho import lease as _lease

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
    attempts INTEGER NOT NULL DEFAULT 0,
    task_start_time REAL
);
CREATE INDEX IF NOT EXISTS trials_exp_state ON trials(experiment_id, state);
"""


#: Columns of ``trials`` added after the first files were written: a file opened for writing
#: gets them (``ALTER TABLE``); reads of an older file opened read-only see NULLs.
#: ``task_start_time``: when the task that carries the trial began running on a worker
#: (Work Queue dispatched it; a local process started); NULL while it waits in a queue.
ADDED_TRIAL_COLUMNS = ("task_start_time",)


def add_trial_columns(conn: sqlite3.Connection) -> None:
    """Add :data:`ADDED_TRIAL_COLUMNS` that an older file lacks (additive: older shadho
    versions still read the file, they name the columns they select)."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(trials)")}
    for col in ADDED_TRIAL_COLUMNS:
        if col not in cols:
            conn.execute(f"ALTER TABLE trials ADD COLUMN {col} REAL")


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table of a new results file on ``conn`` (inside the caller's transaction)."""
    for stmt in _SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('format', 'shadho')")
    _lease.add_columns(conn)
