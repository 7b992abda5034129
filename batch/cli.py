"""``shadho workers``: keep a pool of shadho workers running on a batch system.

Runs in the foreground until Ctrl-C/SIGTERM or until the master is gone, then cancels its jobs
and exits 0. Errors print one sentence on stderr and exit non-zero. A row of the command table
of :mod:`shadho.cli`: :func:`add_arguments` and :func:`run`.

Example:
    shadho workers slurm --manager login1:9123 --count 4 --cores 8 --memory 16000 \\
        --gpus 1 --feature site=crc --time 2h --password ~/.shadho/pw --partition gpu
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from shadho.batch import SYSTEMS, get_system
from shadho.batch.base import WorkerSpec, default_launcher, parse_time
from shadho.batch.pool import WorkerPool
from shadho.cli_args import positive_seconds, whole_number

__all__ = ["add_arguments", "run", "main"]


def _time(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``shadho workers``."""
    p.description = ("Start shadho workers as batch jobs and keep COUNT of them running until "
                     "Ctrl-C, SIGTERM, or the master is gone; then cancel the jobs.")
    p.add_argument("system", choices=list(SYSTEMS), help="batch system")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--manager", metavar="HOST:PORT", help="the shadho master's address")
    where.add_argument("--name", metavar="NAME", help="the master's project name (see --catalog)")
    p.add_argument("--catalog", metavar="HOST:PORT", help="catalog server for --name")
    p.add_argument("--count", type=whole_number(1), default=1, help="workers to keep (default 1)")
    p.add_argument("--cores", type=whole_number(1), help="cores per worker")
    p.add_argument("--memory", type=whole_number(1), metavar="MB", help="memory per worker, MB")
    p.add_argument("--disk", type=whole_number(1), metavar="MB", help="disk per worker, MB")
    p.add_argument("--gpus", type=whole_number(0), help="GPUs per worker")
    p.add_argument("--feature", action="append", default=[], metavar="KEY=VALUE",
                   help="feature the workers advertise (repeatable)")
    p.add_argument("--time", type=_time, metavar="TIME",
                   help="walltime per job: minutes, 90m, 2h, 1:30:00")
    p.add_argument("--password", metavar="FILE", help="password file shared with the master")
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--account", help="SLURM account (HTCondor accounting group)")
    p.add_argument("--extra", default="", metavar='"OPTS"',
                   help="extra scheduler options (sbatch options; HTCondor: submit commands "
                        "separated by ';')")
    p.add_argument("--python", default=sys.executable, metavar="PATH",
                   help="Python on the compute nodes that runs the launcher (default: this one)")
    p.add_argument("--launcher", default=None, metavar="PATH",
                   help="path of shadho_launch_worker.py as the nodes see it")
    p.add_argument("--worker-timeout", type=whole_number(1), default=300, metavar="S",
                   help="workers leave after S s without master or work; the pool stops after "
                        "S s without the master (default 300)")
    p.add_argument("--poll", type=positive_seconds, default=10.0, metavar="S",
                   help="seconds between job polls (default 10)")
    p.add_argument("--log-dir", default=None, metavar="DIR", help="folder for job output")
    p.add_argument("--job-name", default="shadho-worker", help="job name")
    p.add_argument("--duration", type=_time, default=None, metavar="TIME",
                   help="stop after this long (default: run until stopped)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def run(args: argparse.Namespace) -> int:
    """Run ``shadho workers`` on parsed arguments (errors propagate to :func:`shadho.cli.main`)."""
    quiet = args.quiet

    def log(line: str) -> None:
        if not quiet:
            print(f"[shadho workers {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    if args.password is not None:
        args.password = os.path.abspath(args.password)
        if not os.path.isfile(args.password):
            raise ValueError(f"password file {args.password} does not exist")
    options = dict(
        manager=args.manager, name=args.name, catalog=args.catalog, cores=args.cores,
        memory_mb=args.memory, disk_mb=args.disk, gpus=args.gpus, features=tuple(args.feature),
        time_min=args.time, password=args.password, partition=args.partition,
        account=args.account, extra=args.extra, worker_timeout_s=args.worker_timeout,
        python=args.python, launcher=args.launcher or default_launcher(),
        job_name=args.job_name)
    if args.log_dir:
        options["log_dir"] = os.path.abspath(args.log_dir)
    spec = WorkerSpec.from_options(**options)
    pool = WorkerPool(get_system(args.system), spec, args.count, poll_interval=args.poll,
                      log=log)
    log(f"keeping {args.count} {args.system} worker job(s) for "
        f"{args.manager or args.name}; job output in {spec.log_dir}")
    reason = pool.run(duration=args.duration * 60 if args.duration else None)
    log(f"{reason}; {len(pool.submitted)} job(s) submitted in all, none left")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``shadho workers ARGS``; returns the exit status."""
    from shadho.cli import main as shadho_main

    return shadho_main(["workers", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
