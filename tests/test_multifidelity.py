"""Multi-fidelity searches end to end: budgets, ASHA promotions, checkpoints, rung records, resume."""
from __future__ import annotations

import doctest
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import shadho.managers.wq_checkpoints
import shadho.rung_summary
import shadho.rung_task
import shadho.store_rungs
import shadho.study_rungs
import shadho_checkpoint as ck
from shadho import Shadho, spaces
from shadho.asha import RungResult, next_job
from shadho.errors import SpecError
from shadho.fidelity import Fidelity
from shadho.rung_task import Budget, run_rung
from shadho.store import ResultsStore
from shadho.trial import TrialState

FID = {"name": "epochs", "min": 1, "max": 9, "eta": 3}
SPEC = {"x": spaces.uniform(0, 1)}


def remembering(p, epochs, checkpoint=None):
    """Loss known at every budget; the checkpoint remembers the epochs reached."""
    path = os.path.join(checkpoint, "state.json")
    prev = json.load(open(path))["epochs"] if os.path.exists(path) else 0
    with open(path, "w") as fh:
        json.dump({"epochs": epochs}, fh)
    return {"loss": (p["x"] - 0.3) ** 2 + 1.0 / epochs, "prev": prev}


#: A shell-command objective: budget and checkpoint folder from hyperparameters.json.
TRAIN_SCRIPT = textwrap.dedent("""
    import json, os
    hp = json.load(open('hyperparameters.json'))
    ck = os.path.join(hp['checkpoint'], 'n')
    prev = int(open(ck).read()) if os.path.exists(ck) else 0
    open(ck, 'w').write(str(hp['epochs']))
    json.dump({'loss': (hp['x'] - 0.3) ** 2 + 1.0 / hp['epochs'], 'prev': prev}, open('performance.json', 'w'))
""")


def _rows(db, exp=1):
    with ResultsStore(db, readonly=True) as r:
        trials = {t.id: t for t in r.trials(exp)}
        return [(rec, trials[rec.trial_id]) for rec in r.rungs(exp)]


@pytest.mark.parametrize("mod", [shadho.rung_task, shadho.store_rungs, shadho.study_rungs, shadho.rung_summary,
                                 shadho.managers.wq_checkpoints])
def test_doctests(mod):
    assert doctest.testmod(mod, optionflags=doctest.ELLIPSIS).failed == 0


def test_promotions_follow_the_rule_and_continue_from_checkpoints(db):
    f = Fidelity(**FID)
    opt = Shadho("mf", remembering, SPEC, backend=db, max_tasks=30, seed=3, local_workers=1, quiet=True,
                 fidelity=FID)
    opt.run()
    rows = _rows(db)
    assert len(rows) == 30 and all(t.state == TrialState.COMPLETE for _, t in rows)
    # One worker: each task was chosen after every earlier result was in, so replaying the
    # rule over the records in order must give exactly the jobs that ran.
    results: list[RungResult] = []
    for rec, t in rows:
        job = next_job(results, [], f)
        assert (job.rung, job.config) == (rec.rung, None if rec.config_id == rec.trial_id else rec.config_id)
        assert rec.budget == f.budget(rec.rung)
        assert t.loss == pytest.approx((t.params["x"] - 0.3) ** 2 + 1.0 / rec.budget)
        # a promotion continues from its configuration's last rung
        assert t.results["prev"] == (0 if rec.rung == 0 else f.budget(rec.rung - 1))
        results.append(RungResult(rec.config_id, rec.rung, t.loss, rec.bracket))
    assert any(rec.rung == 2 for rec, _ in rows)  # someone reached the top rung
    assert opt.budget_spent == sum(rec.budget for rec, _ in rows)
    summary = shadho.rung_summary.rung_summary(opt.store, opt.exp_id)  # what status shows
    assert [r["configs"] for r in summary["rungs"]] == [sum(rec.rung == k for rec, _ in rows) for k in range(3)]
    assert summary["budget_spent"] == opt.budget_spent
    doc = opt.store.export_json(opt.exp_id)  # export sees the rungs
    assert [r["rung"] for r in doc["rungs"]] == [rec.rung for rec, _ in rows]
    assert not os.path.exists(db + ".checkpoints")  # the finished search removed its checkpoints


