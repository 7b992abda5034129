"""Hardware-aware rungs (shadho/heuristics/rung_costs.py): the runtime fit, the routing, the wiring."""
from __future__ import annotations

import doctest
import random

import numpy as np
import pytest

import shadho.heuristics.rung_costs
from shadho import spaces
from shadho.asha import Job, RungResult, candidates
from shadho.asha_index import RungIndex
from shadho.fidelity import Fidelity
from shadho.heuristics.rung_costs import RungCostModel, RungRouter, line_fit, rung_demand
from shadho.rung_task import OverheadRuntime
from shadho.sim import simulate
from shadho.store import ResultsStore
from shadho.trial import TrialState

F81 = Fidelity("epochs", 1, 81, eta=3)
CPU, GPU = (5.0, 10.0), (60.0, 1.0)  # (overhead s, s per epoch)


def test_doctests():
    assert doctest.testmod(shadho.heuristics.rung_costs).failed == 0


def test_line_fit_by_hand():
    # x = 1, 2, 3; y = 10, 14, 21: mean x 2, mean y 15, slope (5 + 6) / 2 = 5.5, intercept 15 - 11 = 4.
    assert line_fit([1, 2, 3], [10, 14, 21]) == pytest.approx((4.0, 5.5))
    # A negative intercept is refitted through the origin: sum(xy) / sum(x^2) = (2 + 18) / 10 = 2.
    assert line_fit([1, 3], [2, 6.0]) == pytest.approx((0.0, 2.0))
    assert line_fit([1, 3], [0.5, 6.0]) == pytest.approx((0.0, 18.5 / 10))


def test_the_fit_averages_each_budget_and_pools_thin_pairs_on_the_class_overhead():
    m = RungCostModel(["a", "b", "c"], ["cpu"])
    for y in (14.0, 16.0):          # space a: 1 epoch -> mean 15 s, 3 epochs -> 35 s: 5 s + 10 s/epoch
        m.add("a", "cpu", 1, y)
    m.add("a", "cpu", 3, 35.0)
    m.add("b", "cpu", 1, 25.0)      # space b seen at one budget only: the class's 5 s, slope (25 - 5) / 1
    assert not m.add("a", "cpu", 0, 3.0) and not m.add("a", "gpu", 1, 3.0) and not m.add("a", "cpu", 1, None)
    a, b = m.fit()
    assert a[:, 0] == pytest.approx([5.0, 5.0, 5.0])
    assert b[:, 0] == pytest.approx([10.0, 20.0, 15.0])  # space c never ran: the mean slope
    assert m.seconds("b", "cpu", 9) == pytest.approx(185.0)
    assert m.ready().tolist() == [True]


def test_a_class_seen_at_one_budget_is_not_ready():
    m = RungCostModel(["a"], ["cpu", "gpu"])
    m.add("a", "cpu", 1, 15.0)
    m.add("a", "cpu", 3, 35.0)
    m.add("a", "gpu", 1, 61.0)
    assert m.ready().tolist() == [True, False]
    r = RungRouter(F81, ["a"], ["cpu", "gpu"])
    r.model = m
    r.solve([1.0])
    assert r.neutral  # ASHA's own order until every class can be told apart


def test_rung_demand_of_hyperband_brackets():
    # eta 3, budgets 1, 3, 9, two brackets: shares 9/14 and 5/14 (ceil(3/3 * 9), ceil(3/2 * 3)).
    r, u = rung_demand(Fidelity("epochs", 1, 9, eta=3, brackets=2))
    # rung 0: 9/14; rung 1: 3/14 + 5/14 = 8/14; rung 2: 1/14 + 5/42 = 8/42; relative to rung 0.
    assert r == pytest.approx([1.0, 8 / 9, (8 / 42) / (9 / 14)])
    # rung 1: bracket 0's 3/14 continue (2 epochs), bracket 1's 5/14 start there (3): 21/8 epochs.
    assert u == pytest.approx([1.0, 21 / 8, 6.0])


def test_demand_follows_the_observed_promotion_rates():
    r = RungRouter(Fidelity("epochs", 1, 9, eta=3), ["s"], ["cpu", "gpu"])
    reached, finished = np.array([[30.0, 12.0, 4.0]]), np.array([[30.0, 10.0, 4.0]])
    # rates with 20 runs of 1/3: (12 + 20/3) / (30 + 20) = 0.37333, (4 + 20/3) / (10 + 20) = 0.35556;
    # proportions 1, 0.37333, 0.13274, over their sum 1.50607.
    assert r.demand_of([1.0], (reached, finished)) == pytest.approx([0.66398, 0.24789, 0.08814], abs=1e-4)
    assert r.demand_of([1.0]) == pytest.approx(np.array([1, 1 / 3, 1 / 9]) / (13 / 9))  # no data: eta**-k


