"""Settings are checked once (shadho/settings.py): the driver and the managers give the same
answer for the same value, and a manager can be passed to ``Shadho`` already configured."""
from __future__ import annotations

import dataclasses

import pytest

from shadho import Shadho, spaces
from shadho.managers.local import LocalManager
from shadho.managers.workqueue import WorkQueueManager
from shadho.settings import LocalSettings, SearchSettings, WorkQueueSettings
from shadho.trial import TrialState

SPEC = {"x": spaces.uniform(-1, 1)}


def quad(p):
    return p["x"] ** 2


def _error(fn, *a, **kw):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*a, **kw)
    return type(info.value), str(info.value)


# (keyword, bad value, exception): a wrong type is a TypeError, a bad value a ValueError.
WQ_BAD = [
    ("port", None, TypeError), ("port", "9123", TypeError), ("port", True, TypeError),
    ("port", 70000, ValueError), ("port", -1, ValueError), ("port", [10, 5], ValueError),
    ("port", [0, 10], ValueError), ("port", [1, 2, 3], TypeError),
    ("password", "/no/such/pw", ValueError), ("password", 3, TypeError),
    ("local_workers", -1, ValueError), ("local_workers", {}, TypeError), ("local_workers", True, TypeError),
    ("name", 3, TypeError), ("catalog", [], TypeError), ("worker_python", {}, TypeError),
    ("max_queued_tasks", 0, ValueError), ("max_queued_tasks", "x", TypeError),
]


@pytest.mark.parametrize("key,value,exc", WQ_BAD)
def test_driver_and_work_queue_manager_answer_alike(key, value, exc, db):
    """The same bad value gives the same exception, with the same message, everywhere."""
    from_settings = _error(WorkQueueSettings, **{key: value})
    assert from_settings[0] is exc
    assert _error(WorkQueueManager, **{key: value}) == from_settings
    assert _error(Shadho, "e", quad, SPEC, backend=db, manager="workqueue", **{key: value}) == from_settings


@pytest.mark.parametrize("value,exc", [(0, ValueError), (-2, ValueError), ("2", TypeError), (2.0, TypeError)])
def test_local_manager_and_driver_answer_alike(value, exc, db):
    """Before, Shadho(local_workers=0) passed and the local manager refused it at run()."""
    from_settings = _error(LocalSettings, workers=value)
    assert from_settings[0] is exc and "local manager" in from_settings[1]
    assert _error(LocalManager, workers=value) == from_settings
    assert _error(Shadho, "e", quad, SPEC, backend=db, manager="local", local_workers=value) == from_settings


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(exp_key=""), ValueError, "exp_key must be a non-empty string"),
    (dict(exp_key=3), TypeError, "exp_key must be a non-empty string"),
    (dict(max_tasks=1.5), TypeError, "max_tasks must be None or an int >= 0"),
    (dict(max_tasks=-1), ValueError, "max_tasks must be None or an int >= 0"),
    (dict(task_timeout=0), ValueError, "task_timeout must be a positive number of seconds"),
    (dict(task_timeout="1"), TypeError, "task_timeout must be a positive number of seconds"),
    (dict(hyperparameters_per_task=0), ValueError, "hyperparameters_per_task must be an int >= 1"),
    (dict(retry_failed=1), TypeError, "retry_failed must be True or False"),
    (dict(sampler_options=[1]), TypeError, "sampler_options must be a dict"),
])
def test_search_settings_name_what_is_valid(kwargs, exc, msg, db):
    args = {"exp_key": "e", "backend": db, **kwargs}
    with pytest.raises(exc, match=msg):
        SearchSettings(**args)
    exp_key = args.pop("exp_key")
    with pytest.raises(exc, match=msg):
        Shadho(exp_key, quad, SPEC, **args)


def test_settings_are_frozen_and_normalised(db):
    opt = Shadho("e", quad, SPEC, backend=db, timeout=-1, port=[9000, 9100], max_tasks=3)
    assert opt.settings.timeout is None and opt.timeout is None and opt.max_tasks == 3
    assert opt.workqueue_settings.port == (9000, 9100)
    assert opt.options["port"] == [9000, 9100]  # the keyword view keeps what was given
    with pytest.raises(dataclasses.FrozenInstanceError):
        opt.settings.max_tasks = 5  # type: ignore[misc]
    with pytest.raises(AttributeError, match=r"fixed at construction.*Shadho\(..., max_tasks=...\)"):
        opt.max_tasks = 5  # type: ignore[misc]


def test_unknown_work_queue_option_suggests_the_valid_one(db):
    with pytest.raises(TypeError, match=r"worker_timout \(did you mean 'worker_timeout_s'\?\); valid: "):
        WorkQueueManager(worker_timout=5)
    with pytest.raises(TypeError, match=r"worker_timout \(did you mean 'worker_timeout_s'\?\)"):
        Shadho("e", quad, SPEC, backend=db, worker_options={"worker_timout": 5})  # at construction, not run()


def test_a_configured_manager_takes_no_manager_keywords(db):
    with pytest.raises(TypeError, match=r"port=, local_workers= configure the manager Shadho builds; "
                                         r"manager=WorkQueueManager\(...\) is already configured"):
        Shadho("e", quad, SPEC, backend=db, manager=WorkQueueManager(), port=9123, local_workers=1)


def test_a_configured_local_manager_runs(db):
    opt = Shadho("e", quad, SPEC, backend=db, manager=LocalManager(workers=2), max_tasks=4, quiet=True,
                 seed=0, timeout=120)
    trials = opt.run()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4


@pytest.mark.workqueue
def test_a_configured_work_queue_manager_runs_with_real_workers(db):
    manager = WorkQueueManager(local_workers=2, port=0, worker_timeout_s=30)
    opt = Shadho("e", quad, SPEC, backend=db, manager=manager, max_tasks=4, quiet=True, seed=0, timeout=120)
    trials = opt.run()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert {t.worker for t in trials} and all(t.worker for t in trials)


def test_work_queue_options_carry_their_unit_and_old_names_still_work():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = WorkQueueManager(worker_timeout=20, connect_notice_every=5)
    assert m.options["worker_timeout_s"] == 20 and m.options["connect_notice_every_s"] == 5
    assert "worker_timeout" not in m.options
    assert any("use worker_timeout_s=" in str(w.message) for w in caught if w.category is DeprecationWarning)
    with pytest.raises(TypeError, match="not both"):
        WorkQueueManager(worker_timeout=20, worker_timeout_s=30)