def test_a_missing_checkpoint_restarts_from_scratch(db):
    kw = dict(backend=db, seed=3, local_workers=1, quiet=True, fidelity=FID)
    Shadho("mf", remembering, SPEC, max_tasks=3, **kw).run()  # rung 0 of three; done: checkpoints removed
    Shadho("mf", remembering, SPEC, max_tasks=4, **kw).run()  # resumed: the best is promoted
    rec, t = _rows(db)[-1]
    assert rec.rung == 1 and t.state == TrialState.COMPLETE and t.results["prev"] == 0


def test_resume_with_another_fidelity_is_refused(db):
    Shadho("mf", remembering, SPEC, backend=db, max_tasks=2, local_workers=1, quiet=True, fidelity=FID).run()
    with pytest.raises(ValueError, match="was searched with fidelity epochs"):
        Shadho("mf", remembering, SPEC, backend=db, max_tasks=3, quiet=True, fidelity={**FID, "max": 27}).open()
    with pytest.raises(ValueError, match="now none"):
        Shadho("mf", lambda p: 0.0, SPEC, backend=db, max_tasks=3, quiet=True).open()
    Shadho("mf", remembering, SPEC, backend=db, max_tasks=3, local_workers=1, quiet=True,
           fidelity={**FID, "brackets": 2}).run()  # the same budgets: fine
    assert len(_rows(db)) == 3


