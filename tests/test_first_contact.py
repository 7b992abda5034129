"""First contact (issue 11): the original SHADHO's API, and a run that never fails silently.

Local runs only (the local manager and subprocess drivers); the Work Queue side is in
test_first_contact_wq.py, SLURM in test_first_contact_slurm.py.
"""
from __future__ import annotations

import doctest
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from shadho import Shadho, spaces
from shadho.compute import ComputeClass
from shadho.config import ConfigKeyError, configure
from shadho.errors import BackendUnavailableError
from shadho.notices import ClassNeeds, Connection, ConnectNotice, Pool, UnmatchedNotice
from shadho.progress import Progress
from shadho.store import ResultsStore
from shadho.trial import TrialState

SPACE = {"x": spaces.uniform(0, 1)}


def _quad(p):
    return (p["x"] - 0.5) ** 2


@pytest.mark.parametrize("module", ["shadho.config", "shadho.notices", "shadho.summary", "shadho.retry",
                                    "shadho.tracebacks", "shadho.managers.wq_setup", "shadho.original_api",
                                    "shadho.compound"])
def test_docstring_examples(module: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the examples use opt.config on purpose
        assert doctest.testmod(mod, optionflags=doctest.ELLIPSIS).failed == 0


# ---------------------------------------------------------------- opt.config and the original keywords


def test_opt_config_attribute_and_item_forms_map_onto_options(db: str, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret")
    opt = Shadho("e", _quad, SPACE, backend=db)
    assert opt.config.manager == "local" and opt.config["global"]["manager"] == "local"
    with pytest.warns(DeprecationWarning, match=r"opt.config.manager is deprecated: use Shadho\(..., manager=...\)"):
        opt.config.manager = "workqueue"
    with pytest.warns(DeprecationWarning, match="use Shadho"):
        opt.config.workqueue.name = "shadho_sin_ex"
        opt.config.workqueue.port = "9123"  # the original kept ports as strings
        opt.config["workqueue"]["password"] = str(pw)
    assert opt.config.shadho.manager == "workqueue" and opt.config.config["workqueue"]["name"] == "shadho_sin_ex"
    configure(opt)
    assert opt.manager_choice == "workqueue"
    assert (opt.options["name"], opt.options["port"], opt.options["password"]) == ("shadho_sin_ex", 9123, str(pw))
    with pytest.warns(DeprecationWarning):
        opt.config.workqueue.password = "False"  # the original's "no password" default: ignored
    configure(opt)
    assert opt.options["password"] == str(pw)


def test_configure_keeps_constructor_options(db: str) -> None:
    opt = Shadho("e", _quad, SPACE, backend=db, port=[9200, 9300], name="n")
    configure(opt)
    assert opt.options["port"] == [9200, 9300] and opt.options["name"] == "n"
    with pytest.warns(DeprecationWarning):
        opt.config.workqueue.port = "x"
    with pytest.raises(ValueError, match="port must be a port number"):
        configure(opt)


def test_opt_config_unknown_key_names_the_valid_ones(db: str) -> None:
    opt = Shadho("e", _quad, SPACE, backend=db)
    with pytest.raises(ConfigKeyError, match=r"no key 'nmae' \(did you mean 'name'\?\); valid: .*name, password"):
        opt.config.workqueue.nmae = "x"
    with pytest.raises(AttributeError, match="valid: .*manager"):
        opt.config.mangaer = "local"
    with pytest.raises(KeyError, match="no section 'wq'"):
        opt.config["wq"]
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="must be 'local' or 'workqueue'"):
        opt.config.manager = "slurm"
        configure(opt)


def test_opt_config_keys_without_effect_warn(db: str) -> None:
    opt = Shadho("e", _quad, SPACE, backend=db)
    with pytest.warns(DeprecationWarning, match="workqueue.logfile has no effect"):
        opt.config.workqueue.logfile = "wq.log"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.config.result_file = "performance.json"  # what we do anyway: no warning


def test_original_keyword_arguments_are_accepted_and_warned(db: str, tmp_path: Path) -> None:
    f = tmp_path / "data.txt"
    f.write_text("x")
    with pytest.warns(DeprecationWarning) as rec:
        opt = Shadho("e", _quad, SPACE, backend=db, max_evals=1, save_frequency=10, files=[str(f)])
    texts = " ".join(str(w.message) for w in rec)
    assert "max_evals" in texts and "save_frequency" in texts and "add_input_file" in texts
    assert [x.local for x in opt.input_files] == [str(f)]
    with pytest.warns(DeprecationWarning, match="max_queued_tasks"):
        cc = opt.add_compute_class("16-core", "cores", 16, max_tasks=20)
    assert cc.max_queued_tasks == 20


def test_typos_get_did_you_mean(db: str) -> None:
    with pytest.raises(TypeError, match=r"max_task .*did you mean 'max_tasks'\?"):
        Shadho("e", _quad, SPACE, backend=db, max_task=3)
    opt = Shadho("e", _quad, SPACE, backend=db)
    with pytest.raises(TypeError, match=r"did you mean 'memory_mb'\?"):
        opt.add_compute_class("big", "cores", 4, memroy=100)


def test_feature_compute_class_requires_the_value_as_feature() -> None:
    assert ComputeClass("titan", "feature", "titanx").feature == "titanx"
    assert ComputeClass("gpu", "gpu_name", "TITAN X").feature == "gpu_name=TITAN X"


def test_missing_work_queue_is_said_at_construction_before_any_file(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ndcctools", None)
    monkeypatch.setitem(sys.modules, "work_queue", None)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "cctools" not in p])
    db = tmp_path / "r.db"
    with pytest.raises(BackendUnavailableError) as err:
        Shadho("e", "bash task.sh", SPACE, backend=str(db))
    msg = str(err.value)
    assert "conda install -c conda-forge ndcctools" in msg
    assert "apt-get install coop-computing-tools python3-workqueue" in msg and ".pth" in msg
    assert "Python %d.%d" % sys.version_info[:2] in msg
    assert not db.exists() and list(tmp_path.iterdir()) == []
    opt = Shadho("e", _quad, SPACE, backend=str(db))  # local: fine until asked for Work Queue
    with pytest.warns(DeprecationWarning):
        opt.config.manager = "workqueue"
    with pytest.raises(BackendUnavailableError):
        opt.run()
    assert not db.exists()


