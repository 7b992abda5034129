"""Local processes: each "job" is a shell script started in its own session on this machine.

Useful to try a pool without a scheduler. The walltime is enforced with ``timeout`` (exit code
124 reads as TIMEOUT). Job ids are ``local-<pid>``; states live in this object, so only the
instance that submitted a job can query or cancel it.

Example:
    >>> from shadho.batch.base import WorkerSpec
    >>> text = LocalSystem().render(WorkerSpec(manager="localhost:9123", time_min=2, python="/py",
    ...                                        launcher="/l.py", log_dir="/tmp"))
    >>> text.splitlines()[-1].startswith("exec timeout --signal=TERM 120 /py /l.py --manager")
    True
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar, Iterable, Mapping, Sequence

from shadho.batch.base import BatchSystem, JobState, WorkerSpec


class LocalSystem(BatchSystem):
    """Worker "jobs" as local processes."""

    name: ClassVar[str] = "local"
    template_name: ClassVar[str] = "local.sh"
    # Exit statuses (as text) -> JobState; "running" while the process lives.
    states: ClassVar[Mapping[str, JobState]] = {
        "running": JobState.RUNNING,
        "0": JobState.COMPLETED,
        "124": JobState.TIMEOUT,
        "-15": JobState.CANCELLED,
        "143": JobState.CANCELLED,
        "-9": JobState.CANCELLED,
        "137": JobState.CANCELLED,
        "-2": JobState.CANCELLED,
        "130": JobState.CANCELLED,
    }

    def __init__(self, script_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(script_dir)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._cancelled: set[str] = set()

    def _fields(self, spec: WorkerSpec) -> dict[str, str]:
        limit = f"timeout --signal=TERM {spec.time_min * 60} " if spec.time_min is not None else ""
        command = shlex.join([spec.python, spec.launcher, *spec.launcher_args()])
        return {"command": limit + command}

    def submit(self, spec: WorkerSpec) -> str:
        """Start the worker script in its own session; return ``local-<pid>``."""
        text = self.render(spec)
        os.makedirs(spec.log_dir, exist_ok=True)
        folder = self.script_dir or Path(tempfile.gettempdir()) / "shadho-batch"
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="local-", suffix=".sh", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        log = open(os.path.join(spec.log_dir, f"{spec.job_name}-{os.path.basename(path)}.out"), "wb")
        env = dict(os.environ)
        env.pop("SLURM_JOB_ID", None)  # a pool run inside a SLURM job must not claim its id
        proc = subprocess.Popen(["/bin/bash", path], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        log.close()
        job_id = f"local-{proc.pid}"
        self._procs[job_id] = proc
        return job_id

    def _submit_command(self, script: str, spec: WorkerSpec) -> list[str]:  # pragma: no cover
        return ["/bin/bash", script]  # unused: submit() starts the process itself

    def _parse_job_id(self, output: str) -> str:  # pragma: no cover
        return output.strip()

    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        states: dict[str, str] = {}
        for job in job_ids:
            proc = self._procs.get(job)
            if proc is not None:
                code = proc.poll()
                # work_queue_worker exits 0 on SIGTERM: remember who cancelled it.
                if code is not None and job in self._cancelled:
                    states[job] = "-15"
                else:
                    states[job] = "running" if code is None else str(code)
        return states

    def status(self, job_ids: Iterable[str]) -> dict[str, JobState]:
        """Like the base, but any other non-zero exit is FAILED (not UNKNOWN)."""
        ids = [str(j) for j in job_ids]
        raw = self._query(ids)
        return {j: (self.states.get(raw[j], JobState.FAILED) if j in raw else JobState.UNKNOWN)
                for j in ids}

    def cancel(self, job_ids: Iterable[str]) -> None:
        """SIGTERM each job's process group (the worker and anything it runs); a job already
        cancelled once gets SIGKILL (a worker may wait on its manager before exiting)."""
        for job in job_ids:
            proc = self._procs.get(str(job))
            if proc is not None and proc.poll() is None:
                sig = signal.SIGKILL if str(job) in self._cancelled else signal.SIGTERM
                self._cancelled.add(str(job))
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass

    def _cancel_command(self, job_ids: Sequence[str]) -> list[str]:  # pragma: no cover
        return ["kill", *job_ids]