def _router(profile=None, capacity=(2.0, 1.0)):
    profile = profile or {"cpu": CPU, "gpu": GPU}
    r = RungRouter(F81, ["s"], list(profile))
    for units in (1, 2, 6, 18, 54):
        for key, (oh, per) in profile.items():
            for _ in range(3):
                r.observe("s", key, units, oh + per * units)
    r.model.busy[:] = capacity  # two CPU slots per GPU slot
    r.solve([1.0])
    return r


def test_low_rungs_go_to_the_overhead_cheap_class_and_the_top_rung_to_the_epoch_cheap_one():
    r = _router()
    assert not r.neutral
    W = r.weights  # rows: rungs 0..4 of the one space; columns: cpu, gpu
    assert W[0, 0] > 0.5 and W[0, 1] < 0.05     # rung 0 (1 epoch: 15 s vs 61 s): the CPU's
    assert W[4, 1] > 0.05 and W[4, 0] < 0.01    # rung 4 (54 epochs: 545 s vs 114 s): the GPU's
    # Planned max-budget completions per second against every class running ASHA's mix, by hand:
    # per 81-epoch completion (demand 1, 1/3, 1/9, 1/27, 1/81 per rung) CPU rungs 0-1 take
    # 15 + 25/3 = 23.33 s and the GPU rungs 2-4 66/9 + 78/27 + 114/81 = 11.63 s, so with 2/3 and
    # 1/3 of the slots 0.02857 completions/s; the mix costs 44.14 s on a CPU slot, 93.30 s on a
    # GPU one: (2/3)/44.14 + (1/3)/93.30 = 0.01868. Gain 1.53.
    assert r.gain == pytest.approx(0.028571 / 0.018678, rel=0.02)
    assert r.share[0].tolist() == pytest.approx([1.0, 0.0], abs=0.02)  # the plan: rung 0 on the CPUs
    assert r.share[4].tolist() == pytest.approx([0.0, 1.0], abs=0.02)  # rung 4 on the GPUs
    top, mid, new = Job(7, 4, 0), Job(8, 2, 0), Job(None, 0, 0)
    assert r.choose([top, new], "cpu", lambda j: "s") is new  # a CPU slot starts a configuration
    assert r.choose([top, new], "gpu", lambda j: "s") is top  # a GPU slot takes the long promotion
    assert r.choose([mid, new], "gpu", lambda j: "s") is mid
    assert r.choose([new], "gpu", lambda j: "s") is new  # nothing of its own: it never waits
    assert r.choose([top], "cpu", lambda j: "s") is top
    asked: list[Job] = []  # a new configuration's space is drawn only when the choice reaches it
    assert r.choose([top, new], "gpu", lambda j: asked.append(j) or "s") is top and asked == [top]


def test_equal_classes_leave_asha_its_order():
    r = _router({"cpu": CPU, "cpu2": CPU}, capacity=(1.0, 1.0))
    assert r.neutral and r.gain == pytest.approx(1.0, abs=0.05)
    jobs = [Job(3, 2, 0), Job(None, 0, 0)]
    assert r.choose(jobs, "cpu", lambda j: "s") is jobs[0]


def test_the_rung_index_gives_the_rules_jobs_in_its_order():
    rnd = random.Random(3)
    for brackets in (1, 2, 3):
        f = Fidelity("epochs", 1, 27, eta=3, brackets=brackets)
        index, results, pending = RungIndex(f), [], []
        for step in range(300):
            jobs = candidates(results, pending, f)
            assert index.candidates(pending) == jobs
            firsts, seen = [], set()  # grouped (as by search space): the best of each group per rung
            for j in jobs[:-1]:
                if (j.config % 2, j.bracket, j.rung) not in seen:
                    seen.add((j.config % 2, j.bracket, j.rung))
                    firsts.append(j)
            assert index.candidates(pending, lambda c: c % 2, 2) == firsts + jobs[-1:]
            job = jobs[0] if rnd.random() < 0.6 else rnd.choice(jobs)
            pending.append(Job(step if job.config is None else job.config, job.rung, job.bracket))
            if rnd.random() < 0.7:  # a result arrives (a failure now and then, ties too)
                done = pending.pop(rnd.randrange(len(pending)))
                loss = None if rnd.random() < 0.05 else float(rnd.randrange(20))
                results.append(RungResult(done.config, done.rung, loss, done.bracket))
                index.add(results[-1])


