"""``shadho.plan`` / ``shadho plan`` on results files written by real (simulated-worker) searches.

The results files come from :func:`shadho.sim.simulate`: the real driver, sampler,
scheduler and SQLite store, with workers on a virtual clock, so the runtimes each
class measured are known exactly. The planner is checked against the second half of
such a search, as ``bench/plan.py`` checks it against real Work Queue workers.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

import shadho
from shadho import spaces
from shadho.cli import main
from shadho.errors import StoreError
from shadho.plan_inputs import parse_assume, parse_pool, parse_prices
from shadho.plan_model import PlanError
from shadho.planner import plan_trials
from shadho.sim import simulate
from shadho.store import ResultsStore

SPEC = {"exclusive": True,
        "heavy": {"a": spaces.uniform(0, 1), "b": spaces.randint(0, 4)},
        "light": {"x": spaces.log10_uniform(-2, 0)}}
# 'heavy' runs 8x faster on the big class; 'light' gains nothing there.
RUNTIME = {"heavy": {"small": 8.0, "big": 1.0}, "light": {"small": 2.0, "big": 2.0}}
CLASSES = [{"name": "small", "resource": "cores", "value": 1}, {"name": "big", "resource": "cores", "value": 4}]


def objective(p):
    (name, q), = p.items()
    return q["a"] + q["b"] / 4 if name == "heavy" else 0.2 + q["x"]


def runtime(space_id, params, cls):
    (name, _), = params.items()
    return RUNTIME[name][cls]


def search(db, *, on=True, seed=0, tasks=300, failure_rate=0.0):
    return simulate(SPEC, objective, {"small": 3, "big": 2}, runtime, max_tasks=tasks, seed=seed,
                    backend=str(db), compute_classes=CLASSES, use_complexity=on, use_uncertainty=on,
                    queue_margin="auto", task_overhead=0.2, noise=0.1, failure_rate=failure_rate)


def records(db, until=None):
    with ResultsStore(str(db), readonly=True) as st:
        exp = st.experiment_id("sim")
        ts = st.trials(exp)
        if until is not None:
            ts = [t for t in ts if t.finish_time is not None and t.finish_time <= until]
        return st.spaces(exp), ts, st.settings(exp)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    db = tmp_path_factory.mktemp("plan") / "r.db"
    res = search(db)
    return db, res


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("on, tolerance", [(False, 0.15), (True, 0.25)])
def test_plan_predicts_the_second_half_of_a_search(tmp_path, on, tolerance):
    db = tmp_path / "r.db"
    res = search(db, on=on, seed=1, tasks=400)
    half = res.makespan / 2
    end = max(t.start_time for t in res.trials)  # the search was still busy until its last start
    real = [t for t in res.trials if half < t.finish_time <= end and t.state.value == "COMPLETE"]
    rows, cut, settings = records(db, half)
    p = plan_trials(rows, cut, settings, pool="small=3,big=2", hours=(end - half) / 3600,
                    heuristics="on" if on else "off", samples=3, seed=1)
    pred = p.prediction
    assert p.observed_pool == {"small": 3, "big": 2}
    assert abs(pred.trials.mid / len(real) - 1) <= tolerance, (pred.trials, len(real))
    assert pred.trials.low <= pred.trials.mid <= pred.trials.high
    for cls in ("small", "big"):
        n = sum(t.compute_class == cls for t in real)
        got = pred.per_class[cls].mid * (end - half) / 3600
        assert abs(got / n - 1) <= 0.3, (cls, got, n)
        assert 0.5 < pred.utilisation[cls].mid <= 1.0
    assert not pred.master_bound and not pred.trials.assumed


def test_twice_the_pool_twice_the_throughput_and_the_master_caps_10k_workers(searched):
    db, _ = searched
    one = shadho.plan(db, pool="small=3,big=2", hours=0.1, samples=2)
    two = shadho.plan(db, pool="small=6,big=4", hours=0.1, samples=2)
    ratio = two.prediction.throughput.mid / one.prediction.throughput.mid
    assert 1.8 < ratio < 2.2, ratio
    assert not two.prediction.master_bound
    big = shadho.plan(db, pool="small=6000,big=4000", hours=1, samples=1, max_sim_trials=1500)
    pred = big.prediction
    assert pred.master_bound and pred.master_load.mid > 1
    assert any("bottleneck" in n for n in pred.notes) and any("smaller" in n for n in pred.notes)
    # Capped at what the master dispatches: one trial per master_ms_per_trial.
    assert pred.throughput.mid <= 3.6e6 / pred.master_ms_per_trial.low * 1.01


def test_time_to_finish_cost_and_heuristics_both(searched):
    db, _ = searched
    p = shadho.plan(db, pool="small=3,big=2", trials=200, cost="small=1,big=4", heuristics="both", samples=2)
    assert set(p.predictions) == {"on", "off"} and p.trials_planned == 200
    on, off = p.predictions["on"], p.predictions["off"]
    assert on.time_to_finish.mid < off.time_to_finish.mid   # the heuristics place 'heavy' on big
    assert on.cost.mid == pytest.approx((3 * 1 + 2 * 4) * on.hours.mid, rel=1e-6)
    assert on.time_to_finish.mid == pytest.approx(on.hours.mid)


def test_cheapest_pool_finishes_in_time(searched):
    db, _ = searched
    p = shadho.plan(db, pool="small=3,big=2", trials=600, hours=0.02, cost="small=1,big=2", samples=1)
    ch = p.cheapest
    assert ch.feasible and ch.prediction.time_to_finish.mid <= 0.02 * 1.1
    assert len(ch.tried) >= 2
    base = shadho.plan(db, pool="small=3,big=2", trials=600, samples=1).prediction.time_to_finish.mid
    assert base > 0.02 and sum(n for n, _ in ch.pool.values()) > 5   # it had to grow the pool


def test_assumed_class_is_flagged(searched):
    db, _ = searched
    p = shadho.plan(db, pool="small=3,big=2,gpu=2", assume="gpu=4x:big", hours=0.05, samples=2)
    pred = p.prediction
    assert pred.per_class["gpu"].assumed and not pred.per_class["small"].assumed
    assert pred.throughput.assumed and any("gpu is assumed 4x as fast as big" in n for n in pred.notes)
    base = shadho.plan(db, pool="small=3,big=2", hours=0.05, samples=2).prediction
    assert pred.throughput.mid > 1.3 * base.throughput.mid


def test_plan_never_writes_the_results_file(searched, capsys):
    db, _ = searched
    before = digest(db)
    shadho.plan(db, pool="small=1,big=1", hours=0.05, samples=1)
    assert main(["plan", str(db), "--pool", "small=1,big=1", "--hours", "0.05", "--samples", "1"]) == 0
    assert digest(db) == before
    out, err = capsys.readouterr()
    assert "resuming" not in err   # the simulated master's own lines stay out of the user's way
    assert "heuristics on: pool small=1,big=1" in out and "per class" in out and "heavy" in out


def test_cli_json_and_errors(searched, tmp_path, capsys):
    db, _ = searched
    assert main(["plan", str(db), "--pool", "small=2", "--hours", "0.05", "--samples", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["predictions"]["on"]["per_class"]["small"]["mid"] > 0
    assert main(["plan", str(db), "--pool", "tiny=2", "--hours", "1"]) == 1
    err = capsys.readouterr().err
    assert "unknown compute class(es) 'tiny'" in err and "big, small" in err and "--assume" in err
    assert main(["plan", str(db), "--pool", "small=2"]) == 1   # no --hours/--trials, no budget left
    assert "give hours=H" in capsys.readouterr().err
    assert main(["plan", str(db), "--pool", "small=2", "--hours", "1", "--cost", "small=1,huge=3"]) == 1
    assert "unknown class(es) huge" in capsys.readouterr().err


def test_pool_that_cannot_run_a_space(tmp_path):
    db = tmp_path / "f.db"
    sp = {s.name: s.id for s in spaces.split(SPEC)}
    search(db, tasks=150, failure_rate=lambda s, c: 1.0 if (s == sp["heavy"] and c == "small") else 0.0)
    with pytest.raises(PlanError, match="no worker in the pool can run search space 'heavy'.*big"):
        shadho.plan(db, pool="small=3", hours=1)
    assert shadho.plan(db, pool="small=3,big=1", hours=0.05, samples=1).prediction.throughput.mid > 0


def test_empty_and_foreign_files(tmp_path):
    empty = tmp_path / "e.db"
    ResultsStore(str(empty)).close()
    with pytest.raises(PlanError, match="holds no experiments"):
        shadho.plan(empty, pool="a=1", hours=1)
    with ResultsStore(str(empty)) as st:
        st.open_experiment("x", lock=False)
    with pytest.raises(PlanError, match="no search spaces"):
        shadho.plan(empty, pool="a=1", hours=1)
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(StoreError, match="not a shadho results file"):
        shadho.plan(foreign, pool="a=1", hours=1)
    text = tmp_path / "notes.db"
    text.write_text("hello, not a database at all" * 100)
    with pytest.raises(StoreError, match="not a shadho results file"):
        shadho.plan(text, pool="a=1", hours=1)
    with pytest.raises(StoreError, match="no such results file"):
        shadho.plan(tmp_path / "missing.db", pool="a=1", hours=1)


def test_inputs_parse_and_reject(tmp_path):
    assert parse_pool("cpu=40, gpu=8x4") == {"cpu": (40, 1), "gpu": (8, 4)}
    assert parse_pool({"cpu": 2, "gpu": (1, 4)}) == {"cpu": (2, 1), "gpu": (1, 4)}
    for bad in ("cpu", "cpu=-1", "cpu=2x0", "cpu=0", "", "cpu=1,cpu=2"):
        with pytest.raises(ValueError):
            parse_pool(bad)
    assert parse_prices("cpu=0.5,gpu=3") == {"cpu": 0.5, "gpu": 3.0}
    with pytest.raises(ValueError, match="must be a number"):
        parse_prices("cpu=cheap")
    j = tmp_path / "a.json"
    j.write_text(json.dumps({"h100": {"like": "gpu", "speed": 3, "spaces": {"svm/rbf": 10}}}))
    t = tmp_path / "a.toml"
    t.write_text('[h100]\nlike = "gpu"\nspeed = 3\n[h100.spaces]\n"svm/rbf" = 10\n')
    for f in (j, t):
        a = parse_assume(str(f))["h100"]
        assert (a.like, a.speed_on("svm/rbf"), a.speed_on("svm/linear")) == ("gpu", 10, 3)
    for bad in ("gpu=fast:cpu", "gpu=0x:cpu", "gpu=2x:gpu"):
        with pytest.raises(ValueError):
            parse_assume(bad)
    j.write_text(json.dumps({"h100": {"like": "gpu"}}))
    with pytest.raises(ValueError, match="needs 'like'"):
        parse_assume(str(j))


def test_assumption_against_an_unseen_class_is_rejected(searched):
    db, _ = searched
    with pytest.raises(ValueError, match="never saw"):
        shadho.plan(db, pool="gpu=1", assume="gpu=2x:tpu", hours=1)


def test_report_has_a_plan_check_section(searched, tmp_path):
    pytest.importorskip("matplotlib", reason="shadho report needs matplotlib (pip install 'shadho[cli]')")
    db, _ = searched
    before = digest(db)
    assert main(["report", str(db), "-o", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert digest(db) == before
    start = page.index("Plan check")
    section = page[start:page.index("</table>", start)]
    assert "predicted" in section and "observed" in section
    for name in ("small", "big", "heavy", "light", "all"):
        assert f"<td>{name}</td>" in section
    from shadho.plan_report import self_check
    rows, ts, settings = records(db)
    chk = self_check(rows, ts, settings)
    total = [r for r in chk["rows"] if r[0] == "total"][0]
    assert 0.7 < total[3].mid / total[2] < 1.3, total


def test_report_plan_section_for_a_tiny_search(tmp_path):
    from shadho.plan_report import plan_section_html
    db = tmp_path / "t.db"
    search(db, tasks=6)
    html = plan_section_html(*records(db))
    assert "No plan check" in html and "too few" in html


def test_cli_cheapest_pool_without_prices_counts_worker_hours(searched, capsys):
    db, _ = searched
    assert main(["plan", str(db), "--pool", "small=3,big=2", "--trials", "400", "--hours", "0.02",
                 "--samples", "1"]) == 0
    out = capsys.readouterr().out
    assert "cheapest pool for 400 trials:" in out and "worker-hours (no --cost given)" in out
    assert "pools tried:" in out and "hours for 400 trials" in out


def test_tasks_running_when_the_plan_is_made_hold_their_slots(searched):
    # All three slots of "small" are 0.5 s into "heavy" trials (8 s there): in the next
    # 5 s that class finishes nothing; the plan that ignored running tasks gave it trials.
    from dataclasses import replace
    from shadho.trial import Trial, TrialState

    db, _ = searched
    rows, ts, settings = records(db)
    heavy = next(t for t in ts if t.searchspace.endswith("heavy") or "heavy" in t.params)
    now = max(t.finish_time for t in ts)
    # Each is the second trial of a task whose first ended 0.5 s ago: known to be running.
    running = []
    for i in range(3):
        sub = now - 9.0 - i / 100
        running += [replace(heavy, id=10_000 + 2 * i, compute_class="small", submit_time=sub,
                            start_time=now - 8.5, finish_time=now - 0.5),
                    replace(heavy, id=10_001 + 2 * i, state=TrialState.RUNNING, loss=None, compute_class="small",
                            submit_time=sub, start_time=None, finish_time=None, worker=None)]
    before = plan_trials(rows, ts + running[::2], settings, pool="small=3,big=2", hours=5 / 3600,
                         samples=2).prediction
    after = plan_trials(rows, ts + running, settings, pool="small=3,big=2", hours=5 / 3600,
                        samples=2).prediction
    assert before.per_class["small"].mid > 0
    assert after.per_class["small"].mid == 0, after.per_class
    assert after.utilisation["small"].mid == pytest.approx(1.0)
    assert after.per_class["big"].mid == pytest.approx(before.per_class["big"].mid, rel=0.3)


@pytest.mark.parametrize("name", ["shadho.planner", "shadho.plan_model", "shadho.plan_inputs",
                                  "shadho.plan_sim", "shadho.plan_inflight", "shadho.plan_timing", "shadho.plan_search", "shadho.plan_cli",
                                  "shadho.plan_report"])
def test_docstring_examples(name):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_results_without_compute_classes_plan_as_default(tmp_path):
    db = tmp_path / "n.db"
    simulate(SPEC, objective, {None: 2}, lambda s, p, c: 3.0, max_tasks=60, backend=str(db), seed=0)
    p = shadho.plan(db, pool="default=4", hours=0.1, samples=1)
    assert p.observed_pool == {"default": 2}
    assert 2 * 0.1 * 3600 / 3.0 * 0.8 < p.prediction.trials.mid <= 4 * 0.1 * 3600 / 3.0


def test_a_pair_never_run_is_a_flagged_guess(searched):
    db, _ = searched
    rows, ts, settings = records(db)
    ts = [t for t in ts if not (t.searchspace == "light" and t.compute_class == "big")]
    p = plan_trials(rows, ts, settings, pool="small=3,big=2", hours=0.05, samples=1)
    pred = p.prediction
    note = [n for n in pred.notes if n.startswith("class big never ran light (")]
    assert note and "guessed" in note[0] and "run a few trials there" in note[0]
    assert pred.per_space["light"].assumed and pred.per_class["big"].assumed
    assert not pred.per_space["heavy"].assumed and not pred.per_class["small"].assumed


def _in_flight(ts, started_ago):
    """Three 'heavy' tasks (8 s on 'small') of one trial each on 'small', submitted 9 s before
    the file's last event; ``started_ago``: seconds since each started (None: queued)."""
    from dataclasses import replace
    from shadho.trial import TrialState

    heavy = next(t for t in ts if "heavy" in t.params)
    now = max(t.finish_time for t in ts)
    return [replace(heavy, id=20_000 + i, state=TrialState.RUNNING, loss=None, compute_class="small",
                    submit_time=now - 9.0 - i / 100, start_time=None, finish_time=None, worker=None,
                    task_start_time=None if started_ago is None else now - started_ago)
            for i in range(3)]


