"""Run trials in processes on this machine (no Work Queue needed).

Each task runs in a fresh child process (forked, so the objective needs no
pickling), which reports one JSON line per trial through a pipe. A child that
crashes, is killed, segfaults, exceeds ``task_timeout`` or its memory limit gives
FAILED trials with the cause; the pool goes on.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from shadho.managers import outcome, tmpdirs
from shadho.managers.base import (ExecutionManager, RunSettings, TaskSpec, TrialOutcome, class_keys,
                                  class_memory_mb, command_with_tag, task_tag)
from shadho.managers.outcome import Cause, describe

_MAX_LINE = 2 << 20
#: Scratch folders of local runs: ``$TMPDIR/shadho-local-<master pid>-<random>`` (see tmpdirs).
RUN_FOLDER_PREFIX = "shadho-local-"


def _exit_cause(code: int | None) -> str:
    """Why a trial process ended without answering, from its exit code."""
    if code is not None and code < 0:
        return describe(Cause.SIGNAL, signal=-code)
    if code not in (0, None):
        return describe(Cause.EXITED, status=code)
    return describe(Cause.NO_RESULT)


@dataclass
class _Running:
    task: TaskSpec
    proc: Any
    fd: int
    log: str
    last: float         # when the task started or last reported a trial (task_timeout counts from it)
    buf: bytes = b""
    done: set[int] = field(default_factory=set)


def _run_command(cmd: str, params: dict[str, Any], settings: RunSettings, sandbox: str,
                 tag: str = "") -> dict[str, Any]:
    """The original SHADHO protocol, locally: hyperparameters.json in, performance.json out."""
    import shadho_worker

    os.makedirs(sandbox, exist_ok=True)
    for f in settings.inputs:
        dest = os.path.join(sandbox, f.remote)
        if not os.path.exists(dest):
            os.symlink(os.path.abspath(f.local), dest)
    worker_py = os.path.join(sandbox, "shadho_worker.py")
    if not os.path.exists(worker_py):
        shutil.copy(shadho_worker.__file__, worker_py)
    with open(os.path.join(sandbox, "hyperparameters.json"), "w") as fh:
        json.dump(params, fh)
    start = time.time()
    proc = subprocess.run(command_with_tag(cmd, tag) if tag else cmd, shell=True, cwd=sandbox,  # tag last, as the original
                          env={**os.environ, "SHADHO_SANDBOX": sandbox})
    out = outcome.command_result(shadho_worker.read_performance(os.path.join(sandbox, "performance.json")),
                                 proc.returncode)
    for f in settings.outputs:
        src = os.path.join(sandbox, f.remote)
        if os.path.exists(src):
            shutil.copy(src, f.local)
    return {**out, "start": start, "finish": time.time()}


def _run_rung(objective: Callable[..., Any] | str, task: TaskSpec, i: int, settings: RunSettings,
              scratch: str) -> dict[str, Any]:
    """Trial ``i`` of ``task`` at its budget, with its checkpoint folder (see :mod:`shadho.rung_task`)."""
    import shadho_worker
    from shadho.rung_task import call_with_budget, run_rung

    trial_id, params = task.trials[i]
    sandbox = os.path.join(scratch, f"sandbox-{trial_id}")
    if isinstance(objective, str):
        def run(fields: dict[str, Any]) -> dict[str, Any]:
            return _run_command(objective, {**params, **fields}, settings, sandbox, task_tag(task, trial_id))
    else:
        def run(fields: dict[str, Any]) -> dict[str, Any]:
            return shadho_worker.evaluate(call_with_budget(objective, fields), params)
    try:
        return run_rung(task.budgets[i], os.path.join(scratch, f"checkpoint-{trial_id}"), run)
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


def _child(objective: Callable[..., Any] | str, task: TaskSpec, settings: RunSettings, wfd: int,
           log: str, memory_mb: float | None) -> None:
    """Body of a trial process: never returns."""
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        import faulthandler
        import sys
        faulthandler.disable()
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        os.setsid()  # its own group: _finish ends what the objective left running
        import shadho_worker

        shadho_worker.become_subreaper()  # ... and any descendant that left the group
        if memory_mb:
            limit = int(memory_mb * 2**20)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        for i, (trial_id, params) in enumerate(task.trials):
            if task.budgets:
                res = _run_rung(objective, task, i, settings, os.path.dirname(log))
            elif isinstance(objective, str):
                sandbox = os.path.join(os.path.dirname(log), f"sandbox-{trial_id}")
                res = _run_command(objective, params, settings, sandbox, task_tag(task, trial_id))
                shutil.rmtree(sandbox, ignore_errors=True)
            else:
                res = shadho_worker.evaluate(objective, params)
            line = json.dumps({"trial": trial_id, **res}, allow_nan=False).encode() + b"\n"
            os.write(wfd, line)
        shadho_worker.end_descendants()
    except BaseException:  # noqa: BLE001 - report whatever happened through the exit code
        os._exit(70)
    os._exit(0)


class LocalManager(ExecutionManager):
    """Trials in child processes on this machine.

    Args:
        workers: parallel processes (default: the number of cores). With compute
            classes, slots are dealt to the classes in turn.
        memory_mb: address-space limit of each trial process (None: unlimited).

    Example:
        >>> from shadho.managers.base import RunSettings, TaskSpec
        >>> m = LocalManager(workers=1)
        >>> m.start(RunSettings('doc', objective=lambda p: p['x'] ** 2))
        >>> m.submit(TaskSpec(1, 's', ((1, {'x': 3.0}),)))
        >>> out = []
        >>> while not out: out += m.wait(1.0)
        >>> out[0].loss
        9.0
        >>> m.stop()
    """

    def __init__(self, workers: int | None = None, memory_mb: float | None = None) -> None:
        from shadho.settings import LocalSettings

        s = LocalSettings(workers, memory_mb)  # every check in one place, the same as Shadho()'s
        self.workers = s.workers or (os.cpu_count() or 1)
        self.memory_mb = s.memory_mb
        self._running: dict[int, _Running] = {}
        self._settings: RunSettings | None = None
        self._tmp: str | None = None
        self._slots: dict[str | None, int] = {}
        self._ctx = mp.get_context("fork")
        self._starts: list[tuple[int, float | None]] = []

    def start(self, settings: RunSettings) -> None:
        self._settings = settings
        tmpdirs.remove_stale(RUN_FOLDER_PREFIX)
        self._tmp = tmpdirs.make_run_folder(RUN_FOLDER_PREFIX)
        keys = class_keys(settings.compute_classes)
        self._slots = {k: 0 for k in keys}
        for i in range(self.workers):
            self._slots[keys[i % len(keys)]] += 1

    def capacity(self) -> dict[str | None, int]:
        used: dict[str | None, int] = {k: 0 for k in self._slots}
        for r in self._running.values():
            used[r.task.compute_class] = used.get(r.task.compute_class, 0) + 1
        return {k: max(0, n - used.get(k, 0)) for k, n in self._slots.items()}

    @property
    def in_flight(self) -> int:
        # A task counts until its process has exited, after its last result: the process
        # then ends what the objective started (setsid ones too), which a kill by
        # cancel_all() at the end of the run would leave running.
        return len(self._running)

    def status(self) -> dict[str, Any]:
        return {"workers": self.workers, "running": len(self._running), "queued": 0}

    def submit(self, task: TaskSpec) -> None:
        assert self._settings is not None and self._tmp is not None, "start() first"
        rfd, wfd = os.pipe()
        log = os.path.join(self._tmp, f"task-{task.task_id}.log")
        memory = class_memory_mb(self._settings.compute_classes, task.compute_class, self.memory_mb)
        proc = self._ctx.Process(target=_child, args=(self._settings.objective, task, self._settings,
                                                      wfd, log, memory), daemon=True)
        now = time.time()  # before the fork: the child may start its first trial before we run again
        proc.start()
        os.close(wfd)
        os.set_blocking(rfd, False)
        self._running[task.task_id] = _Running(task, proc, rfd, log, now)
        self._starts.extend((tid, now) for tid, _ in task.trials)  # no queue here: it runs at once

    def take_starts(self) -> list[tuple[int, float | None]]:
        out, self._starts = self._starts, []
        return out

    def _read(self, r: _Running) -> list[TrialOutcome]:
        out: list[TrialOutcome] = []
        while True:
            try:
                chunk = os.read(r.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            r.buf += chunk
        while b"\n" in r.buf:
            line, r.buf = r.buf.split(b"\n", 1)
            r.last = time.time()
            try:
                doc = json.loads(line)
                tid = int(doc.pop("trial"))
            except (ValueError, KeyError, TypeError):
                continue
            if tid in r.done:
                continue
            r.done.add(tid)
            out.append(outcome.answered(tid, doc, worker="localhost", compute_class=r.task.compute_class))
        if len(r.buf) > _MAX_LINE:
            r.buf = b""
        return out

    def _finish(self, r: _Running, why: str | None) -> list[TrialOutcome]:
        out = self._read(r)
        os.close(r.fd)
        r.proc.join(timeout=5)
        try:  # what is left of the task's process group (the child may have crashed)
            os.killpg(r.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if why is None:
            why = _exit_cause(r.proc.exitcode)
        tail = outcome.tail_of(r.log)
        if tail and "MemoryError" in tail:
            why += " (out of memory)"
        left = [tid for tid, _ in r.task.trials if tid not in r.done]
        out += outcome.unanswered(left, outcome.with_output(why, tail), worker="localhost", start_time=r.last,
                                  finish_time=time.time(), compute_class=r.task.compute_class)
        try:
            os.unlink(r.log)
        except OSError:
            pass
        return out

    def wait(self, timeout: float) -> list[TrialOutcome]:
        out: list[TrialOutcome] = []
        if not self._running:
            time.sleep(min(timeout, 0.05))
            return out
        fds = {r.fd: r for r in self._running.values()}
        sentinels = {r.proc.sentinel: r for r in self._running.values()}
        ready, _, _ = select.select(list(fds) + list(sentinels), [], [], max(0.0, timeout))
        for fd in ready:
            if fd in fds:
                out.extend(self._read(fds[fd]))
        now = time.time()
        timeout_s = self._settings.task_timeout if self._settings else None
        for tid, r in list(self._running.items()):
            if not r.proc.is_alive():
                del self._running[tid]
                out.extend(self._finish(r, None))
            elif timeout_s is not None and now - r.last > timeout_s:
                self._kill(r)
                del self._running[tid]
                out.extend(self._finish(r, describe(Cause.TIMEOUT, timeout=timeout_s)))
        return out

    @staticmethod
    def _kill(r: _Running) -> None:
        try:
            os.killpg(r.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            r.proc.kill()
        r.proc.join(timeout=5)

    def cancel_all(self) -> list[int]:
        ids: list[int] = []
        for r in self._running.values():
            self._kill(r)
            os.close(r.fd)
            ids.extend(tid for tid, _ in r.task.trials if tid not in r.done)
        self._running.clear()
        return ids

    def stop(self) -> None:
        self.cancel_all()
        tmpdirs.remove(self._tmp)
        self._tmp = None
