"""SLURM: ``sbatch`` a rendered script, ``squeue`` for states, ``scancel`` to remove.

Example:
    >>> from shadho.batch.base import WorkerSpec
    >>> spec = WorkerSpec(manager="login1:9123", cores=4, memory_mb=8000, gpus=1, time_min=120,
    ...                   partition="gpu", python="/venv/bin/python", launcher="/l.py",
    ...                   log_dir="/scratch/logs")
    >>> print("\\n".join(l for l in SlurmSystem().render(spec).splitlines() if l.startswith("#SBATCH")))
    #SBATCH --job-name=shadho-worker
    #SBATCH --nodes=1
    #SBATCH --ntasks=1
    #SBATCH --output=/scratch/logs/shadho-worker-%j.out
    #SBATCH --cpus-per-task=4
    #SBATCH --mem=8000M
    #SBATCH --gres=gpu:1
    #SBATCH --time=2:00:00
    #SBATCH --partition=gpu
"""
from __future__ import annotations

import re
import shlex
from typing import ClassVar, Mapping, Sequence

from shadho.batch.base import BatchSystem, JobState, WorkerSpec, _directive_lines, format_hms
from shadho.errors import WorkerError


class SlurmSystem(BatchSystem):
    """SLURM worker jobs (one node, one task per job)."""

    name: ClassVar[str] = "slurm"
    template_name: ClassVar[str] = "slurm.sbatch"
    # squeue --states=all long names; see `man squeue`, JOB STATE CODES.
    states: ClassVar[Mapping[str, JobState]] = {
        "PENDING": JobState.PENDING,
        "CONFIGURING": JobState.PENDING,
        "REQUEUED": JobState.PENDING,
        "REQUEUE_FED": JobState.PENDING,
        "REQUEUE_HOLD": JobState.PENDING,
        "RESV_DEL_HOLD": JobState.PENDING,
        "SUSPENDED": JobState.PENDING,
        "STOPPED": JobState.PENDING,
        "RUNNING": JobState.RUNNING,
        "COMPLETING": JobState.RUNNING,
        "RESIZING": JobState.RUNNING,
        "SIGNALING": JobState.RUNNING,
        "STAGE_OUT": JobState.RUNNING,
        "COMPLETED": JobState.COMPLETED,
        "FAILED": JobState.FAILED,
        "BOOT_FAIL": JobState.FAILED,
        "NODE_FAIL": JobState.FAILED,
        "OUT_OF_MEMORY": JobState.FAILED,
        "SPECIAL_EXIT": JobState.FAILED,
        "REVOKED": JobState.CANCELLED,
        "CANCELLED": JobState.CANCELLED,
        "PREEMPTED": JobState.CANCELLED,
        "DEADLINE": JobState.TIMEOUT,
        "TIMEOUT": JobState.TIMEOUT,
    }

    def _fields(self, spec: WorkerSpec) -> dict[str, str]:
        opts: list[str] = []
        if spec.cores is not None:
            opts.append(f"--cpus-per-task={spec.cores}")
        if spec.memory_mb is not None:
            opts.append(f"--mem={spec.memory_mb}M")
        if spec.disk_mb is not None:
            opts.append(f"--tmp={spec.disk_mb}M")
        if spec.gpus:
            opts.append(f"--gres=gpu:{spec.gpus}")
        if spec.time_min is not None:
            opts.append(f"--time={format_hms(spec.time_min)}")
        if spec.partition is not None:
            opts.append(f"--partition={spec.partition}")
        if spec.account is not None:
            opts.append(f"--account={spec.account}")
        command = shlex.join([spec.python, spec.launcher, *spec.launcher_args()])
        return {
            "job_name": spec.job_name,
            "log_dir": spec.log_dir,
            "directives": _directive_lines("#SBATCH", opts).rstrip("\n"),
            "command": command,
        }

    def _submit_command(self, script: str, spec: WorkerSpec) -> list[str]:
        # Extra options go on the command line: they override the script's #SBATCH lines and
        # need no parsing here.
        return ["sbatch", "--parsable", *shlex.split(spec.extra), script]

    def _parse_job_id(self, output: str) -> str:
        # --parsable prints "ID" or "ID;cluster".
        m = re.match(r"\s*(\d+)", output)
        if not m:
            raise WorkerError(f"sbatch printed no job id: {output.strip()[:200]!r}")
        return m.group(1)

    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        cmd = ["squeue", "--noheader", "--states=all", "--jobs=" + ",".join(job_ids),
               "--format=%i|%T"]
        proc = self._call(cmd, what="query worker jobs")
        if proc.returncode != 0:
            # One forgotten id makes squeue fail with "Invalid job id": every id is gone.
            if "invalid job id" in proc.stderr.lower():
                return {}
            raise WorkerError(f"cannot query worker jobs: squeue exited {proc.returncode}: "
                              f"{' '.join(proc.stderr.split())[:300]}")
        return self._states_from(proc.stdout)

    @staticmethod
    def _states_from(output: str) -> dict[str, str]:
        states: dict[str, str] = {}
        for line in output.splitlines():
            job, sep, state = line.strip().partition("|")
            if sep:
                # "CANCELLED by 0" -> "CANCELLED"
                states[job] = state.split()[0] if state.split() else state
        return states

    def _cancel_command(self, job_ids: Sequence[str]) -> list[str]:
        return ["scancel", *job_ids]