def test_queued_tasks_wait_behind_running_ones(searched):
    # The three 'small' slots run 8 s tasks started 7.5 s ago; three more such tasks wait
    # behind them. In the next 5 s 'small' finishes the three running ones (in the first
    # second), then the queued ones hold the slots for 8 s: exactly 3 trials. A plan that
    # left the queued tasks out gave the freed slots new, short tasks. Heuristics off: all
    # tasks have one priority, so the queue is first come, first served (with them on, a
    # class's queued tasks of a space it no longer favours are overtaken, as in Work Queue).
    from dataclasses import replace

    db, _ = searched
    rows, ts, settings = records(db)
    assert any(t.task_start_time is not None for t in ts)  # the file records task starts
    running = _in_flight(ts, 7.5)
    queued = [replace(t, id=t.id + 100, submit_time=t.submit_time + 1.0) for t in _in_flight(ts, None)]

    def small(extra):
        p = plan_trials(rows, ts + extra, settings, pool="small=3,big=2", hours=5 / 3600, samples=3,
                        heuristics="off").prediction
        return p.per_class["small"].mid * 5 / 3600, p

    both, p = small(running + queued)
    assert both == pytest.approx(3.0), p.per_class
    assert p.utilisation["small"].mid > 0.9
    alone, _ = small(running)
    assert alone > 3, alone  # nothing waits: the freed slots take new tasks
    only_queued, q = small(_in_flight(ts, None))  # queued with free slots: they start at once
    assert only_queued == 0 and q.utilisation["small"].mid > 0.9, q.per_class


