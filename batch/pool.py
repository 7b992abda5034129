"""Keep N shadho workers alive as batch jobs, and clean them up.

:class:`WorkerPool` submits ``count`` worker jobs through a :class:`~shadho.batch.base.BatchSystem`,
polls their states, replaces the jobs that end (a walltime TIMEOUT is the normal end of a pilot
worker), and cancels every job it owns when it stops: on :meth:`WorkerPool.stop`, on
SIGTERM/SIGINT inside :meth:`WorkerPool.run`, or when the master is gone.

How "the master is gone" is seen, from both sides:

* the workers: each runs with ``--timeout`` (idle and connect timeout), so a worker with no
  master (or no work) leaves by itself after that many seconds;
* the pool: every poll it probes the master. With ``HOST:PORT`` it opens a TCP connection to the
  manager's port; with a project name it asks the catalog for the manager's address, then
  connects. After ``master_grace`` seconds without a successful probe it stops (and cancels its
  jobs). When no probe is possible (a name and no reachable catalog), it stops once the last
  ``2 * count`` worker jobs in a row all ended within ``worker_timeout_s + 120`` seconds of
  starting -- workers that leave as soon as their timeout allows were never given work.

It also gives up (``WorkerError``) when jobs keep failing right after they start (a wrong
Python path, no ``work_queue_worker`` on the nodes), instead of filling the queue.

Example:
    >>> from shadho.batch.local import LocalSystem
    >>> from shadho.batch.base import WorkerSpec
    >>> pool = WorkerPool(LocalSystem(), WorkerSpec(manager="localhost:9123"), count=2)
    >>> pool.jobs   # nothing is submitted before start()/run()
    {}
"""
from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Callable, Optional

from shadho.batch.base import BatchSystem, JobState, WorkerSpec, parse_address
from shadho.errors import ShadhoError, WorkerError

Probe = Callable[[], Optional[bool]]


def tcp_probe(address: str, timeout: float = 3.0) -> Probe:
    """A probe that says whether something listens at ``HOST:PORT``.

    Example:
        >>> tcp_probe("127.0.0.1:1")()
        False
    """
    host, port = parse_address(address)

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return probe


def catalog_probe(name: str, catalog: str | None, timeout: float = 5.0) -> Probe:
    """A probe that looks the project up in the catalog, then connects to it.

    Returns None (unknown) when there is no catalog or it cannot be reached.
    """
    def probe() -> bool | None:
        if catalog is None:
            return None
        host, port = parse_address(catalog)
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/query.json", timeout=timeout) as r:
                records = json.loads(r.read().decode("utf-8", "replace"))
        except (OSError, ValueError):
            return None
        for rec in records if isinstance(records, list) else []:
            if rec.get("project") == name and str(rec.get("type", "")).startswith("wq_"):
                addr = rec.get("address") or rec.get("name")
                if addr and rec.get("port") and tcp_probe(f"{addr}:{rec['port']}", timeout)():
                    return True
        return False

    return probe


@dataclass
class _Job:
    submitted: float
    running_since: float | None = None


