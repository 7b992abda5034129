"""Reliability, round two (GitHub issue 12): what an adversarial run still broke.

Real ``work_queue_worker`` processes wherever Work Queue is involved. Each test failed
before its fix; ``scripts/reliability_report.py`` lists their outcomes in docs/reliability.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from shadho import Shadho, spaces
from shadho.trial import TrialState

from test_reliability import _wait_for, needs_wq
MANAGERS = [pytest.param("local", id="local"),
            pytest.param("workqueue", id="workqueue", marks=[needs_wq, pytest.mark.workqueue])]


def _opt(db: str, cmd: Any, manager: str = "workqueue", **kw: Any) -> Shadho:
    kw.setdefault("local_workers", 2)
    kw.setdefault("quiet", True)
    kw.setdefault("timeout", 120)
    kw.setdefault("max_tasks", 2)
    return Shadho("e", cmd, kw.pop("spec", {"x": spaces.uniform(0, 1)}), backend=db, manager=manager, **kw)




def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------- results written by absolute path


def _chdir_objective(folder: str) -> Any:
    def wander(p):
        import os
        os.chdir(folder)  # the objective leaves the sandbox; its result must not follow it
        return p["x"]
    return wander


@pytest.mark.parametrize("manager", MANAGERS)
def test_an_objective_that_changes_the_cwd_keeps_its_result(db, tmp_path, manager):
    away = tmp_path / "away"
    away.mkdir()
    trials = _opt(db, _chdir_objective(str(away)), manager, max_tasks=3, hyperparameters_per_task=2).run()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3, [t.error for t in trials]
    assert all(t.loss == t.params["x"] for t in trials)
    assert not [f for f in os.listdir(away) if "result" in f]


@pytest.mark.parametrize("manager", MANAGERS)
def test_a_command_whose_objective_changes_the_cwd_keeps_its_performance_json(db, tmp_path, manager):
    away = tmp_path / "away"
    away.mkdir()
    script = tmp_path / "obj.py"
    script.write_text(textwrap.dedent(f"""
        import os, shadho_worker
        def fn(p):
            os.chdir({str(away)!r})
            return p["x"] * 2
        shadho_worker.run(fn)
    """))
    opt = _opt(db, f"{sys.executable} obj.py", manager)
    opt.add_input_file(str(script))  # shadho_worker.py is in every sandbox already
    trials = opt.run()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, [t.error for t in trials]
    assert all(t.loss == t.params["x"] * 2 for t in trials)
    assert os.listdir(away) == []


# ---------------------------------------------------------------- memory_mb on every manager


def _hog(p):
    b = bytearray(1200 * 1024 ** 2)
    return len(b)


@pytest.mark.parametrize("manager", MANAGERS)
def test_memory_mb_is_enforced_for_callables(db, manager):
    trials = _opt(db, _hog, manager, memory_mb=500, max_tasks=1).run()
    assert trials[0].state == TrialState.FAILED and "MemoryError" in trials[0].error, trials


@pytest.mark.parametrize("manager", MANAGERS)
def test_memory_mb_is_enforced_for_commands(db, tmp_path, manager):
    script = tmp_path / "hog.py"
    script.write_text("import json\nb = bytearray(1200 * 1024 ** 2)\n"
                      "json.dump({'loss': 1.0}, open('performance.json', 'w'))\n")
    opt = _opt(db, f"{sys.executable} hog.py", manager, memory_mb=500, max_tasks=1)
    opt.add_input_file(str(script))
    (t,) = opt.run()
    assert t.state == TrialState.FAILED and ("MemoryError" in t.error or "status 1" in t.error), t
    # Under the limit the same command completes: the limit is not simply "fail".
    script.write_text("import json\nb = bytearray(50 * 1024 ** 2)\n"
                      "json.dump({'loss': 1.0}, open('performance.json', 'w'))\n")
    opt = _opt(db.replace(".db", "-2.db"), f"{sys.executable} hog.py", manager, memory_mb=500, max_tasks=1)
    opt.add_input_file(str(script))
    assert opt.run()[0].state == TrialState.COMPLETE


# ---------------------------------------------------------------- processes an objective leaves behind


def _spawner(folder: str) -> Any:
    def spawn(p):
        import os
        import subprocess
        # One child in the task's group, one that leaves it (setsid); both keep writing.
        for tag, extra in (("group", {}), ("setsid", {"start_new_session": True})):
            proc = subprocess.Popen(["sh", "-c", f"while true; do date >> {folder}/{tag}.out; sleep 0.2; done"],
                                    **extra)
            with open(os.path.join(folder, f"{tag}-{proc.pid}.pid"), "w"):
                pass
        return p["x"]
    return spawn


def _pids(folder: str) -> list[int]:
    return [int(f.split("-")[1].split(".")[0]) for f in os.listdir(folder) if f.endswith(".pid")]


@pytest.mark.parametrize("manager", MANAGERS)
def test_processes_an_objective_started_end_with_its_task(db, tmp_path, manager):
    trials = _opt(db, _spawner(str(tmp_path)), manager, max_tasks=2).run()
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.error for t in trials]
    pids = _pids(str(tmp_path))
    assert len(pids) == 4
    assert _wait_for(lambda: not any(_alive(p) for p in pids), 15), [p for p in pids if _alive(p)]


@pytest.mark.parametrize("manager", MANAGERS)
def test_processes_a_command_started_end_with_its_task(db, tmp_path, manager):
    loop = "while true; do sleep 0.2; done"
    cmd = (f"sh -c '{loop}' & echo $! > {tmp_path}/group-$!.pid; "
           f"setsid sh -c 'echo $$ > {tmp_path}/setsid-$$.pid; {loop}' & sleep 0.5; "
           "echo '{\"loss\": 1}' > performance.json; :")  # shadho appends the task tag: ':' takes it
    trials = _opt(db, cmd, manager, max_tasks=2).run()
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.error for t in trials]
    pids = _pids(str(tmp_path))
    assert len(pids) == 4
    assert _wait_for(lambda: not any(_alive(p) for p in pids), 15), [p for p in pids if _alive(p)]


# ---------------------------------------------------------------- bounded output in the master

_LOUD_MASTER = """
import sys
from shadho import Shadho, spaces
def loud(p):
    import sys
    chunk = "y" * (1 << 20)
    for _ in range({mb}):
        sys.stdout.write(chunk)
    sys.stdout.flush()
    import os
    os._exit(1)  # no result: the trial's error carries the output's tail
