"""An objective that misbehaves in every way the issues list, one way per call.

Shared by the local-manager, Work Queue and reliability tests. Each call takes a
unique ticket (an O_EXCL file), so a run with ``max_tasks=len(KINDS)`` meets every
kind exactly once, whatever order the scheduler and workers run them in.
"""
from __future__ import annotations

from typing import Any

KINDS = ["raise", "nan", "inf", "none", "str", "noloss", "badmetric", "exit", "_exit", "segv", "sleep",
         "mem", "print", "ok"]
CAUSES = {
    "raise": "RuntimeError: boom", "nan": "non-finite loss", "inf": "non-finite loss (inf)",
    "none": "got None", "str": "got 'abc'", "noloss": "dict without 'loss'", "badmetric": "not JSON-able",
    "exit": "sys.exit(3)", "_exit": "exited with status 1", "segv": "SIGSEGV", "sleep": "task_timeout=2",
    "mem": "MemoryError",
}


def make_misbehaving(tickets: str) -> Any:
    def misbehave(p):
        import ctypes
        import os
        import sys
        import time
        i = 0
        while True:  # a unique ticket per call: every kind runs exactly once
            try:
                os.close(os.open(os.path.join(tickets, str(i)), os.O_CREAT | os.O_EXCL))
                break
            except FileExistsError:
                i += 1
        k = KINDS[i % len(KINDS)]
        if k == "raise":
            raise RuntimeError("boom")
        if k == "nan":
            return float("nan")
        if k == "inf":
            return float("inf")
        if k == "none":
            return None
        if k == "str":
            return "abc"
        if k == "noloss":
            return {"acc": 1}
        if k == "badmetric":
            return {"loss": 1.0, "obj": object()}
        if k == "exit":
            sys.exit(3)
        if k == "_exit":
            os._exit(1)
        if k == "segv":
            ctypes.string_at(0)
        if k == "sleep":
            time.sleep(60)
        if k == "mem":  # past the compute class's 400 MB: the worker entry's rlimit stops it
            b = bytearray(1500 * 1024 ** 2)
            time.sleep(7)
            return len(b)
        if k == "print":
            sys.stdout.write("x" * 5_000_000)
            sys.stdout.flush()
            return 2.0
        return 1.0
    return misbehave
