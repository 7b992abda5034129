"""Run trials as Work Queue tasks (cctools), on local and remote workers: the adapter.

The only module of shadho that imports Work Queue, and only inside
:func:`import_work_queue`. :class:`WorkQueueManager` turns shadho tasks into Work Queue
tasks and their results back into trial outcomes; the other jobs of a Work Queue run live
in modules named for them:

* :mod:`~shadho.managers.packaging`: the objective cloudpickled once and shipped with the
  worker entry as cached inputs; each task's trials as a small JSON buffer (a shell
  command: ``hyperparameters.json`` in, ``performance.json`` out);
* :mod:`~shadho.managers.local_workers`: ``work_queue_worker`` processes of this machine
  (``local_workers=``), restarted when they die;
* :mod:`~shadho.managers.tmpdirs`: the run's private scratch folder and password file;
* :mod:`~shadho.managers.wq_results`: reading a finished task (size-checked JSON, never
  pickles; Work Queue's result codes through one table), and
  :mod:`~shadho.managers.outcome`: the outcomes every manager builds the same way.

Compute classes become Work Queue categories (FIXED allocation when sized), and
their features become task features. Late binding: :meth:`WorkQueueManager.capacity`
hands out only the free slots of connected workers plus a small queue margin.
"""
from __future__ import annotations

import logging
import math
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from shadho.compute import ComputeClass
from shadho.errors import BackendUnavailableError, WorkerError
from shadho.managers import packaging, tmpdirs, wq_pool, wq_results
from shadho.managers.wq_starts import StartWatch
from shadho.managers.base import (ExecutionManager, RunSettings, TaskSpec, TrialOutcome, class_memory_mb,
                                  queue_margin)
from shadho.managers.local_workers import LocalWorkers
from shadho.managers.wq_setup import (WORKER_SPEC_KEYS, catalog_address, parse_worker_specs,  # noqa: F401 - re-exported
                                      split_catalog, tune_against_idle_connections)
from shadho.managers.wq_setup import install_hint as _install_hint
from shadho.notices import Connection, ConnectNotice, UnmatchedNotice

log = logging.getLogger("shadho")

#: Extra keyword options of WorkQueueManager, with their defaults.
OPTIONS = {"worker_timeout_s": 60, "worker_args": (), "max_retries": 5, "queue_margin": None,
           "worker_binary": "work_queue_worker", "connect_notice_every_s": 30.0, "unmatched_after_s": 60.0,
           "memory_mb": None, "short_timeout_s": 1, "max_runs": 5}
#: Option names before their unit was added: still accepted, with a DeprecationWarning.
RENAMED_OPTIONS = {"worker_timeout": "worker_timeout_s", "short_timeout": "short_timeout_s",
                   "connect_notice_every": "connect_notice_every_s", "unmatched_after": "unmatched_after_s"}
_DEFAULT = "shadho-default"
#: Scratch folders of Work Queue runs: ``$TMPDIR/shadho-wq-<master pid>-<random>`` (see tmpdirs).
RUN_FOLDER_PREFIX = "shadho-wq-"


def import_work_queue() -> Any:
    """The Work Queue module: ``ndcctools.work_queue`` (conda) or ``work_queue`` (Debian).

    Raises:
        BackendUnavailableError: neither is importable; the message says how to install.
    """
    try:
        from ndcctools import work_queue as wq  # type: ignore[import-not-found]
        return wq
    except ImportError:
        pass
    try:
        import work_queue as wq  # type: ignore[import-not-found]
        return wq
    except ImportError as exc:
        raise BackendUnavailableError(f"{_install_hint()} ({exc})") from None


@dataclass
class _Pending:
    """One submitted Work Queue task: the shadho task (or one trial of it) it runs."""

    spec: TaskSpec
    trials: tuple[tuple[int, dict[str, Any]], ...]
    wq_task: Any
    result_path: str
    category: str
    seq: int = 0                      # submission order: Work Queue's tie-break (see _wq_priority)
    priority: float = 0.0             # the scheduler's priority, before the tie-break
    started: float | None = None      # when Work Queue began running it (see wq_starts)


def _wq_priority(priority: float, seq: int) -> float:
    """The priority handed to Work Queue: ``priority`` less a tie-break that keeps tasks of
    equal priority in submission order. cctools 8.0 runs equal-priority tasks newest first
    (measured: 8 tasks on one 1-core worker ran as 3,4,5,6,7,2,1,0), so without it the first
    task queued for a busy class waits while every later one overtakes it, to the end of
    the run. Scheduler priorities are weights in [0, 1]; 1e-12 per task keeps their order."""
    return float(priority) - seq * 1e-12


