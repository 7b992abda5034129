"""The Shadho driver on the local process manager: budgets, failures, resume, ask/tell."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from misbehaving import CAUSES, KINDS, make_misbehaving
from shadho import Shadho, spaces
from shadho.errors import SpecError
from shadho.trial import TrialState

SPEC = {
    "exclusive": True,
    "quad": {"x": spaces.uniform(-5, 5), "y": spaces.log10_uniform(-2, 2)},
    "abs": {"x": spaces.uniform(-5, 5), "k": spaces.randint(1, 4)},
}


def objective(p):
    if "quad" in p:
        return (p["quad"]["x"] - 1) ** 2 + p["quad"]["y"]
    return {"loss": abs(p["abs"]["x"]) * p["abs"]["k"], "note": "abs"}


def test_global_budget_over_spaces_and_best(db):
    opt = Shadho("e", objective, SPEC, backend=db, max_tasks=17, quiet=True, local_workers=2, seed=0)
    trials = opt.run()
    assert len(trials) == 17 and all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.searchspace for t in trials} == {"quad", "abs"}
    best = opt.best
    assert set(best) >= {"loss", "params", "results", "searchspace", "id", "compute_class", "worker"}
    assert best["loss"] == min(t.loss for t in trials)
    t = trials[0]
    assert t.submit_time and t.start_time and t.finish_time and t.worker == "localhost"
    assert t.finish_time >= t.start_time


def test_every_kind_of_failing_objective_gives_a_failed_trial_with_cause(db, tmp_path):
    opt = Shadho("e", make_misbehaving(str(tmp_path)), {"x": spaces.uniform(0, 1)}, backend=db,
                 max_tasks=len(KINDS), quiet=True, local_workers=2, task_timeout=2, memory_mb=1500)
    trials = opt.run()
    assert len(trials) == len(KINDS)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2  # "print" and "ok"
    errors = [t.error for t in trials if t.state == TrialState.FAILED]
    for kind, cause in CAUSES.items():
        assert any(cause in e for e in errors), (kind, errors)


def test_resume_keeps_finished_and_honours_the_total_budget(db):
    opt = Shadho("e", objective, SPEC, backend=db, max_tasks=10, quiet=True, local_workers=2, seed=3)
    first = opt.run()
    opt.close()
    opt2 = Shadho("e", objective, SPEC, backend=db, max_tasks=20, quiet=True, local_workers=2, seed=3,
                  method="tpe")
    second = opt2.run()
    assert len(second) == 20
    assert second[:10] == first
    again = Shadho("e", objective, SPEC, backend=db, max_tasks=20, quiet=True).run()
    assert len(again) == 20


def _wait_for_complete(db: str, n: int, limit: float = 90.0, running: int = 0) -> None:
    """Poll the store (read-only) until ``n`` trials are COMPLETE (and ``running`` RUNNING):
    no fixed sleeps on a busy machine."""
    from shadho.errors import StoreError
    from shadho.store import ResultsStore
    t0 = time.time()
    while time.time() - t0 < limit:
        try:
            with ResultsStore(db, readonly=True) as r:
                c = r.counts(1) if r.experiments() else None
                if c and c["COMPLETE"] >= n and c["RUNNING"] >= running:
                    return
        except StoreError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} trials completed in {limit} s")


def test_master_killed_mid_run_resumes_in_flight_trials(db, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from shadho import Shadho, spaces
        def slow(p):
            time.sleep(float(sys.argv[1]))
            return p['x'] ** 2
        opt = Shadho('e', slow, {{'x': spaces.uniform(-1, 1)}}, backend={db!r}, max_tasks=8,
                     quiet=True, local_workers=2, seed=5)
        opt.run()
    """))
    proc = subprocess.Popen([sys.executable, str(script), "2.0"])  # slow: a loaded machine still kills it mid-run
    _wait_for_complete(db, 2, running=1)  # both workers finish together: wait for the next submission
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from shadho.store import ResultsStore
    with ResultsStore(db, readonly=True) as r:
        before = {t.id: t for t in r.trials(1)}
    done_before = {i: t for i, t in before.items() if t.state == TrialState.COMPLETE}
    assert done_before and any(t.state == TrialState.RUNNING for t in before.values())
    subprocess.run([sys.executable, str(script), "0.0"], check=True, timeout=60)
    with ResultsStore(db, readonly=True) as r:
        after = {t.id: t for t in r.trials(1)}
    assert len(after) == 8 and all(t.state == TrialState.COMPLETE for t in after.values())
    for i, t in done_before.items():
        assert after[i] == t  # finished trials unchanged
    for i, t in before.items():  # in-flight trials re-ran with their original params
        assert after[i].params == t.params


