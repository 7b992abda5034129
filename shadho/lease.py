"""The experiment lease: which master may write an experiment of a results file.

A pid says nothing across PID namespaces (containers) or hosts, so the lease rests on
two things that do not depend on pids:

* an **OS lock**: an open-file-description lock (``F_OFD_SETLK``, Linux) on byte
  ``experiment id`` of the results file's side file ``<file>.shadho`` (see
  :mod:`shadho.store_integrity`). The kernel drops it when the master dies, in any PID
  namespace of the host, and network filesystems that support locks share it;
* a **heartbeat row**: the owner's random token, host, pid and the time of its last
  heartbeat in the ``experiments`` table. The running master renews it (every store
  write, and every 2 s from the search loop); another master takes over a lease whose
  OS lock is free only when the heartbeat is older than :data:`LEASE_TTL` (the old
  owner may be on another host, where the OS lock is not seen), or at once when the old
  owner was on this host (it would still hold the OS lock if it ran).

A master that exits cleanly (even without ``close()``) clears its row at exit, so
another host can start at once.

Example:
    >>> import os, tempfile
    >>> from shadho.store import ResultsStore
    >>> path = os.path.join(tempfile.mkdtemp(), 'r.db')
    >>> a = ResultsStore(path); exp = a.open_experiment('e')
    >>> b = ResultsStore(path)
    >>> held_elsewhere(path, exp)   # this process holds it
    False
    >>> a.close(); b.close()
"""
from __future__ import annotations

import atexit
import fcntl
import os
import secrets
import socket
import sqlite3
import struct
import time
import weakref
from typing import Any

from shadho.errors import StoreLockedError

#: Seconds without a heartbeat after which a lease whose OS lock is free may be taken over.
LEASE_TTL = 60.0
#: Least seconds between two heartbeats written by store writes.
BEAT_EVERY = 2.0

_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", None)
#: Leases held by this process: (side file's dev, ino, experiment id) -> the Lease.
_HELD: "weakref.WeakValueDictionary[tuple[int, int, int], Lease]" = weakref.WeakValueDictionary()
_LIVE: "weakref.WeakSet[Lease]" = weakref.WeakSet()
_AT_EXIT: list[bool] = []  # the exit handler is registered on the first lease, not at import


def side_path(path: str) -> str:
    """The side file of results file ``path`` (OS locks; trial counts, see store_integrity)."""
    return path + ".shadho"


def _flock(kind: int, start: int) -> bytes:
    # struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (0 for OFD).
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, start, 1, 0)


def _try_lock(fd: int, exp: int) -> bool | None:
    """True: locked; False: another open file holds it; None: no OS locks here."""
    if _OFD_SETLK is None:
        return None
    try:
        fcntl.fcntl(fd, _OFD_SETLK, _flock(fcntl.F_WRLCK, exp))
        return True
    except (BlockingIOError, PermissionError):
        return False
    except OSError:  # ENOLCK, EINVAL: a filesystem without locks
        return None


def held_elsewhere(path: str, exp: int) -> bool | None:
    """Whether another process (any PID namespace of this host) holds the OS lock of
    ``exp`` in results file ``path``; None when that cannot be known."""
    if _OFD_GETLK is None or not os.path.exists(side_path(path)):
        return None
    try:
        fd = os.open(side_path(path), os.O_RDONLY)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino, exp) in _HELD:
            return False
        out = fcntl.fcntl(fd, _OFD_GETLK, _flock(fcntl.F_RDLCK, exp))
        return struct.unpack("hhqqi4x", out)[0] != fcntl.F_UNLCK
    except OSError:
        return None
    finally:
        os.close(fd)