# ---------------------------------------------------------------- notices (pure)


def test_connection_notice_commands_and_interval() -> None:
    c = Connection("login1", 9123, "shadho_sin_ex", "/tmp/pw", "cat:9097")
    cmds = c.commands()
    assert cmds[0] == "work_queue_worker -M shadho_sin_ex --catalog cat:9097 --password /tmp/pw"
    assert "work_queue_worker --password /tmp/pw login1 9123" in cmds
    assert "shadho workers slurm --manager login1:9123 --password /tmp/pw --count 4" in cmds
    n = ConnectNotice(c, every=30)
    first = n.tick(100.0, 0)
    assert first and "login1:9123" in first and "name 'shadho_sin_ex'" in first and "/tmp/pw" in first
    assert n.tick(120.0, 0) is None
    assert "still no workers" in (n.tick(131.0, 0) or "")
    assert n.tick(500.0, 3) is None


def test_unmatched_class_warns_after_interval_and_impossible_at_once() -> None:
    u = UnmatchedNotice(after=60)
    needs = {"titan": ClassNeeds("titan", feature="titanx"), "big": ClassNeeds("big", cores=32)}
    pool = Pool(4, 16, 8000, 0)
    first = u.tick(0, needs, {"titan": 2, "big": 1}, {}, pool)
    assert len(first) == 1 and "'big' needs 32 cores" in first[0] and "largest with 16 cores" in first[0]
    assert u.tick(30, needs, {"titan": 2, "big": 1}, {}, pool) == []
    late = u.tick(61, needs, {"titan": 2, "big": 1}, {}, pool)
    assert len(late) == 1 and "'titan'" in late[0] and "feature 'titanx'" in late[0] and "--feature titanx" in late[0]
    assert u.tick(62, needs, {"titan": 2}, {"titan": 1}, pool) == []  # it runs now


def test_progress_counts_executing_apart_from_queued(caplog) -> None:
    caplog.set_level("INFO", logger="shadho")
    p = Progress(every=0)
    p.update(done=1, failed=0, running=2, dispatched=7, workers=2, best=0.5)
    assert "2 executing, 5 queued on workers" in caplog.text