def test_sigterm_stops_cleanly_and_store_is_consistent(db, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from shadho import Shadho, spaces
        def slow(p):
            time.sleep(0.5); return p['x']
        Shadho('e', slow, {{'x': spaces.uniform(0, 1)}}, backend={db!r}, max_tasks=100,
               quiet=True, local_workers=2).run()
        print('clean exit')
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    _wait_for_complete(db, 2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)  # loaded machines stop slowly, not wrongly
    assert "clean exit" in out
    from shadho.store import ResultsStore
    with ResultsStore(db) as s:
        counts = s.counts(1)
        assert counts["RUNNING"] == 0 and counts["COMPLETE"] >= 2
        s.open_experiment("e")  # lock released


def test_same_seed_same_sequence(tmp_path):
    runs = []
    for i in range(2):
        opt = Shadho("e", objective, SPEC, backend=str(tmp_path / f"r{i}.db"), max_tasks=15, quiet=True,
                     local_workers=1, seed=42, method="tpe")
        runs.append([t.params for t in opt.run()])
    assert runs[0] == runs[1]


def test_ask_tell(db):
    opt = Shadho("e", objective, SPEC, backend=db, quiet=True, seed=0)
    for _ in range(5):
        t = opt.ask()
        assert t.state == TrialState.RUNNING
        opt.tell(t, objective(t.params))
    bad = opt.ask()
    rec = opt.tell(bad, float("nan"))
    assert rec.state == TrialState.FAILED and "non-finite" in rec.error
    with pytest.raises(ValueError, match="already FAILED"):
        opt.tell(bad, 1.0)
    assert len(opt.trials) == 6 and opt.best["loss"] == min(t.loss for t in opt.trials if t.loss is not None)


def test_max_resubmissions_reruns_failed_trials_with_same_params(db, tmp_path):
    marker = tmp_path / "seen"
    marker.mkdir()

    def flaky(p):
        f = marker / f"{p['x']:.12f}"
        if not f.exists():
            f.write_text("1")
            raise RuntimeError("first attempt fails")
        return p["x"]

    opt = Shadho("e", flaky, {"x": spaces.uniform(0, 1)}, backend=db, max_tasks=4, quiet=True,
                 local_workers=2, max_resubmissions=1)
    trials = opt.run()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE and t.attempts == 2 for t in trials)


def test_timeout_stops_the_search(db):
    def slow(p):
        time.sleep(0.3)
        return 0.0
    t0 = time.time()
    opt = Shadho("e", slow, {"x": spaces.uniform(0, 1)}, backend=db, timeout=1.5, quiet=True, local_workers=2)
    trials = opt.run()
    assert time.time() - t0 < 6
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 2


def test_json_backend(tmp_path):
    path = tmp_path / "r.json"
    Shadho("e", objective, SPEC, backend=str(path), max_tasks=5, quiet=True, local_workers=2).run()
    doc = json.loads(path.read_text())
    assert len(doc["trials"]) == 5 and doc["exp_key"] == "e"
    opt = Shadho("e", objective, SPEC, backend=str(path), max_tasks=8, quiet=True, local_workers=2)
    assert len(opt.run()) == 8


def test_shell_command_objective_locally(db, tmp_path):
    script = tmp_path / "obj.py"
    script.write_text(textwrap.dedent("""
        import shadho_worker
        def fn(p):
            return {'loss': p['x'] ** 2, 'tag': 'cmd'}
        shadho_worker.run(fn)
    """))
    opt = Shadho("e", f"{sys.executable} obj.py", {"x": spaces.uniform(-1, 1)}, backend=db, max_tasks=4,
                 quiet=True, manager="local", local_workers=2)
    opt.add_input_file(str(script))
    trials = opt.run()
    assert all(t.state == TrialState.COMPLETE and t.results == {"tag": "cmd"} for t in trials)
    assert trials[0].loss == pytest.approx(trials[0].params["x"] ** 2)


