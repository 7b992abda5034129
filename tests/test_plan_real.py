"""``shadho.plan`` against a real search on local Work Queue workers of two classes.

A small version of ``bench/plan.py``: a 36 s search on one 1-core ``cpu`` worker and
one 2-core ``accel`` worker (the benchmark's ``mild`` speeds, emulated: the trials
sleep), its results cut at half its time into a copy of the file, and the plan of the
second half on the same pool from that copy.

This is a check that the plan of a real file is sane (the right units, classes and
pool; no file touched), not the accuracy claim: that is ``bench/plan.py`` (80 s runs,
several seeds, 15% overall). Two real 36 s runs of the same seed here finished 62 and
106 trials in their second halves: one real half is that noisy, so the bound is a
factor of 2. The runtimes are the measured ones (scale 1): at scale 3 one 10 s trial
on the 1-core class filled half of the window it was cut in.
"""
from __future__ import annotations

import hashlib
import os
import sys

import pytest

import shadho
from shadho.plan_inputs import parse_pool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import plan as bench  # noqa: E402


SECONDS = 36.0


@pytest.mark.workqueue
def test_plan_predicts_the_second_half_of_a_real_search(tmp_path):
    db, cut = str(tmp_path / "r.db"), str(tmp_path / "cut.db")
    pool = "cpu=1,accel=1"
    t0 = bench.real_search(db, 0, SECONDS, parse_pool(pool),
                           bench.H.load_models(False).data, scale=1.0, profile="mild")
    half, end = t0 + SECONDS / 2, t0 + SECONDS
    bench.cut_copy(db, cut, half)
    real = bench.completions(db, half, end)
    before = hashlib.sha256(open(cut, "rb").read()).hexdigest()
    p = shadho.plan(cut, pool=pool, hours=SECONDS / 2 / 3600, samples=3, seed=0)
    assert hashlib.sha256(open(cut, "rb").read()).hexdigest() == before
    pred = p.prediction
    assert p.observed_pool == {"cpu": 1, "accel": 1}
    assert real["total"] >= 10, real
    assert 0.5 <= pred.trials.mid / real["total"] <= 2.0, (pred.trials, pred.per_class, real, bench.completions(db, 0, half))
    assert not pred.master_bound