# ---------------------------------------------------------------- runs


def test_shell_command_gets_the_task_tag_as_last_argument(db: str, tmp_path: Path) -> None:
    script = tmp_path / "task.py"
    script.write_text(textwrap.dedent("""
        import json, sys
        p = json.load(open('hyperparameters.json'))
        json.dump({'loss': p['x'], 'tag': sys.argv[-1]}, open('performance.json', 'w'))
    """))
    opt = Shadho("e", f"{sys.executable} task.py", SPACE, backend=db, manager="local", local_workers=1,
                 max_tasks=2, quiet=True, timeout=60)
    opt.add_input_file(str(script))
    trials = opt.run()
    assert len(trials) == 2
    for t in trials:
        assert t.state is TrialState.COMPLETE, t.error
        assert t.results["tag"] == f"{t.id}.{t.space_id}.default"


def test_summary_at_end_and_dataframes_per_search_space(db: str, capsys) -> None:
    spec = {"exclusive": True, "a": {"kernel": "a", "x": spaces.uniform(0, 1)},
            "b": {"kernel": "b", "x": spaces.uniform(0, 1), "y": spaces.uniform(0, 1)}}
    opt = Shadho("svm", lambda p: list(p.values())[0]["x"], spec, backend=db, local_workers=2,
                 max_tasks=8, seed=1, timeout=60)
    trials = opt.run()
    err = capsys.readouterr().err
    best = min((t for t in trials if t.loss is not None), key=lambda t: t.loss)
    assert "svm: 8 trials" in err and "(8 complete, 0 failed, 0 unfinished)" in err
    assert f"best loss {best.loss:.6g} (trial {best.id}, search space {best.searchspace!r})" in err
    dfs = opt.to_dataframes()
    assert len(dfs) == 2 and sum(len(d) for d in dfs) == 8
    assert "params.b.y" in dfs[1].columns and "params.b.y" not in dfs[0].columns


def _flaky(flag: str):
    def objective(p):
        if not os.path.exists(flag):
            raise RuntimeError("objective not fixed yet")
        return p["x"]
    return objective


def test_most_failures_print_cause_and_traceback_with_user_file_and_line(db: str, tmp_path: Path,
                                                                           capsys) -> None:
    opt = Shadho("e", _flaky(str(tmp_path / "fixed")), SPACE, backend=db, local_workers=1, max_tasks=3,
                 quiet=True, timeout=60)
    opt.run()
    err = capsys.readouterr().err
    assert "3 of 3 finished trials failed; most common error (3 trial(s)): RuntimeError: objective not fixed yet" in err
    assert f'File "{__file__}", line' in err and 'raise RuntimeError("objective not fixed yet")' in err


def test_resume_says_what_it_found_and_retry_failed_reruns(db: str, tmp_path: Path, capsys) -> None:
    flag = tmp_path / "fixed"
    kw = dict(backend=db, local_workers=1, max_tasks=4, quiet=True, timeout=60)
    Shadho("e", _flaky(str(flag)), SPACE, **kw).run()
    capsys.readouterr()
    again = Shadho("e", _flaky(str(flag)), SPACE, **kw)
    assert again.run() and len(again.trials) == 4
    err = capsys.readouterr().err
    assert "resuming e: 4 recorded (4 failed, 0 complete); budget 4 reached; re-run the 4 failed trial(s) " \
           "with Shadho(..., retry_failed=True) or `shadho retry " in err
    flag.write_text("")
    fixed = Shadho("e", _flaky(str(flag)), SPACE, retry_failed=True, **kw)
    trials = fixed.run()
    err = capsys.readouterr().err
    assert "re-running 4 failed trial(s)" in err
    failed = [t for t in trials if t.state is TrialState.FAILED]
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(failed) == 4 and len(done) == 4  # the failures stay recorded; copies completed
    assert sorted(t.params["x"] for t in failed) == sorted(t.params["x"] for t in done)
    Shadho("e", _flaky(str(flag)), SPACE, retry_failed=True, **kw).run()
    assert "re-running" not in capsys.readouterr().err  # nothing left to retry


