"""One planning simulation: the real master on a learned model (see :mod:`shadho.planner`).

:func:`run_once` copies the search's history into a temporary results file, runs
:func:`shadho.sim.simulate` on it (the driver, the search's sampler, the real
scheduler rebuilt from that history as a resumed master rebuilds it: each finished trial
learned once, the classes declared with the search's cores and GPUs; Work Queue's per-class
queues, the search's trials per task and each class's measured dead time per task) and returns the new trials on
the virtual clock, with what the master spent per trial.

The master's own time is not on the virtual clock: :func:`master_seconds` estimates
it per trial, as the simulated driver's wall time per trial on this machine plus
Work Queue's dispatch cost at the pool's number of tasks in flight
(``WQ_DISPATCH``: ``/bin/true`` tasks on this machine ran at about 400/s with 4-20
in flight, 190/s with 250 queued and 44/s with 2,000; interpolated in log-log and
extrapolated beyond) with the pool's default queue margin of tasks waiting.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from shadho.plan_model import Draw, LearnedModel
from shadho.store import ResultsStore, TrialUpdate
from shadho.trial import Trial, TrialState

__all__ = ["SimRun", "run_once", "seed_history", "master_seconds", "WQ_DISPATCH"]

#: (tasks waiting, seconds the Work Queue manager spends per dispatched task), measured.
WQ_DISPATCH = ((20, 1 / 400), (250, 1 / 190), (2000, 1 / 44))
_SAMPLERS = ("random", "tpe", "bayes", "gp")
_EXP = "plan"


@dataclass(frozen=True)
class SimRun:
    """The new trials of one simulation (virtual seconds) and its cost on this machine."""

    trials: list[Trial]
    makespan: float
    wall_seconds: float
    decision_seconds: float
    slots: dict[str, int]
    queued_starts: dict[int, float] = field(default_factory=dict)  # see shadho.sim.QueuedWork

    def finished_by(self, t: float) -> list[Trial]:
        return [x for x in self.trials if x.finish_time is not None and x.finish_time <= t]


def sampler_of(settings: Mapping[str, Any]) -> str:
    """The search's sampler when the simulator can run it, else ``'random'``."""
    method = settings.get("method")
    return method if method in _SAMPLERS else "random"


def seed_history(path: str, model: LearnedModel, limit: int) -> int:
    """Write the newest ``limit`` finished trials into a new results file under the rebuilt
    spaces' ids (the simulated master resumes from them); returns their highest id."""
    store = ResultsStore(path)
    try:
        exp = store.open_experiment(_EXP, {"planned": True}, lock=False)
        store.register_spaces(exp, model.spaces)
        last = 0
        for t in model.trials[-limit:] if limit > 0 else []:
            last = store.add_trial(exp, model.new_id[t.space_id], t.params, t.x, t.compute_class)
            store.finish_trials([TrialUpdate(last, t.state, loss=t.loss, error=t.error, worker=t.worker,
                                             start_time=t.start_time, finish_time=t.finish_time,
                                             compute_class=t.compute_class)])
        return last
    finally:
        store.close()


def declared_classes(settings: Mapping[str, Any], slots: Mapping[str, int]) -> list[dict[str, Any]]:
    """The simulated classes as the search declared them (their cores and GPUs: the
    scheduler's prior on their speeds, :attr:`~shadho.compute.ComputeClass.declared_speed`);
    a class the file does not describe (an older file, an assumed class) gets one core.

    >>> declared_classes({"class_resources": {"big": {"cores": 2, "gpus": 1}}}, {"big": 1, "new": 2})
    [{'name': 'big', 'resource': 'cores', 'value': 2, 'gpus': 1}, {'name': 'new', 'resource': 'cores', 'value': 1}]
    """
    described = settings.get("class_resources")
    described = described if isinstance(described, Mapping) else {}
    out = []
    for name in slots:
        res = described.get(name)
        res = res if isinstance(res, Mapping) else {}
        cores, gpus = res.get("cores"), res.get("gpus")
        ok = isinstance(cores, (int, float)) and not isinstance(cores, bool) and cores > 0
        out.append({"name": name, "resource": "cores", "value": cores if ok else 1,
                    **({"gpus": int(gpus)} if isinstance(gpus, (int, float)) and gpus > 0 else {})})
    return out