class WorkQueueManager(ExecutionManager):
    """Trials as Work Queue tasks.

    Args:
        local_workers: workers started on this machine for the run (see
            :mod:`~shadho.managers.local_workers`): an int (that many 1-core workers), a
            list of specs (dicts with ``cores``, ``memory`` (MB), ``disk`` (MB), ``gpus``,
            ``features`` such as ``{'size': 'big'}``), or None / 0: none, wait for remote
            workers (a master never computes on a login node unless asked).
        port: an int (0: the first free port from 1024) or ``[low, high]``.
        password: a password file; None generates one (mode 0600, private folder).
            Workers need the same file: ``work_queue_worker --password FILE HOST PORT``.
        name, catalog: advertise as ``name`` to catalog ``host:port`` (both needed).
        worker_python: the Python that runs callable objectives on workers. Default:
            this interpreter on workers shadho starts, ``python3`` on others.
        max_queued_tasks: most tasks waiting (beyond free slots) per compute class.
        worker_timeout_s: local workers exit this many seconds after losing the manager.
        worker_args: extra command-line arguments for local workers.
        max_retries: times Work Queue itself moves a task to another worker after worker failures.
        max_runs: most times a trial is run while its workers keep being lost (killed or
            disconnected); then it FAILS with that cause.
        short_timeout_s: seconds Work Queue waits for a new connection to authenticate (and
            for a brief message to a worker); an idle connection stalls dispatch this long.
        queue_margin: tasks kept waiting per class beyond free slots (default: half
            the slots, at least 2, at most max_queued_tasks).
        worker_binary: the ``work_queue_worker`` executable.
    """

    def __init__(self, local_workers: Any = None, port: int | Sequence[int] = 0, password: str | None = None,
                 name: str | None = None, catalog: str | None = None, worker_python: str | None = None,
                 max_queued_tasks: int = 100, **options: Any) -> None:
        from shadho.settings import WorkQueueSettings

        s = WorkQueueSettings(local_workers, port, password, name, catalog, worker_python, max_queued_tasks,
                              options)  # every check in one place, the same as Shadho()'s
        self.options = {**OPTIONS, **s.options}
        self.worker_specs = parse_worker_specs(s.local_workers, s.name)
        self.port_request, self.password, self.name = s.port, s.password, s.name
        self.catalog, self.worker_python, self.max_queued_tasks = s.catalog, s.worker_python, s.max_queued_tasks
        self._wq: Any = None
        self._q: Any = None
        self._settings: RunSettings | None = None
        self._tmp: str | None = None
        self._pw: str | None = None
        self._files: list[tuple[str, str, bool]] = []
        self._pending: dict[int, _Pending] = {}
        self._workers: LocalWorkers | None = None
        self._classes: dict[str | None, ComputeClass | None] = {}
        self._category: dict[str | None, str] = {}
        self._task_res: dict[str | None, dict[str, float]] = {}
        self._per_class: dict[str | None, int] = {}
        self._seq = 0
        self._runs = wq_results.RunCounter(int(self.options["max_runs"]))
        self._starts = StartWatch()
        self.port: int | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self, settings: RunSettings) -> None:
        self._wq = import_work_queue()
        self._settings = settings
        tmpdirs.remove_stale(RUN_FOLDER_PREFIX)
        self._tmp = tmpdirs.make_run_folder(RUN_FOLDER_PREFIX)
        os.makedirs(os.path.join(self._tmp, "results"))
        self._pw = tmpdirs.write_password(self._tmp) if self.password is None else os.path.abspath(self.password)
        self._open_queue()
        self._setup_categories(settings)
        if not callable(settings.objective) and any(
                c.resources.get("memory") or c.resources.get("disk") for c in settings.compute_classes):
            # Commands get their memory/disk limits enforced by resource_monitor (callables
            # limit their own address space in the worker entry, without a monitor process).
            self._q.enable_monitoring(None, True)
        self._files = packaging.stage_files(self._tmp, settings)
        self._workers = LocalWorkers(self.worker_specs, folder=self._tmp, binary=self.options["worker_binary"],
                                     connect_timeout=self.options["worker_timeout_s"],
                                     extra_args=self.options["worker_args"], python=self.worker_python)
        self._workers.start(self.port, self._pw)
        catalog = (self.catalog or catalog_address()) if self.name else None
        where = Connection(socket.gethostname(), self.port, self.name, self._pw, catalog)
        self._connect = ConnectNotice(where, every=float(self.options["connect_notice_every_s"]))
        self._unmatched = UnmatchedNotice(after=float(self.options["unmatched_after_s"]))
        self._say_notices()

    def _open_queue(self) -> None:
        """Listen on the requested port, with the password, advertised when named."""
        try:
            q = self._wq.WorkQueue(port=list(self.port_request) if not isinstance(self.port_request, int)
                                   else self.port_request)
        except Exception as exc:  # Work Queue raises a bare Exception
            tmpdirs.remove(self._tmp)
            self._tmp = None
            raise WorkerError(f"Work Queue could not listen on port {self.port_request!r}: {exc}") from None
        self._q = q
        self.port = q.port
        q.specify_password_file(self._pw)
        tune_against_idle_connections(q, self.options["short_timeout_s"])
        if self.name:
            if self.catalog:
                q.specify_catalog_server(*split_catalog(self.catalog))
            # Without catalog=, cctools advertises to CATALOG_HOST/CATALOG_PORT or its default.
            q.specify_name(self.name)

    @property
    def password_file(self) -> str | None:
        """The password file workers must be given (generated ones vanish at stop())."""
        return self._pw

    @property
    def local_processes(self) -> list[Any]:
        """The processes of the local workers running now (empty before start and after stop)."""
        return [w.proc for w in self._workers.live()] if self._workers is not None else []

    def _setup_categories(self, settings: RunSettings) -> None:
        self._classes, self._category, self._task_res = wq_pool.class_table(settings.compute_classes, _DEFAULT)
        self._per_class = {key: 0 for key in self._classes}
        for key, cc in self._classes.items():
            if cc is not None and cc.resources:
                cat = self._category[key]
                self._q.specify_category_max_resources(cat, {k: int(math.ceil(v)) for k, v in cc.resources.items()})
                self._q.specify_category_mode(cat, self._wq.WORK_QUEUE_ALLOCATION_MODE_FIXED)

    def stop(self) -> None:
        self.cancel_all()
        if self._workers is not None:
            self._workers.stop()
        if self._q is not None:
            # Dropping the last reference deletes the queue and closes its port.
            q, self._q = self._q, None
            free = getattr(q, "_free_queue", None)
            if free is not None:
                free()
            del q
        tmpdirs.remove(self._tmp)
        self._tmp = None

    # ------------------------------------------------------------ late binding

    def capacity(self) -> dict[str | None, int]:
        if self._q is None:
            return {}
        out = {}
        live = [w.spec for w in self._workers.live()] if self._workers is not None else []
        for key, n in wq_pool.slots(self._q.stats, live, self._classes, self._task_res).items():
            cc = self._classes[key]
            limit = min(cc.max_queued_tasks if cc is not None else self.max_queued_tasks, self.max_queued_tasks)
            margin = queue_margin(self.options["queue_margin"], n)
            # Keep every slot busy plus a short queue; a long queue slows Work Queue's dispatch.
            out[key] = max(0, n + min(margin, limit) - self._per_class[key])
        return out

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def status(self) -> dict[str, Any]:
        if self._q is None:
            return {"workers": 0, "running": 0, "queued": 0}
        st = self._q.stats
        return {"workers": st.workers_connected, "running": st.tasks_running, "queued": st.tasks_waiting,
                "port": self.port}

    # ------------------------------------------------------------ submit

    def submit(self, task: TaskSpec) -> None:
        assert self._settings is not None and self._q is not None, "start() first"
        if callable(self._settings.objective):
            self._submit(task, task.trials)
        else:
            for trial in task.trials:  # one command run per task: its sandbox holds one params file
                self._submit(task, (trial,))

    def _submit(self, spec: TaskSpec, trials: tuple[tuple[int, dict[str, Any]], ...]) -> None:
        q, settings = self._q, self._settings
        assert settings is not None and self._tmp is not None
        self._seq += 1
        result = os.path.join(self._tmp, "results", f"r{self._seq}.json")
        key = spec.compute_class
        cc = self._classes.get(key)
        own = class_memory_mb(settings.compute_classes, key)
        t = packaging.make_task(self._wq, settings, spec, trials, result, python=self._python(),
                                memory_mb=own or self.options["memory_mb"], monitored=bool(own))
        for local, remote, cache in self._files:
            t.specify_input_file(local, remote, cache=cache)
        t.specify_category(self._category[key])
        for res, v in self._task_res[key].items():
            getattr(t, f"specify_{res}")(int(math.ceil(v)))
        if cc is not None and cc.feature:
            t.specify_feature(cc.feature)
        t.specify_priority(_wq_priority(spec.priority, self._seq))
        # Capped so that no trial runs more than max_runs times in all (see wq_results.RunCounter).
        t.specify_max_retries(min(int(self.options["max_retries"]), self._runs.retries_for([i for i, _ in trials])))
        tid = q.submit(t)
        self._pending[tid] = _Pending(spec, trials, t, result, self._category[key], self._seq, float(spec.priority))
        self._per_class[key] = self._per_class.get(key, 0) + 1

    def _python(self) -> str:
        return shlex.quote(self.worker_python) if self.worker_python else '"${SHADHO_PYTHON:-python3}"'

    def set_priorities(self, priorities: dict[str | None, dict[str, float]]) -> None:
        """Re-prioritise waiting tasks: a waiting task is cancelled and resubmitted with its
        new priority (Work Queue has no call to change a queued task's priority)."""
        if self._q is None or not priorities:
            return
        wq, q = self._wq, self._q
        ready = getattr(wq, "WORK_QUEUE_TASK_READY", 1)
        for tid, p in list(self._pending.items()):
            new = priorities.get(p.spec.compute_class, {}).get(p.spec.space_id)
            if new is None or float(new) == p.priority or q.task_state(tid) != ready:
                continue
            # Resubmitting the cancelled task itself aborts in cctools 8.0: submit a clone.
            t = p.wq_task.clone()
            self._cancel(tid)
            t.specify_priority(_wq_priority(new, p.seq))
            p.priority = float(new)
            p.wq_task = t
            self._pending[q.submit(t)] = p

    def _cancel(self, tid: int) -> None:
        """Drop Work Queue task ``tid`` (not its trials' bookkeeping)."""
        self._q.cancel_by_taskid(tid)
        getattr(self._q, "_task_table", {}).pop(tid, None)  # cancel leaves it in the Python table
        self._pending.pop(tid, None)

    # ------------------------------------------------------------ results

    def wait(self, timeout: float) -> list[TrialOutcome]:
        if self._q is None:
            return []
        if self._workers is not None:
            self._workers.check(lambda: self._q.stats.workers_connected)
        self._say_notices()
        if not self._pending:
            time.sleep(min(max(timeout, 0.0), 0.05))
            return []
        out: list[TrialOutcome] = []
        # Work Queue waits in whole seconds; it returns as soon as a task is done. Then only
        # the tasks whose results are already here: wait(0) blocks up to ~0.2 s for the next
        # one, so looping on it while tasks kept finishing let every slot drain before the
        # driver refilled any (measured: each wait() lasted ~1 s with 4 short-task slots).
        t = self._q.wait(int(math.ceil(timeout)) if timeout > 0 else 0)
        n = 0
        while t is not None:
            out.extend(self._collect(t))
            n += 1
            if n >= 1000 or self._q.stats.tasks_with_results <= 0:
                break
            t = self._q.wait(0)
        self._starts.poll(self._wq, self._q, self._pending)
        return out

    def take_starts(self) -> list[tuple[int, float | None]]:
        return self._starts.take()

    def _collect(self, t: Any) -> list[TrialOutcome]:
        p = self._pending.pop(t.id, None)
        if p is None:
            return []
        key = p.spec.compute_class
        self._per_class[key] -= 1
        self._starts.collected(p, t)
        self._runs.ran([tid for tid, _ in p.trials], wq_results.tries(t))
        try:
            out = wq_results.outcomes(self._wq, t, self._settings, p.spec.compute_class, p.trials,
                                      p.result_path, p.category, self._runs)
            for o in out:
                o.attempts = self._runs.runs.get(o.trial_id)
            return out
        except Exception as exc:  # noqa: BLE001 - a hostile result must not stop the master
            log.warning("could not read the result of task %s: %r", t.id, exc)
            err = f"could not read the worker's result: {type(exc).__name__}: {str(exc)[:300]}"
            return [TrialOutcome(tid, False, error=err, compute_class=key) for tid, _ in p.spec.trials]
        finally:
            try:
                os.unlink(p.result_path)
            except OSError:
                pass

    def _say_notices(self) -> None:
        """How to connect workers, and classes no connected worker runs (see shadho.notices)."""
        now = time.monotonic()
        if self._q is None or now - getattr(self, "_noticed", -1.0) < 1.0:
            return
        self._noticed = now
        local = len(self.local_processes)
        msgs = wq_pool.notices(self._q, now, local, self._classes, self._task_res, self._category,
                               self._connect, self._unmatched)
        for m in msgs:
            if m and local and m is msgs[0]:
                log.info("%s", m)  # workers of our own are coming: the how-to is only for extra ones
            elif m:
                print(m, file=sys.stderr, flush=True)

    def cancel_all(self) -> list[int]:
        ids = [tid for p in self._pending.values() for tid, _ in p.trials]
        if self._q is not None:
            for tid in list(self._pending):
                self._cancel(tid)
        self._pending.clear()
        self._per_class = {k: 0 for k in self._per_class}
        return ids
