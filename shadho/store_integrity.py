"""Keeping a results file honest: clear errors for a damaged or full file, never a silent restart.

* :class:`CheckedConnection` turns SQLite's low-level errors, wherever the file is read
  or written (status, export, resume, the master), into :class:`StoreDamagedError`
  ("database disk image is malformed", "file is not a database") or
  :class:`StoreFullError` ("database or disk is full"), each saying what happened, that
  finished results are safe (a full disk) and what to do.
* :class:`FileWatch` notes the file's identity (device, inode), its size and its WAL's
  identity after every commit of the master and checks them before the next write: a file
  truncated, replaced or whose WAL was deleted while the master runs stops the master
  with :class:`StoreDamagedError` instead of ending with exit 0 over a broken file.
* The side file ``<file>.shadho`` (also the lease's OS lock, :mod:`shadho.lease`) records
  each experiment's number of trials at every insert; a master that opens the file and
  finds fewer (its WAL lost before a crash, the file emptied) refuses to go on, rather
  than resuming or starting a new experiment on what is left.

Example:
    >>> import os, tempfile
    >>> from shadho.store import ResultsStore
    >>> path = os.path.join(tempfile.mkdtemp(), 'r.db')
    >>> s = ResultsStore(path); exp = s.open_experiment('e'); _ = s.add_trial(exp, 'a', {}, []); s.close()
    >>> open(path, 'w').close()  # emptied behind shadho's back
    >>> ResultsStore(path)
    Traceback (most recent call last):
    ...
    shadho.errors.StoreDamagedError: ...is empty, but its side file ....shadho says it held experiment(s) e...
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
from typing import Any, Callable

from shadho.errors import StoreDamagedError, StoreError, StoreFullError
from shadho.lease import side_path

log = logging.getLogger("shadho")


def translate(exc: sqlite3.Error, path: str) -> Exception:
    """The shadho error for SQLite error ``exc`` on results file ``path`` (``exc`` itself
    when it is not about the file: a bug should show as one)."""
    text = str(exc)
    low = text.lower()
    if "disk is full" in low or isinstance(exc, sqlite3.OperationalError) and "full" in low:
        return StoreFullError(
            f"{path}: the disk holding the results file is full (SQLite: {text}). Every trial recorded "
            f"before this is safe in the file. Free some space, then run the same script again to resume "
            f"(trials that were running re-run).")
    if "not a database" in low:
        return StoreDamagedError(
            f"{path}: not a shadho results file, or a damaged one (SQLite: {text}). If it held results, "
            f"restore it from a copy.")
    if "malformed" in low or "disk image" in low:
        return StoreDamagedError(
            f"{path}: the results file is damaged (SQLite: {text}). Restore it from a copy; "
            f"`sqlite3 {path} .recover > salvage.sql` may save most rows.")
    if "disk i/o error" in low or "unable to open" in low or "readonly database" in low:
        return StoreError(f"{path}: the results file could not be read or written (SQLite: {text}); "
                          f"check the disk, its permissions and free space")
    return exc


def _guarded(name: str) -> Any:
    """``sqlite3.Cursor.<name>``, with SQLite's errors about the file turned into shadho errors."""
    base = getattr(sqlite3.Cursor, name)

    def method(self: sqlite3.Cursor, *args: Any) -> Any:
        try:
            return base(self, *args)
        except sqlite3.DatabaseError as exc:
            new = translate(exc, getattr(self.connection, "shadho_path", "?"))
            if new is exc:
                raise
            raise new from None
    method.__name__ = name
    return method


class CheckedCursor(sqlite3.Cursor):
    """A cursor whose SQLite errors about the file become shadho errors (see :func:`translate`)."""

    execute = _guarded("execute")
    executemany = _guarded("executemany")
    fetchone = _guarded("fetchone")
    fetchall = _guarded("fetchall")
    __next__ = _guarded("__next__")


