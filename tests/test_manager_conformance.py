"""One suite, every execution manager: the contract of :class:`~shadho.managers.base.ExecutionManager`.

Each manager supplies only a :class:`Harness` (the ``harness`` fixture): the local process
pool, the simulator's manager (:mod:`shadho.sim`) and Work Queue with two real local
``work_queue_worker`` processes. The tests are written once, against the interface.

Two things the simulator cannot do, by design, and the harness says so rather than
skipping: it has no wall clock, so it has no ``task_timeout`` and no process that can crash
(``processes=False``: the crash and timeout tests run over the other managers only); it
computes losses in-process, so it refuses shell-command objectives at ``start`` with a
TypeError (``commands=False``: tested below).
"""
from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

from shadho.compute import ComputeClass
from shadho.managers.base import ExecutionManager, FileSpec, RunSettings, TaskSpec, TrialOutcome

# ---------------------------------------------------------------- objectives (module level:
# Work Queue ships them to its workers with cloudpickle)

BAD_RESULTS = [(float("nan"), "non-finite loss"), (float("inf"), "non-finite loss"),
               ("0.5", "must return a number"), (None, "must return a number"),
               ({"acc": 1.0}, "without 'loss'"), ({"loss": 1.0, "m": float("nan")}, "not JSON-able")]


def square(p: dict[str, Any]) -> dict[str, Any]:
    return {"loss": p["x"] ** 2, "x_seen": p["x"], "tags": ["a", "b"]}


def raises(p: dict[str, Any]) -> float:
    raise ValueError(f"boom at x={p['x']}")


def garbage(p: dict[str, Any]) -> Any:
    return BAD_RESULTS[p["i"]][0]


def crash_at(p: dict[str, Any]) -> float:
    if p.get("crash"):
        os._exit(9)  # the process running the task dies mid-batch
    return float(p["x"])


def nap(p: dict[str, Any]) -> float:
    time.sleep(p.get("sleep", 0))
    return float(p.get("x", 0.0))


# ---------------------------------------------------------------- the harnesses


@dataclass
class Harness:
    """How a test gets a started manager of one kind, and what that kind can do.

    Attributes:
        kind: the manager's name in test ids.
        make: builds a fresh, unstarted manager for the compute class names given
            (none: the default class, key None); two workers in all.
        processes: trials run in processes of their own (they can crash, time out).
        commands: shell-command objectives are supported.
        slow_s: seconds a ``nap`` trial sleeps to be still running when the test acts
            (0 for the simulator, whose runtimes come from its model instead).
    """

    kind: str
    make: Callable[[Sequence[str]], ExecutionManager]
    processes: bool = True
    commands: bool = True
    slow_s: float = 60.0
    started: list[ExecutionManager] = field(default_factory=list)

    def start(self, objective: Any, **settings: Any) -> ExecutionManager:
        classes = settings.get("compute_classes", ())
        m = self.make([c.name for c in classes])
        self.started.append(m)
        m.start(RunSettings(f"conf-{self.kind}", objective, **settings))
        return m

    @staticmethod
    def drain(m: ExecutionManager, n: int, limit: float = 60.0) -> list[TrialOutcome]:
        """The outcomes of ``n`` trials, polling ``wait`` for up to ``limit`` seconds."""
        out: list[TrialOutcome] = []
        end = time.time() + limit
        while len(out) < n and time.time() < end:
            out += m.wait(1.0)
        assert len(out) == n, f"expected {n} outcomes within {limit:g} s, got {out}"
        return sorted(out, key=lambda o: o.trial_id)


def _sim_runtime(space_id: str, params: dict[str, Any], key: Any) -> float:
    return 1000.0 if params.get("slow") else 0.5


def _local(classes: Sequence[str]) -> ExecutionManager:
    from shadho.managers.local import LocalManager

    return LocalManager(workers=2)


