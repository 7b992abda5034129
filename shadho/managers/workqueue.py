"""Run trials as Work Queue tasks (cctools), on local and remote workers.

The only module of shadho that imports Work Queue, and only inside
:func:`import_work_queue`. One experiment's objective is cloudpickled once into a
file shipped to workers as a cached input; each task ships its trials' params as
a small JSON buffer and runs ``<python> shadho_worker.py objective.pkl params.json
result.json``. Results come back as JSON files (never pickles) and are size-checked
before parsing. Shell-command objectives run the command in the task's sandbox
with ``hyperparameters.json`` and read back ``performance.json``.

Compute classes become Work Queue categories (FIXED allocation when sized), and
their features become task features. Late binding: :meth:`WorkQueueManager.capacity`
hands out only the free slots of connected workers plus a small queue margin.
"""
from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from shadho.compute import ALLOCATED, ComputeClass
from shadho.errors import BackendUnavailableError, WorkerError
from shadho.managers import outcome, task_shell
from shadho.managers.base import (ExecutionManager, RunSettings, TaskSpec, TrialOutcome, class_keys,
                                  command_with_tag, default_queue_margin, task_tag)

log = logging.getLogger("shadho")

from shadho.managers.wq_setup import WORKER_SPEC_KEYS, catalog_address, parse_worker_specs  # noqa: F401 - re-exported
from shadho.managers.wq_setup import install_hint as _install_hint
from shadho.notices import ClassNeeds, Connection, ConnectNotice, Pool, UnmatchedNotice

#: Extra keyword options of WorkQueueManager, with their defaults.
OPTIONS = {"worker_timeout": 60, "worker_args": (), "max_retries": 5, "queue_margin": None,
           "worker_binary": "work_queue_worker", "connect_notice_every": 30.0, "unmatched_after": 60.0,
           "memory_mb": None, "short_timeout": 1, "max_runs": 5}
_DEFAULT = "shadho-default"


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
    submitted: float = field(default_factory=time.time)


def _wq_priority(priority: float, seq: int) -> float:
    """The priority handed to Work Queue: ``priority`` less a tie-break that keeps tasks of
    equal priority in submission order. cctools 8.0 runs equal-priority tasks newest first
    (measured: 8 tasks on one 1-core worker ran as 3,4,5,6,7,2,1,0), so without it the first
    task queued for a busy class waits while every later one overtakes it, to the end of
    the run. Scheduler priorities are weights in [0, 1]; 1e-12 per task keeps their order."""
    return float(priority) - seq * 1e-12


@dataclass
class _LocalWorker:
    spec: dict[str, Any]
    args: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0


def _total_memory_mb() -> int | None:
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