class Lease:
    """One master's hold on one experiment of a results file (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection, path: str, exp: int, exp_key: str) -> None:
        self.conn, self.path, self.exp, self.exp_key = conn, path, exp, exp_key
        self.token = secrets.token_hex(8)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._fd: int | None = None
        self._closer: Any = None
        self._last = 0.0

    def acquire(self, c: sqlite3.Connection) -> None:
        """Take the lease inside the caller's write transaction ``c``.

        Raises:
            StoreLockedError: another live master holds it.
        """
        fd = os.open(side_path(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, self.exp)
        mine = _HELD.get(key)
        if mine is not None:  # this process holds it already (another store object): share it
            os.close(fd)
            self.token = mine.token
        else:
            locked = _try_lock(fd, self.exp)
            row = c.execute("SELECT owner_token, owner_host, owner_pid, heartbeat FROM experiments WHERE id=?",
                            (self.exp,)).fetchone()
            token, host, pid, beat = row if row else (None, None, None, None)
            fresh = token is not None and beat is not None and time.time() - beat < LEASE_TTL
            if locked is False or (fresh and not (locked and host == self.host)):
                os.close(fd)
                raise StoreLockedError(
                    f"{self.path}: experiment {self.exp_key!r} is in use by another master (pid {pid} on "
                    f"{host}, last heartbeat {time.time() - (beat or 0):.0f} s ago); stop it first, use "
                    f"another exp_key, or wait {LEASE_TTL:.0f} s after it died on another host")
            self._fd = fd
            # A lease dropped without release() (its Shadho object garbage-collected) must not
            # keep the OS lock: the fd closes with it.
            self._closer = weakref.finalize(self, _close, fd)
            _HELD[key] = self
        if not _AT_EXIT:
            atexit.register(_release_all_at_exit)
            os.register_at_fork(after_in_child=_forget_in_child)
            _AT_EXIT.append(True)
        _LIVE.add(self)
        self.beat(c, force=True)

    def beat(self, c: sqlite3.Connection, force: bool = False) -> None:
        """Renew the heartbeat row (at most every :data:`BEAT_EVERY` s unless ``force``)."""
        now = time.time()
        if force or now - self._last >= BEAT_EVERY:
            c.execute("UPDATE experiments SET owner_token=?, owner_host=?, owner_pid=?, heartbeat=? WHERE id=?",
                      (self.token, self.host, self.pid, now, self.exp))
            self._last = now

    def release(self, c: sqlite3.Connection | None) -> None:
        """Clear the row (inside ``c`` when given) and drop the OS lock."""
        if c is not None:
            c.execute("UPDATE experiments SET owner_token=NULL, owner_host=NULL, owner_pid=NULL, heartbeat=NULL "
                      "WHERE id=? AND owner_token=?", (self.exp, self.token))
        _LIVE.discard(self)
        if self._fd is not None:
            for key, lease in list(_HELD.items()):
                if lease is self:
                    del _HELD[key]
            self._closer()  # closing the description drops its OFD lock
            self._fd = None


def add_columns(conn: sqlite3.Connection) -> None:
    """Add the lease's ``owner_token`` column to files written before it existed."""
    cols = {r[1] for r in conn.execute("PRAGMA table_info(experiments)")}
    if "owner_token" not in cols:
        conn.execute("ALTER TABLE experiments ADD COLUMN owner_token TEXT")


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _forget_in_child() -> None:
    """A forked child (a local trial process) must not keep the parent's locks alive: a
    killed master's lock would last as long as its children. Its copy of the fd goes."""
    for lease in list(_LIVE):
        if lease._fd is not None:
            lease._closer()
            lease._fd = None
    _LIVE.clear()
    _HELD.clear()


def _release_all_at_exit() -> None:
    for lease in list(_LIVE):
        try:
            lease.conn.execute("UPDATE experiments SET owner_token=NULL, owner_host=NULL, owner_pid=NULL, "
                               "heartbeat=NULL WHERE id=? AND owner_token=?", (lease.exp, lease.token))
        except Exception:  # noqa: BLE001 - a closed or damaged file: the OS lock goes with the process
            pass



def running(path: str, exp: int, host: Any, beat: Any, owner: Any) -> bool:
    """Whether a master holds experiment ``exp`` (for status displays)."""
    if owner is None:
        return False
    held = held_elsewhere(path, exp)
    if held is not None and (held or host == socket.gethostname()):
        return held
    return beat is not None and time.time() - float(beat) < LEASE_TTL