def test_shadho_retry_command_queues_failed_trials(db: str, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    kw = dict(backend=db, local_workers=1, max_tasks=3, quiet=True, timeout=60)
    with Shadho("e", _flaky(str(flag)), SPACE, **kw) as opt:
        opt.run()
    r = subprocess.run(["shadho", "retry", db, "e"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "3 failed trial(s) of e queued again" in r.stdout, r.stderr
    bad = subprocess.run(["shadho", "retry", db, "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "has no experiment 'nope'" in bad.stderr
    flag.write_text("")
    trials = Shadho("e", _flaky(str(flag)), SPACE, **kw).run()
    assert sum(t.state is TrialState.COMPLETE for t in trials) == 3


def test_ctrl_c_exits_130_after_clean_stop(db: str, tmp_path: Path) -> None:
    script = tmp_path / "drv.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from shadho import Shadho, spaces
        def slow(p):
            time.sleep(0.3)
            return p['x']
        opt = Shadho('e', slow, {{'x': spaces.uniform(0, 1)}}, backend={db!r}, local_workers=1,
                     max_tasks=500, timeout=120, quiet=True)
        opt.run()
        print('not reached')
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 60
    while time.time() < deadline and _complete(db) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)  # a loaded CI machine: the stop is clean, not instant
    assert proc.returncode == 130, err[-2000:]
    assert "not reached" not in out and "Traceback" not in err and "stopped by Ctrl-C" in err
    with ResultsStore(db) as s:
        counts = s.counts(1)
    assert counts["RUNNING"] == 0 and counts["COMPLETE"] >= 2


def _complete(db: str) -> int:
    if not os.path.exists(db):
        return 0
    try:
        with ResultsStore(db, readonly=True) as s:
            return s.counts(1)["COMPLETE"] if s.experiments() else 0
    except Exception:  # noqa: BLE001 - the master may be creating it
        return 0


def test_sin_local_example_runs_unchanged(tmp_path: Path) -> None:
    """The original examples/sin_local calls, in a driver of our own (5 s instead of 30 s)."""
    (tmp_path / "driver.py").write_text(textwrap.dedent("""
        import math
        from shadho import Shadho, spaces

        def sin(params):
            return math.sin(params['x'])

        if __name__ == '__main__':
            opt = Shadho('sin_local_example', sin, {'x': spaces.uniform(0, math.pi)}, timeout=5)
            opt.config.manager = 'local'
            opt.run()
    """))
    r = subprocess.run([sys.executable, "driver.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "sin_local_example:" in r.stderr and "best loss" in r.stderr
    with ResultsStore(tmp_path / "results.db", readonly=True) as s:
        trials = s.trials(s.experiment_id("sin_local_example"))
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(done) >= 3 and not [t for t in trials if t.state is TrialState.FAILED]


# ---------------------------------------------------------------- compound spaces of the original


def _sample(space, seed: int = 0) -> dict:
    import numpy as np

    return space.params(space.sample(np.random.default_rng(seed)))


def test_sequential_gives_a_list_in_order() -> None:
    (s,) = spaces.split({"seq": spaces.sequential([spaces.uniform(0, 1), spaces.choice(["a", "b"]), 3])})
    p = _sample(s)
    assert isinstance(p["seq"], list) and len(p["seq"]) == 3
    assert 0 <= p["seq"][0] <= 1 and p["seq"][1] in ("a", "b") and p["seq"][2] == 3
    with pytest.raises(TypeError, match="non-empty list"):
        spaces.sequential([])


def test_repeat_splits_into_one_space_per_length_or_one_list() -> None:
    layer = {"units": spaces.randint(8, 64), "act": spaces.choice(["relu", "tanh"])}
    split = spaces.split({"layers": spaces.repeat(layer, 3), "lr": spaces.log10_uniform(-4, -1)})
    assert [s.name for s in split] == ["layers/repeat/1", "layers/repeat/2", "layers/repeat/3"]
    for n, s in enumerate(split, start=1):
        p = _sample(s, n)
        assert len(p["layers"]) == n and all(set(layer_) == {"units", "act"} for layer_ in p["layers"])
        assert s.dim == 2 * n + 1  # every repetition is sampled independently
    (one,) = spaces.split({"layers": spaces.repeat(spaces.uniform(0, 1), 4, split=False)})
    assert len(_sample(one)["layers"]) == 4
    again = spaces.split({"layers": spaces.repeat(layer, 3), "lr": spaces.log10_uniform(-4, -1)})
    assert [s.id for s in again] == [s.id for s in split]  # stable ids: resume finds its spaces


def test_dependent_derives_from_another_domain_of_the_trial() -> None:
    from shadho.errors import SpecError

    width = spaces.randint(1, 10)
    (s,) = spaces.split({"width": width, "double": spaces.dependent(width, lambda w: 2 * w),
                         "same": spaces.dependent(width)})
    p = _sample(s)
    assert p["double"] == 2 * p["width"] and p["same"] == p["width"] and s.dim == 1
    with pytest.raises(SpecError, match="not in the spec"):
        spaces.split({"d": spaces.dependent(spaces.uniform(0, 1))})


def test_exhaustive_is_a_grid_and_scope_allows_attribute_access() -> None:
    grid = spaces.split({"a": spaces.exhaustive([1, 2]), "b": spaces.exhaustive(["x", "y"]),
                         "c": spaces.uniform(0, 1)})
    assert sorted((_sample(s)["a"], _sample(s)["b"]) for s in grid) == [(1, "x"), (1, "y"), (2, "x"), (2, "y")]
    sc = spaces.scope(C=spaces.log2_uniform(-5, 15), kernel="rbf")
    sc.gamma = spaces.log10_uniform(-3, 3)
    assert sc.kernel == "rbf" and "gamma" in sc and sc.C is sc["C"]
    with pytest.raises(AttributeError, match="children: C, kernel, gamma"):
        sc.degree


def test_search_with_compound_spaces_records_lists(db: str) -> None:
    spec = {"layers": spaces.repeat(spaces.randint(1, 5), 2), "lr": spaces.uniform(0, 1)}
    opt = Shadho("nas", lambda p: sum(p["layers"]) * p["lr"], spec, backend=db, local_workers=1,
                 max_tasks=6, seed=2, quiet=True, timeout=60)
    trials = opt.run()
    assert len(trials) == 6 and all(t.state is TrialState.COMPLETE for t in trials)
    for t in trials:
        assert isinstance(t.params["layers"], list) and len(t.params["layers"]) == int(t.searchspace[-1])
        assert t.loss == pytest.approx(sum(t.params["layers"]) * t.params["lr"])


def test_catalog_address_follows_cctools_environment() -> None:
    from shadho.managers.wq_setup import DEFAULT_CATALOG, catalog_address

    assert catalog_address({}) == DEFAULT_CATALOG == "catalog.cse.nd.edu:9097"
    assert catalog_address({"CATALOG_HOST": "cat.example.org", "CATALOG_PORT": "9100"}) == "cat.example.org:9100"
    assert catalog_address({"CATALOG_HOST": "cat.example.org"}) == "cat.example.org:9097"
    assert catalog_address({"CATALOG_HOST": "h:1234", "CATALOG_PORT": "9"}) == "h:1234"


def test_compute_class_sizes_carry_their_unit_and_the_old_names_warn(db: str) -> None:
    from shadho.errors import ConfigError, ShadhoError

    cc = ComputeClass("fat", "cores", 8, memory_mb=64000, disk_mb=1000)
    assert cc.resources == {"cores": 8, "memory": 64000, "disk": 1000}
    with pytest.warns(DeprecationWarning, match=r"ComputeClass\(memory=\) is deprecated: use memory_mb="):
        old = ComputeClass("fat", "cores", 8, memory=64000, disk_mb=1000)
    assert old == cc
    with pytest.warns(DeprecationWarning, match="ComputeClass.disk is deprecated"):
        assert cc.disk == 1000
    with pytest.raises(TypeError, match="not both"):
        ComputeClass("fat", "cores", 8, memory=1, memory_mb=2)
    opt = Shadho("e", _quad, SPACE, backend=db)
    assert opt.add_compute_class("big", "cores", 4, memory_mb=100).resources["memory"] == 100
    with pytest.warns(DeprecationWarning, match="memory_mb"):
        opt.add_compute_class("big2", "cores", 4, memory=100)
    with pytest.raises(ConfigError, match="gpus must be a positive number") as err:
        ComputeClass("g", "gpus", 0)
    assert isinstance(err.value, ShadhoError) and isinstance(err.value, ValueError)
