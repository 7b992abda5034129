"""The Work Queue manager against real ``work_queue_worker`` processes (no mocks)."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from shadho import Shadho, spaces
from shadho.errors import BackendUnavailableError
from shadho.managers.base import RunSettings, TaskSpec
from shadho.trial import TrialState

from shadho.managers.workqueue import WorkQueueManager, import_work_queue

# Work Queue must be installed (tests/conftest.py stops the run without it): no skip.
needs_wq = pytest.mark.workqueue
pytestmark = [needs_wq]
HOST = socket.gethostname()


def quad(p):
    return (p["x"] - 1) ** 2


def _run(db, cmd, spec=None, **kw):
    kw.setdefault("local_workers", 2)
    kw.setdefault("quiet", True)
    kw.setdefault("timeout", 120)
    return Shadho("e", cmd, spec or {"x": spaces.uniform(-2, 2)}, backend=db, manager="workqueue", **kw)


def _drain(m, n_expected, limit=60.0):
    out, end = [], time.time() + limit
    while len(out) < n_expected and time.time() < end:
        out += m.wait(1)
    return out


# ---------------------------------------------------------------- no workers needed


def test_missing_work_queue_names_both_install_routes(monkeypatch):
    monkeypatch.setitem(sys.modules, "ndcctools", None)
    monkeypatch.setitem(sys.modules, "work_queue", None)
    with pytest.raises(BackendUnavailableError) as err:
        import_work_queue()
    assert "conda-forge ndcctools" in str(err.value)
    assert "apt-get install coop-computing-tools python3-workqueue" in str(err.value)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="unknown option.*valid: worker_timeout_s"):
        WorkQueueManager(bogus=1)
    with pytest.raises(ValueError, match="unknown local worker spec key.*valid: cores, memory"):
        WorkQueueManager(local_workers=[{"cpus": 2}])
    with pytest.raises(ValueError, match="password file"):
        WorkQueueManager(password=str(tmp_path / "nope"))
    with pytest.raises(TypeError, match="port"):
        WorkQueueManager(port="9123")
    # None: no local workers, named or not (a master never computes on a login node unasked).
    assert WorkQueueManager().worker_specs == []
    assert WorkQueueManager(name="x").worker_specs == []


# ---------------------------------------------------------------- real workers


@pytest.mark.workqueue
def test_callable_objective_records_worker_and_slurm_job(db, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "1234")  # local workers and their tasks inherit it
    opt = _run(db, quad, max_tasks=8, seed=1)
    trials = opt.run()
    assert len(trials) == 8 and all(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.loss == pytest.approx((t.params["x"] - 1) ** 2) for t in trials)
    assert all(t.worker == f"{HOST}/slurm:1234" for t in trials)
    assert all(t.start_time and t.finish_time >= t.start_time for t in trials)


@pytest.mark.workqueue
def test_command_objective_with_input_file(db, tmp_path):
    script = tmp_path / "obj.py"
    script.write_text(textwrap.dedent("""
        import shadho_worker
        def fn(p):
            return {'loss': p['x'] ** 2, 'tag': 'cmd'}
        shadho_worker.run(fn)
    """))
    opt = _run(db, f"{sys.executable} obj.py", max_tasks=4)
    opt.add_input_file(str(script))
    trials = opt.run()
    assert all(t.state == TrialState.COMPLETE and t.results == {"tag": "cmd"} for t in trials), trials
    assert trials[0].loss == pytest.approx(trials[0].params["x"] ** 2)
    assert all(t.worker == HOST for t in trials)


@pytest.mark.workqueue
def test_malformed_performance_json_from_a_command(db):
    trials = _run(db, "echo '{not json' > performance.json", max_tasks=2).run()
    assert len(trials) == 2
    assert all(t.state == TrialState.FAILED and "malformed result file" in t.error for t in trials), trials


@pytest.mark.workqueue
def test_compute_classes_route_to_matching_workers(db):
    def where(p):
        import os
        return {"loss": p["x"], "dir": os.getcwd(), "cores": os.environ.get("CORES")}

    workers = [{"cores": 1, "features": {"size": "small"}}, {"cores": 2, "features": {"size": "big"}}]
    opt = _run(db, where, max_tasks=12, local_workers=workers)
    opt.add_compute_class("small", "size", "small")  # a feature-only class
    opt.add_compute_class("big", "cores", 2)  # needs 2 free cores: only worker 1 has them
    trials = opt.run()
    assert len(trials) == 12 and all(t.state == TrialState.COMPLETE for t in trials), trials
    by_class = {c: [t for t in trials if t.compute_class == c] for c in ("small", "big")}
    assert by_class["small"] and by_class["big"]
    assert all("worker-0" in t.results["dir"] for t in by_class["small"])
    assert all("worker-1" in t.results["dir"] and t.results["cores"] == "2" for t in by_class["big"])


@pytest.mark.workqueue
def test_workers_without_the_password_never_run_tasks(tmp_path):
    m = WorkQueueManager(local_workers=0)
    m.start(RunSettings("pw", objective=quad))
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    procs = [subprocess.Popen(["work_queue_worker", "localhost", str(m.port), "--single-shot", "-t", "30"] + extra,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
             for extra in ([], ["--password", str(wrong)])]
    try:
        m.submit(TaskSpec(1, "s", ((1, {"x": 3.0}),)))
        out = []
        end = time.time() + 4
        while time.time() < end:
            out += m.wait(1)
        assert out == [] and m.status()["workers"] == 0
        good = subprocess.Popen(["work_queue_worker", "localhost", str(m.port), "--password", m.password_file, "-t", "30"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(good)
        out = _drain(m, 1, 30)
        assert [o.loss for o in out] == [4.0]
    finally:
        m.stop()
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.mark.workqueue
def test_stop_kills_workers_removes_files_and_releases_the_port(tmp_path):
    m = WorkQueueManager(local_workers=2)
    m.start(RunSettings("st", objective=quad))
    assert m.capacity() == {None: 4}  # 2 free slots + a margin of 2
    for i in range(4):
        m.submit(TaskSpec(i, "s", ((i, {"x": float(i)}),)))
    assert m.capacity() == {None: 0} and m.in_flight == 4
    assert len(_drain(m, 4)) == 4
    pw = m.password_file
    assert os.stat(pw).st_mode & 0o777 == 0o600 and not open(pw).read().endswith("\n")
    procs, tmp, port = m.local_processes, m._tmp, m.port
    assert len(procs) == 2
    m.stop()
    assert all(p.poll() is not None for p in procs)
    assert not os.path.exists(tmp)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", port))


def _stamp(p):
    import time
    time.sleep(0.05)
    return {"loss": 0.0, "t": time.time()}


@contextlib.contextmanager
def _one_core_manager(name):
    """A Work Queue manager of ``_stamp`` and a way to start its one 1-core worker."""
    m = WorkQueueManager(local_workers=0)
    m.start(RunSettings(name, objective=_stamp))
    procs = []

    def start_worker():
        procs.append(subprocess.Popen(["work_queue_worker", "localhost", str(m.port), "--password",
                                       m.password_file, "--cores", "1", "-t", "30"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
    try:
        yield m, start_worker
    finally:
        m.stop()
        for w in procs:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait()


def _run_order(out):
    return [o.trial_id for o in sorted(out, key=lambda o: o.results["t"])]


def test_set_priorities_reorders_waiting_tasks():
    with _one_core_manager("prio") as (m, start_worker):
        for i in range(6):
            m.submit(TaskSpec(i, "a" if i < 3 else "b", ((i, {}),), priority=0.0))
        m.set_priorities({None: {"a": 1.0, "b": 5.0}})  # b first now
        assert m.in_flight == 6 and len(m._q._task_table) == 6
        start_worker()
        order = _run_order(_drain(m, 6))
        assert sorted(order[:3]) == [3, 4, 5] and sorted(order[3:]) == [0, 1, 2], order


def test_tasks_of_equal_priority_run_in_submission_order():
    # cctools 8.0 alone runs equal-priority tasks newest first: on a busy class the first
    # task queued waited while every later one overtook it, to the end of the run.
    with _one_core_manager("fifo") as (m, start_worker):
        for i in range(4):
            m.submit(TaskSpec(i, "a", ((i, {}),), priority=0.0))
        start_worker()
        out, n = [], 4
        while len(out) < 8:  # a new task arrives each time one ends, as in a search
            got = _drain(m, 1)
            assert got, out
            out += got
            while n < 4 + len(out) and n < 8:
                m.submit(TaskSpec(n, "a", ((n, {}),), priority=0.0))
                n += 1
        order = _run_order(out)
        assert order == sorted(order), order


@pytest.mark.workqueue
def test_killed_worker_task_is_retried_and_every_trial_recorded_once(db, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    killed = tmp_path / "killed"

    def slow(p):
        import os
        import signal
        import time
        with open(os.path.join(str(runs), f"{p['x']!r}-{os.getpid()}"), "w") as fh:
            fh.write(os.getcwd())
        time.sleep(0.5)
        try:  # the first trial to get here SIGKILLs the work_queue_worker running it, mid-task
            os.close(os.open(str(killed), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            time.sleep(0.5)
            return p["x"]
        pid = os.getpid()
        while pid > 1:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            pid = int(fields[1])  # the parent
            with open(f"/proc/{pid}/comm") as fh:
                if fh.read().strip() == "work_queue_work":  # comm is cut at 15 chars
                    os.kill(pid, signal.SIGKILL)
                    break
        os._exit(1)  # the task dies with its worker (an orphan would hold the worker's socket open)

    opt = _run(db, slow, max_tasks=8)
    trials = opt.run()
    assert killed.exists()
    assert len(trials) == 8 and len({t.id for t in trials}) == 8
    assert all(t.state == TrialState.COMPLETE for t in trials), trials
    starts = [f.name.rsplit("-", 1)[0] for f in runs.iterdir()]
    assert len(set(starts)) == 8 and len(starts) >= 9  # one trial ran twice: its first worker died


# Every kind of misbehaving objective through Work Queue: tests/test_reliability.py.


@pytest.mark.workqueue
def test_batched_trials_are_each_recorded(db):
    def pid(p):
        import os
        return {"loss": p["x"], "pid": os.getpid()}

    trials = _run(db, pid, max_tasks=20, hyperparameters_per_task=5).run()
    assert len(trials) == 20 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.results["pid"] for t in trials}) == 4  # one interpreter per 5 trials


@pytest.mark.workqueue
def test_a_crash_inside_a_batch_fails_one_trial_and_reruns_the_rest(db, tmp_path):
    tickets = str(tmp_path / "tickets")
    os.mkdir(tickets)

    def third_crashes(p):
        import os
        i = len(os.listdir(tickets))
        open(os.path.join(tickets, str(i)), "w").close()
        if i == 2:
            os._exit(9)
        return p["x"]

    trials = _run(db, third_crashes, max_tasks=5, hyperparameters_per_task=5, local_workers=1).run()
    assert len(trials) == 5 and len(os.listdir(tickets)) == 5  # each trial evaluated once
    failed = [t for t in trials if t.state == TrialState.FAILED]
    assert len(failed) == 1 and "exited with status 9" in failed[0].error, trials
    assert failed[0].id == trials[2].id


@pytest.mark.workqueue
def test_resume_a_work_queue_run(db):
    first = _run(db, quad, max_tasks=10, seed=3).run()
    opt = _run(db, quad, max_tasks=20, seed=3)
    trials = opt.run()
    assert len(trials) == 20 and all(t.state == TrialState.COMPLETE for t in trials)
    assert [(t.id, t.params, t.loss) for t in trials[:10]] == [(t.id, t.params, t.loss) for t in first]


def _other_pythons():
    """Interpreters on this machine whose cloudpickle differs from ours (or is missing)."""
    import cloudpickle

    found = []
    for py in ("/usr/bin/python3", "/root/.pyenv/versions/3.11.7/bin/python3", shutil.which("python3")):
        if not py or not os.path.exists(py) or os.path.realpath(py) == os.path.realpath(sys.executable):
            continue
        r = subprocess.run([py, "-c", "import cloudpickle; print(cloudpickle.__version__)"],
                           capture_output=True, text=True)
        version = r.stdout.strip() if r.returncode == 0 else None
        if version != cloudpickle.__version__ and all(f[0] != os.path.realpath(py) for f in found):
            found.append((os.path.realpath(py), version))
    return found


@pytest.mark.workqueue
def test_version_mismatch_names_both_sides(db):
    import cloudpickle

    others = _other_pythons()
    if not others:
        pytest.skip("no other Python with a different cloudpickle on this machine")
    for py, version in others:
        trials = _run(db.replace(".db", f"-{len(py)}.db"), quad, max_tasks=2, worker_python=py).run()
        assert all(t.state == TrialState.FAILED for t in trials)
        err = trials[0].error
        assert f"cloudpickle {cloudpickle.__version__}" in err and py in err, err
        if version is None:
            assert "missing module 'cloudpickle'" in err and "cloudpickle not installed" in err, err
        else:
            assert f"cloudpickle {version}" in err, err


@pytest.mark.workqueue
def test_memory_limits_of_a_compute_class(db, tmp_path):
    def hog(p):
        b = bytearray(2 * 1024 ** 3)
        return len(b)

    opt = _run(db, hog, max_tasks=2, local_workers=[{"cores": 2, "memory": 4000}])
    opt.add_compute_class("small", "memory", 300)
    trials = opt.run()
    assert all(t.state == TrialState.FAILED and "MemoryError" in t.error for t in trials), trials

    script = tmp_path / "hog.py"
    script.write_text("import time\nb = bytearray(600 * 1024 ** 2)\ntime.sleep(12)\n")
    opt = _run(db.replace(".db", "-cmd.db"), f"{sys.executable} hog.py", max_tasks=1,
               local_workers=[{"cores": 2, "memory": 4000}])
    opt.add_input_file(str(script))
    opt.add_compute_class("small", "memory", 200)
    trials = opt.run()
    assert trials[0].state == TrialState.FAILED and "exceeded its resources (memory" in trials[0].error, trials


@pytest.mark.workqueue
def test_a_module_missing_on_workers_is_named(db, tmp_path, monkeypatch):
    (tmp_path / "helper_mod_q.py").write_text("def f(p):\n    return p['x']\n")
    (tmp_path / "objmod_q.py").write_text("import helper_mod_q\ndef fn(p):\n    return helper_mod_q.f(p)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the master has them; the workers do not
    import objmod_q

    trials = _run(db, objmod_q.fn, max_tasks=1, local_workers=1).run()
    assert trials[0].state == TrialState.FAILED
    import cloudpickle

    err = trials[0].error
    assert "missing module helper_mod_q" in err and f"cloudpickle {cloudpickle.__version__}" in err, err


def test_a_task_queued_behind_a_busy_worker_has_no_start_and_a_running_one_has_one(db, tmp_path):
    # One 1-core worker; the first task holds it until the gate opens, so the other two
    # wait in Work Queue's queue: the live file tells the running trial from the queued.
    from shadho.errors import StoreError
    from shadho.store import ResultsStore

    gate = str(tmp_path / "gate")

    def gated(p):
        import os
        import time
        end = time.time() + 120
        while not os.path.exists(gate) and time.time() < end:
            time.sleep(0.05)
        return (p["x"] - 1) ** 2

    seen: list = []

    def watch():
        end = time.time() + 90
        try:
            while time.time() < end and not seen:
                try:
                    with ResultsStore(db, readonly=True) as r:
                        exp = r.experiment_id("e")
                        ts = r.trials(exp) if exp is not None else []
                except StoreError:  # not created yet
                    ts = []
                running = [t for t in ts if t.state == TrialState.RUNNING]
                if len(running) == 3 and any(t.task_start_time is not None for t in running):
                    seen.extend(running)
                time.sleep(0.1)
        finally:
            open(gate, "w").close()

    th = threading.Thread(target=watch)
    th.start()
    try:
        ts = _run(db, gated, local_workers=[{"cores": 1}], max_tasks=3).run()
    finally:
        th.join()
    assert seen, "never saw three trials in flight with one started"
    started = [t for t in seen if t.task_start_time is not None]
    assert len(started) == 1, [t.to_dict() for t in seen]
    assert started[0].submit_time <= started[0].task_start_time
    assert len(ts) == 3 and all(t.state == TrialState.COMPLETE for t in ts)
    # Once run, every trial has its task's start, before its own start.
    assert all(t.submit_time <= t.task_start_time <= t.start_time for t in ts), [t.to_dict() for t in ts]
    first = next(t for t in ts if t.id == started[0].id)
    assert first.task_start_time == started[0].task_start_time
    assert all(t.task_start_time >= first.finish_time for t in ts if t.id != first.id)


def _short(p):
    import time
    time.sleep(0.05)
    return p["x"]


def test_wait_returns_the_results_already_here_and_does_not_block_for_more(db, monkeypatch):
    # A Work Queue wait(0) blocks up to ~0.2 s for the next result; looping on it while
    # short tasks kept finishing held the master in wait() until every slot had drained
    # (each wait() lasted ~1 s on 4 slots, and the dead time per task doubled). After the
    # first result, wait() takes only the results Work Queue already holds.
    calls: list[tuple[int, int]] = []  # (timeout, results already held) of each wait
    opened = WorkQueueManager._open_queue

    def open_and_watch(self):
        opened(self)
        q, wait = self._q, self._q.wait

        def watched(timeout):
            calls.append((timeout, q.stats.tasks_with_results))
            return wait(timeout)
        q.wait = watched

    monkeypatch.setattr(WorkQueueManager, "_open_queue", open_and_watch)
    trials = _run(db, _short, max_tasks=40, local_workers=2).run()
    assert len(trials) == 40 and all(t.state == TrialState.COMPLETE for t in trials)
    # The old loop called wait(0) after every result, with nothing held (~40 times here);
    # now only a wait(0) of the driver's own (at the stop) may find nothing.
    empty_polls = sum(1 for timeout, held in calls if timeout == 0 and held == 0)
    assert empty_polls <= 2, calls