def test_a_file_without_task_starts_leaves_unknown_tasks_out():
    # Written before task starts were recorded: a RUNNING trial with no finished trial in
    # its task may be running or queued; one whose task has a finished trial is running.
    from shadho.plan_inflight import find_in_flight
    from shadho.trial import Trial, TrialState as S

    ts = [Trial(1, "s", "a", S.COMPLETE, {}, submit_time=0.0, start_time=1.0, finish_time=3.0, compute_class="c"),
          Trial(2, "s", "a", S.RUNNING, {}, submit_time=0.0, compute_class="c"),
          Trial(3, "s", "a", S.RUNNING, {}, submit_time=2.0, compute_class="c")]
    assert [(f.elapsed, f.queued) for f in find_in_flight(ts, {"a": 0}, ["c"], "default")] == [(0.0, False)]
    ts[0] = Trial(1, "s", "a", S.COMPLETE, {}, submit_time=0.0, start_time=1.0, finish_time=3.0,
                  compute_class="c", task_start_time=0.5)
    assert [(f.elapsed, f.queued) for f in find_in_flight(ts, {"a": 0}, ["c"], "default")] == [(0.0, False),
                                                                                              (0.0, True)]


def test_queued_tasks_run_in_submission_order_before_new_ones(searched):
    # Six queued 8 s tasks for the three free 'small' slots: the oldest three take them at
    # once and end near 8.2 s; the next three, and every new task behind them, end after
    # 12 s. In a 12 s window 'small' finishes exactly the first three (heuristics off: one
    # priority for all, first come, first served).
    from dataclasses import replace

    db, _ = searched
    rows, ts, settings = records(db)
    six = _in_flight(ts, None)
    six += [replace(t, id=t.id + 100, submit_time=t.submit_time + 1.0) for t in six]
    p = plan_trials(rows, ts + six, settings, pool="small=3,big=2", hours=12 / 3600, samples=3,
                    heuristics="off").prediction
    assert p.per_class["small"].mid * 12 / 3600 == pytest.approx(3.0), p.per_class
    assert p.utilisation["small"].mid > 0.9