def test_malformed_result_file_from_a_command(db, tmp_path):
    opt = Shadho("e", "echo '{not json' > performance.json", {"x": spaces.uniform(-1, 1)}, backend=db,
                 max_tasks=2, quiet=True, manager="local")
    trials = opt.run()
    assert all(t.state == TrialState.FAILED and "malformed result file" in t.error for t in trials)


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(method="nope"), ValueError, "unknown method 'nope'; valid: bayes, gp, random, tpe"),
    (dict(manager="slurm"), ValueError, "unknown manager 'slurm'; valid: local, workqueue"),
    (dict(max_tasks=-1), ValueError, "max_tasks"),
    (dict(backend="r.txt"), ValueError, "backend must be"),
    (dict(bogus=1), TypeError, "unknown argument(s) bogus; valid:"),
    (dict(hyperparameters_per_task=0), ValueError, "hyperparameters_per_task"),
    (dict(task_timeout=-1), ValueError, "task_timeout"),
    (dict(seed="x"), TypeError, "seed"),
    (dict(max_queued_tasks=0), ValueError, "max_queued_tasks"),
    (dict(timeout="1h"), TypeError, "timeout"),
])
def test_bad_arguments(kwargs, exc, msg, db):
    kwargs.setdefault("backend", db)
    with pytest.raises(exc) as info:
        Shadho("e", objective, SPEC, **kwargs)
    assert msg in str(info.value)


def test_bad_spec_and_cmd_and_compute_class():
    with pytest.raises(SpecError, match="x: uniform needs lo < hi"):
        Shadho("e", objective, {"x": spaces.uniform(2, 1)})
    with pytest.raises(TypeError, match="cmd must be"):
        Shadho("e", 42, SPEC)
    opt = Shadho("e", objective, SPEC)
    with pytest.raises(ValueError, match="cores must be a positive number"):
        opt.add_compute_class("c", "cores", -2)
    with pytest.raises(TypeError, match="unknown argument"):
        opt.add_compute_class("c", "cores", 2, ram=3)
    with pytest.raises(ValueError, match="does not exist"):
        opt.add_input_file("/no/such/file")
    opt.add_compute_class("gpu", "gpu_name", "H100", gpus=1)
    assert opt.compute_classes[0].feature == "gpu_name=H100"
    with pytest.raises(ValueError, match="already exists"):
        opt.add_compute_class("gpu", "cores", 1)


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(local_workers={}), TypeError, "local_workers must be"),
    (dict(local_workers=-1), ValueError, "local_workers must be"),
    (dict(port=None), TypeError, "port must be"),
    (dict(port=[10, 5]), ValueError, "port must be"),
    (dict(port=70000), ValueError, "port must be"),
    (dict(await_pending={}), TypeError, "await_pending must be True or False"),
    (dict(quiet="no"), TypeError, "quiet must be True or False"),
])
def test_arguments_checked_at_construction(kwargs, exc, msg, db):
    with pytest.raises(exc, match=msg):
        Shadho("e", objective, SPEC, backend=db, **kwargs)


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(name=3), TypeError, "name must be a string"),
    (dict(catalog=[]), TypeError, "catalog must be a string"),
    (dict(password="/no/such/pw"), ValueError, "password file '/no/such/pw' does not exist"),
    (dict(worker_python={}), TypeError, "worker_python must be a string"),
    (dict(cost_aware=None), TypeError, "cost_aware must be True or False"),
    (dict(reassign_every=-1), ValueError, "reassign_every must be an int >= 1"),
    (dict(reassign_every=""), TypeError, "reassign_every must be an int >= 1"),
    (dict(memory_mb=[]), TypeError, "memory_mb must be a positive number"),
    (dict(worker_options=b"x"), TypeError, "worker_options must be a dict"),
    (dict(sampler_options=[]), TypeError, "sampler_options must be a dict"),
])
def test_options_checked_at_construction(kwargs, exc, msg, db):
    with pytest.raises(exc, match=msg):
        Shadho("e", objective, SPEC, backend=db, **kwargs)


def test_a_local_run_records_when_each_task_started(db):
    # The local manager starts a task's process when it is submitted: no queue.
    opt = Shadho("e", objective, SPEC, backend=db, max_tasks=6, quiet=True, local_workers=2, seed=0,
                 hyperparameters_per_task=2)
    ts = opt.run()
    assert len(ts) == 6 and all(t.task_start_time is not None for t in ts)
    assert all(t.submit_time <= t.task_start_time <= t.start_time for t in ts), [t.to_dict() for t in ts]
    tasks = {}
    for t in ts:  # the two trials of a task share its start; the second starts after the first ends
        tasks.setdefault(t.task_start_time, []).append(t)
    assert sorted(len(v) for v in tasks.values()) == [2, 2, 2]
