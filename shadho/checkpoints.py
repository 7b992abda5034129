"""The master's checkpoints of a multi-fidelity search: beside the results file, bounded.

Each configuration keeps at most one archive, its latest rung's (``<results>.checkpoints/
<experiment>/<config>.tar``); an archive a task brings back is checked
(:func:`shadho_checkpoint.check`) and renamed into place, so a damaged or oversized one
is refused with its reason and the configuration simply restarts from scratch when it is
promoted. A configuration's archive is removed when it finishes its top rung, and all
of them when the search ends. When their total passes the limit, the archives least
likely to be needed go first: those of the configurations ranked worst in their rung
(ASHA may still promote them, but last).

Example:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> store = CheckpointStore(os.path.join(d, "r.db"), "exp", total_limit_bytes=10**6)
    >>> src = os.path.join(d, "in.tar")
    >>> import shadho_checkpoint as ck
    >>> os.makedirs(os.path.join(d, "f")); _ = open(os.path.join(d, "f", "w"), "w").write("x")
    >>> ck.pack(os.path.join(d, "f"), src)
    (True, '')
    >>> store.accept(7, src)
    ''
    >>> store.archive_for(7) == store.path(7), store.archive_for(8)
    (True, None)
    >>> store.discard(7); store.archive_for(7) is None
    True
"""
from __future__ import annotations

import os
import re
import shutil
from typing import Any, Mapping

import shadho_checkpoint as ck

__all__ = ["CheckpointStore"]


class CheckpointStore:
    """Checkpoint archives of one experiment (see the module docstring).

    Args:
        results: the SQLite results file the checkpoints live beside.
        experiment: the experiment key (one folder each).
        limit_bytes: the most one checkpoint may hold.
        total_limit_bytes: the most all of the experiment's checkpoints may hold.
    """

    def __init__(self, results: str, experiment: str, limit_bytes: int = ck.DEFAULT_LIMIT_BYTES,
                 total_limit_bytes: int = 8 * ck.DEFAULT_LIMIT_BYTES) -> None:
        for name, v in (("limit_bytes", limit_bytes), ("total_limit_bytes", total_limit_bytes)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", experiment) or "_"
        self.root = os.path.join(os.path.abspath(results) + ".checkpoints", safe)
        self.limit_bytes = limit_bytes
        self.total_limit_bytes = total_limit_bytes
        #: Archives refused or evicted, with their reason (for the report).
        self.refused: list[tuple[int, str]] = []

    @classmethod
    def for_settings(cls, settings: Any) -> "CheckpointStore":
        """The store of a search's :class:`~shadho.settings.SearchSettings` (its
        ``checkpoint_limit_mb`` per checkpoint, 8 times that in all)."""
        mb = settings.checkpoint_limit_mb
        limit = ck.DEFAULT_LIMIT_BYTES if mb is None else max(1, int(mb * 2**20))
        return cls(settings.backend, settings.exp_key, limit, 8 * limit)

    def report(self) -> str:
        """What a user should know: archives refused or evicted ('' when none were)."""
        if not self.refused:
            return ""
        config, why = self.refused[-1]
        return (f"{len(self.refused)} checkpoint(s) refused or evicted (those configurations restart from "
                f"scratch when promoted); the last, of configuration {config}: {why}")

    def path(self, config: int) -> str:
        return os.path.join(self.root, f"{int(config)}.tar")

    def incoming(self, trial_id: int) -> str:
        """Where the task of ``trial_id`` leaves its archive before :meth:`accept` takes it."""
        return os.path.join(self.root, "incoming", f"{int(trial_id)}.tar")

    def accept(self, config: int, archive: str) -> str:
        """Take the archive a task brought back as ``config``'s checkpoint; returns why
        it was refused ('' when kept). The source file is moved, or left when refused."""
        why = ck.check(archive, self.limit_bytes)
        if why:
            self.refused.append((int(config), why))
            return why
        os.makedirs(self.root, exist_ok=True)
        tmp = self.path(config) + ".part"
        shutil.move(archive, tmp)
        os.replace(tmp, self.path(config))
        return ""

    def archive_for(self, config: int) -> str | None:
        """The archive to ship to the task that continues ``config`` (None: start afresh)."""
        p = self.path(config)
        return p if os.path.isfile(p) else None

    def discard(self, config: int) -> None:
        try:
            os.unlink(self.path(config))
        except FileNotFoundError:
            pass

    def total_bytes(self) -> int:
        return ck.folder_bytes(self.root)

    def enforce_total(self, rank: Mapping[int, float]) -> list[int]:
        """Evict archives, worst ``rank`` first (configs not ranked go first), until the
        total is under the limit; returns the evicted configurations."""
        if not os.path.isdir(self.root):
            return []
        sizes = {}
        for f in os.listdir(self.root):
            if f.endswith(".tar") and f[:-4].isdigit():
                sizes[int(f[:-4])] = os.path.getsize(os.path.join(self.root, f))
        total, out = sum(sizes.values()), []
        for c in sorted(sizes, key=lambda c: -rank.get(c, float("inf"))):
            if total <= self.total_limit_bytes:
                break
            self.discard(c)
            total -= sizes[c]
            out.append(c)
            self.refused.append((c, f"evicted: checkpoints passed {self.total_limit_bytes} bytes in all"))
        return out

    def clear(self) -> None:
        """Remove every checkpoint of the experiment (the search ended)."""
        shutil.rmtree(self.root, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(self.root))
        except OSError:
            pass