def _two_slot_timeline(last_task, cut=30.0, trial=1.0, before=8):
    """Two slots of one class running tasks of two trials, 0.4 s between tasks: slot 1 ones
    of ``trial`` s trials throughout, slot 0 ``before`` such tasks then ``last_task`` (two
    durations), which runs past ``cut``; the trials finished by ``cut`` and those in flight."""
    from shadho.trial import Trial, TrialState as S

    done, running, tid = [], [], 0
    for slot, tasks in ((0, [(trial, trial)] * before + [last_task]), (1, [(trial, trial)] * 20)):
        first = 0.4 + 1.2 * slot
        for durations in tasks:
            sub, task_start = first - 1.0, first - 0.3
            if sub > cut:
                break
            a = first
            for d in durations:
                tid += 1
                common = dict(submit_time=sub, compute_class="c", task_start_time=task_start if task_start <= cut else None)
                if a + d <= cut:
                    done.append(Trial(tid, "s", "a", S.COMPLETE, {}, loss=0.0, start_time=a, finish_time=a + d, **common))
                else:
                    running.append(Trial(tid, "s", "a", S.RUNNING, {}, **common))
                a += d
            first = a + 0.4
    return done, running


@pytest.mark.parametrize("last_task", [(1.0, 20.0), (20.0, 1.0)])
def test_dead_time_of_a_class_cut_with_tasks_in_flight(last_task):
    # Slot 0's last task runs past the cut, in its second trial (its first has finished)
    # or its first (its start recorded), while slot 1 goes on. Its slot is busy: taken
    # for a free one, it made every later wait on slot 1 look 2 s longer.
    from shadho.plan_timing import class_timing

    done, running = _two_slot_timeline(last_task)
    assert running
    assert class_timing(done, running)["dead"] == pytest.approx(0.4, abs=1e-6)
    assert class_timing(done)["dead"] > 1.0  # blind to the tasks in flight