def _sim(classes: Sequence[str]) -> ExecutionManager:
    from shadho.sim import SimulatedManager

    workers = {c: 2 // len(classes) for c in classes} if classes else {None: 2}
    return SimulatedManager(workers, _sim_runtime, noise=0.0, seed=0)


def _workqueue(classes: Sequence[str]) -> ExecutionManager:
    from shadho.managers.workqueue import WorkQueueManager

    return WorkQueueManager(local_workers=2, worker_timeout_s=20)


HARNESSES = {"local": dict(make=_local), "sim": dict(make=_sim, processes=False, commands=False, slow_s=0.0),
             "workqueue": dict(make=_workqueue)}


def _params(processes_only: bool = False) -> list[Any]:
    """One fixture parameter per harness (Work Queue's carries the ``workqueue`` marker)."""
    return [pytest.param(k, marks=[pytest.mark.workqueue] if k == "workqueue" else [])
            for k, v in HARNESSES.items() if not processes_only or v.get("processes", True)]


def _harness(kind: str) -> Any:
    h = Harness(kind, **HARNESSES[kind])
    yield h
    for m in h.started:
        m.stop()


@pytest.fixture(params=_params())
def harness(request: pytest.FixtureRequest) -> Any:
    """Every manager."""
    yield from _harness(request.param)


@pytest.fixture(params=_params(processes_only=True))
def proc_harness(request: pytest.FixtureRequest) -> Any:
    """The managers whose trials run in processes of their own (all but the simulator)."""
    yield from _harness(request.param)


def _task(task_id: int, *params: dict[str, Any], compute_class: str | None = None) -> TaskSpec:
    """Task ``task_id`` of trials ``10 * task_id``, ``10 * task_id + 1``... (one per params)."""
    return TaskSpec(task_id, "s", tuple((10 * task_id + i, p) for i, p in enumerate(params)), compute_class)


def _settled(m: ExecutionManager, n: int, limit: float = 15.0) -> bool:
    """Whether, with every outcome back, ``in_flight`` falls to 0 and ``capacity`` offers
    ``n`` tasks again within ``limit`` seconds (a finished task's process may take a
    moment to end what it started and exit), with no further outcome meanwhile."""
    end = time.time() + limit
    while m.in_flight or m.capacity()[None] < n:
        if time.time() > end:
            return False
        assert m.wait(0.1) == []
    return True


# ---------------------------------------------------------------- the interface itself


def test_a_manager_without_in_flight_cannot_be_made():
    class Forgetful(ExecutionManager):  # fills every abstract method but in_flight
        def start(self, settings: RunSettings) -> None: ...
        def capacity(self) -> dict[str | None, int]: return {None: 1}
        def submit(self, task: TaskSpec) -> None: ...
        def wait(self, timeout: float) -> list[TrialOutcome]: return []

    with pytest.raises(TypeError, match="in_flight"):
        Forgetful()  # type: ignore[abstract]


# ---------------------------------------------------------------- every manager


def test_submit_wait_and_in_flight(harness: Harness):
    m = harness.start(square)
    free = m.capacity()
    assert list(free) == [None] and free[None] >= 2, free
    n = free[None]
    for i in range(n):
        m.submit(_task(i, {"x": float(i)}))
    assert m.in_flight == n and m.capacity() == {None: 0}
    out = harness.drain(m, n)
    assert _settled(m, n)
    assert [o.trial_id for o in out] == [10 * i for i in range(n)]
    for i, o in enumerate(out):
        assert o.ok and not o.lost and o.error is None, o
        assert o.loss == float(i) ** 2 and o.results == {"x_seen": float(i), "tags": ["a", "b"]}, o
        assert o.worker and o.compute_class is None
        assert o.start_time is not None and o.finish_time is not None and o.start_time <= o.finish_time
    assert m.wait(0) == []


def test_capacity_is_per_compute_class_and_outcomes_name_the_class(harness: Harness):
    classes = (ComputeClass("a", "cores", 1), ComputeClass("b", "cores", 1))
    m = harness.start(square, compute_classes=classes)
    free = m.capacity()
    assert set(free) == {"a", "b"} and all(n >= 1 for n in free.values()), free
    m.submit(_task(1, {"x": 1.0}, compute_class="a"))
    m.submit(_task(2, {"x": 2.0}, compute_class="b"))
    assert m.capacity()["a"] == free["a"] - 1 and m.capacity()["b"] == free["b"] - 1
    a, b = harness.drain(m, 2)
    assert (a.compute_class, a.loss, b.compute_class, b.loss) == ("a", 1.0, "b", 4.0)


def test_a_raising_objective_is_a_failed_trial_with_its_cause(harness: Harness):
    m = harness.start(raises)
    m.submit(_task(1, {"x": 3.5}))
    (o,) = harness.drain(m, 1)
    assert not o.ok and not o.lost and o.loss is None
    assert "ValueError" in o.error and "boom at x=3.5" in o.error, o.error


def test_nan_and_garbage_results_fail_naming_the_problem(harness: Harness):
    m = harness.start(garbage)
    m.submit(_task(1, *({"i": i} for i in range(len(BAD_RESULTS)))))
    out = harness.drain(m, len(BAD_RESULTS))
    for o, (value, phrase) in zip(out, BAD_RESULTS):
        assert not o.ok and not o.lost, (value, o)
        assert o.error.startswith("bad result: ") and phrase in o.error, (value, o.error)


def test_batched_trials_each_get_an_outcome_in_order(harness: Harness):
    m = harness.start(square)
    m.submit(_task(1, *({"x": float(x)} for x in range(4))))
    assert m.in_flight >= 1
    out = harness.drain(m, 4)
    assert _settled(m, 2)
    assert [o.loss for o in out] == [0.0, 1.0, 4.0, 9.0] and all(o.ok for o in out)
    for a, b in zip(out, out[1:]):  # one after the other in one task
        assert b.start_time >= a.finish_time - 1e-3, (a, b)


def test_cancel_all_returns_the_unfinished_trials_and_the_manager_goes_on(harness: Harness):
    m = harness.start(nap)
    m.submit(_task(1, {"sleep": harness.slow_s, "slow": True}))
    m.submit(_task(2, {"sleep": harness.slow_s, "slow": True}, {"sleep": harness.slow_s, "slow": True}))
    if harness.processes:  # the simulator's wait jumps its clock to the next completion
        assert m.wait(0.5) == []  # ... the others' tasks start meanwhile
    assert sorted(m.cancel_all()) == [10, 20, 21]
    assert m.in_flight == 0 and _settled(m, 2)
    assert m.cancel_all() == []
    m.submit(_task(3, {"x": 7.0}))
    (o,) = harness.drain(m, 1)  # nothing of the cancelled tasks comes back
    assert o.trial_id == 30 and o.ok and o.loss == 7.0


def test_stop_abandons_unfinished_tasks_and_may_be_called_twice(harness: Harness):
    m = harness.start(nap)
    m.submit(_task(1, {"sleep": harness.slow_s, "slow": True}))
    t0 = time.time()
    m.stop()
    m.stop()
    assert time.time() - t0 < 15


# ---------------------------------------------------------------- managers running processes


def test_a_crash_blames_the_running_trial_and_loses_the_later_ones(proc_harness: Harness):
    m = proc_harness.start(crash_at)
    m.submit(_task(1, {"x": 1.0}, {"x": 2.0, "crash": True}, {"x": 3.0}))
    done, blamed, later = proc_harness.drain(m, 3)
    assert done.ok and done.loss == 1.0
    assert not blamed.ok and not blamed.lost and "status 9" in blamed.error, blamed
    assert later.lost and later.error is None, later  # not its fault: the driver runs it again
    assert _settled(m, 2)


def test_task_timeout_fails_the_trial_naming_the_limit(proc_harness: Harness):
    m = proc_harness.start(nap, task_timeout=1)
    t0 = time.time()
    m.submit(_task(1, {"sleep": 60}, {"x": 2.0}))
    slow, other = proc_harness.drain(m, 2, limit=45)
    assert time.time() - t0 < 40
    assert not slow.ok and not slow.lost and "task_timeout=1 s" in slow.error, slow
    assert other.ok or other.lost, other  # never FAILED for its neighbour's time


# ---------------------------------------------------------------- shell-command objectives

_SCRIPT = textwrap.dedent("""
    import json, sys
    p = json.load(open("hyperparameters.json"))
    if p.get("garble"):
        open("performance.json", "w").write("{not json")
    else:
        json.dump({"loss": p["x"] ** 2, "tag": sys.argv[-1]}, open("performance.json", "w"))
    sys.exit(p.get("rc", 0))
""")


def test_shell_commands_follow_the_original_protocol(harness: Harness, tmp_path: Path):
    script = tmp_path / "obj.py"
    script.write_text(_SCRIPT)
    cmd = f"{sys.executable} obj.py"
    if not harness.commands:
        with pytest.raises(TypeError, match="callable"):
            harness.start(cmd, inputs=(FileSpec(str(script), "obj.py"),))
        return
    m = harness.start(cmd, inputs=(FileSpec(str(script), "obj.py"),))
    m.submit(_task(1, {"x": 3.0}))
    m.submit(_task(2, {"x": 1.0, "rc": 3}, {"x": 1.0, "garble": True}))
    ok, exited, garbled = harness.drain(m, 3)
    assert ok.ok and ok.loss == 9.0 and ok.results == {"tag": "10.s.default"}, ok
    assert not exited.ok and "command exited with status 3" in exited.error, exited
    assert not garbled.ok and "malformed result file" in garbled.error, garbled
    assert not exited.lost and not garbled.lost and _settled(m, 2)