def run_once(model: LearnedModel, history_db: str, last_id: int, slots: Mapping[str, int],
             heuristics: bool, n_new: int, draw: Draw, seed: int, settings: Mapping[str, Any],
             busy: Mapping[str, list[Any]] | None = None,
             queued: Mapping[str, list[Any]] | None = None) -> SimRun:
    """Simulate ``n_new`` more trials of the search on ``slots`` (class -> trial slots),
    with ``busy`` slots held first (:class:`~shadho.sim.QueuedWork` of the tasks running
    when the plan is made, or seconds) and ``queued`` tasks (:class:`~shadho.sim.QueuedWork`) waiting in the classes' queues."""
    from shadho.sim import simulate

    tmp = tempfile.mkdtemp(prefix="shadho-plan-")
    db = os.path.join(tmp, "plan.db")
    shutil.copyfile(history_db, db)
    # The simulated master resumes the planner's temporary copy and says so on stderr: that
    # line is about the copy, not the user's search, so it is kept unless the run fails.
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            res = simulate(model.spec, model.objective, dict(slots), model.runtime_fn(draw),
                           max_tasks=last_id + n_new, method=sampler_of(settings), use_complexity=heuristics,
                           use_uncertainty=heuristics, noise=0.0, failure_rate=model.failure_fn(draw),
                           seed=seed, backend=db, exp_key=_EXP, queue_margin="auto",
                           task_overhead={c: model.dead[c] for c in slots},
                           compute_classes=declared_classes(settings, slots),
                           busy=dict(busy or {}), queued=dict(queued or {}),
                           hyperparameters_per_task=model.trials_per_task)
    except BaseException:
        sys.stderr.write(said.getvalue())
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    new = [t for t in res.trials if t.id > last_id]
    return SimRun(new, res.makespan, res.wall_seconds, res.decision_seconds, dict(slots), res.queued_starts)


def dispatch_seconds(waiting: float) -> float:
    """Work Queue's seconds per dispatched task with ``waiting`` tasks queued (see the module doc)."""
    xs = np.log([p[0] for p in WQ_DISPATCH])
    ys = np.log([p[1] for p in WQ_DISPATCH])
    x = math.log(max(waiting, 1.0))
    if x <= xs[0]:
        return float(math.exp(ys[0]))
    i = min(int(np.searchsorted(xs, x)) - 1, len(xs) - 2)
    slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
    return float(math.exp(ys[i] + slope * (x - xs[i])))


def master_seconds(run: SimRun, real_slots: int) -> tuple[float, float]:
    """(master seconds per trial, of which the scheduler's), for a pool of ``real_slots``."""
    n = max(1, len(run.trials))
    from shadho.managers.base import default_queue_margin

    # The measured slowdown is with tasks waiting in the manager's queue: a pool keeps
    # about one queue margin of them waiting.
    return run.wall_seconds / n + dispatch_seconds(default_queue_margin(real_slots)), run.decision_seconds / n


def class_busy(trials: list[Trial], until: float) -> dict[str, float]:
    """Seconds each class spent on trials up to ``until`` (trials clipped to the window)."""
    out: dict[str, float] = {}
    for t in trials:
        if t.start_time is None or t.finish_time is None or t.start_time >= until:
            continue
        key = t.compute_class or "default"
        out[key] = out.get(key, 0.0) + min(t.finish_time, until) - t.start_time
    return out


def completions(trials: list[Trial]) -> list[Trial]:
    return [t for t in trials if t.state == TrialState.COMPLETE]