class WorkerPool:
    """Keep ``count`` worker jobs queued or running on a batch system.

    Args:
        system: the batch system that submits, queries and cancels.
        spec: what each worker job asks for and where it connects.
        count: number of worker jobs to keep.
        poll_interval: seconds between polls in :meth:`run`.
        master_grace: seconds without the master before the pool stops (default: the workers'
            ``worker_timeout_s``).
        probe: says whether the master is up (True/False) or cannot tell (None); default from
            the spec (TCP to ``manager``, or the catalog for ``name``).
        max_quick_failures: consecutive jobs failing within ``quick_seconds`` of their start
            before the pool gives up with :class:`WorkerError`.
        log: called with one line per event (default: nothing).
    """

    def __init__(self, system: BatchSystem, spec: WorkerSpec, count: int, *,
                 poll_interval: float = 5.0, master_grace: float | None = None,
                 probe: Probe | None = None, max_quick_failures: int = 5,
                 quick_seconds: float = 30.0, log: Callable[[str], None] | None = None) -> None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"count must be a whole number >= 1; got {count!r}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive; got {poll_interval!r}")
        self.system = system
        self.spec = spec.validate()
        self.count = count
        self.poll_interval = poll_interval
        self.master_grace = float(master_grace if master_grace is not None else spec.worker_timeout_s)
        self._probe = probe
        self.max_quick_failures = max_quick_failures
        self.quick_seconds = quick_seconds
        self._log = log or (lambda line: None)
        self.jobs: dict[str, _Job] = {}
        #: Every job id this pool ever submitted, in order.
        self.submitted: list[str] = []
        #: job id -> final state, for jobs seen to end.
        self.ended: dict[str, JobState] = {}
        self.master_gone = False
        self._quick_failures = 0
        self._short_lives: list[bool] = []
        self._master_seen = time.monotonic()
        self._wake = threading.Event()
        self._stop_reason: str | None = None

    # -- the pieces ----------------------------------------------------------------------------

    @property
    def probe(self) -> Probe:
        if self._probe is None:
            if self.spec.manager is not None:
                self._probe = tcp_probe(self.spec.manager)
            else:
                self._probe = catalog_probe(str(self.spec.name), self.spec.catalog)
        return self._probe

    def start(self) -> list[str]:
        """Submit jobs until ``count`` are queued or running; return the new ids."""
        self._master_seen = time.monotonic()
        return self._fill()

    def _fill(self) -> list[str]:
        new = []
        while len(self.jobs) < self.count:
            job_id = self.system.submit(self.spec)
            self.jobs[job_id] = _Job(submitted=time.monotonic())
            self.submitted.append(job_id)
            new.append(job_id)
            self._log(f"submitted worker job {job_id}")
        return new

    def poll(self) -> None:
        """Update job states, replace ended jobs, check the master (one step of :meth:`run`).

        Raises:
            WorkerError: worker jobs keep failing right after they start.
        """
        now = time.monotonic()
        try:
            states = self.system.status(list(self.jobs))
        except ShadhoError as exc:
            self._log(f"cannot query jobs this time: {exc}")
            states = {}
        for job_id, state in states.items():
            job = self.jobs[job_id]
            if state is JobState.RUNNING and job.running_since is None:
                job.running_since = now
            if state.active:
                continue
            del self.jobs[job_id]
            self.ended[job_id] = state
            lived = now - (job.running_since or job.submitted)
            self._log(f"worker job {job_id} ended: {state.value} after {lived:.0f} s")
            if state in (JobState.FAILED, JobState.UNKNOWN) and lived < self.quick_seconds:
                self._quick_failures += 1
            else:
                self._quick_failures = 0
            self._short_lives.append(lived < self.spec.worker_timeout_s + 120)
            if state is JobState.FAILED:
                try:  # a held HTCondor job stays in the queue
                    self.system.cancel([job_id])
                except ShadhoError:
                    pass
        if self._quick_failures >= self.max_quick_failures:
            raise WorkerError(
                f"{self._quick_failures} worker jobs in a row failed right after starting; "
                f"see the job output in {self.spec.log_dir}")
        self._check_master(now)
        if not self.master_gone:
            try:
                self._fill()
            except ShadhoError as exc:
                self._log(f"cannot submit this time: {exc}")

    def _check_master(self, now: float) -> None:
        alive = self.probe()
        if alive:
            self._master_seen = now
            return
        if alive is False:
            if now - self._master_seen > self.master_grace:
                self.master_gone = True
                self._log(f"master not reachable for {now - self._master_seen:.0f} s")
            return
        recent = self._short_lives[-2 * self.count:]
        if len(recent) >= 2 * self.count and all(recent):
            self.master_gone = True
            self._log(f"the last {len(recent)} workers all left unused: taking the master as gone")

    def stop(self, wait: float = 30.0) -> None:
        """Cancel every job of this pool and wait (up to ``wait`` s) until none is active."""
        ids = list(self.jobs)
        if not ids:
            return
        self._log(f"cancelling {len(ids)} worker job(s)")
        self.system.cancel(ids)
        start = time.monotonic()
        deadline = start + wait
        again: float | None = start + wait / 2
        while ids and time.monotonic() < deadline:
            if again and time.monotonic() >= again:
                again = None  # jobs that ignored the first cancel get a second one
                try:
                    self.system.cancel(ids)
                except ShadhoError:
                    pass
            try:
                states = self.system.status(ids)
            except ShadhoError:
                states = {}
            for job_id, state in states.items():
                if not state.active:
                    self.ended[job_id] = state
                    ids.remove(job_id)
            if ids:
                time.sleep(0.5)
        if ids:
            self._log(f"jobs still listed after cancel: {', '.join(ids)}")
        self.jobs.clear()

    def request_stop(self, reason: str = "stopped") -> None:
        """Make :meth:`run` return soon (safe from signal handlers and other threads)."""
        self._stop_reason = reason
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    def run(self, duration: float | None = None, handle_signals: bool = True) -> str:
        """Keep the pool up until stopped, signalled, the master is gone, or ``duration`` s.

        Always cancels the pool's jobs before returning.

        Returns:
            Why it stopped: ``"stopped"``, ``"signal SIGTERM"``, ``"master gone"``, ``"duration"``.
        """
        previous = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(
                    sig, lambda signum, frame: self.request_stop(f"signal {signal.Signals(signum).name}"))
        end = time.monotonic() + duration if duration is not None else None
        try:
            self.start()
            while self._stop_reason is None:
                timeout = self.poll_interval
                if end is not None:
                    timeout = min(timeout, max(end - time.monotonic(), 0))
                if self._wake.wait(timeout):
                    break
                if end is not None and time.monotonic() >= end:
                    self._stop_reason = "duration"
                    break
                self.poll()
                if self.master_gone:
                    self._stop_reason = "master gone"
            return self._stop_reason or "stopped"
        finally:
            # Cleaning up must not be cut short by a second Ctrl-C.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            try:
                self.stop()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    def __enter__(self) -> "WorkerPool":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