def test_a_damaged_archive_gives_an_empty_folder_and_the_run_goes_on(tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all")
    seen = {}

    def run(fields):
        seen.update(fields, files=os.listdir(fields["checkpoint"]))
        open(os.path.join(fields["checkpoint"], "w"), "w").write("new")
        return {"status": "success", "loss": 1.0}
    out = str(tmp_path / "out.tar")
    res = run_rung(Budget("epochs", 3, str(bad), out), str(tmp_path / "ck"), run)
    assert res["status"] == "success" and seen["files"] == [] and seen["epochs"] == 3
    assert ck.check(out) == "" and not os.path.exists(tmp_path / "ck")
    # a failed run leaves no archive behind
    res = run_rung(Budget("epochs", 3, out, str(tmp_path / "o2.tar")), str(tmp_path / "ck"),
                   lambda f: {"status": "error", "error": "boom"})
    assert res["status"] == "error" and not os.path.exists(tmp_path / "o2.tar")


def test_a_damaged_incoming_archive_is_refused_and_the_promotion_starts_afresh(db, monkeypatch):
    import shadho.study_asha as sa

    real = sa.take_results

    def damage_then_take(study, updates):
        for u in updates:  # as if a worker was killed while writing it
            p = study.checkpoints.incoming(u.trial_id)
            if os.path.exists(p):
                with open(p, "r+b") as fh:
                    fh.truncate(100)
        real(study, updates)
    monkeypatch.setattr(sa, "take_results", damage_then_take)
    opt = Shadho("mf", remembering, SPEC, backend=db, max_tasks=13, seed=3, local_workers=1, quiet=True,
                 fidelity=FID)
    opt.run()
    rows = _rows(db)
    assert all(t.state == TrialState.COMPLETE for _, t in rows) and any(r.rung > 0 for r, _ in rows)
    assert all(t.results["prev"] == 0 for _, t in rows)


def test_shell_command_gets_budget_and_checkpoint_in_hyperparameters_json(db, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    opt = Shadho("sh", f"{sys.executable} {script}", SPEC, backend=db, max_tasks=7, seed=2, manager="local",
                 local_workers=1, quiet=True, fidelity=FID)
    opt.run()
    rows = _rows(db)
    assert len(rows) == 7 and all(t.state == TrialState.COMPLETE for _, t in rows)
    f = Fidelity(**FID)
    for rec, t in rows:
        assert t.results["prev"] == (0 if rec.rung == 0 else f.budget(rec.rung - 1))
    assert {rec.rung for rec, _ in rows} >= {0, 1}


def test_settings_and_objective_checks(db):
    with pytest.raises(TypeError, match="takes no 'epochs' argument"):
        Shadho("e", lambda p: 0.0, SPEC, backend=db, fidelity=FID)
    with pytest.raises(SpecError, match="0 < min < max"):
        Shadho("e", remembering, SPEC, backend=db, fidelity={"name": "epochs", "min": 9, "max": 1})
    with pytest.raises(ValueError, match="needs a .db"):
        Shadho("e", remembering, SPEC, backend=db[:-3] + ".json", fidelity=FID)
    opt = Shadho("e", lambda p, epochs: p["x"], SPEC, backend=db, fidelity=("epochs", 1, 27, 3), quiet=True)
    assert opt.settings.fidelity.budgets == (1, 3, 9, 27) and opt.options["fidelity"] == opt.settings.fidelity
    with pytest.raises(ValueError, match="ask.. of a search with a fidelity is not supported"):
        opt.ask()


@pytest.mark.parametrize("method", ["tpe", "gp"])
def test_model_samplers_fit_on_the_highest_rung_with_enough_results(db, method):
    opt = Shadho("mf", remembering, SPEC, backend=db, max_tasks=40, seed=1, local_workers=2, quiet=True,
                 method=method, fidelity=FID, sampler_options={"n_startup_trials": 4})
    opt.run()
    book = opt.study.rungs
    sid = opt.spaces[0].id
    assert book.history(sid, 1).n >= 4
    assert book.sampling_history(sid, 4) is book.history(sid, max(k for k in range(3) if book.history(sid, k).n >= 4))
    assert book.sampling_history(sid, 1000) is book.history(sid, 0)  # none has enough: the fullest
    assert opt.best["loss"] < 0.2


def _wait_for_a_promotion_done(db: str, limit: float = 90.0) -> None:
    """Poll the store (read-only) until a promoted rung run is COMPLETE: no fixed sleeps."""
    from shadho.errors import StoreError
    t0 = time.time()
    while time.time() - t0 < limit:
        try:
            if any(rec.rung > 0 and t.state == TrialState.COMPLETE for rec, t in _rows(db)):
                return
        except (StoreError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"no promoted rung run completed in {limit} s")


def test_master_killed_mid_bracket_loses_and_repeats_no_rung(db, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, sys, time
        from shadho import Shadho, spaces
        def slow(p, epochs, checkpoint):
            time.sleep(float(sys.argv[1]))
            path = os.path.join(checkpoint, 'state.json')
            prev = json.load(open(path))['epochs'] if os.path.exists(path) else 0
            json.dump({{'epochs': epochs}}, open(path, 'w'))
            return {{'loss': (p['x'] - 0.3) ** 2 + 1.0 / epochs, 'prev': prev}}
        Shadho('e', slow, {{'x': spaces.uniform(0, 1)}}, backend={db!r}, max_tasks=16, quiet=True,
               local_workers=2, seed=5, fidelity={FID!r}).run()
    """))
    proc = subprocess.Popen([sys.executable, str(script), "1.5"])
    _wait_for_a_promotion_done(db)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {rec.trial_id: (rec, t) for rec, t in _rows(db)}
    done_before = {i: v for i, v in before.items() if v[1].state == TrialState.COMPLETE}
    assert any(v[1].state == TrialState.RUNNING for v in before.values())
    assert any(rec.rung > 0 for rec, _ in done_before.values())  # killed mid-bracket
    subprocess.run([sys.executable, str(script), "0.0"], check=True, timeout=120)
    after = {rec.trial_id: (rec, t) for rec, t in _rows(db)}
    assert len(after) == 16 and all(t.state == TrialState.COMPLETE for _, t in after.values())
    for i, (rec, t) in done_before.items():
        assert after[i] == (rec, t)  # finished rungs unchanged
    for i, (rec, t) in before.items():  # in-flight rung runs re-ran as they were
        assert after[i][0] == rec and after[i][1].params == t.params
    pairs = [(rec.config_id, rec.rung) for rec, _ in after.values()]
    assert len(pairs) == len(set(pairs))  # no rung of a configuration ran twice
    f = Fidelity(**FID)
    for rec, t in after.values():  # checkpoints kept across the kill: promotions continued
        assert t.results["prev"] == (0 if rec.rung == 0 else f.budget(rec.rung - 1))


def test_simulator_passes_budgets_to_objective_and_runtime_model(db):
    from shadho.sim import simulate

    def runtime(space_id, params, key, budget, previous):
        return 5.0 + (budget - previous) * 1.0  # start-up overhead + the epochs trained in this run

    res = simulate(SPEC, lambda p, epochs: (p["x"] - 0.3) ** 2 + 1.0 / epochs, {None: 4}, runtime,
                   max_tasks=40, noise=0.0, fidelity={**FID, "brackets": 2}, backend=db)
    f = Fidelity(**FID)
    assert len(res.trials) == 40 and all(t.state == TrialState.COMPLETE for t in res.trials)
    rows = _rows(db)
    assert {rec.bracket for rec, _ in rows} == {0, 1} and {rec.rung for rec, _ in rows} == {0, 1, 2}
    for rec, t in rows:
        previous = f.budget(rec.rung - 1) if rec.rung > rec.bracket else 0
        assert t.runtime == pytest.approx(5.0 + rec.budget - previous)
        assert t.loss == pytest.approx((t.params["x"] - 0.3) ** 2 + 1.0 / rec.budget)


def test_several_hyperparameters_per_task_and_brackets(db):
    opt = Shadho("mf", remembering, SPEC, backend=db, max_tasks=24, seed=4, local_workers=2, quiet=True,
                 fidelity={**FID, "brackets": 2}, hyperparameters_per_task=3)
    opt.run()
    rows = _rows(db)
    assert len(rows) == 24 and all(t.state == TrialState.COMPLETE for _, t in rows)
    assert {rec.bracket for rec, _ in rows} == {0, 1}
    assert all(rec.rung >= rec.bracket for rec, _ in rows)
    pairs = [(rec.config_id, rec.rung) for rec, _ in rows]
    assert len(pairs) == len(set(pairs))


# ---------------------------------------------------------------- Work Queue, real workers

def _check_continued(rows):
    f = Fidelity(**FID)
    assert rows and all(t.state == TrialState.COMPLETE for _, t in rows), [t.error for _, t in rows]
    assert any(rec.rung > 0 for rec, _ in rows)
    for rec, t in rows:  # the archive went out with the promotion and came back with each rung
        assert t.results["prev"] == (0 if rec.rung == 0 else f.budget(rec.rung - 1))


@pytest.mark.workqueue
def test_work_queue_ships_checkpoints_to_callable_promotions(db):
    opt = Shadho("wq", remembering, SPEC, backend=db, max_tasks=7, seed=2, manager="workqueue",
                 local_workers=1, quiet=True, timeout=180, fidelity=FID)
    opt.run()
    _check_continued(_rows(db))
    assert not os.path.exists(db + ".checkpoints")


@pytest.mark.workqueue
def test_work_queue_shell_command_gets_budget_and_checkpoint_folder(db, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    opt = Shadho("wqsh", f"{sys.executable} train.py", SPEC, backend=db, max_tasks=7, seed=2,
                 manager="workqueue", local_workers=1, quiet=True, timeout=180, fidelity=FID)
    opt.add_input_file(str(script))
    opt.run()
    _check_continued(_rows(db))


#: A shell command whose checkpoint (2 MB) is over a 1 MB limit.
BIG_SCRIPT = textwrap.dedent("""
    import json, os
    hp = json.load(open('hyperparameters.json'))
    open(os.path.join(hp['checkpoint'], 'w'), 'wb').write(b'x' * (2 * 2**20))
    json.dump({'loss': hp['x'] + 1.0 / hp['epochs']}, open('performance.json', 'w'))
""")


@pytest.mark.workqueue
def test_work_queue_shell_command_checkpoint_refused_on_the_worker_is_reported(db, tmp_path, caplog):
    script = tmp_path / "big.py"
    script.write_text(BIG_SCRIPT)
    opt = Shadho("wqbig", f"{sys.executable} big.py", SPEC, backend=db, max_tasks=4, seed=2, manager="workqueue",
                 local_workers=1, quiet=True, timeout=180, fidelity=FID, checkpoint_limit_mb=1)
    opt.add_input_file(str(script))
    with caplog.at_level("WARNING", logger="shadho"):
        opt.run()
    rows = _rows(db)
    assert rows and all(t.state == TrialState.COMPLETE for _, t in rows), [t.error for _, t in rows]
    assert all("over the limit of 1048576 bytes" in t.results[ck.NOT_KEPT] for _, t in rows)
    assert any("checkpoint(s) refused or evicted" in r.getMessage() for r in caplog.records)


def test_status_shows_rungs_and_budget_spent(db):
    from shadho.status import collect, parse_plain, render_json, render_plain

    opt = Shadho("mf", remembering, SPEC, backend=db, max_tasks=13, seed=3, local_workers=1, quiet=True,
                 fidelity=FID)
    opt.run()
    opt.close()
    with ResultsStore(db, readonly=True) as r:
        snap = collect(r, 1, "mf")
    doc = parse_plain(render_plain(snap))
    assert doc["budget_spent"] == sum(rec.budget for rec, _ in _rows(db))
    assert [row["rung"] for row in doc["rungs"]] == [0, 1, 2][:len(doc["rungs"])]
    assert sum(row["configs"] for row in doc["rungs"]) == 13 and doc["rungs"][0]["promoted"] == 0
    assert json.loads(render_json(snap))["rungs"] == snap.rungs
    # a search without a fidelity shows no rungs
    plain = Shadho("plain", lambda p: p["x"], SPEC, backend=db, max_tasks=2, local_workers=1, quiet=True)
    plain.run()
    plain.close()
    with ResultsStore(db, readonly=True) as r:
        text = render_plain(collect(r, 2, "plain"))
    assert "[rungs]" not in text and "budget_spent" not in text


def big_checkpoint(p, epochs, checkpoint):
    path = os.path.join(checkpoint, "w")
    prev = os.path.getsize(path) if os.path.exists(path) else 0
    with open(path, "wb") as fh:
        fh.write(b"x" * (2 * 2**20))  # 2 MB: over a 1 MB limit
    return {"loss": p["x"] + 1.0 / epochs, "prev": prev}


def test_a_checkpoint_over_the_limit_is_not_kept_and_the_search_says_so(db, caplog):
    opt = Shadho("big", big_checkpoint, SPEC, backend=db, max_tasks=5, seed=3, local_workers=1, quiet=True,
                 fidelity=FID, checkpoint_limit_mb=1)
    with caplog.at_level("WARNING", logger="shadho"):
        opt.run()
    rows = _rows(db)
    assert all(t.state == TrialState.COMPLETE for _, t in rows) and any(rec.rung == 1 for rec, _ in rows)
    assert all(t.results["prev"] == 0 for _, t in rows)  # nothing was kept: every rung from scratch
    assert "over the limit of 1048576 bytes" in rows[0][1].results[ck.NOT_KEPT]
    assert any("checkpoint(s) refused or evicted" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="checkpoint_limit_mb must be a positive number of MB"):
        Shadho("e", remembering, SPEC, backend=db, fidelity=FID, checkpoint_limit_mb=0)
