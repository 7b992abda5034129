"""The heterogeneity benchmark's emulated pools: each worker's trials run at its class's speed.

The benchmark itself is run by hand (its figures go in bench/results); this checks the
pieces its real run relies on, without Work Queue: the objective reads the class from
the CORES/GPUS variables Work Queue sets, exactly as on a worker.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import heterogeneity as H  # noqa: E402


@pytest.mark.parametrize("name", H.PROFILES)
def test_profiles_have_one_class_per_cores_gpus_pair(name):
    prof = H.real_profile(name)
    by_resources = H.class_by_resources(prof["classes"])
    assert len(by_resources) == len(prof["classes"])
    assert sum(prof["pool"].values()) == len(prof["workers"])
    for w in prof["workers"]:
        assert by_resources[(float(w["cores"]), float(w.get("gpus", 0) or 0))] == w["features"]["cls"]
    with pytest.raises(ValueError):
        H.real_profile("nope")


def test_real_objective_sleeps_the_class_runtime(monkeypatch):
    table = H.load_models(False)
    prof = H.real_profile("paper")
    # Shrink the emulated runtimes so the test sleeps milliseconds.
    prof = {**prof, "scale": 0.01}
    fn = H.make_real_objective(table.data, prof)
    params = {"rbf": {"kernel": "rbf", "C": 10.0, "gamma": 1e-3}}
    out = {}
    for cls, cores, gpus in (("cpu1", "1", "0"), ("gpu", "4", "1")):
        monkeypatch.setenv("CORES", cores)
        monkeypatch.setenv("GPUS", gpus)
        out[cls] = fn(params)
        assert out[cls]["class"] == cls
    assert out["cpu1"]["loss"] == out["gpu"]["loss"] == pytest.approx(table.loss(params))
    ratio = out["cpu1"]["emulated_seconds"] / out["gpu"]["emulated_seconds"]
    assert ratio == pytest.approx(H.SPEED["rbf"]["gpu"] / H.SPEED["rbf"]["cpu1"])
    monkeypatch.setenv("CORES", "3")
    with pytest.raises(RuntimeError):
        fn(params)
