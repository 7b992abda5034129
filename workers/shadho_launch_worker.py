#!/usr/bin/env python3
"""Start a Work Queue worker for shadho on a compute node (standard library only).

Runs inside a batch job (or by hand). It measures the hardware it was given, advertises it as
worker features so shadho's compute classes can route trials by hardware, records the batch
job id, and then *replaces itself* with ``work_queue_worker``::

    python shadho_launch_worker.py --manager login1:9123 --password ~/.shadho/pw
    python shadho_launch_worker.py --name my-search --catalog login1:9097 --password pw
    python shadho_launch_worker.py --manager login1:9123 --dry-run   # print the command

Features advertised (values: spaces become ``-``):

* ``cores=N``, ``gpus=N`` and, with GPUs, ``gpu_name=MODEL`` (from ``nvidia-smi``),
* ``batch_job=ID`` and ``slurm_job=ID`` / ``condor_job=ID`` / ``pbs_job=ID`` / ``lsf_job=ID``,
* every ``--feature key=value`` given.

``work_queue_worker`` (cctools 8) has no option to name a worker, so the job id travels as a
feature and in the environment: tasks inherit the worker's environment, so a task sees
``SLURM_JOB_ID`` (on SLURM) and ``SHADHO_BATCH_JOB`` (always, when a job id is known).

The worker leaves on its own when the manager is gone: ``--timeout`` sets both its idle and
its connect timeout, and ``--wall-time`` makes it exit cleanly before the job's walltime.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Mapping, Sequence


@dataclass(frozen=True)
class Hardware:
    """What this node (or this job's allocation) offers.

    Example:
        >>> Hardware(cores=8, memory=16000, gpus=2, gpu_name="NVIDIA-A100").features()
        ['cores=8', 'gpus=2', 'gpu_name=NVIDIA-A100']
    """

    cores: int
    memory: int | None = None
    gpus: int = 0
    gpu_name: str | None = None
    gpu_names: tuple[str, ...] = field(default=(), compare=False)

    def features(self) -> list[str]:
        feats = [f"cores={self.cores}", f"gpus={self.gpus}"]
        if self.gpus and self.gpu_name:
            feats.append(f"gpu_name={self.gpu_name}")
        return feats


def _clean(value: str) -> str:
    """A feature value: no spaces (Work Queue splits on them), no odd characters."""
    return re.sub(r"[^\w.+=:@-]", "-", "-".join(value.split()))


def detect_cores(env: Mapping[str, str] = os.environ) -> int:
    """Cores this job may use: the scheduler's count, else the CPU affinity, else cpu_count.

    Example:
        >>> detect_cores({"SLURM_CPUS_PER_TASK": "3", "SLURM_CPUS_ON_NODE": "4"})
        3
    """
    for var in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE", "NSLOTS", "PBS_NP", "LSB_MAX_NUM_PROCESSORS"):
        val = env.get(var, "")
        if val.isdigit() and int(val) > 0:
            return int(val)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def detect_memory(env: Mapping[str, str] = os.environ, meminfo: str = "/proc/meminfo",
                  cores: int | None = None) -> int | None:
    """Memory in MB: SLURM's allocation when set, else MemTotal from /proc/meminfo.

    Example:
        >>> detect_memory({"SLURM_MEM_PER_NODE": "4000"})
        4000
        >>> detect_memory({"SLURM_MEM_PER_CPU": "1000"}, cores=3)
        3000
    """
    if env.get("SLURM_MEM_PER_NODE", "").isdigit():
        return int(env["SLURM_MEM_PER_NODE"])
    if env.get("SLURM_MEM_PER_CPU", "").isdigit():
        return int(env["SLURM_MEM_PER_CPU"]) * (cores or detect_cores(env))
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def detect_gpus(env: Mapping[str, str] = os.environ) -> tuple[int, tuple[str, ...]]:
    """(count, model names) from ``nvidia-smi``; no nvidia-smi (or an error) means no GPU.

    ``CUDA_VISIBLE_DEVICES`` (set by schedulers that hand out GPUs) limits the count.
    """
    exe = shutil.which("nvidia-smi", path=env.get("PATH"))
    if exe is None:
        return 0, ()
    try:
        proc = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0, ()
    if proc.returncode != 0:
        return 0, ()
    names = tuple(line.strip() for line in proc.stdout.splitlines() if line.strip())
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v.strip() for v in visible.split(",") if v.strip() not in ("", "-1")]
        if all(i.isdigit() for i in ids):
            names = tuple(names[int(i)] for i in ids if int(i) < len(names))
        else:  # GPU UUIDs: trust the count
            names = names[: len(ids)]
    return len(names), names


def detect_hardware(env: Mapping[str, str] = os.environ) -> Hardware:
    """Cores, memory and GPUs of this job's allocation."""
    cores = detect_cores(env)
    gpus, names = detect_gpus(env)
    model = None
    if names:
        distinct = list(dict.fromkeys(_clean(n) for n in names))
        model = "+".join(distinct)
    return Hardware(cores=cores, memory=detect_memory(env, cores=cores), gpus=gpus,
                    gpu_name=model, gpu_names=names)


def detect_job(env: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """(system, job id) of the batch job we run in, if any.

    Example:
        >>> detect_job({"SLURM_JOB_ID": "42"})
        ('slurm', '42')
        >>> detect_job({}) is None
        True
    """
    if env.get("SLURM_JOB_ID"):
        return "slurm", env["SLURM_JOB_ID"]
    if env.get("SHADHO_BATCH_JOB"):
        return env.get("SHADHO_BATCH_SYSTEM", "batch"), env["SHADHO_BATCH_JOB"]
    if env.get("PBS_JOBID"):
        return "pbs", env["PBS_JOBID"]
    if env.get("LSB_JOBID"):
        return "lsf", env["LSB_JOBID"]
    ad = env.get("_CONDOR_JOB_AD")
    if ad:
        try:
            with open(ad) as fh:
                attrs = dict(line.split(" = ", 1) for line in fh.read().splitlines() if " = " in line)
            return "condor", f"{attrs['ClusterId'].strip()}.{attrs['ProcId'].strip()}"
        except (OSError, KeyError, ValueError):
            pass
    return None


def build_command(args: argparse.Namespace, env: Mapping[str, str] = os.environ,
                  hardware: Hardware | None = None) -> tuple[list[str], dict[str, str]]:
    """The ``work_queue_worker`` command line and the environment to run it with."""
    hw = hardware or detect_hardware(env)
    job = (args.job_system or "batch", args.job_id) if args.job_id else detect_job(env)
    new_env = dict(env)
    cmd = [args.worker_bin]
    if args.password:
        cmd += ["--password", args.password]
    cores = args.cores or hw.cores
    gpus = args.gpus if args.gpus is not None else hw.gpus
    memory = args.memory
    if memory is None and job is not None and job[0] == "slurm":
        # Inside a job, advertise the allocation, not the whole node.
        memory = hw.memory if ("SLURM_MEM_PER_NODE" in env or "SLURM_MEM_PER_CPU" in env) else None
    # --gpus always: without it work_queue_worker runs its own `nvidia-smi -q` detection.
    cmd += [f"--cores={cores}", f"--gpus={gpus}"]
    if memory is not None:
        cmd.append(f"--memory={memory}")
    if args.disk is not None:
        cmd.append(f"--disk={args.disk}")
    feats = [f"cores={cores}", f"gpus={gpus}"]
    if gpus and hw.gpu_name:
        feats.append(f"gpu_name={hw.gpu_name}")
    if job is not None:
        system, job_id = job
        feats.append(f"batch_job={_clean(job_id)}")
        if system != "batch":
            feats.append(f"{system}_job={_clean(job_id)}")
        new_env["SHADHO_BATCH_JOB"] = job_id
        new_env.setdefault("SHADHO_BATCH_SYSTEM", system)
    for feat in args.feature:
        key, sep, val = feat.partition("=")
        if not sep or not key or not val:
            raise SystemExit(f"shadho_launch_worker: a feature must be key=value; got {feat!r}")
        feats.append(f"{key}={_clean(val)}")
    for feat in dict.fromkeys(feats):
        cmd += ["--feature", feat]
    cmd.append(f"--timeout={args.timeout}")
    if args.wall_time:
        cmd.append(f"--wall-time={args.wall_time}")
    if args.workdir:
        cmd.append(f"--workdir={args.workdir}")
    if args.debug_file:
        cmd += ["--debug=all", f"--debug-file={args.debug_file}"]
    if args.catalog:
        cmd.append(f"--catalog={args.catalog}")
    if args.name:
        cmd += ["-M", args.name]
    else:
        host, _, port = args.manager.rpartition(":")
        cmd += [host, port]
    return cmd, new_env


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shadho_launch_worker",
        description="Detect this node's hardware, advertise it as Work Queue features, "
                    "and exec work_queue_worker for a shadho master.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--manager", metavar="HOST:PORT", help="the master's Work Queue address")
    where.add_argument("--name", metavar="NAME", help="the master's project name (with --catalog)")
    p.add_argument("--catalog", metavar="HOST:PORT", help="catalog server for --name")
    p.add_argument("--password", metavar="FILE", help="password file shared with the master")
    p.add_argument("--cores", type=int, help="cores to offer (default: the allocation)")
    p.add_argument("--memory", type=int, metavar="MB", help="memory to offer in MB")
    p.add_argument("--disk", type=int, metavar="MB", help="disk to offer in MB")
    p.add_argument("--gpus", type=int, help="GPUs to offer (default: as detected)")
    p.add_argument("--feature", action="append", default=[], metavar="KEY=VALUE",
                   help="extra feature to advertise (repeatable)")
    p.add_argument("--timeout", type=int, default=300, metavar="S",
                   help="leave after S seconds without a master or without work (default 300)")
    p.add_argument("--wall-time", type=int, metavar="S", help="leave after S seconds in all")
    p.add_argument("--job-id", help="batch job id (default: from SLURM_JOB_ID etc.)")
    p.add_argument("--job-system", help="batch system name for --job-id (default: batch)")
    p.add_argument("--workdir", help="folder for the worker's sandboxes")
    p.add_argument("--debug-file", help="write work_queue_worker's debug log here")
    p.add_argument("--worker-bin", default="work_queue_worker", help="the worker program")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.manager is not None:
        host, sep, port = args.manager.rpartition(":")
        if not sep or not host or not port.isdigit():
            print(f"shadho_launch_worker: --manager must be HOST:PORT; got {args.manager!r}",
                  file=sys.stderr)
            return 2
    if args.password and not os.path.isfile(args.password) and not args.dry_run:
        print(f"shadho_launch_worker: password file {args.password!r} does not exist here",
              file=sys.stderr)
        return 2
    cmd, env = build_command(args)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    exe = shutil.which(cmd[0], path=env.get("PATH"))
    if exe is None:
        print(f"shadho_launch_worker: {cmd[0]!r} is not on PATH (install cctools: "
              "conda install -c conda-forge ndcctools, or apt install coop-computing-tools)",
              file=sys.stderr)
        return 127
    print(f"shadho_launch_worker: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    os.execve(exe, cmd, env)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