opt = Shadho("e", {cmd}, {{"x": spaces.uniform(0, 1)}}, backend={db!r}, manager="workqueue",
             local_workers=2, max_tasks=2, quiet=True, timeout=120)
trials = opt.run()
with open("/proc/self/status") as fh:
    hwm = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
print("HWM", hwm // 1024, flush=True)
for t in trials:
    print("ERR", len(t.error), t.error.split("---")[1].split(",")[-1].split()[0] if "cut" in t.error else -1)
"""


@needs_wq
@pytest.mark.workqueue
@pytest.mark.parametrize("kind", ["callable", "command"])
def test_a_task_s_huge_output_is_cut_to_a_tail_on_the_worker(db, tmp_path, kind):
    mb = 200
    cmd = "loud" if kind == "callable" else repr(f"yes | head -c {mb * 2**20}; exit 3")
    script = tmp_path / "m.py"
    script.write_text(_LOUD_MASTER.format(mb=mb, cmd=cmd, db=db))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    hwm = int(r.stdout.split("HWM")[1].split()[0])
    assert hwm < 150, r.stdout  # two tasks of 200 MB each took the master far beyond this
    errs = [ln for ln in r.stdout.splitlines() if ln.startswith("ERR")]
    assert len(errs) == 2, r.stdout
    for ln in errs:
        assert int(ln.split()[1]) < 5000, ln  # the trial record keeps a short tail...
        assert int(ln.split()[2]) >= mb * 2**20 - 70000, ln  # ... and says how much was cut


# ---------------------------------------------------------------- stable specs

_IDS = """
import json, sys
from shadho import spaces
spec = {"kernel": ["rbf", "linear", "poly", "sigmoid"], "shape": (64, 32), "c": spaces.choice(["a", "b", "c"]),
        "m": spaces.scope(exclusive=True, x={"k": spaces.exhaustive(["p", "q"])}, y={"v": spaces.uniform(0, 1)})}
print(json.dumps([s.id for s in spaces.split(spec)]))
"""


def test_space_ids_are_the_same_in_every_process():
    runs = [subprocess.run([sys.executable, "-c", _IDS], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}) for seed in (0, 1, 2, 3)]
    ids = [json.loads(r.stdout) for r in runs]
    assert all(r.returncode == 0 for r in runs) and len(ids[0]) == 3 and ids.count(ids[0]) == 4, ids


@pytest.mark.parametrize("values", [{"rbf", "linear"}, frozenset({1, 2})], ids=["set", "frozenset"])
def test_a_choice_over_an_unordered_collection_is_rejected(values):
    from shadho.errors import SpecError

    with pytest.raises(SpecError, match="ordered list"):
        spaces.split({"k": spaces.choice(values)})
    with pytest.raises(SpecError, match="ordered list"):
        spaces.split({"k": spaces.exhaustive(values)})


def test_keys_that_flatten_to_the_same_column_are_rejected():
    from shadho.errors import SpecError

    with pytest.raises(SpecError, match="both flatten to 'a.b'"):
        spaces.split({"a.b": spaces.uniform(0, 1), "a": {"b": spaces.uniform(0, 1)}})
    with pytest.raises(SpecError, match="both flatten to 'a.b'"):
        spaces.split({"a.b": 1, "a": {"b": 2}})
    spaces.split({"a.b": 1, "a": {"c": 2}})  # different columns: fine


def test_a_very_deep_spec_is_a_spec_error_not_a_recursion_error():
    from shadho.errors import SpecError

    spec: dict[str, Any] = {"x": spaces.uniform(0, 1)}
    for _ in range(3000):
        spec = {"n": spec}
    with pytest.raises(SpecError, match="nested deeper"):
        spaces.split(spec)
    deep: Any = 1
    for _ in range(3000):
        deep = [deep]
    with pytest.raises(SpecError, match="nested deeper"):
        spaces.split({"k": spaces.choice([deep, 2])})
    with pytest.raises(SpecError, match="nested deeper"):
        spaces.split({"k": tuple(deep)})


def test_a_tuple_is_a_constant_and_a_list_a_choice():
    (s,) = spaces.split({"shape": (64, 32), "act": ["relu", "tanh"]})
    assert s.labels == ["act"]  # only the list is sampled
    import numpy as np
    p = s.params(s.sample(np.random.default_rng(0)))
    assert p["shape"] == [64, 32] and p["act"] in ("relu", "tanh")
    from shadho.errors import SpecError
    with pytest.raises(SpecError, match="a tuple is a constant"):
        spaces.split({"shape": (spaces.uniform(0, 1), 2)})


# ---------------------------------------------------------------- resume with a changed spec


def _by_model(p):
    (name, sub), = p["m"].items()
    return {"svm": 1.0, "knn": 0.1, "tree": 2.0}[name] + sub.get("c", 0)


def test_a_resume_with_a_changed_spec_says_what_changed_and_follows_the_new_spec(db, caplog):
    from shadho import status
    from shadho.store import ResultsStore

    old = {"m": spaces.scope(exclusive=True, svm={"name": "svm", "c": spaces.uniform(0, 1)},
                             knn={"name": "knn"})}
    new = {"m": spaces.scope(exclusive=True, svm={"name": "svm", "c": spaces.uniform(0, 2)},
                             tree={"name": "tree"})}
    first = _opt(db, _by_model, "local", spec=old, max_tasks=10, seed=1)
    first.run()
    assert "knn" in first.best["params"]["m"]  # the best trial is of the branch about to go
    first.close()
    caplog.set_level("WARNING", logger="shadho")
    again = _opt(db, _by_model, "local", spec=new, max_tasks=20, seed=1)
    again.run()
    text = caplog.text
    assert "changed spec" in text and "added m/tree" in text and "removed m/knn" in text
    assert "changed m/svm" in text
    assert again.best["searchspace"] in {s.name for s in again.spaces}  # not the removed knn
    assert "knn" in again.best_of(all_spaces=True)["params"]["m"]  # old trials stay readable
    again.close()
    with ResultsStore(db, readonly=True) as r:
        snap = status.collect(r, 1)
        names = [row["space"] for row in snap.spaces]
        assert sorted(names) == ["m/svm", "m/tree"] and snap.best_space != "m/knn", names
        every = [row["space"] for row in status.collect(r, 1, all_spaces=True).spaces]
    assert len(every) == len(set(every)) == 4, every  # no two rows with the same name


# ---------------------------------------------------------------- workers that keep failing


@needs_wq
@pytest.mark.workqueue
def test_local_workers_whose_restarts_are_used_up_stop_the_search_with_the_cause(db):
    from shadho.errors import WorkerError

    opt = _opt(db, _chdir_objective("/"), max_tasks=5, timeout=600, local_workers=1,
               worker_options={"worker_args": ["--no-such-option"]})  # a real worker that exits at once
    t0 = time.time()
    with pytest.raises(WorkerError, match="restarted 3 times") as err:
        opt.run()
    assert time.time() - t0 < 60  # not the 600 s timeout
    assert "resume" in str(err.value) and "Last worker output" in str(err.value)


_KILLED_BATCHES = """
import os, sys
from shadho import Shadho, spaces
from shadho.managers import workqueue as wqm
runs = {runs!r}
def slow(p):
    import os, time
    open(os.path.join(runs, f"{{p['x']!r}}-{{os.getpid()}}-{{time.monotonic_ns()}}"), "w").close()
    time.sleep(0.4)
    return p["x"]
start = wqm.WorkQueueManager.start
def start_and_tell(self, settings):
    start(self, settings)
    print("PORT", self.port, flush=True)
wqm.WorkQueueManager.start = start_and_tell
opt = Shadho("k", slow, {{"x": spaces.uniform(0, 1)}}, backend={db!r}, manager="workqueue", local_workers=0,
             password={pw!r}, max_tasks=20, timeout=300, quiet=True, seed=3, hyperparameters_per_task=5,
             worker_python=sys.executable, worker_options={{"max_runs": 3}})
print("RETURNED", len(opt.run()), flush=True)
"""


@needs_wq
@pytest.mark.workqueue
def test_repeated_worker_kills_with_batches_record_attempts_and_cap_reruns(db, tmp_path):
    import random

    import test_reliability as tr
    from shadho.store import ResultsStore

    runs = tmp_path / "runs"
    runs.mkdir()
    pw = tr._password(str(tmp_path))
    script = tmp_path / "m.py"
    script.write_text(_KILLED_BATCHES.format(runs=str(runs), db=db, pw=pw))
    master = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    procs, spawned, kills, rng = [], 0, 0, random.Random(2)
    try:
        port = int(master.stdout.readline().split()[1])
        for _ in range(2):
            spawned += 1
            procs.append(tr._start_worker(port, pw, str(tmp_path / f"w{spawned}")))
        while kills < 14 and master.poll() is None:
            busy = [p for p in procs if p.poll() is None and tr._children(p.pid)]
            if not busy:
                time.sleep(0.05)
                continue
            time.sleep(rng.uniform(0.2, 1.2))  # mid-batch: some trials of the batch have run
            victim = rng.choice(busy)
            procs.remove(victim)
            tr._kill(victim)
            kills += 1
            spawned += 1
            procs.append(tr._start_worker(port, pw, str(tmp_path / f"w{spawned}")))
        out, err = master.communicate(timeout=300)
    finally:
        if master.poll() is None:
            master.kill()
            master.communicate()
        for p in procs:
            tr._kill(p)
    assert master.returncode == 0 and "RETURNED 20" in out, err[-3000:]
    with ResultsStore(db, readonly=True) as r:
        trials = r.trials(1)
    started: dict[str, int] = {}
    for f in os.listdir(runs):
        started[f.split("-")[0]] = started.get(f.split("-")[0], 0) + 1
    assert len(trials) == 20 and all(t.state.finished for t in trials)  # none lost, none left running
    for t in trials:
        n = started.get(repr(t.params["x"]), 0)
        assert n <= t.attempts <= 3, (t.id, n, t.attempts, t.state, t.error)  # recorded, and capped
        if t.state == TrialState.FAILED:
            assert "not run again (max_runs=3)" in t.error, t.error
    assert max(started.values()) >= 2  # the kills did make trials run again
