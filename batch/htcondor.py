"""HTCondor: ``condor_submit`` a rendered submit description, ``condor_q``/``condor_history``
for states, ``condor_rm`` to remove.

No HTCondor pool can run on shadho's test machines (no Debian package; the PyPI wheels hold
only the Python bindings), so the tests run this class against stub commands and check the
rendered description with ``htcondor.Submit``.

Example:
    >>> from shadho.batch.base import WorkerSpec
    >>> spec = WorkerSpec(manager="login1:9123", cores=4, memory_mb=8000, password="/home/u/pw",
    ...                   launcher="/l.py", log_dir="/logs")
    >>> text = HTCondorSystem().render(spec)
    >>> "request_memory          = 8000" in text, "transfer_input_files    = /home/u/pw" in text
    (True, True)
"""
from __future__ import annotations

import os
import re
from typing import ClassVar, Mapping, Sequence

from shadho.batch.base import BatchSystem, JobState, WorkerSpec
from shadho.errors import WorkerError


def _condor_arguments(args: Sequence[str]) -> str:
    """Quote arguments in the submit file's "new" syntax (inside double quotes)."""
    out = []
    for arg in args:
        arg = arg.replace('"', '""')
        if any(c in arg for c in " \t'") or not arg:
            arg = "'" + arg.replace("'", "''") + "'"
        out.append(arg)
    return " ".join(out)


class HTCondorSystem(BatchSystem):
    """HTCondor worker jobs (vanilla universe, one job per worker)."""

    name: ClassVar[str] = "condor"
    template_name: ClassVar[str] = "htcondor.submit"
    # JobStatus codes. Held (5) needs a human: count it as failed so the pool replaces it
    # (and removes it). Suspended (7) may resume.
    states: ClassVar[Mapping[str, JobState]] = {
        "1": JobState.PENDING,
        "2": JobState.RUNNING,
        "3": JobState.CANCELLED,
        "4": JobState.COMPLETED,
        "5": JobState.FAILED,
        "6": JobState.RUNNING,
        "7": JobState.PENDING,
        # Our own periodic_remove for the walltime leaves this reason; see _query.
        "timeout": JobState.TIMEOUT,
    }

    def _fields(self, spec: WorkerSpec) -> dict[str, str]:
        password = os.path.basename(spec.password) if spec.password else None
        args = spec.launcher_args(password=password)
        requests: list[str] = []
        if spec.cores is not None:
            requests.append(f"request_cpus            = {spec.cores}")
        if spec.memory_mb is not None:
            requests.append(f"request_memory          = {spec.memory_mb}")
        if spec.disk_mb is not None:
            requests.append(f"request_disk            = {spec.disk_mb * 1024}")
        if spec.gpus:
            requests.append(f"request_gpus            = {spec.gpus}")
        if spec.time_min is not None:
            # HTCondor has no walltime: remove a job that ran past it (the worker's own
            # --wall-time normally ends it a little earlier).
            requests.append(f"periodic_remove         = (JobStatus == 2) && "
                            f"((time() - EnteredCurrentStatus) > {spec.time_min * 60})")
        if spec.account is not None:
            requests.append(f"accounting_group        = {spec.account}")
        for line in re.split(r"[;\n]", spec.extra):
            if line.strip():
                requests.append(line.strip())
        return {
            "launcher": spec.launcher,
            "arguments": _condor_arguments(args),
            "input_files": spec.password or "",
            "job_name": spec.job_name,
            "log_dir": spec.log_dir,
            "requests": "\n".join(requests),
        }

    def _submit_command(self, script: str, spec: WorkerSpec) -> list[str]:
        return ["condor_submit", script]

    def _parse_job_id(self, output: str) -> str:
        # "1 job(s) submitted to cluster 42." -> "42.0" (one job per submit).
        m = re.search(r"submitted to cluster (\d+)", output)
        if not m:
            raise WorkerError(f"condor_submit printed no cluster id: {output.strip()[:200]!r}")
        return f"{m.group(1)}.0"

    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        states: dict[str, str] = {}
        fmt = ["-af", "ClusterId", "ProcId", "JobStatus", "RemoveReason"]
        out = self._run(["condor_q", *job_ids, *fmt], what="query worker jobs")
        states.update(self._parse_q(out))
        missing = [j for j in job_ids if j not in states]
        if missing:
            proc = self._call(["condor_history", *missing, "-limit", str(len(missing)), *fmt],
                              what="query finished worker jobs")
            if proc.returncode == 0:
                states.update(self._parse_q(proc.stdout))
        return states

    @staticmethod
    def _parse_q(output: str) -> dict[str, str]:
        states: dict[str, str] = {}
        for line in output.splitlines():
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[0].isdigit():
                status = parts[2]
                reason = parts[3] if len(parts) > 3 else ""
                if status == "3" and "periodicremove" in re.sub(r"[\s_]", "", reason.lower()):
                    status = "timeout"
                states[f"{parts[0]}.{parts[1]}"] = status
        return states

    def _cancel_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["condor_rm", *job_ids]

