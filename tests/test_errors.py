"""One exception tree: every error shadho raises derives from ShadhoError, and each child
also derives from the built-in exception it refines (so ``except ValueError`` keeps working)."""
from __future__ import annotations

import sys

import pytest

from shadho import errors
from shadho.compute import ComputeClass
from shadho.managers.base import RunSettings, TaskSpec
from shadho.sim import SimulatedManager
from shadho.store import ResultsStore


def test_every_error_class_is_a_shadho_error():
    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert len(classes) >= 10
    assert all(issubclass(c, errors.ShadhoError) for c in classes)
    assert issubclass(errors.ConfigError, ValueError) and issubclass(errors.SpecError, ValueError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.BackendUnavailableError, errors.MissingDependencyError)
    assert issubclass(errors.SimulationError, RuntimeError)


@pytest.mark.parametrize("args, kwargs, match", [
    (("", "cores", 1), {}, "name must be a non-empty string"),
    (("c", "", 1), {}, "resource must be a string such as cores, memory"),
    (("c", "cores", 1), {"max_queued_tasks": 0}, "max_queued_tasks must be an int >= 1"),
    (("c", "cores", -1), {}, "cores must be a positive number"),
    (("c", "feature", "x"), {"memory_mb": -5}, "memory_mb= must be a non-negative number"),
])
def test_compute_class_raises_config_errors(args, kwargs, match):
    with pytest.raises(errors.ConfigError, match=match):
        ComputeClass(*args, **kwargs)


def test_compute_class_has_no_dead_extra_field():
    with pytest.raises(TypeError):
        ComputeClass("c", "cores", 1, extra={})  # type: ignore[call-arg]


def test_simulator_errors_are_shadho_errors():
    m = SimulatedManager({"a": 1}, lambda s, p, c: 1.0, noise=0.0)
    m.start(RunSettings("t", lambda p: p["x"]))
    with pytest.raises(errors.SimulationError, match="no simulated workers of class 'zz'"):
        m.submit(TaskSpec(1, "s", ((10, {"x": 0.5}),), "zz"))
    m.submit(TaskSpec(2, "s", ((11, {"x": 0.5}),), "a"))
    with pytest.raises(errors.SimulationError, match="no idle simulated worker"):
        m.submit(TaskSpec(3, "s", ((12, {"x": 0.5}),), "a"))


def test_missing_pandas_is_a_dependency_error_naming_the_install(tmp_path, monkeypatch):
    from shadho.summary import to_dataframes

    monkeypatch.setitem(sys.modules, "pandas", None)  # what a machine without pandas sees
    with ResultsStore(str(tmp_path / "r.db")) as store:
        exp = store.open_experiment("e", {})
        with pytest.raises(errors.MissingDependencyError, match="pip install pandas"):
            store.to_dataframe(exp)
    with pytest.raises(errors.MissingDependencyError, match="pip install pandas"):
        to_dataframes([], [])
