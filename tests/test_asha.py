"""The multi-fidelity budget (shadho/fidelity.py) and the ASHA/Hyperband rule (shadho/asha.py)."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import shadho.asha
import shadho.asha_index
import shadho.fidelity
from shadho.asha import Job, RungResult, bracket_weights, choose_bracket, next_job, promotable
from shadho.errors import SpecError
from shadho.fidelity import Fidelity


def test_rungs_of_a_fidelity():
    f = Fidelity("epochs", 1, 81, eta=3)
    assert f.budgets == (1, 3, 9, 27, 81) and f.n_rungs == 5
    assert Fidelity("epochs", 1, 100, eta=3).budgets == (1, 3, 9, 27, 100)  # the top rung is max
    assert Fidelity("frac", 0.1, 1.0, eta=2, integer=False).budgets == pytest.approx((0.1, 0.2, 0.4, 1.0))
    assert f.rung_of(27) == 3
    with pytest.raises(ValueError, match="not a rung budget"):
        f.rung_of(10)
    assert Fidelity.of({"name": "epochs", "min": 1, "max": 81}) == f
    assert Fidelity.of(("epochs", 1, 81, 3)) == f and Fidelity.of(None) is None


@pytest.mark.parametrize("kw, match", [
    ({"name": "my epochs", "min": 1, "max": 9}, "identifier"),
    ({"name": "e", "min": 9, "max": 1}, "0 < min < max"),
    ({"name": "e", "min": 0, "max": 9}, "0 < min < max"),
    ({"name": "e", "min": 1, "max": float("inf")}, "finite"),
    ({"name": "e", "min": 1, "max": 9, "eta": 1}, "eta must be an int >= 2"),
    ({"name": "e", "min": 1, "max": 9, "eta": 3, "brackets": 4}, "brackets must be an int from 1 to 3"),
])
def test_bad_fidelities_name_the_valid_values(kw, match):
    with pytest.raises(SpecError, match=match):
        Fidelity(**kw)
    with pytest.raises(SpecError, match="unknown fidelity key"):
        Fidelity.of({"name": "e", "min": 1, "max": 9, "epochs": 3})


def test_promotion_rule_by_hand():
    # eta 3, rungs 1, 3, 9. Worked by hand:
    # rung 0 has 5 results (losses below): floor(5/3) = 1 promotion, the best (config 2).
    f = Fidelity("epochs", 1, 9, eta=3)
    r0 = [RungResult(0, 0, 0.9), RungResult(1, 0, 0.5), RungResult(2, 0, 0.1),
          RungResult(3, 0, None), RungResult(4, 0, 0.7)]
    assert promotable(r0, [], f) == [Job(2, 1)]
    # Config 2 is running at rung 1: nothing more to promote until rung 0 reaches 6 results.
    assert promotable(r0, [Job(2, 1)], f) == []
    assert next_job(r0, [Job(2, 1)], f) == Job(None, 0, 0)
    # A sixth result (0.3) lets two through: 2 (already promoted) and 5.
    r0b = r0 + [RungResult(5, 0, 0.3)]
    assert next_job(r0b, [Job(2, 1)], f) == Job(5, 1, 0)
    # The failed config 3 counts toward the rung's size but is never promoted.
    r0c = r0b + [RungResult(6, 0, None), RungResult(7, 0, None), RungResult(8, 0, None)]
    assert promotable(r0c, [Job(2, 1), Job(5, 1)], f) == [Job(1, 1)]
    # Rung 1 with 3 results promotes its best to the top rung, before any rung-0 promotion.
    r1 = [RungResult(2, 1, 0.2), RungResult(5, 1, 0.05), RungResult(1, 1, 0.4)]
    assert next_job(r0c + r1, [], f) == Job(5, 2, 0)
    # Never promoted from the top rung; the rule is a function of the records only.
    r2 = [RungResult(5, 2, 0.01)]
    assert next_job(r0c + r1 + r2, [], f) == next_job(list(reversed(r0c + r1 + r2)), [], f) == Job(None, 0, 0)


def test_hyperband_brackets_share_new_configurations():
    f = Fidelity("epochs", 1, 81, eta=3, brackets=5)
    w = bracket_weights(f)
    assert w[0] > w[1] > w[2] > w[3] > w[4] and sum(w) == pytest.approx(1.0)
    started: list[int] = []
    for _ in range(286):  # 81+34+15+8+5 = 143 configurations make one Hyperband iteration
        started.append(choose_bracket(started, f))
    counts = [started.count(b) for b in range(5)]
    assert counts == [162, 68, 30, 16, 10], counts
    # A new configuration of bracket 2 starts at rung 2 (9 epochs), and promotions stay in
    # their bracket: rung 2 of bracket 2 promotes among bracket 2's results only.
    res = [RungResult(c, 2, float(c), bracket=2) for c in range(3)] + [RungResult(9, 2, -1.0, bracket=0)]
    assert promotable(res, [], f, bracket=2) == [Job(0, 3, 2)]
    assert next_job([], [], Fidelity("epochs", 1, 81, eta=3, brackets=5)) == Job(None, 0, 0)


@pytest.mark.parametrize("mod", [shadho.asha, shadho.asha_index, shadho.fidelity])
def test_docstring_examples(mod):
    assert doctest.testmod(mod).failed == 0


@pytest.mark.parametrize("seed", range(12))
def test_the_incremental_index_decides_as_the_reference_rule(seed):
    """RungIndex (what RungBook uses) against next_job (the rule as written) on random
    histories: losses with ties, failed rungs, jobs in flight, several brackets, results
    filed out of order, and each decision taken as a real master would (the job runs)."""
    from shadho.asha_index import RungIndex

    rng = np.random.default_rng(seed)
    f = Fidelity("epochs", 1, 81, eta=int(rng.choice([2, 3])), brackets=int(rng.integers(1, 4)))
    index, results, running, new = RungIndex(f), [], [], 0
    for step in range(400):
        want = next_job(results, running, f)
        assert index.next_job(running) == want, f"step {step}"
        if want.config is None:
            want = Job(1000 + new, want.rung, want.bracket)
            new += 1
        running.append(want)
        while running and (len(running) > 8 or rng.random() < 0.4):
            j = running.pop(int(rng.integers(len(running))))
            loss = None if rng.random() < 0.1 else float(rng.integers(0, 30))  # ties on purpose
            r = RungResult(j.config, j.rung, loss, j.bracket)
            results.append(r)
            index.add(r)
    shuffled = RungIndex(f)
    for i in rng.permutation(len(results)):
        shuffled.add(results[int(i)])
    assert shuffled.next_job(running) == next_job(results, running, f)