def _sim(db, heuristics, max_tasks=500, seed=0):
    spec = {"x": spaces.uniform(0, 1)}
    runtime = OverheadRuntime({"cpu": CPU, "gpu": GPU})
    return simulate(spec, lambda p, epochs: (p["x"] - 0.3) ** 2 + 1.0 / epochs, {"cpu": 8, "gpu": 4}, runtime,
                    max_tasks=max_tasks, seed=seed, use_complexity=heuristics, use_uncertainty=heuristics,
                    fidelity={"name": "epochs", "min": 1, "max": 27, "eta": 3}, backend=db, exp_key="mf")


def _mean_budget(db):
    with ResultsStore(db, readonly=True) as store:
        exp = store.experiment_id("mf")
        budget = {r.trial_id: r.budget for r in store.rungs(exp)}
        trials = [t for t in store.trials(exp) if t.state == TrialState.COMPLETE]
    return {k: np.mean([budget[t.id] for t in trials if t.compute_class == k]) for k in ("cpu", "gpu")}


def test_simulated_search_routes_rungs_by_class_and_off_keeps_asha_order(tmp_path):
    _sim(str(tmp_path / "on.db"), True)
    on = _mean_budget(str(tmp_path / "on.db"))
    assert on["gpu"] > 3 * on["cpu"]  # long promotions on the GPU, 1-epoch runs on the CPU
    _sim(str(tmp_path / "off.db"), False)
    off = _mean_budget(str(tmp_path / "off.db"))
    assert off["gpu"] < 2 * off["cpu"]  # heuristics off: every class runs the same mix


def test_a_resumed_master_rebuilds_the_runtime_model_from_the_store(tmp_path):
    from shadho import study_asha
    from shadho.driver import Shadho

    db = str(tmp_path / "r.db")
    _sim(db, True, max_tasks=200)
    opt = Shadho("mf", lambda p, epochs: 0.0, {"x": spaces.uniform(0, 1)}, backend=db, max_tasks=200,
                 fidelity={"name": "epochs", "min": 1, "max": 27, "eta": 3}, quiet=True)
    opt.add_compute_class("cpu", "cores", 1)
    opt.add_compute_class("gpu", "cores", 1)
    try:
        study = opt.open()
        routes = study_asha.router(study)
        assert routes is not None and routes.model.runs == 200
        # the same model as one fed the stored runs by hand: (space, class, epochs trained, runtime)
        by_hand = RungCostModel([sp.id for sp in study.spaces], ["cpu", "gpu"])
        f = Fidelity("epochs", 1, 27, eta=3)
        with ResultsStore(db, readonly=True) as store:
            trials = {t.id: t for t in store.trials(store.experiment_id("mf"))}
            for r in store.rungs(store.experiment_id("mf")):
                t = trials[r.trial_id]
                units = r.budget - (f.budget(r.rung - 1) if r.rung > r.bracket else 0)
                by_hand.add(t.space_id, t.compute_class, units, t.runtime)
        assert np.allclose(routes.model.fit(), by_hand.fit())
        a, b = routes.model.fit()
        assert b[0, 0] == pytest.approx(10.0, rel=0.15) and a[0, 1] == pytest.approx(60.0, rel=0.2)
        assert not routes.neutral
    finally:
        opt.close()


def _two_budgets(p, epochs, checkpoint=None):
    return (p["x"] - 0.3) ** 2 + 1.0 / epochs


@pytest.mark.workqueue
def test_work_queue_with_two_classes_runs_hardware_aware_rungs(tmp_path, caplog):
    from shadho.driver import Shadho

    db = str(tmp_path / "wq.db")
    workers = [{"cores": 1, "features": {"size": "small"}}, {"cores": 1, "features": {"size": "big"}}]
    opt = Shadho("wqmf", _two_budgets, {"x": spaces.uniform(0, 1)}, backend=db, max_tasks=16, seed=1,
                 manager="workqueue", local_workers=workers, timeout=180,
                 fidelity={"name": "epochs", "min": 1, "max": 9, "eta": 3})
    opt.add_compute_class("small", "size", "small")
    opt.add_compute_class("big", "size", "big")
    with caplog.at_level("WARNING", logger="shadho"):
        trials = opt.run()
    assert len(trials) == 16 and all(t.state == TrialState.COMPLETE for t in trials), [t.error for t in trials]
    assert {t.compute_class for t in trials} == {"small", "big"}
    with ResultsStore(db, readonly=True) as store:
        assert len(store.rungs(store.experiment_id("wqmf"))) == 16
    # the router ran (its plan, or why it kept ASHA's order, closes the run)
    assert any("hardware-aware rungs:" in r.getMessage() for r in caplog.records)
