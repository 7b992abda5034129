"""What a master says while it cannot make progress: how to connect workers, and which compute
classes no connected worker can run.

Pure logic over plain numbers (no Work Queue import): the Work Queue manager feeds it its
statistics and prints what comes back on stderr, so a search that idles always says why.

Example:
    >>> n = ConnectNotice(Connection('login1', 9123, None, '/tmp/pw', None), every=30)
    >>> n.tick(0.0, workers=0).splitlines()[0]
    'shadho: no workers connected yet; start some with one of:'
    >>> n.tick(10.0, workers=0) is None, n.tick(31.0, workers=0) is not None, n.tick(99.0, workers=1)
    (True, True, None)
"""
from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Mapping

__all__ = ["Connection", "ConnectNotice", "ClassNeeds", "Pool", "UnmatchedNotice"]


@dataclass(frozen=True)
class Connection:
    """Where workers find the master.

    Attributes:
        host, port: the master's address.
        name: the advertised manager name (``work_queue_worker -M NAME``), or None.
        password_file: the file workers must be given, or None.
        catalog: the catalog the name is advertised to (``host:port``), or None.
    """

    host: str
    port: int
    name: str | None
    password_file: str | None
    catalog: str | None

    def commands(self) -> list[str]:
        """Command lines that start workers for this master."""
        pw = f" --password {shlex.quote(self.password_file)}" if self.password_file else ""
        out = []
        if self.name:
            cat = f" --catalog {self.catalog}" if self.catalog else ""
            out.append(f"work_queue_worker -M {shlex.quote(self.name)}{cat}{pw}")
        out.append(f"work_queue_worker{pw} {self.host} {self.port}")
        out.append(f"shadho workers slurm --manager {self.host}:{self.port}{pw} --count 4")
        return out

    def describe(self) -> str:
        """The multi-line notice: address, name, password file and the command lines."""
        lines = [f"  master: {self.host}:{self.port}"
                 + (f", name {self.name!r} (catalog {self.catalog or 'default'})" if self.name else "")]
        if self.password_file:
            lines.append(f"  password file: {self.password_file} (copy it to where the workers run)")
        lines += [f"    {c}" for c in self.commands()]
        return "\n".join(lines)


class ConnectNotice:
    """Says how to connect workers at start, then every ``every`` seconds while none is connected."""

    def __init__(self, connection: Connection, every: float = 30.0) -> None:
        self.connection = connection
        self.every = float(every)
        self._last: float | None = None

    def tick(self, now: float, workers: int, local: int = 0) -> str | None:
        """The notice due at ``now`` with ``workers`` connected (``local`` of them started here)."""
        if self._last is not None and (workers > 0 or local > 0 or now - self._last < self.every):
            return None
        first = self._last is None
        self._last = now
        if workers > 0 or local > 0:
            return (f"shadho: {local} local worker(s) on this machine; more can join with:\n"
                    + self.connection.describe())
        head = "no workers connected yet" if first else "still no workers connected"
        return f"shadho: {head}; start some with one of:\n" + self.connection.describe()


@dataclass(frozen=True)
class ClassNeeds:
    """What one task of a compute class requires of a worker."""

    name: str
    feature: str | None = None
    cores: float = 0
    memory: float = 0
    gpus: float = 0

    def describe(self) -> str:
        parts = [f"feature {self.feature!r}"] if self.feature else []
        parts += [f"{v:g} {k}" + (" MB" if k == "memory" else "")
                  for k, v in (("cores", self.cores), ("memory", self.memory), ("gpus", self.gpus)) if v]
        return ", ".join(parts) or "nothing special"


@dataclass(frozen=True)
class Pool:
    """The connected workers, as Work Queue summarises them (largest worker's resources)."""

    workers: int
    max_cores: float = 0
    max_memory: float = 0
    max_gpus: float = 0

    def describe(self) -> str:
        if not self.workers:
            return "no workers are connected"
        return (f"{self.workers} connected worker(s), the largest with {self.max_cores:g} cores, "
                f"{self.max_memory:g} MB memory, {self.max_gpus:g} gpus")

    def never_fits(self, need: ClassNeeds) -> list[str]:
        """The requirements of ``need`` larger than every connected worker."""
        if not self.workers:
            return []
        have = {"cores": self.max_cores, "memory": self.max_memory, "gpus": self.max_gpus}
        return [k for k, v in have.items() if getattr(need, k) > v + 1e-9]


class UnmatchedNotice:
    """Warns about compute classes whose queued tasks no connected worker runs.

    A requirement larger than every connected worker is said at once; a class whose tasks
    wait ``after`` seconds with none running (a feature no worker has) is said then, and
    again every ``5 * after`` seconds while it lasts.

    Example:
        >>> u = UnmatchedNotice(after=60)
        >>> needs = {'big': ClassNeeds('big', cores=32)}
        >>> u.tick(0, needs, {'big': 3}, {'big': 0}, Pool(2, 16, 4000, 0))[0][:60]
        "shadho: compute class 'big' needs 32 cores but no connected "
    """

    def __init__(self, after: float = 60.0) -> None:
        self.after = float(after)
        self._idle_since: dict[str, float] = {}
        self._said: dict[str, float] = {}
        self._impossible: dict[str, tuple[str, ...]] = {}

    def tick(self, now: float, needs: Mapping[str, ClassNeeds], waiting: Mapping[str, int],
             running: Mapping[str, int], pool: Pool) -> list[str]:
        out: list[str] = []
        if not pool.workers:  # ConnectNotice says how to connect some; nothing to match yet
            self._idle_since.clear()
            return out
        for key, need in needs.items():
            if not waiting.get(key) or running.get(key):
                self._idle_since.pop(key, None)
                self._said.pop(key, None)
                continue
            too_big = tuple(pool.never_fits(need))
            if too_big and self._impossible.get(key) != too_big:
                self._impossible[key] = too_big
                out.append(f"shadho: compute class {need.name!r} needs {need.describe()} but no connected "
                           f"worker can ever run it ({pool.describe()}); start larger workers or lower "
                           f"the class's {'/'.join(too_big)}")
                continue
            since = self._idle_since.setdefault(key, now)
            last = self._said.get(key, -math.inf)
            if now - since >= self.after and now - last >= 5 * self.after and not too_big:
                self._said[key] = now
                fix = (f"start workers with --feature {need.feature}" if need.feature
                       else "start workers that large")
                out.append(f"shadho: compute class {need.name!r} has {waiting[key]} queued task(s) and none "
                           f"has run for {now - since:.0f} s: it requires {need.describe()}; {pool.describe()} "
                           f"(their features are not visible to the master); {fix}")
        return out