@pytest.mark.parametrize("last_task", [(4.0, 30.0), (30.0, 4.0)])
def test_dead_time_of_a_class_with_few_tasks_cut_with_tasks_in_flight(last_task):
    # 4 s trials: too few waits in the latest half to average, so the dead time comes from
    # the class's idle time, where slot 0's task in flight is busy, not idle.
    from shadho.plan_timing import MIN_GAPS, _task_gaps, class_timing, in_flight_marks

    done, running = _two_slot_timeline(last_task, trial=4.0, before=2)
    t = class_timing(done, running)
    assert len(_task_gaps(done, t["first"] + 0.5 * t["span"], *in_flight_marks(running, done))) < MIN_GAPS
    assert t["dead"] == pytest.approx(0.4, abs=0.2)
    assert class_timing(done)["dead"] > 1.5  # blind to the tasks in flight


def test_simulated_scheduler_learns_each_finished_trial_once(searched, monkeypatch):
    """The simulated master resumes the history as a restarted master does: every finished
    trial reaches its scheduler once (a second warm start on top of the resume's replay
    counted each twice, and the F test and shrinkage then routed another way)."""
    from shadho.heuristics.scheduler import Scheduler

    db, _ = searched
    rows, ts, settings = records(db)
    finished = sum(t.state.finished for t in ts)
    seen = []
    orig = Scheduler.warm_start

    def spy(self, results):
        n = orig(self, results)
        seen.append(float(self.runtimes.tries.sum()))
        return n

    monkeypatch.setattr(Scheduler, "warm_start", spy)
    plan_trials(rows, ts, settings, pool="small=3,big=2", hours=0.01, samples=2, seed=0)
    assert seen and all(n == finished for n in seen), (seen, finished)


