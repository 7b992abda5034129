"""Helpers shared by the worker-pool tests (local and SLURM)."""
from __future__ import annotations

import threading
import time

from shadho.batch.pool import WorkerPool


def stop_pool(pool: WorkerPool, thread: threading.Thread, q: object, limit: float = 60) -> None:
    """Stop a pool running in a thread while the manager keeps serving: a worker told to stop
    says goodbye to its manager, which answers only inside wait()."""
    pool.request_stop()
    deadline = time.monotonic() + limit
    while thread.is_alive() and time.monotonic() < deadline:
        if q is not None:
            q.wait(1)
        else:
            thread.join(1)
    thread.join(timeout=1)
