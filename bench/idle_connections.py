#!/usr/bin/env python
"""Dispatch rate of a Work Queue manager while idle, never-authenticating TCP connections
are held open to its port (issue 12), with Work Queue's defaults and with shadho's tuning.

Usage::

    nice -n 10 .venv/bin/python bench/idle_connections.py [--seconds 10] [--out bench/results/idle_connections.md]

For each setting, a manager with a password and 2 local workers runs a stream of
``/bin/true`` tasks (8 queued at a time); completions are counted over ``--seconds`` with
no intruder (the baseline), then with 1 and 4 idle connections held open (each one
reopened as soon as the manager closes it). Figures are ratios to that setting's baseline.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _intruders(port: int, n: int, stop: threading.Event) -> threading.Thread:
    def hold() -> None:
        socks: list[socket.socket | None] = [None] * n
        while not stop.is_set():
            for i in range(n):
                s = socks[i]
                if s is not None:
                    try:  # closed by the manager? (a read of 0 bytes)
                        s.setblocking(False)
                        if s.recv(1, socket.MSG_PEEK) == b"":
                            s.close()
                            socks[i] = None
                    except BlockingIOError:
                        pass
                    except OSError:
                        s.close()
                        socks[i] = None
                if socks[i] is None:
                    try:
                        socks[i] = socket.create_connection(("127.0.0.1", port), timeout=2)
                    except OSError:
                        pass
            time.sleep(0.05)
        for s in socks:
            if s is not None:
                s.close()
    th = threading.Thread(target=hold, daemon=True)
    th.start()
    return th


def measure(tuned: bool, seconds: float) -> dict[str, float]:
    from shadho.managers import workqueue as wqm

    wq = wqm.import_work_queue()
    folder = tempfile.mkdtemp(prefix="idle-bench-")
    pw = os.path.join(folder, "pw")
    with open(pw, "w") as fh:
        fh.write("bench-" + os.urandom(8).hex())
    q = wq.WorkQueue(port=0)
    q.specify_password_file(pw)
    if tuned:
        wqm.tune_against_idle_connections(q)
    for i in range(2):
        os.makedirs(os.path.join(folder, f"w{i}"), exist_ok=True)
    workers = [subprocess.Popen(["work_queue_worker", "localhost", str(q.port), "--password", pw, "--cores", "1",
                                 "--workdir", os.path.join(folder, f"w{i}"), "-t", "30"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
               for i in range(2)]
    out: dict[str, float] = {}
    try:
        def submit_to(n: int) -> None:
            while q.stats.tasks_waiting + q.stats.tasks_running < n:
                t = wq.Task("true")
                t.specify_cores(1)
                q.submit(t)

        end = time.time() + 30
        while q.stats.workers_connected < 2 and time.time() < end:
            submit_to(8)
            q.wait(1)
        for n_idle in (0, 1, 4):
            stop = threading.Event()
            th = _intruders(q.port, n_idle, stop) if n_idle else None
            done, t0 = 0, time.time()
            while time.time() - t0 < seconds:
                submit_to(8)
                if q.wait(1) is not None:
                    done += 1
                    while q.wait(0) is not None:
                        done += 1
            out[f"idle{n_idle}"] = done / (time.time() - t0)
            stop.set()
            if th is not None:
                th.join(5)
    finally:
        for w in workers:
            w.kill()
            w.wait()
        del q
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "idle_connections.md"))
    args = ap.parse_args()
    rows = []
    for tuned in (False, True):
        r = measure(tuned, args.seconds)
        base = r["idle0"] or 1e-9
        rows.append(("shadho's tuning" if tuned else "Work Queue defaults", r, base))
        print(rows[-1], flush=True)
    lines = ["# Dispatch with idle unauthenticated connections held open (bench/idle_connections.py)", "",
             f"`{' '.join(sys.argv)}` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs; /bin/true tasks, "
             "2 local workers, 8 queued; completions per second and ratio to the same setting with no "
             "idle connection.", "",
             "| setting | none (tasks/s) | 1 idle | 4 idle |", "|---|---|---|---|"]
    for name, r, base in rows:
        lines.append(f"| {name} | {r['idle0']:.1f} | {r['idle1']:.1f} ({r['idle1'] / base:.2f}x) | "
                     f"{r['idle4']:.1f} ({r['idle4'] / base:.2f}x) |")
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
