"""Measure how fast each SVC kernel of bench/heterogeneity.py runs on 1 and on 2 cores here.

For each kernel, ``--n`` of the configurations in ``results/heterogeneity.models.json`` are
fitted (the benchmark's real objective: SVC on scikit-learn's digits) with this process
pinned to one core (``sched_setaffinity``, thread pools limited to 1) and allowed both
cores (thread pools limited to 2), alternately, so a change of load on the machine
touches both alike; each time is the fastest of ``--repeats`` fits. A kernel's speed
on 2 cores is the median over configurations of ``t(1 core) / t(2 cores)``. scikit-learn's SVC (libsvm) has no ``n_jobs`` and fits on
one thread, so no parallelism is there to use; the figures say how much a second core
gives it (nothing, within noise), which is what the ``measured`` profile replays.

Writes ``results/heterogeneity.speeds.json`` with the provenance (host, date, cores,
load average before and after, scikit-learn version).

Usage: python bench/measure_speeds.py [--n 12] [--repeats 3]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

def fit_seconds(kernel: str, x: list[float], cores: int, repeats: int) -> float:
    """The fastest of ``repeats`` fits of one configuration with this process allowed
    ``cores`` cores (the fastest: load from other processes only ever adds time)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    import heterogeneity as H
    from shadho import spaces

    sp = {s.name: s for s in spaces.split(H.svc_spec())}[kernel]
    os.sched_setaffinity(0, set(range(cores)))
    try:
        with threadpool_limits(limits=cores):
            return min(H.svc_trial(sp.params(np.array(x)))[1] for _ in range(repeats))
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=12, help="configurations per kernel")
    ap.add_argument("--repeats", type=int, default=3, help="fits per configuration and core count")
    args = ap.parse_args(argv)
    import sklearn

    from heterogeneity_profiles import MEASURED
    with open(os.path.join(HERE, "results", "heterogeneity.models.json")) as fh:
        models = json.load(fh)
    load_before = os.getloadavg()
    kernels = {}
    for kernel, d in models["kernels"].items():
        rows = sorted(d["rows"], key=lambda r: r["seconds"])
        step = max(1, len(rows) // args.n)
        jobs = [(kernel, r["x"]) for r in rows[::step][:args.n]]
        ratios, t1s, t2s = [], [], []
        for _, x in jobs:   # alternate, one configuration at a time
            t1 = fit_seconds(kernel, x, 1, args.repeats)
            t2 = fit_seconds(kernel, x, 2, args.repeats)
            t1s.append(t1)
            t2s.append(t2)
            ratios.append(t1 / t2)
        kernels[kernel] = {"n": len(jobs), "median_seconds_1_core": statistics.median(t1s),
                           "median_seconds_2_cores": statistics.median(t2s),
                           "speed_2_cores": statistics.median(ratios),
                           "ratio_range": [min(ratios), max(ratios)]}
        print(f"{kernel:8s} 1 core {statistics.median(t1s) * 1e3:8.1f} ms   2 cores "
              f"{statistics.median(t2s) * 1e3:8.1f} ms   speed {statistics.median(ratios):.2f} "
              f"[{min(ratios):.2f}, {max(ratios):.2f}]", flush=True)
    out = {"what": "SVC on digits (bench/heterogeneity.py's objective), t(1 core)/t(2 cores) per configuration",
           "host": platform.node(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
           "cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
           "sklearn": sklearn.__version__, "n_jobs": "SVC has no n_jobs (libsvm fits on one thread)",
           "kernels": kernels}
    with open(MEASURED, "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"wrote {MEASURED}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