class WorkQueueManager(ExecutionManager):
    """Trials as Work Queue tasks.

    Args:
        local_workers: workers started on this machine for the run: an int (that many
            1-core workers), a list of specs (dicts with ``cores``, ``memory`` (MB),
            ``disk`` (MB), ``gpus``, ``features`` such as ``{'size': 'big'}``), ``0`` (none:
            wait for remote workers) or None: one 1-core worker per CPU of this machine,
            or none when ``name`` is given (a named manager expects remote workers).
        port: an int (0: the first free port from 1024) or ``[low, high]``.
        password: a password file; None generates one (mode 0600, private folder).
            Workers need the same file: ``work_queue_worker --password FILE HOST PORT``.
        name, catalog: advertise as ``name`` to catalog ``host:port`` (both needed).
        worker_python: the Python that runs callable objectives on workers. Default:
            this interpreter on workers shadho starts, ``python3`` on others.
        max_queued_tasks: most tasks waiting (beyond free slots) per compute class.
        worker_timeout: local workers exit this many seconds after losing the manager.
        worker_args: extra command-line arguments for local workers.
        max_retries: times Work Queue itself moves a task to another worker after worker failures.
        max_runs: most times a trial is run while its workers keep being lost (killed or
            disconnected); then it FAILS with that cause.
        short_timeout: seconds Work Queue waits for a new connection to authenticate (and
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
        self._workers: list[_LocalWorker] = []
        self._classes: dict[str | None, ComputeClass | None] = {}
        self._category: dict[str | None, str] = {}
        self._task_res: dict[str | None, dict[str, float]] = {}
        self._per_class: dict[str | None, int] = {}
        self._seq = 0
        self._runs = outcome.RunCounter(int(self.options["max_runs"]))
        self.port: int | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self, settings: RunSettings) -> None:
        wq = self._wq = import_work_queue()
        self._settings = settings
        _remove_stale_folders()
        self._tmp = tempfile.mkdtemp(prefix=f"shadho-wq-{os.getpid()}-")
        os.makedirs(os.path.join(self._tmp, "results"))
        if self.password is None:
            self._pw = os.path.join(self._tmp, "password")
            fd = os.open(self._pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))  # no trailing newline: it would be part of it
        else:
            self._pw = os.path.abspath(self.password)
        try:
            q = wq.WorkQueue(port=list(self.port_request) if not isinstance(self.port_request, int)
                             else self.port_request)
        except Exception as exc:  # Work Queue raises a bare Exception
            self._cleanup_tmp()
            raise WorkerError(f"Work Queue could not listen on port {self.port_request!r}: {exc}") from None
        self._q = q
        self.port = q.port
        q.specify_password_file(self._pw)
        tune_against_idle_connections(q, self.options["short_timeout"])
        if self.name:
            if self.catalog:
                host, _, cport = str(self.catalog).rpartition(":")
                if not host:
                    host, cport = str(self.catalog), "9097"
                q.specify_catalog_server(host, int(cport))
            # Without catalog=, cctools advertises to CATALOG_HOST/CATALOG_PORT or its default.
            q.specify_name(self.name)
        self._setup_categories(settings)
        if not callable(settings.objective) and any(
                c.resources.get("memory") or c.resources.get("disk") for c in settings.compute_classes):
            # Commands get their memory/disk limits enforced by resource_monitor (callables
            # limit their own address space in the worker entry, without a monitor process).
            q.enable_monitoring(None, True)
        self._setup_files(settings)
        self._start_workers()
        catalog = (self.catalog or catalog_address()) if self.name else None
        where = Connection(socket.gethostname(), self.port, self.name, self._pw, catalog)
        self._connect = ConnectNotice(where, every=float(self.options["connect_notice_every"]))
        self._unmatched = UnmatchedNotice(after=float(self.options["unmatched_after"]))
        self._say_notices()

    @property
    def password_file(self) -> str | None:
        """The password file workers must be given (generated ones vanish at stop())."""
        return self._pw

    def _setup_categories(self, settings: RunSettings) -> None:
        wq, q = self._wq, self._q
        classes = settings.compute_classes
        keys = class_keys(classes)
        for key in keys:
            cc = next((c for c in classes if c.name == key), None)
            self._classes[key] = cc
            cat = cc.name if cc is not None else _DEFAULT
            self._category[key] = cat
            sizes = dict(cc.resources) if cc is not None else {}
            if sizes:
                q.specify_category_max_resources(cat, {k: int(math.ceil(v)) for k, v in sizes.items()})
                q.specify_category_mode(cat, wq.WORK_QUEUE_ALLOCATION_MODE_FIXED)
            # A task without resources takes a whole worker: default to one core.
            self._task_res[key] = sizes if sizes.get("cores") else {"cores": 1, **sizes}
            self._per_class[key] = 0

    def _setup_files(self, settings: RunSettings) -> None:
        import shadho_worker

        assert self._tmp is not None
        # Copies under this run's private folder: their cache names are unique to the run,
        # so a long-lived remote worker never reuses a stale copy from another experiment.
        worker_py = os.path.join(self._tmp, "shadho_worker.py")
        shutil.copyfile(shadho_worker.__file__, worker_py)
        self._files = [(worker_py, "shadho_worker.py", True)]
        if callable(settings.objective):
            obj = os.path.join(self._tmp, "objective.pkl")
            with open(obj, "wb") as fh:
                fh.write(_dump_objective(settings.objective))
            self._files.append((obj, "objective.pkl", True))
        for f in settings.inputs:
            self._files.append((os.path.abspath(f.local), f.remote, f.cache))

    def _start_workers(self) -> None:
        assert self._tmp is not None and self._pw is not None
        n = len(self.worker_specs)
        mem_share = (_total_memory_mb() or 0) // max(n, 1) or None
        for i, spec in enumerate(self.worker_specs):
            wdir = os.path.join(self._tmp, f"worker-{i}")
            os.makedirs(wdir)
            args = [self.options["worker_binary"], "localhost", str(self.port), "--password", self._pw,
                    "--connect-timeout", str(int(self.options["worker_timeout"])),
                    "--idle-timeout", "86400", "--workdir", wdir,
                    "--cores", str(spec["cores"]), "--gpus", str(spec.get("gpus") or 0)]
            memory = spec.get("memory") or mem_share
            if memory:
                args += ["--memory", str(int(memory))]
            if spec.get("disk"):
                args += ["--disk", str(int(spec["disk"]))]
            for feat in spec.get("features") or ():
                args += ["--feature", feat]
            args += [str(a) for a in self.options["worker_args"]]
            w = _LocalWorker({**spec, "memory": memory}, args)
            self._spawn(w)
            self._workers.append(w)

    def _spawn(self, w: _LocalWorker) -> None:
        assert self._tmp is not None
        env = {**os.environ, "SHADHO_PYTHON": self.worker_python or sys.executable}
        logf = open(os.path.join(self._tmp, f"worker-log-{id(w)}.txt"), "ab")
        try:
            w.proc = subprocess.Popen(w.args, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                      env=env, preexec_fn=_die_with_parent)
        except FileNotFoundError:
            raise WorkerError(f"cannot start local workers: {w.args[0]!r} not found on PATH "
                              f"(install cctools, or pass local_workers=0 for remote workers)") from None
        finally:
            logf.close()

    def _check_workers(self) -> None:
        """Restart local workers that died (a few times each), so a run cannot stall."""
        for w in self._workers:
            if w.proc is not None and w.proc.poll() is not None and w.restarts < 3:
                log.warning("local Work Queue worker exited with status %s; restarting it", w.proc.returncode)
                w.restarts += 1
                self._spawn(w)
        dead = [w for w in self._workers if w.proc is not None and w.proc.poll() is not None and w.restarts >= 3]
        if dead and len(dead) == len(self._workers) and self._q is not None and not self._q.stats.workers_connected:
            w = dead[-1]
            tail = outcome.tail_of(os.path.join(self._tmp or "", f"worker-log-{id(w)}.txt"))
            raise WorkerError(
                f"all {len(dead)} local Work Queue workers exited, each restarted {w.restarts} times (last exit "
                f"status {w.proc.returncode}), and no other worker is connected: the search cannot go on. Finished "
                f"trials are saved; fix the cause and run again to resume. Last worker output:\n{tail}")

    def stop(self) -> None:
        self.cancel_all()
        for w in self._workers:
            self._kill_worker(w)
        self._workers = []
        if self._q is not None:
            # Dropping the last reference deletes the queue and closes its port.
            q, self._q = self._q, None
            free = getattr(q, "_free_queue", None)
            if free is not None:
                free()
            del q
        self._cleanup_tmp()

    @staticmethod
    def _kill_worker(w: _LocalWorker) -> None:
        p = w.proc
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGTERM)  # the worker and its tasks (own session)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=3)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.wait(timeout=5)

    def _cleanup_tmp(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # ------------------------------------------------------------ late binding

    def _slots(self) -> dict[str | None, int]:
        """Tasks of each class the connected (or starting local) workers can run at once."""
        live = [w for w in self._workers if w.proc is not None and w.proc.poll() is None]
        st = self._q.stats
        remote = {"workers": max(0, st.workers_connected - len(live)),
                  "cores": max(0, st.total_cores - sum(float(w.spec["cores"]) for w in live)),
                  "memory": max(0, st.total_memory - sum(float(w.spec.get("memory") or 0) for w in live)),
                  "gpus": max(0, st.total_gpus - sum(float(w.spec.get("gpus") or 0) for w in live))}
        out = {}
        for key, cc in self._classes.items():
            need = self._task_res[key]
            feature = cc.feature if cc is not None else None
            n = 0
            for w in live:
                if feature and feature not in (w.spec.get("features") or ()):
                    continue
                n += _fits(w.spec, need)
            if remote["workers"]:
                # Remote workers' features are not visible: count their pooled resources.
                n += remote["workers"] if feature else _fits(remote, need)
            out[key] = n
        return out

    def capacity(self) -> dict[str | None, int]:
        if self._q is None:
            return {}
        slots = self._slots()
        out = {}
        for key, n in slots.items():
            cc = self._classes[key]
            limit = min(cc.max_queued_tasks if cc is not None else self.max_queued_tasks, self.max_queued_tasks)
            margin = self.options["queue_margin"]
            margin = default_queue_margin(n) if margin is None else int(margin)
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
        wq, q, settings = self._wq, self._q, self._settings
        assert settings is not None and self._tmp is not None
        self._seq += 1
        result = os.path.join(self._tmp, "results", f"r{self._seq}.json")
        key = spec.compute_class
        cc = self._classes.get(key)
        timeout = settings.task_timeout
        memory = (cc.resources.get("memory") if cc is not None else None) or self.options["memory_mb"]
        if callable(settings.objective):
            t = wq.Task(task_shell.wrap(f"{self._python()} shadho_worker.py objective.pkl params.json result.json"))
            job = {"trials": [[tid, p] for tid, p in trials], "timeout": timeout, "memory_mb": memory}
            t.specify_buffer(json.dumps(job), "params.json", cache=False)
            t.specify_output_file(result, "result.json", cache=False)
            if timeout:  # the worker interrupts each trial itself; this is the backstop
                t.specify_running_time_max(int(math.ceil(timeout * len(trials) + 30)))
        else:
            # The first line of stdout names the batch job the worker runs in.
            # A class's memory is enforced by the resource monitor (start()); memory_mb= by ulimit.
            t = wq.Task(task_shell.wrap(task_shell.command_line(self._python()),
                                        None if cc is not None and cc.resources.get("memory")
                                        else self.options["memory_mb"],
                                        first_line='echo "@@shadho slurm=${SLURM_JOB_ID:-}"; '))
            # As the original did, the command gets the task tag as its last argument.
            t.specify_buffer(command_with_tag(settings.objective, task_tag(spec, trials[0][0])), task_shell.COMMAND_FILE,
                             cache=False)
            t.specify_buffer(json.dumps(trials[0][1]), "hyperparameters.json", cache=False)
            t.specify_output_file(result, "performance.json", cache=False)
            for f in settings.outputs:
                t.specify_output_file(os.path.abspath(f.local), f.remote, cache=f.cache)
            if timeout:
                t.specify_running_time_max(int(math.ceil(timeout)))
        for local, remote, cache in self._files:
            t.specify_input_file(local, remote, cache=cache)
        t.specify_category(self._category[key])
        for res, v in self._task_res[key].items():
            getattr(t, f"specify_{res}")(int(math.ceil(v)))
        if cc is not None and cc.feature:
            t.specify_feature(cc.feature)
        t.specify_priority(_wq_priority(spec.priority, self._seq))
        # Capped so that no trial runs more than max_runs times in all (see outcome.RunCounter).
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
            q.cancel_by_taskid(tid)
            getattr(q, "_task_table", {}).pop(tid, None)  # cancel leaves it in the Python table
            del self._pending[tid]
            t.specify_priority(_wq_priority(new, p.seq))
            p.priority = float(new)
            p.wq_task = t
            self._pending[q.submit(t)] = p

    # ------------------------------------------------------------ results

    def wait(self, timeout: float) -> list[TrialOutcome]:
        if self._q is None:
            return []
        self._check_workers()
        self._say_notices()
        if not self._pending:
            time.sleep(min(max(timeout, 0.0), 0.05))
            return []
        q = self._q
        out: list[TrialOutcome] = []
        # Work Queue waits in whole seconds; it returns as soon as a task is done.
        t = q.wait(int(math.ceil(timeout)) if timeout > 0 else 0)
        n = 0
        while t is not None:
            out.extend(self._collect(t))
            n += 1
            if n >= 1000:
                break
            t = q.wait(0)
        return out

    def _collect(self, t: Any) -> list[TrialOutcome]:
        p = self._pending.pop(t.id, None)
        if p is None:
            return []
        key = p.spec.compute_class
        self._per_class[key] -= 1
        self._runs.ran([tid for tid, _ in p.trials], outcome.tries(t))
        try:
            out = self._outcomes(p, t)
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

    def _outcomes(self, p: _Pending, t: Any) -> list[TrialOutcome]:
        wq = self._wq
        assert self._settings is not None
        key = p.spec.compute_class
        host = outcome.clean(getattr(t, "hostname", None)) or "unknown"
        result, status = t.result, t.return_status
        doc: dict[str, Any] = {}
        if callable(self._settings.objective):
            doc = outcome.read_json(p.result_path)
            host = outcome.clean(doc.get("host")) or host
            slurm = outcome.clean(doc.get("slurm"))
        else:
            first = (t.output or "").split("\n", 1)[0]
            slurm = outcome.clean(first[len("@@shadho slurm="):]) if first.startswith("@@shadho slurm=") else None
        worker = f"{host}/slurm:{slurm}" if slurm else host
        extra = {"worker": worker, "compute_class": key}
        start = outcome.usec(getattr(t, "execute_cmd_start", None))
        finish = outcome.usec(getattr(t, "execute_cmd_finish", None)) or time.time()

        why = outcome.why_failed(wq, t, self._settings.task_timeout, p.category)
        lost_worker = result in (wq.WORK_QUEUE_RESULT_MAX_RETRIES, wq.WORK_QUEUE_RESULT_FORSAKEN)

        if not callable(self._settings.objective):
            tid = p.trials[0][0]
            res = outcome.read_performance(p.result_path)
            if why is None and status != 0:
                why = f"command exited with status {status}"
                if res["status"] == "error":
                    why += f": {res['error']}"
            if why is None:
                return [TrialOutcome.from_json(tid, {**res, "start": start, "finish": finish}, **extra)]
            return [TrialOutcome(tid, False, error=outcome.with_output(why, t), start_time=start,
                                 finish_time=finish, **extra)]

        if "error" in doc and why is None:  # the objective could not be loaded
            err = str(doc["error"])[:20000]
            return [TrialOutcome(tid, False, error=err, start_time=start, finish_time=finish, **extra)
                    for tid, _ in p.trials]
        results = doc.get("trials") if isinstance(doc.get("trials"), dict) else {}
        out, blamed = [], False
        for tid, _ in p.trials:
            r = results.get(str(tid))
            if r is not None:
                out.append(TrialOutcome.from_json(tid, r, **extra))
                continue
            if why is None:
                why = (f"worker process exited with status {status} before writing a result"
                       if status else "the task wrote no result")
            if lost_worker:  # not the trial's fault: it runs again, up to max_runs times in all
                again = self._runs.may_rerun(tid)
                out.append(TrialOutcome(tid, False, error=None if again else self._runs.lost_error(tid),
                                        start_time=start, finish_time=finish, lost=again, **extra))
                continue
            # Only the trial that was running is to blame; later ones of a batch re-run.
            out.append(TrialOutcome(tid, False, error=None if blamed else outcome.with_output(why, t),
                                    start_time=start, finish_time=finish, lost=blamed, **extra))
            blamed = True
        return out

    def _say_notices(self) -> None:
        """How to connect workers, and classes no connected worker runs (see shadho.notices)."""
        now, q = time.monotonic(), self._q
        if q is None or now - getattr(self, "_noticed", -1.0) < 1.0:
            return
        self._noticed = now
        st = q.stats
        local = sum(1 for w in self._workers if w.proc is not None and w.proc.poll() is None)
        msgs = [self._connect.tick(now, st.workers_connected, local)]
        needs, waiting, running = {}, {}, {}
        for key, cc in self._classes.items():
            name = cc.name if cc is not None else "default"
            res = self._task_res[key]
            needs[name] = ClassNeeds(name, cc.feature if cc is not None else None, res.get("cores", 0),
                                     res.get("memory", 0), res.get("gpus", 0))
            cat = q.stats_category(self._category[key])
            waiting[name], running[name] = cat.tasks_waiting, cat.tasks_running
        pool = Pool(st.workers_connected, st.max_cores, st.max_memory, st.max_gpus)
        msgs += self._unmatched.tick(now, needs, waiting, running, pool)
        for m in msgs:
            if m and local and m is msgs[0]:
                log.info("%s", m)  # workers of our own are coming: the how-to is only for extra ones
            elif m:
                print(m, file=sys.stderr, flush=True)

    def cancel_all(self) -> list[int]:
        ids: list[int] = []
        q = self._q
        for tid, p in list(self._pending.items()):
            if q is not None:
                q.cancel_by_taskid(tid)
                getattr(q, "_task_table", {}).pop(tid, None)
            ids.extend(t for t, _ in p.trials)
        self._pending.clear()
        self._per_class = {k: 0 for k in self._per_class}
        return ids


# ---------------------------------------------------------------- helpers


def _dump_objective(fn: Any) -> bytes:
    """The objective file: one JSON header line (versions), then cloudpickle bytes.

    A function from the user's own module (not installed in site-packages) is pickled
    by value, so workers need not have that module.
    """
    import cloudpickle
    import shadho_worker

    header = {"python": "%d.%d.%d" % sys.version_info[:3], "cloudpickle": cloudpickle.__version__}
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    by_value = False
    mfile = getattr(module, "__file__", None) or ""
    if module is not None and module.__name__ != "__main__" and mfile and \
            "site-packages" not in mfile and "dist-packages" not in mfile and \
            not module.__name__.startswith("shadho"):
        try:
            cloudpickle.register_pickle_by_value(module)
            by_value = True
        except (ValueError, AttributeError):
            pass
    try:
        data = cloudpickle.dumps(fn)
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)
    return shadho_worker.OBJECTIVE_MAGIC + json.dumps(header).encode() + b"\n" + data


def tune_against_idle_connections(q: Any, seconds: float = 1) -> None:
    """Work Queue waits "short-timeout" seconds (default 5) for a new connection to authenticate
    and dispatches nothing meanwhile: each connection that never authenticates stalls the
    search that long. Bound it (see docs/reliability.md and bench/idle_connections.py)."""
    q.tune("short-timeout", seconds)


def _remove_stale_folders() -> None:
    """Remove scratch folders of masters that died without stop() (killed with SIGKILL)."""
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for n in names:
        parts = n.split("-")
        if not n.startswith("shadho-wq-") or len(parts) != 4 or not parts[2].isdigit():
            continue
        path = os.path.join(root, n)
        try:
            st = os.stat(path)
            if st.st_uid != os.getuid() or time.time() - st.st_mtime < 60:
                continue
            os.kill(int(parts[2]), 0)  # its master still runs
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _fits(res: dict[str, Any], need: dict[str, float]) -> int:
    """How many tasks needing ``need`` fit in resources ``res`` (unknown sizes: no limit)."""
    n = math.inf
    for k in ALLOCATED:
        want = float(need.get(k) or 0)
        if want <= 0:
            continue
        have = res.get(k)
        if have is None:
            if k in ("gpus",):
                return 0
            continue
        n = min(n, math.floor(float(have) / want + 1e-9))
    return 0 if n == math.inf else int(max(0, n))
