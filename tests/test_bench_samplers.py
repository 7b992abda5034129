"""The sampler benchmark's problems and statistics (the benchmark itself is run by hand).

Fast checks only: the figures live in bench/results/samplers-*.txt.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import bbob  # noqa: E402
import mixed_spaces  # noqa: E402
import sampler_report  # noqa: E402
import sampler_runners  # noqa: E402


def test_mixed_spaces_have_their_optimum_in_the_best_category() -> None:
    assert mixed_spaces.VALIDATION in mixed_spaces.ALL_MIXED
    for m in mixed_spaces.ALL_MIXED:
        assert 4 <= len(m.values) <= 8
        c = m.values.index(m.best)
        p = {m.cat: m.best}
        p.update({n: 10.0 ** centre[c] for n, _, _, centre, _ in m.logs})
        p.update({n: opt[c] for n, _, _, opt in m.ints})
        p.update({n: fopt for n, _, _, fopt in m.floats})
        assert m.loss(p) == 0.0
        for other in m.values:  # every other category's best is worse
            if other != m.best:
                k = m.values.index(other)
                q = dict(p, **{m.cat: other})
                q.update({n: 10.0 ** centre[k] for n, _, _, centre, _ in m.logs})
                q.update({n: opt[k] for n, _, _, opt in m.ints})
                assert m.loss(q) >= 0.1


def test_every_library_runs_a_mixed_space_and_reports_its_category() -> None:
    prob = mixed_spaces.MIXED[0].problem(12)
    for sampler in ("shadho-tpe", "optuna-tpe", "hyperopt-tpe"):
        best, params = sampler_runners.run(prob, sampler, 0)
        assert np.isfinite(best) and prob.f(params) == best
        assert prob.category is not None and prob.category(params) in mixed_spaces.MIXED[0].values


def test_bbob_regret_is_zero_at_the_optimum_and_positive_elsewhere() -> None:
    prob = bbob.problem(1, 2, 10)  # the sphere
    f, fopt = bbob._coco(1, 2, 1)
    assert prob.optimum == fopt
    assert prob.f({"x0": 0.0, "x1": 0.0}) - prob.optimum > 0


def test_compare_calls_identical_samples_a_tie_and_clear_gaps_a_win() -> None:
    a = np.arange(10.0)
    assert sampler_report.compare(a, a.copy()) == "tie"
    assert sampler_report.compare(a, a + 100) == "win"
    assert sampler_report.compare(a + 100, a) == "loss"
    rows = [("p", s, k, float(v), None, 0.0) for s, off in (("x", 0), ("y", 100))
            for k, v in enumerate(a + off)]
    lines = sampler_report.group_summary(rows, ["p"], ["x", "y"], "x", "y")
    assert "1/0/0" in lines[-1] or "1/0/0" in lines[-2]