def test_simulated_classes_are_declared_as_the_search_declared_them(searched, monkeypatch):
    """The scheduler's prior on class speeds comes from declared cores/GPUs: the simulated
    classes carry the search's (recorded in its settings), not one core each."""
    from shadho.heuristics.scheduler import Scheduler

    db, _ = searched
    rows, ts, settings = records(db)
    assert settings["class_resources"] == {"small": {"cores": 1}, "big": {"cores": 4}}
    declared = []
    orig = Scheduler.__init__

    def spy(self, spaces_, classes, **kw):
        declared.append({c.name: c.declared_speed for c in classes})
        orig(self, spaces_, classes, **kw)

    monkeypatch.setattr(Scheduler, "__init__", spy)
    plan_trials(rows, ts, settings, pool="small=3,big=2", hours=0.01, samples=1, seed=0)
    assert declared and all(d == {"small": 1.0, "big": 4.0} for d in declared), declared
    old = {k: v for k, v in settings.items() if k != "class_resources"}  # a file from before
    declared.clear()
    plan_trials(rows, ts, old, pool="small=3,big=2", hours=0.01, samples=1, seed=0)
    assert declared and all(d == {"small": 1.0, "big": 1.0} for d in declared), declared


def test_plan_gives_completions_per_space_and_class(searched):
    db, _ = searched
    rows, ts, settings = records(db)
    pred = plan_trials(rows, ts, settings, pool="small=3,big=2", hours=0.05, samples=2, seed=0).prediction
    assert set(pred.per_pair) == {f"{s}@{c}" for s in ("heavy", "light") for c in ("small", "big")}
    for c in ("small", "big"):
        total = sum(pred.per_pair[f"{s}@{c}"].mid for s in ("heavy", "light"))
        assert total == pytest.approx(pred.per_class[c].mid), (c, pred.per_pair)  # medians of 2: means


