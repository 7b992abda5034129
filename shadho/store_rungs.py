"""The rung records of a multi-fidelity search in the results file (see :mod:`shadho.store`).

Every rung a configuration reaches is one trial row (its params, loss, times, worker)
plus one row of the additive ``rungs`` table: ``(trial_id, config_id, rung, bracket,
budget)``, where ``config_id`` is the trial id of the configuration's first rung. Both
rows are written in one transaction, so a killed master never leaves a rung trial
without its record. Files written before the table existed open unchanged (it is
created on first use, and reads of a file without it see no rungs).

Example:
    >>> import tempfile, os
    >>> from shadho.store import ResultsStore
    >>> with ResultsStore(os.path.join(tempfile.mkdtemp(), 'r.db')) as store:
    ...     exp = store.open_experiment('mf')
    ...     first = store.add_rung_trial(exp, 'abc', {'x': 1.0}, [1.0], None, rung=0, budget=1)
    ...     second = store.add_rung_trial(exp, 'abc', {'x': 1.0}, [1.0], None, config=first, rung=1, budget=3)
    ...     [(r.trial_id, r.config_id, r.rung, r.budget) for r in store.rungs(exp)]
    [(1, 1, 0, 1.0), (2, 1, 1, 3.0)]
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = ["RungRecord", "RUNGS_TABLE", "insert_rung", "read_rungs"]

RUNGS_TABLE = ("CREATE TABLE IF NOT EXISTS rungs (trial_id INTEGER PRIMARY KEY REFERENCES trials(id), "
               "config_id INTEGER NOT NULL, rung INTEGER NOT NULL, bracket INTEGER NOT NULL DEFAULT 0, "
               "budget REAL NOT NULL)")


@dataclass(frozen=True)
class RungRecord:
    """One rung run: trial ``trial_id`` ran configuration ``config_id`` at ``rung`` (``budget``)."""

    trial_id: int
    config_id: int
    rung: int
    bracket: int
    budget: float


def insert_rung(c: sqlite3.Connection, trial_id: int, config: int | None, rung: int, bracket: int,
                budget: float) -> None:
    """Record trial ``trial_id`` as ``config``'s run at ``rung`` (None: a new configuration,
    whose id is the trial's own), inside the caller's transaction."""
    c.execute(RUNGS_TABLE)
    c.execute("INSERT INTO rungs VALUES (?,?,?,?,?)",
              (trial_id, trial_id if config is None else int(config), int(rung), int(bracket), float(budget)))


def read_rungs(conn: sqlite3.Connection, exp: int) -> list[RungRecord]:
    """Every rung record of experiment ``exp``, oldest trial first (none in older files)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='rungs'").fetchone() is None:
        return []
    rows = conn.execute("SELECT r.trial_id, r.config_id, r.rung, r.bracket, r.budget FROM rungs r "
                        "JOIN trials t ON t.id = r.trial_id WHERE t.experiment_id=? ORDER BY r.trial_id",
                        (exp,))
    return [RungRecord(*row) for row in rows]