class CheckedConnection(sqlite3.Connection):
    """``sqlite3.connect(..., factory=CheckedConnection)``: every cursor is a CheckedCursor."""

    shadho_path = "?"

    def cursor(self, factory: Any = CheckedCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    # The C implementations of these make their cursor without calling cursor(): route them.
    def execute(self, sql: str, parameters: Any = ()) -> Any:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> Any:  # type: ignore[override]
        return self.cursor().executemany(sql, parameters)


def _identity(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size


class FileWatch:
    """The results file's identity, size and WAL identity as of the master's last commit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db = _identity(path)
        self.wal = _identity(path + "-wal")
        self.commits = 0

    def check(self) -> None:
        """Raise :class:`StoreDamagedError` if the file changed behind the master's back."""
        now, wal = _identity(self.path), _identity(self.path + "-wal")
        why = None
        if self.db is not None:
            if now is None:
                why = "was deleted"
            elif now[:2] != self.db[:2]:
                why = "was replaced by another file"
            elif now[2] < self.db[2]:
                why = f"was truncated ({self.db[2]} -> {now[2]} bytes)"
        if why is None and self.wal is not None:
            if wal is None:
                why = f"lost its write-ahead log {self.path}-wal (deleted)"
            elif wal[:2] != self.wal[:2]:
                why = f"had its write-ahead log {self.path}-wal replaced"
        if why:
            self.db = self.wal = None  # say it once; the master stops
            raise StoreDamagedError(
                f"{self.path}: the results file {why} while this master was writing it. Trials recorded "
                f"since may be lost; the search stops. Restore the file from a copy, or start a new "
                f"results file.")

    def committed(self) -> None:
        """Note the file as it is after a commit of this master."""
        self.db = _identity(self.path)
        self.wal = _identity(self.path + "-wal") or self.wal


def read_counts(path: str) -> dict[str, int]:
    """Trials per experiment key as last recorded in the side file (empty when unknown)."""
    try:
        with open(side_path(path)) as fh:
            doc = json.load(fh)
        return {str(k): int(v) for k, v in doc.get("trials", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def record_count(path: str, exp_key: str, n: int) -> None:
    """Record that ``exp_key`` holds ``n`` committed trials. Two masters of different experiments
    may overwrite each other's count with an older one: a count only ever lags (no false alarm)."""
    counts = read_counts(path)
    if counts.get(exp_key) == n:
        return
    counts[exp_key] = n
    try:
        with open(side_path(path), "r+" if os.path.exists(side_path(path)) else "w") as fh:
            text = json.dumps({"format": "shadho-side", "trials": counts})
            fh.write(text)
            fh.truncate(len(text))
    except OSError as exc:  # a read-only folder: the check is lost, the run goes on
        log.debug("could not update %s: %s", side_path(path), exc)


def create_atomically(path: str, init: Callable[[sqlite3.Connection], None]) -> None:
    """Create results file ``path`` with ``init(conn)``'s tables, built in a side file and
    hard-linked into place (a master that got there first wins; its file is kept)."""
    tmp = f"{path}.creating-{os.getpid()}-{secrets.token_hex(4)}"
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")  # stored in the file: stays on after the link
        conn.execute("BEGIN")
        init(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()  # the last connection: checkpoints and removes the WAL
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # no hard links on this filesystem: a rename (a rare race loses one file)
        if not os.path.exists(path):
            os.replace(tmp, path)
    finally:
        for f in (tmp, tmp + "-wal", tmp + "-shm"):
            if os.path.exists(f):
                os.unlink(f)


def check_opening(path: str, existed: bool, size: int) -> None:
    """Before creating tables in ``path``: refuse when its side file says it held experiments."""
    counts = {k: n for k, n in read_counts(path).items() if n > 0}
    if counts and not existed:  # deleted: most likely on purpose, to start again
        log.warning("%s does not exist, but its side file %s says it held experiment(s) %s (%d trials): "
                    "starting a new results file", path, side_path(path), ", ".join(sorted(counts)),
                    sum(counts.values()))
        os.unlink(side_path(path))
        return
    if counts:
        state = "is empty" if size == 0 else "has no shadho tables"
        raise StoreDamagedError(
            f"{path} {state}, but its side file {side_path(path)} says it held experiment(s) "
            f"{', '.join(sorted(counts))} ({sum(counts.values())} trials): the file was emptied or lost its "
            f"write-ahead log. Restore it from a copy; to start afresh on purpose, delete {side_path(path)}.")
    if existed and size == 0:
        log.warning("%s is an empty file: starting a new results file in it", path)


def check_experiment(path: str, exp_key: str, found: int | None) -> None:
    """On opening ``exp_key`` for writing: refuse when it holds fewer trials than recorded."""
    want = read_counts(path).get(exp_key, 0)
    if want and (found or 0) < want:
        where = "is missing" if found is None else f"holds {found} trials"
        raise StoreDamagedError(
            f"{path}: experiment {exp_key!r} {where}, but {want} trials were recorded in it (side file "
            f"{side_path(path)}): the results file lost data (its write-ahead log deleted before a crash, "
            f"or the file replaced). Restore it from a copy; to go on with what is left, delete "
            f"{side_path(path)}.")
