"""Dispatch cost of shadho on Work Queue, against raw Work Queue tasks on the same setup.

Four measurements, each on freshly started local ``work_queue_worker`` processes of the
same shape (``--workers`` workers x 1 core, default 2), with the same number of tasks
in flight (free slots + the manager's queue margin: 2 x workers):

(a) raw Work Queue: tasks running ``<this python> -c 'import cloudpickle, json'`` (the
    floor any Python-based trial costs), kept ``2 x workers`` in flight;
(b) shadho: ``Shadho(manager='workqueue')`` trials of a no-op objective (target: >= 0.8 x (a));
(c) shadho with ``hyperparameters_per_task=20`` (target: >= 3 x the raw per-task rate);
(d) 160 one-second sleeping trials on 16 local workers: busy time / (workers x wall)
    (target >= 0.9), against the same figure for raw Work Queue tasks that import
    cloudpickle and sleep 1 s on the same 16 workers (on 2 cores, 16 interpreter starts per
    wave are CPU-bound: the baseline shows what Work Queue itself allows here); then the
    same with 5 trials per task (one interpreter start per 5).

Rates are steady-state: from the first task's start to the last one's finish (the
first seconds, while workers connect, are left out of both); the full wall time of
each shadho run is printed too.

    python bench/dispatch.py              # the full run (2,000 trials)
    python bench/dispatch.py --trials 200 # a quick one
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from shadho import Shadho, spaces
from shadho.managers.workqueue import import_work_queue
from shadho.trial import TrialState


def noop(params):
    return 0.0


def sleep1(params):
    import time

    time.sleep(1.0)
    return 0.0


def raw_rate(n: int, workers: int, in_flight: int, sleep: float = 0.0) -> tuple[float, float]:
    """Tasks/s of bare Work Queue tasks running a Python import (then sleeping ``sleep``
    seconds), and the wall time from the first submission (workers already connected)."""
    wq = import_work_queue()
    tmp = tempfile.mkdtemp(prefix="bench-raw-")
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as fh:
        fh.write("bench-password")
    q = wq.WorkQueue(port=0)
    q.specify_password_file(pw)
    procs = [subprocess.Popen(["work_queue_worker", "localhost", str(q.port), "--password", pw, "--cores", "1",
                               "--workdir", tmp, "-t", "60"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True) for _ in range(workers)]
    cmd = f"{sys.executable} -c 'import cloudpickle, json'"
    if sleep:
        cmd = f"{sys.executable} -c 'import cloudpickle, json, time; time.sleep({sleep})'"
    try:
        while q.stats.workers_connected < workers:
            q.wait(1)
        submitted = done = failed = 0
        t0 = time.time()
        while done < n:
            while submitted < n and submitted - done < in_flight:
                t = wq.Task(cmd)
                t.specify_cores(1)
                q.submit(t)
                submitted += 1
            t = q.wait(1)
            while t is not None:  # take what is done, as the manager does (not wait(0) for more)
                done += 1
                failed += t.result != wq.WORK_QUEUE_RESULT_SUCCESS or t.return_status != 0
                t = q.wait(0) if q.stats.tasks_with_results > 0 else None
        wall = time.time() - t0
        if failed:
            print(f"  (raw: {failed} tasks failed)")
        return n / wall, wall
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        del q
        shutil.rmtree(tmp, ignore_errors=True)


def shadho_run(fn, n: int, workers: int, db: str, **kw) -> tuple[float, float, float, list]:
    """(steady-state trials/s, full wall, steady wall, trials) of one shadho run."""
    opt = Shadho("bench", fn, {"x": spaces.uniform(0, 1)}, backend=db, manager="workqueue", max_tasks=n,
                 local_workers=workers, quiet=True, timeout=None, **kw)
    t0 = time.time()
    trials = opt.run()
    wall = time.time() - t0
    opt.close()
    ok = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(ok) != n:
        print(f"  ({n - len(ok)} of {n} trials did not complete)")
    steady = max(t.finish_time for t in ok) - min(t.start_time for t in ok)
    return n / steady, wall, steady, ok


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sleepers", type=int, default=160, help="one-second trials for (d)")
    ap.add_argument("--rounds", type=int, default=4, help="alternations of (a) and (b)")
    args = ap.parse_args(argv)
    n, w = args.trials, args.workers
    tmp = tempfile.mkdtemp(prefix="bench-dispatch-")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print(f"machine: {os.cpu_count()} CPUs; {w} local workers x 1 core; {2 * w} tasks in flight; "
          f"{n} trials; python {sys.version.split()[0]}")
    try:
        # (a) and (b) alternate in rounds, so that a change in the machine's load (it is
        # shared) falls on both alike.
        rounds = max(1, min(args.rounds, n // 50))
        raw_wall = wall = steady = 0.0
        for r in range(rounds):
            m_r = n // rounds + (r < n % rounds)
            raw_wall += raw_rate(m_r, w, 2 * w)[1]
            _, wall_r, steady_r, _ = shadho_run(noop, m_r, w, os.path.join(tmp, f"b{r}.db"))
            wall += wall_r
            steady += steady_r
        raw, rate = n / raw_wall, n / steady
        print(f"(a) raw Work Queue, python -c 'import cloudpickle, json': {raw:7.1f} tasks/s "
              f"({n} in {raw_wall:.1f} s)")
        print(f"(b) shadho no-op trials:                                 {rate:7.1f} trials/s "
              f"({n} in {steady:.1f} s steady, {wall:.1f} s with start-up; {rounds} rounds alternating with (a))")
        print(f"    shadho / raw = {rate / raw:.2f}   (target >= 0.8)")
        rate20, wall20, steady20, _ = shadho_run(noop, n, w, os.path.join(tmp, "c.db"), hyperparameters_per_task=20)
        print(f"(c) shadho, hyperparameters_per_task=20:                 {rate20:7.1f} trials/s "
              f"({n} in {steady20:.1f} s steady, {wall20:.1f} s with start-up)")
        print(f"    batched / raw per-task rate = {rate20 / raw:.1f}x   (target >= 3x)")
        m = args.sleepers
        _, wall_s, steady_s, ok = shadho_run(sleep1, m, 16, os.path.join(tmp, "d.db"))
        busy = sum(t.finish_time - t.start_time for t in ok)
        print(f"(d) {m} x 1 s trials on 16 workers: efficiency busy/(16 x wall) = {busy / (16 * steady_s):.3f} "
              f"steady ({steady_s:.2f} s), {busy / (16 * wall_s):.3f} with start-up ({wall_s:.2f} s)   "
              f"(target >= 0.9)")
        raw_wall_s = raw_rate(m, 16, 24, sleep=1.0)[1]
        print(f"    baseline, raw Work Queue tasks 'import cloudpickle, json; sleep 1' on the same 16 workers: "
              f"{m * 1.0 / (16 * raw_wall_s):.3f} ({raw_wall_s:.2f} s); shadho / raw = "
              f"{(busy / (16 * steady_s)) / (m * 1.0 / (16 * raw_wall_s)):.2f}")
        _, wall_s, steady_s, ok = shadho_run(sleep1, m, 16, os.path.join(tmp, "e.db"), hyperparameters_per_task=5)
        busy = sum(t.finish_time - t.start_time for t in ok)
        print(f"    same with hyperparameters_per_task=5: {busy / (16 * steady_s):.3f} steady ({steady_s:.2f} s), "
              f"{busy / (16 * wall_s):.3f} with start-up ({wall_s:.2f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f} (other processes share these CPUs)")


if __name__ == "__main__":
    main()
