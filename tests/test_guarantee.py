"""The baseline guarantee: with the heuristics on, no space gets fewer trials per second
than the hardware-oblivious baseline would give it, and where the hardware offers
nothing to gain the scheduler makes exactly the baseline's decisions."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from shadho import spaces
from shadho.compute import ComputeClass
from shadho.heuristics import make_scheduler
from shadho.heuristics.assignment import assign, baseline_trials, guarantee_baseline
from shadho.history import History
from shadho.sim import simulate

SPEC = {"exclusive": True, **{n: {"x": spaces.uniform(0, 1)} for n in ("a", "b", "c")}}
CLASSES = [ComputeClass("small", "cores", 1), ComputeClass("big", "cores", 4)]


def test_baseline_trials_formula():
    # Class 0 runs both spaces in 1 s, class 1 runs space 0 in 1 s and space 1 in 3 s:
    # uniform picks give class 1 a mean of 2 s per trial, so each space gets
    # 0.5/(2*1) + 0.5/(2*2) = 0.375 trials per unit of capacity.
    L = np.log([[1.0, 1.0], [1.0, 1.0 / 3.0]])
    np.testing.assert_allclose(baseline_trials(L), [0.375, 0.375])


@settings(max_examples=60, deadline=None)
@given(S=st.integers(2, 12), C=st.integers(2, 5), seed=st.integers(0, 10_000))
def test_every_space_gets_at_least_its_baseline_rate(S, C, seed):
    rng = np.random.default_rng(seed)
    L = rng.normal(0, 1.5, (S, C))
    score = rng.exponential(1, S) ** 3          # very uneven scores: the guarantee binds
    cap = rng.uniform(0.2, 1, C)
    a = guarantee_baseline(score, L, cap, iters=100)
    got = a.trials.sum(axis=1)
    assert (got >= 0.9 * baseline_trials(L, cap)).all()
    # ... and the total is not below the baseline's (its allocation is feasible; the
    # market's small rank tie-break, align=0.1, can cost a few percent where speeds are close).
    assert got.sum() >= 0.9 * baseline_trials(L, cap).sum()


def test_without_the_guarantee_a_low_score_starves():
    L = np.log([[1.0, 1.0], [1.0, 8.0], [1.0, 8.0]])
    score = np.array([1e-3, 1.0, 1.0])
    plain = assign(score, L, share=np.array([0.01, 0.495, 0.495])).trials.sum(axis=1)
    kept = guarantee_baseline(score, L, share=np.array([0.01, 0.495, 0.495])).trials.sum(axis=1)
    floor = baseline_trials(L)
    assert plain[0] < 0.5 * floor[0]
    assert kept[0] >= 0.95 * floor[0]


def _feed(s, sps, speed, n=30):
    hist = {sp.id: History(sp.dim) for sp in sps}
    rng = np.random.default_rng(0)
    for _ in range(n):
        for sp in sps:
            for c in ("small", "big"):
                hist[sp.id].complete(None, rng.uniform(0, 1, 1), float(rng.random()))
                s.observe(sp.id, c, 2.0 / speed[sp.name][c], 0.5, True)
    s.reassign(hist)


def test_equal_classes_make_the_baselines_decisions():
    sps = spaces.split(SPEC)
    on = make_scheduler(sps, CLASSES)
    off = make_scheduler(sps, CLASSES, use_complexity=False, use_uncertainty=False)
    # Every class equally fast on every space (a uniform speed-up cancels too).
    _feed(on, sps, {n: {"small": 1.0, "big": 3.0} for n in "abc"})
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    assert [on.pick("big", r1) for _ in range(50)] == [off.pick("big", r2) for _ in range(50)]
    assert on.priorities() == off.priorities()


def test_comparative_advantage_switches_the_heuristics_on():
    sps = spaces.split(SPEC)
    s = make_scheduler(sps, CLASSES)
    _feed(s, sps, {"a": {"small": 1.0, "big": 8.0}, "b": {"small": 1.0, "big": 1.0},
                   "c": {"small": 1.0, "big": 1.0}})
    w = s.weights()
    ids = {sp.name: sp.id for sp in sps}
    assert w["big"][ids["a"]] > 0.5 > w["small"][ids["a"]]


def test_a_class_that_fails_a_space_gets_none_of_it():
    sps = spaces.split(SPEC)
    ids = {sp.name: sp.id for sp in sps}
    s = make_scheduler(sps, CLASSES)
    hist = {sp.id: History(sp.dim) for sp in sps}
    rng = np.random.default_rng(0)
    for _ in range(30):
        for sp in sps:
            for c in ("small", "big"):
                ok = not (sp.name == "a" and c == "small")   # small crashes every 'a' trial
                if ok:
                    hist[sp.id].complete(None, rng.uniform(0, 1, 1), float(rng.random()))
                s.observe(sp.id, c, 1.0, 0.5 if ok else None, ok)
    s.reassign(hist)
    w = s.weights()
    assert w["small"][ids["a"]] < 0.05
    assert w["big"][ids["a"]] > 0.3
    assert np.exp(s.runtimes.log_success()[0, 0]) < 0.1


def _runtime(space_id, params, cls):
    return 2.0


def test_simulated_flat_pool_runs_exactly_the_baseline():
    """Two classes, every space equally fast on both: ON's run is OFF's run."""
    runs = {}
    for on in (True, False):
        r = simulate(SPEC, lambda p: next(iter(p.values()))["x"], {"small": 4, "big": 4}, _runtime,
                     max_tasks=300, compute_classes=[{"name": "small", "resource": "cores", "value": 1},
                                                     {"name": "big", "resource": "cores", "value": 4}],
                     use_complexity=on, use_uncertainty=on, seed=3, noise=0.1)
        runs[on] = [(t.searchspace, t.compute_class, round(t.loss, 12)) for t in r.trials]
    assert runs[True] == runs[False]


def _model_with(interaction: float, seed: int = 0, n: int = 12):
    from shadho.heuristics.strength import RuntimeModel
    rng = np.random.default_rng(seed)
    m = RuntimeModel(3, [1.0, 2.0])
    for _ in range(n):
        for s in range(3):
            for c in range(2):
                gain = interaction if (s == 0 and c == 1) else 1.0
                # runtimes spread 3x within a pair (configurations differ), class 1 twice as fast
                m.add(s, c, float(np.exp(rng.normal(0, 0.6))) * (1 + s) / (1 + c) / gain)
    return m


def test_runtime_noise_is_not_taken_for_comparative_advantage():
    from shadho.heuristics.assignment import comparative_advantage
    for seed in range(5):
        A = comparative_advantage(-_model_with(1.0, seed).log_runtime())
        np.testing.assert_allclose(A, 0.0, atol=1e-4)


def test_a_real_interaction_is_learned():
    from shadho.heuristics.assignment import comparative_advantage
    A = comparative_advantage(-_model_with(8.0).log_runtime())
    assert A[0, 1] > 0.5   # space 0 gains 8x on class 1: log(8) / 4 ~ 0.52 after centring


def test_planning_uses_the_mean_runtime():
    from shadho.heuristics.strength import RuntimeModel
    m = RuntimeModel(1, [1.0])
    rng = np.random.default_rng(0)
    t = np.exp(rng.normal(0, 1.0, 4000))
    for x in t:
        m.add(0, 0, float(x))
    assert abs(float(np.exp(m.log_mean_runtime()[0, 0])) / t.mean() - 1) < 0.1
    assert float(np.exp(m.log_runtime()[0, 0])) < 0.75 * t.mean()   # the median is not the mean


def test_resume_rebuilds_what_the_scheduler_learned(tmp_path):
    """A master that resumes from the store routes as the uninterrupted one would: the
    learned runtimes, successes and best losses, and so the assignment, are the same."""
    import shutil

    spec = {"exclusive": True, "a": {"x": spaces.uniform(0, 1)}, "b": {"y": spaces.uniform(0, 1)}}
    gain = {"a": {"small": 1.0, "big": 8.0}, "b": {"small": 1.0, "big": 1.0}}
    classes = [{"name": "small", "resource": "cores", "value": 1},
               {"name": "big", "resource": "cores", "value": 4}]
    db = str(tmp_path / "r.db")
    simulate(spec, lambda p: next(iter(p.values()))["x" if "a" in p else "y"], {"small": 3, "big": 3},
             lambda sid, p, c: 2.0 / gain[next(iter(p))][c], max_tasks=120, compute_classes=classes,
             seed=1, backend=db, reassign_every=10_000)   # no reassignment during the run
    copy = str(tmp_path / "copy.db")
    shutil.copy(db, copy)

    from shadho import Shadho
    from shadho.heuristics import Scheduler

    def scheduler_of(path):
        opt = Shadho("sim", lambda p: 0.0, spec, backend=path, quiet=True, timeout=None)
        for c in classes:
            opt.add_compute_class(**c)
        s = opt.open().scheduler
        opt.close()
        return s

    resumed = scheduler_of(copy)
    # The uninterrupted run's scheduler, fed the same results in the same order.
    fresh = Scheduler(spaces.split(spec), resumed.classes)
    from shadho.store import ResultsStore
    with ResultsStore(db, readonly=True) as st:
        exp = st.experiment_id("sim")
        trials = [t for t in st.iter_trials(exp) if t.state.value in ("COMPLETE", "FAILED")]
    assert len(trials) == 120
    hist = {sp.id: History(sp.dim) for sp in fresh.spaces}
    for t in trials:
        fresh.observe(t.space_id, t.compute_class, t.runtime, t.loss, t.state.value == "COMPLETE")
        hist[t.space_id].complete(None, t.x, t.loss)
    fresh.reassign(hist)
    np.testing.assert_allclose(resumed.runtimes.count, fresh.runtimes.count)
    np.testing.assert_allclose(resumed.runtimes.sum_log, fresh.runtimes.sum_log)
    np.testing.assert_allclose(resumed._space_best, fresh._space_best)
    np.testing.assert_allclose(resumed.assignment.weights, fresh.assignment.weights, atol=1e-6)
    ids = {sp.name: sp.id for sp in fresh.spaces}
    assert resumed.weights()["big"][ids["a"]] > 0.5   # it learned that a gains 8x on big


def test_baseline_rates_count_a_failing_classs_runtime():
    # Class 0 fails every trial of space 0 but spends 1 s on it, as on everything else:
    # its picks still give space 1 and 2 a third each of its trials.
    ok = np.array([[1e-6, 1.0], [1.0, 1.0], [1.0, 1.0]])
    L = np.log(ok)                    # successful trials per second (runtimes all 1 s)
    rates = baseline_trials(L, log_success=np.log(ok))
    np.testing.assert_allclose(rates, [0.5 / 3 + 0.5e-6 / 3, 1 / 3, 1 / 3], rtol=1e-5)


def test_every_space_gets_part_of_the_surplus_when_asked():
    """With surplus_share=0.5 and a surplus g over the baseline (found by the previous solve), every space gets
    at least 1 + (g - 1) / 2 of its baseline rate, even the space the scores rank last."""
    sps = spaces.split(SPEC)
    s = make_scheduler(sps, CLASSES, surplus_share=0.5)
    _feed(s, sps, {"a": {"small": 1.0, "big": 8.0}, "b": {"small": 1.0, "big": 0.5},
                   "c": {"small": 1.0, "big": 1.0}}, n=40)
    s.reassign({sp.id: History(sp.dim) for sp in sps})   # the second solve keeps the promise
    L = s.runtimes.log_success() - s.runtimes.log_mean_runtime()
    base = baseline_trials(L, s.runtimes.capacity(), s.runtimes.log_success())
    got = s.assignment.trials.sum(axis=1)
    g = got.sum() / base.sum()
    assert not s._neutral and g > 1.2
    assert (got >= 0.95 * base * (1 + 0.5 * (g - 1))).all()
    plain = make_scheduler(sps, CLASSES, surplus_share=0.0)
    _feed(plain, sps, {"a": {"small": 1.0, "big": 8.0}, "b": {"small": 1.0, "big": 0.5},
                       "c": {"small": 1.0, "big": 1.0}}, n=40)
    plain.reassign({sp.id: History(sp.dim) for sp in sps})
    assert plain.assignment.trials.sum(axis=1).min() < got.min()


def test_a_failing_pair_is_abandoned_and_the_search_never_stalls():
    """'small' fails every trial of 'a' (after spending its time): within a few failures
    the scheduler stops sending 'a' there, while 'a' keeps running on 'big'."""
    classes = [{"name": "small", "resource": "cores", "value": 1},
               {"name": "big", "resource": "cores", "value": 4}]
    ids = {sp.name: sp.id for sp in spaces.split(SPEC)}
    out = {}
    for on in (True, False):
        r = simulate(SPEC, lambda p: next(iter(p.values()))["x"], {"small": 2, "big": 2}, _runtime,
                     max_tasks=400, compute_classes=classes, use_complexity=on, use_uncertainty=on,
                     seed=2, noise=0.3, queue_margin="auto", common_noise=True,
                     failure_rate=lambda sid, c: 1.0 if (sid, c) == (ids["a"], "small") else 0.0)
        failed = [t for t in r.trials if t.state.value == "FAILED"]
        ok_a = [t for t in r.trials if t.searchspace == "a" and t.state.value == "COMPLETE"]
        out[on] = (len(failed), len(ok_a), len(r.trials), r.makespan)
    assert out[True][2] == out[False][2] == 400          # every trial ran: no stall
    assert out[True][0] <= 12 < out[False][0]              # abandoned within a dozen failures
    assert out[True][1] >= out[False][1]                   # 'a' still gets its trials, on 'big'


def test_noise_alone_is_almost_never_taken_for_an_advantage_over_many_looks():
    """The scheduler tests at every reassignment; with the level shared over the looks,
    runtimes with no space-class interaction (spread by their configurations with heavy
    tails, as SVC fit times are) reject the additive model in at most 2 of 40 searches of
    60 looks each (at a fixed level of 0.01 per look: 7 of 40)."""
    from shadho.heuristics.strength import RuntimeModel
    rejected = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        m = RuntimeModel(4, [1.0, 2.0])
        hit = False
        for _ in range(60):
            for _ in range(10):
                s, c = int(rng.integers(4)), int(rng.integers(2))
                m.add(s, c, float(np.exp(0.6 * rng.standard_t(3))) * (1 + s) / (1 + c))
            var = m.log_variance()
            n = m.count
            mean = np.where(n > 0, m.sum_log / np.maximum(n, 1), 0.0)
            hit |= np.min(m._pair_shrinkage(mean, var)) < 1e5
        rejected += hit
    assert rejected <= 2


def _hist(sps, n):
    out = {sp.id: History(sp.dim) for sp in sps}
    rng = np.random.default_rng(1)
    for sp in sps:
        for _ in range(n[sp.name]):
            out[sp.id].complete(None, rng.uniform(0, 1, sp.dim), float(rng.random()))
    return out


def test_a_space_with_few_results_is_promised_the_whole_surplus():
    """explore_results=30: a space with no results yet is promised g times its baseline rate
    (its score cannot be trusted yet), one with 15 half the surplus, one with 30 or more
    nothing beyond the guarantee; at 0 (off) the promise is surplus_share's."""
    sps = spaces.split(SPEC)
    speed = {"a": {"small": 1.0, "big": 8.0}, "b": {"small": 1.0, "big": 0.5}, "c": {"small": 1.0, "big": 1.0}}
    s = make_scheduler(sps, CLASSES)
    s.explore_results = 30
    _feed(s, sps, speed, n=40)
    h = _hist(sps, {"a": 0, "b": 15, "c": 40})
    np.testing.assert_allclose(s.surplus_promise(h), [1.0, 0.5, 0.0])
    h0 = _hist(sps, {"a": 0, "b": 0, "c": 0})
    s.reassign(h0)
    s.reassign(h0)                                   # the promise uses the previous solve's gain
    L = s.runtimes.log_success() - s.runtimes.log_mean_runtime()
    base = baseline_trials(L, s.runtimes.capacity(), s.runtimes.log_success())
    got = s.assignment.trials.sum(axis=1)
    g = got.sum() / base.sum()
    assert not s._neutral and g > 1.2
    assert (got >= 0.95 * g * base).all()            # every space sped up as the whole
    s.explore_results = 0
    np.testing.assert_allclose(s.surplus_promise(h), [0.0, 0.0, 0.0])


def test_the_explore_promise_leaves_a_flat_pool_neutral():
    """No surplus, nothing to promise: with explore_results the flat pool is still neutral."""
    sps = spaces.split(SPEC)
    s = make_scheduler(sps, CLASSES)
    s.explore_results = 30
    _feed(s, sps, {n: {"small": 1.0, "big": 1.0} for n in "abc"}, n=40)
    s.reassign(_hist(sps, {"a": 0, "b": 0, "c": 0}))
    assert s._neutral
