"""``shadho workers``: keep a pool of shadho workers running on a batch system.

Runs in the foreground until Ctrl-C/SIGTERM or until the master is gone, then cancels its jobs
and exits 0. Errors print one sentence on stderr and exit non-zero.

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
from shadho.errors import ShadhoError


def _time(text: str) -> int:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1; got {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0; got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shadho workers",
        description="Start shadho workers as batch jobs and keep COUNT of them running until "
                    "Ctrl-C, SIGTERM, or the master is gone; then cancel the jobs.")
    p.add_argument("system", choices=list(SYSTEMS), help="batch system")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--manager", metavar="HOST:PORT", help="the shadho master's address")
    where.add_argument("--name", metavar="NAME", help="the master's project name (see --catalog)")
    p.add_argument("--catalog", metavar="HOST:PORT", help="catalog server for --name")
    p.add_argument("--count", type=_positive, default=1, help="workers to keep (default 1)")
    p.add_argument("--cores", type=_positive, help="cores per worker")
    p.add_argument("--memory", type=_positive, metavar="MB", help="memory per worker, MB")
    p.add_argument("--disk", type=_positive, metavar="MB", help="disk per worker, MB")
    p.add_argument("--gpus", type=_count, help="GPUs per worker")
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
    p.add_argument("--worker-timeout", type=_positive, default=300, metavar="S",
                   help="workers leave after S s without master or work; the pool stops after "
                        "S s without the master (default 300)")
    p.add_argument("--poll", type=float, default=10.0, metavar="S",
                   help="seconds between job polls (default 10)")
    p.add_argument("--log-dir", default=None, metavar="DIR", help="folder for job output")
    p.add_argument("--job-name", default="shadho-worker", help="job name")
    p.add_argument("--duration", type=_time, default=None, metavar="TIME",
                   help="stop after this long (default: run until stopped)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``shadho workers``; returns the exit status."""
    args = build_parser().parse_args(argv)
    quiet = args.quiet

    def log(line: str) -> None:
        if not quiet:
            print(f"[shadho workers {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    try:
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
    except (ShadhoError, ValueError, OSError) as exc:
        print(f"shadho workers: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a Ctrl-C before the pool's handlers were installed
        return 130


if __name__ == "__main__":
    sys.exit(main())
