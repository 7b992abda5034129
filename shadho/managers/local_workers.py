"""Work Queue workers that shadho runs on this machine for one run (``local_workers=``).

:class:`LocalWorkers` starts one ``work_queue_worker`` process per spec, each in a
session of its own that dies with the master (Linux: ``PR_SET_PDEATHSIG``; elsewhere
``--connect-timeout`` ends it), restarts one that exits (a few times each, so a run
cannot stall), says so when all are gone for good, and ends them and their tasks at
:meth:`LocalWorkers.stop`. Workers without a memory size get an equal share of this
machine's memory, so that Work Queue does not hand each of them all of it.

Example:
    >>> ws = LocalWorkers([{'cores': 2, 'memory': 1000}], folder='/tmp/x', connect_timeout=60)
    >>> ws.args(0, 9123, '/tmp/x/password')[:4]
    ['work_queue_worker', 'localhost', '9123', '--password']
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from shadho.errors import WorkerError
from shadho.managers.outcome import tail_of

log = logging.getLogger("shadho")

#: Times one local worker is restarted after it exits, before the run gives up on it.
MAX_RESTARTS = 3


@dataclass
class LocalWorker:
    """One worker process: its spec (memory filled in), command line and restarts so far."""

    spec: dict[str, Any]
    args: list[str]
    log_path: str
    proc: subprocess.Popen | None = None
    restarts: int = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def total_memory_mb() -> int | None:
    """This machine's memory in MB (None when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)
    except (ValueError, OSError, AttributeError):
        return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Local workers must not outlive a master killed with SIGKILL (Linux only)."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; --connect-timeout is the fallback
        pass


class LocalWorkers:
    """The local workers of one run (see the module docstring).

    Args:
        specs: one dict per worker (``cores``, ``memory``, ``disk``, ``gpus``, ``features``),
            as :func:`shadho.managers.wq_setup.parse_worker_specs` returns them.
        folder: the run's scratch folder (each worker's workdir and log go in it).
        binary: the ``work_queue_worker`` executable.
        connect_timeout: seconds a worker waits for a lost manager before it exits.
        extra_args: more command-line arguments for every worker.
        python: what tasks run callable objectives with (``$SHADHO_PYTHON``).
    """

    def __init__(self, specs: Sequence[dict[str, Any]], *, folder: str, binary: str = "work_queue_worker",
                 connect_timeout: float = 60, extra_args: Sequence[Any] = (), python: str | None = None) -> None:
        self.specs = list(specs)
        self.folder = folder
        self.binary = binary
        self.connect_timeout = connect_timeout
        self.extra_args = [str(a) for a in extra_args]
        self.python = python or sys.executable
        share = (total_memory_mb() or 0) // max(len(self.specs), 1) or None
        self.memory = [spec.get("memory") or share for spec in self.specs]
        self.workers: list[LocalWorker] = []

    def args(self, i: int, port: int, password: str) -> list[str]:
        """The command line of worker ``i``."""
        spec, memory = self.specs[i], self.memory[i]
        args = [self.binary, "localhost", str(port), "--password", password,
                "--connect-timeout", str(int(self.connect_timeout)), "--idle-timeout", "86400",
                "--workdir", os.path.join(self.folder, f"worker-{i}"),
                "--cores", str(spec["cores"]), "--gpus", str(spec.get("gpus") or 0)]
        if memory:
            args += ["--memory", str(int(memory))]
        if spec.get("disk"):
            args += ["--disk", str(int(spec["disk"]))]
        for feat in spec.get("features") or ():
            args += ["--feature", feat]
        return args + self.extra_args

    def start(self, port: int, password: str) -> None:
        """Start every worker, pointed at the manager on ``port``."""
        for i, spec in enumerate(self.specs):
            os.makedirs(os.path.join(self.folder, f"worker-{i}"))
            w = LocalWorker({**spec, "memory": self.memory[i]}, self.args(i, port, password),
                            os.path.join(self.folder, f"worker-log-{i}.txt"))
            self._spawn(w)
            self.workers.append(w)

    def live(self) -> list[LocalWorker]:
        """The workers running now."""
        return [w for w in self.workers if w.alive]

    def check(self, others_connected: Callable[[], int]) -> None:
        """Restart workers that exited (up to :data:`MAX_RESTARTS` times each).

        Raises:
            WorkerError: every worker is gone for good and ``others_connected()`` is 0:
                nothing can run the search; the message quotes the last worker's output.
        """
        for w in self.workers:
            if w.proc is not None and not w.alive and w.restarts < MAX_RESTARTS:
                log.warning("local Work Queue worker exited with status %s; restarting it", w.proc.returncode)
                w.restarts += 1
                self._spawn(w)
        dead = [w for w in self.workers if w.proc is not None and not w.alive and w.restarts >= MAX_RESTARTS]
        if dead and len(dead) == len(self.workers) and not others_connected():
            w = dead[-1]
            raise WorkerError(
                f"all {len(dead)} local Work Queue workers exited, each restarted {w.restarts} times (last exit "
                f"status {w.proc.returncode if w.proc else None}), and no other worker is connected: the search "
                f"cannot go on. Finished trials are saved; fix the cause and run again to resume. Last worker "
                f"output:\n{tail_of(w.log_path)}")

    def stop(self) -> None:
        """End every worker and the tasks it runs: SIGTERM to each one's session, then, for
        those still running after a few seconds (all together, not one after the other),
        SIGKILL."""
        running = [w.proc for w in self.workers if w.alive]
        for p in running:
            _signal_session(p, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for p in running:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_session(p, signal.SIGKILL)
                p.wait(timeout=5)
        self.workers = []

    def _spawn(self, w: LocalWorker) -> None:
        env = {**os.environ, "SHADHO_PYTHON": self.python}
        logf = open(w.log_path, "ab")
        try:
            w.proc = subprocess.Popen(w.args, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                      env=env, preexec_fn=_die_with_parent)
        except FileNotFoundError:
            raise WorkerError(f"cannot start local workers: {w.args[0]!r} not found on PATH "
                              f"(install cctools, or pass local_workers=0 for remote workers)") from None
        finally:
            logf.close()


def _signal_session(p: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to a worker and its tasks (it leads a session of its own)."""
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
