"""The worker pools and speed profiles of ``bench/heterogeneity.py``.

A profile says which compute classes a pool has, how many workers of each, how fast
each SVC kernel runs on each class relative to one core (``speed``), which
(kernel, class) pairs fail every trial (``fail``), and where those numbers come from
(``provenance``: ``assumed`` or ``measured ...``). The scheduler is told only the
classes' declared resources; it learns the rest.

Profiles (``--real-profiles``; the sim150 part always uses ``SPEED``):

* ``paper``: the sim150 classes in miniature (2 cpu1, 2 cpu4, 1 cpu16, 1 gpu), ``SPEED``.
* ``two``: ``cpu`` (2 x 1 core) and ``accel`` (2 x 2 cores), ``TWO_SPEED``: the accelerator
  is the better class for three kernels of four.
* ``flat``: the ``two`` pool with every kernel equally fast on both classes: the
  heuristics have nothing to gain.
* ``one``: one class, 4 workers of 1 core: nothing to choose.
* ``failing``: the ``flat`` pool where ``cpu`` fails every rbf trial (after spending its
  time): a trap that must not stall the search.
* ``measured``: ``cpu1`` (2 x 1 core) and ``cpu2`` (2 x 2 cores) with the speeds measured
  on this machine by ``bench/measure_speeds.py`` (``results/heterogeneity.speeds.json``).
"""
from __future__ import annotations

import json
import os
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
MEASURED = os.path.join(HERE, "results", "heterogeneity.speeds.json")

KERNELS = ("linear", "rbf", "sigmoid", "poly")
#: Compute classes as add_compute_class keywords (what the scheduler is told).
CLASSES = {"cpu1": {"resource": "cores", "value": 1},
           "cpu4": {"resource": "cores", "value": 4},
           "cpu16": {"resource": "cores", "value": 16},
           "gpu": {"resource": "gpu_name", "value": "A100", "cores": 4, "gpus": 1}}
#: The assumed speed-up of each kernel on each class over one core (never told to
#: the scheduler). liblinear does not parallelise and loses to transfers on a GPU;
#: kernel SVMs parallelise over kernel rows on many cores and vectorise on a GPU.
SPEED = {"linear": {"cpu1": 1.0, "cpu4": 1.0, "cpu16": 1.0, "gpu": 0.5},
         "rbf": {"cpu1": 1.0, "cpu4": 2.0, "cpu16": 3.0, "gpu": 30.0},
         "sigmoid": {"cpu1": 1.0, "cpu4": 1.5, "cpu16": 3.0, "gpu": 20.0},
         "poly": {"cpu1": 1.0, "cpu4": 4.0, "cpu16": 8.0, "gpu": 10.0}}
POOL150 = {"cpu1": 60, "cpu4": 40, "cpu16": 30, "gpu": 20}
#: Real runs: REAL_POOL workers with SPEED; runtime = REAL_SCALE x measured 1-core runtime / speed.
REAL_SCALE = 30.0
REAL_POOL = {"cpu1": 2, "cpu4": 2, "cpu16": 1, "gpu": 1}
#: Two-class pools: runtime = TWO_SCALE x measured 1-core runtime x best speed / speed.
TWO_SCALE = 10.0
TWO_SPEED = {"linear": {"cpu": 1.0, "accel": 0.5}, "rbf": {"cpu": 1.0, "accel": 8.0},
             "sigmoid": {"cpu": 1.0, "accel": 4.0}, "poly": {"cpu": 1.0, "accel": 4.0}}
PROFILES = ("paper", "two", "flat", "one", "failing", "measured")


def _paper() -> dict[str, Any]:
    workers = []
    for cls, n in REAL_POOL.items():
        res = {k: v for k, v in CLASSES[cls].items() if k in ("cores", "gpus")}
        cores = res.get("cores", CLASSES[cls]["value"])
        workers += [{"cores": cores, "gpus": res.get("gpus", 0), "features": {"cls": cls}}] * n
    classes = [{"name": cls, "resource": "cls", "value": cls,
                "cores": CLASSES[cls].get("cores", CLASSES[cls]["value"]),
                **({"gpus": CLASSES[cls]["gpus"]} if "gpus" in CLASSES[cls] else {})} for cls in REAL_POOL]
    return {"workers": workers, "classes": classes, "speed": SPEED, "scale": REAL_SCALE,
            "relative": False, "pool": dict(REAL_POOL), "provenance": "assumed"}


def _pair(small: str, big: str, speed: dict[str, dict[str, float]], provenance: str,
          fail: frozenset[tuple[str, str]] = frozenset()) -> dict[str, Any]:
    """2 workers of 1 core (``small``) and 2 of 2 cores (``big``)."""
    workers = [{"cores": 1, "features": {"cls": small}}] * 2 + [{"cores": 2, "features": {"cls": big}}] * 2
    classes = [{"name": small, "resource": "cls", "value": small, "cores": 1},
               {"name": big, "resource": "cls", "value": big, "cores": 2}]
    return {"workers": workers, "classes": classes, "speed": speed, "scale": TWO_SCALE, "relative": True,
            "pool": {small: 2, big: 2}, "provenance": provenance, "fail": fail}


def measured_speeds(path: str = MEASURED) -> dict[str, dict[str, float]]:
    """Each kernel's speed on 1 and 2 cores over 1 core, as bench/measure_speeds.py wrote it."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: run bench/measure_speeds.py first")
    with open(path) as fh:
        data = json.load(fh)
    return {k: {"cpu1": 1.0, "cpu2": float(v["speed_2_cores"])} for k, v in data["kernels"].items()}


def real_profile(name: str) -> dict[str, Any]:
    """Workers, compute classes, speeds, failures and runtime scaling of one pool."""
    flat = {k: {"cpu": 1.0, "accel": 1.0} for k in KERNELS}
    if name == "paper":
        return _paper()
    if name == "two":
        return _pair("cpu", "accel", TWO_SPEED, "assumed")
    if name == "flat":
        return _pair("cpu", "accel", flat, "assumed (nothing to gain)")
    if name == "failing":
        return _pair("cpu", "accel", flat, "assumed (cpu fails every rbf trial)", frozenset({("rbf", "cpu")}))
    if name == "one":
        return {"workers": [{"cores": 1, "features": {"cls": "cpu"}}] * 4,
                "classes": [{"name": "cpu", "resource": "cls", "value": "cpu", "cores": 1}],
                "speed": {k: {"cpu": 1.0} for k in KERNELS}, "scale": TWO_SCALE, "relative": True,
                "pool": {"cpu": 4}, "provenance": "assumed (one class)", "fail": frozenset()}
    if name == "measured":
        return _pair("cpu1", "cpu2", measured_speeds(), "measured (this machine, 1 vs 2 cores)")
    raise ValueError(f"unknown real profile {name!r} ({', '.join(PROFILES)})")
