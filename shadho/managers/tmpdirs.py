"""Scratch folders of a run under ``$TMPDIR``: made private, removed at stop, and removed
later when their master died without stopping (killed with SIGKILL).

A run's folder is named ``<prefix><master pid>-<random>``, so a later master can tell
whether the one that made it still runs.

Example:
    >>> folder = make_run_folder("shadho-doc-")
    >>> os.path.basename(folder).startswith(f"shadho-doc-{os.getpid()}-")
    True
    >>> pw = write_password(folder); len(open(pw).read()), oct(os.stat(pw).st_mode & 0o777)
    (64, '0o600')
    >>> remove(folder); os.path.exists(folder)
    False
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time

#: A folder younger than this is never removed as stale (its master may be starting).
STALE_AFTER_S = 60.0


def make_run_folder(prefix: str) -> str:
    """A new private folder ``<prefix><pid>-<random>`` under ``$TMPDIR``."""
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-")


def write_password(folder: str) -> str:
    """A fresh random password in ``folder/password`` (mode 0600); its path."""
    path = os.path.join(folder, "password")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))  # no trailing newline: it would be part of it
    return path


def remove(folder: str | None) -> None:
    """Remove a run's folder and everything in it (nothing when None or gone)."""
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(prefix: str) -> list[str]:
    """Remove this user's ``<prefix><pid>-*`` folders whose master no longer runs; their paths."""
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return []
    gone = []
    for name in names:
        pid = _master_pid(name, prefix)
        if pid is None:
            continue
        path = os.path.join(root, name)
        try:
            st = os.stat(path)
            if st.st_uid != os.getuid() or time.time() - st.st_mtime < STALE_AFTER_S:
                continue
            os.kill(pid, 0)  # its master still runs
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
        except OSError:
            continue
    return gone


def _master_pid(name: str, prefix: str) -> int | None:
    """The master's pid in a run folder's name, or None when it is not one."""
    if not name.startswith(prefix):
        return None
    pid, sep, rest = name[len(prefix):].partition("-")
    return int(pid) if sep and rest and "-" not in rest and pid.isdigit() else None