def test_in_flight_tasks_teach_the_simulated_scheduler_when_they_end(searched, monkeypatch):
    """A queued or running task of the cut ends inside the plan: the simulated scheduler
    learns its trials (as the real one learns a returned task), with the runtime drawn for
    the pair and the loss of the nearest observed trial. Before, such work held slots and
    taught nothing, so a pair first run by a task queued at the cut stayed a guess."""
    from dataclasses import replace

    from shadho.heuristics.scheduler import Scheduler

    db, _ = searched
    rows, ts, settings = records(db)
    running = _in_flight(ts, 7.5)
    queued = [replace(t, id=t.id + 100, submit_time=t.submit_time + 1.0) for t in _in_flight(ts, None)]
    finished = sum(t.state.finished for t in ts)
    learned = []
    orig = Scheduler.warm_start

    def spy(self, results):
        results = list(results)
        learned.append((float(self.clock()), results))
        return orig(self, results)

    monkeypatch.setattr(Scheduler, "warm_start", spy)
    plan_trials(rows, ts + running + queued, settings, pool="small=3,big=2", hours=12 / 3600, samples=1,
                heuristics="off")
    resume, *later = learned
    assert len(resume[1]) == finished  # the resume's replay: the finished trials, once
    got = [r for _, rs in later for r in rs]
    assert len(got) == 6, later  # 3 running + 3 queued tasks of one trial each
    for _, cls, runtime, loss, ok in got:
        assert cls == "small" and runtime > 0 and (loss is not None) == ok
    assert all(t > 0 for t, _ in later)  # learned when the tasks end, not at the start


def test_in_flight_runtimes_replay_their_points():
    """A task in flight knows its trials' points: their runtimes are centred where a new
    simulated trial at that point would be (the pair's mean plus the nearest observed
    trial's residual), not at the pair's mean (real run: two early 10 s and 7 s rbf trials
    on the 1-core class lifted its mean to 4.3 s while the queued ones, near the later
    2.5 s configurations, ran in 2.5-2.9 s)."""
    import math

    import numpy as np

    from shadho.plan_inflight import InFlight, carry, queue_up

    mu, fail = np.zeros((1, 1)), np.zeros((1, 1))
    resid = lambda s, x: math.log(x[0])  # noqa: E731
    running = InFlight(0, "c", 0.5, trials=2, points=((3.0,), (5.0,)))
    queued = InFlight(0, "c", 0.0, trials=1, queued=True, points=((0.25,),))
    rng = np.random.default_rng(0)
    (c,) = carry([running], mu, {"c": 0}, 1e-6, fail, {"c": 1}, 1.0, rng, resid)
    assert c.runtimes == pytest.approx((3.0, 5.0), rel=1e-4) and c.ends == pytest.approx((2.5, 7.5), rel=1e-4)
    (w,) = queue_up([queued], ["a"], mu, {"c": 0}, 1e-6, fail, {"c": 1}, 1.0, rng, None, resid)
    assert w.runtimes == pytest.approx((0.25,), rel=1e-4)
    (plain,) = carry([running], mu, {"c": 0}, 1e-6, fail, {"c": 1}, 1.0, rng)  # no residuals: the mean
    assert plain.runtimes == pytest.approx((1.0, 1.0), rel=1e-4)
