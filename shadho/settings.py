"""A search's settings, each checked once, in one place.

:class:`SearchSettings` holds what the driver itself uses (budget, timeouts, heuristics),
:class:`LocalSettings` and :class:`WorkQueueSettings` what each execution manager needs.
``Shadho()`` builds them from its keywords and the managers build theirs from their own
constructor arguments, so the same value gets the same answer everywhere: a value of the
wrong type raises ``TypeError``, a value of the right type but out of range ``ValueError``,
and both messages name what is valid.

Example:
    >>> WorkQueueSettings(port=[9123, 9130]).port
    (9123, 9130)
    >>> WorkQueueSettings(port=70000)
    Traceback (most recent call last):
    ...
    ValueError: port must be a port number in 0..65535 (0: any free port) or a [low, high] range, got 70000
    >>> SearchSettings('e', 'r.db', timeout=-1).timeout is None   # negative: no limit
    True
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

__all__ = ["SearchSettings", "LocalSettings", "WorkQueueSettings", "MANAGERS", "MANAGER_KEYS",
           "manager_choice", "manager_settings",
           "check_flag", "check_int", "check_number", "check_port", "check_password", "check_local_workers"]

#: The managers ``Shadho(manager=...)`` builds by name.
MANAGERS = ("local", "workqueue")
#: Keywords of ``Shadho()`` that configure its manager (not the search).
MANAGER_KEYS = ("local_workers", "port", "password", "name", "catalog", "worker_python", "memory_mb",
                "worker_options")
_BACKENDS = (".db", ".sqlite", ".sqlite3", ".json")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_flag(name: str, value: Any) -> bool:
    """``value`` as a bool; TypeError unless it is True or False (numpy's bool too)."""
    import numpy as np

    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _checked(name: str, value: Any, what: str, type_ok: bool, value_ok: Callable[[], bool]) -> Any:
    """``value`` unchanged; TypeError when not ``type_ok``, ValueError when not ``value_ok()``."""
    if not type_ok:
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if not value_ok():
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int, optional: bool = False) -> int | None:
    """``value`` as an int >= ``minimum`` (None allowed when ``optional``)."""
    if value is None and optional:
        return None
    what = f"{'None or ' if optional else ''}an int >= {minimum}"
    return int(_checked(name, value, what, _is_int(value), lambda: value >= minimum))


def check_number(name: str, value: Any, unit: str, optional: bool = True) -> float | None:
    """``value`` as a positive number of ``unit`` (None allowed when ``optional``)."""
    if value is None and optional:
        return None
    what = f"a positive number of {unit}{' or None' if optional else ''}"
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    return _checked(name, value, what, number, lambda: value > 0)


def check_text(name: str, value: Any) -> str | None:
    """``value`` as a string (a path-like becomes its path) or None."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a string or None, got {value!r}")
    return os.fspath(value)


def check_options(name: str, value: Any) -> dict[str, Any] | None:
    """``value`` as a dict of keyword arguments or None."""
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of keyword arguments or None, got {value!r}")
    return None if value is None else dict(value)


def check_port(value: Any) -> int | tuple[int, int]:
    """A port (0: any free port) or a ``(low, high)`` range of ports to try.

    Example:
        >>> check_port(0), check_port([9000, 9100])
        (0, (9000, 9100))
    """
    what = "a port number in 0..65535 (0: any free port) or a [low, high] range"
    if _is_int(value):
        if not 0 <= value < 65536:
            raise ValueError(f"port must be {what}, got {value!r}")
        return int(value)
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value)):
        raise TypeError(f"port must be {what}, got {value!r}")
    if not (0 < value[0] <= value[1] < 65536):
        raise ValueError(f"port must be {what}, got {value!r}")
    return (int(value[0]), int(value[1]))


def check_password(value: Any) -> str | None:
    """The path of an existing password file, or None (a password is generated)."""
    path = check_text("password", value)
    if path is not None and not os.path.isfile(path):
        raise ValueError(f"password file {path!r} does not exist; give the path of an existing file "
                         "or None (a password is generated)")
    return path


def check_local_workers(value: Any) -> int | tuple[dict[str, Any], ...] | None:
    """None, an int >= 0 or a list of worker specs (dicts with cores, memory, features)."""
    what = "None, an int >= 0 or a list of worker specs (dicts with cores, memory, features)"
    if value is None:
        return None
    if _is_int(value):
        if value < 0:
            raise ValueError(f"local_workers must be {what}, got {value!r}")
        return int(value)
    if isinstance(value, (list, tuple)) and all(isinstance(w, dict) for w in value):
        return tuple(value)
    raise TypeError(f"local_workers must be {what}, got {value!r}")


@dataclass(frozen=True)
class SearchSettings:
    """What the driver itself uses, checked at construction (see ``Shadho`` for each).

    Example:
        >>> s = SearchSettings('e', 'r.db', max_tasks=10)
        >>> s.max_tasks, s.hyperparameters_per_task
        (10, 1)
        >>> SearchSettings('e', 'r.txt')
        Traceback (most recent call last):
        ...
        ValueError: backend must be a .db/.sqlite (SQLite) or .json path, got 'r.txt'
    """

    exp_key: str
    backend: str
    timeout: float | None = 600
    max_tasks: int | None = None
    max_queued_tasks: int = 100
    await_pending: bool = False
    max_resubmissions: int = 0
    seed: int | None = None
    use_complexity: bool = True
    use_uncertainty: bool = True
    quiet: bool = False
    task_timeout: float | None = None
    hyperparameters_per_task: int = 1
    reassign_every: int = 10
    cost_aware: bool = False
    retry_failed: bool = False
    sampler_options: dict[str, Any] | None = None
    #: The budget of a multi-fidelity search (a :class:`~shadho.fidelity.Fidelity` or its
    #: mapping/tuple, see ``Fidelity.of``); None: every trial runs at one budget.
    fidelity: Any = None
    #: MB one checkpoint may hold (None: 512); all of a search's together hold at most 8 times it.
    checkpoint_limit_mb: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.exp_key, str) or not self.exp_key:
            raise (TypeError if not isinstance(self.exp_key, str) else ValueError)(
                f"exp_key must be a non-empty string, got {self.exp_key!r}")
        backend = os.fspath(self.backend)
        if not backend.endswith(_BACKENDS):
            raise ValueError(f"backend must be a .db/.sqlite (SQLite) or .json path, got {backend!r}")
        t = self.timeout
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))):
            raise TypeError(f"timeout must be seconds (a number) or None, got {t!r}")
        fixed = {"backend": backend, "timeout": None if t is None or t < 0 else float(t),
                 "max_tasks": check_int("max_tasks", self.max_tasks, 0, optional=True),
                 "max_queued_tasks": check_int("max_queued_tasks", self.max_queued_tasks, 1),
                 "max_resubmissions": check_int("max_resubmissions", self.max_resubmissions, 0),
                 "hyperparameters_per_task": check_int("hyperparameters_per_task",
                                                       self.hyperparameters_per_task, 1),
                 "reassign_every": check_int("reassign_every", self.reassign_every, 1),
                 "task_timeout": check_number("task_timeout", self.task_timeout, "seconds"),
                 "sampler_options": check_options("sampler_options", self.sampler_options)}
        if self.seed is not None and not _is_int(self.seed):
            raise TypeError(f"seed must be an int or None, got {self.seed!r}")
        for flag in ("await_pending", "use_complexity", "use_uncertainty", "quiet", "cost_aware",
                     "retry_failed"):
            fixed[flag] = check_flag(flag, getattr(self, flag))
        fixed["fidelity"] = _check_fidelity(self.fidelity, backend)
        fixed["checkpoint_limit_mb"] = check_number("checkpoint_limit_mb", self.checkpoint_limit_mb, "MB")
        for key, value in fixed.items():
            object.__setattr__(self, key, value)


def _check_fidelity(value: Any, backend: str) -> Any:
    """``value`` as a :class:`~shadho.fidelity.Fidelity` (or None); its rungs live in SQLite.

    Example:
        >>> _check_fidelity({'name': 'epochs', 'min': 1, 'max': 81, 'eta': 3}, 'r.db').budgets
        (1, 3, 9, 27, 81)
    """
    from shadho.fidelity import Fidelity

    fidelity = Fidelity.of(value)
    if fidelity is not None and backend.endswith(".json"):
        raise ValueError(f"fidelity needs a .db/.sqlite results file (its rung records live in SQLite), "
                         f"got backend={backend!r}")
    return fidelity


@dataclass(frozen=True)
class LocalSettings:
    """The local manager's: ``workers`` processes (None: one per CPU), ``memory_mb`` each.

    Example:
        >>> LocalSettings(workers=0)
        Traceback (most recent call last):
        ...
        ValueError: local_workers must be None (one process per CPU) or an int >= 1 for the local manager, got 0
    """

    workers: int | None = None
    memory_mb: float | None = None

    def __post_init__(self) -> None:
        what = "None (one process per CPU) or an int >= 1 for the local manager"
        if self.workers is not None and not _is_int(self.workers):
            raise TypeError(f"local_workers must be {what}, got {self.workers!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"local_workers must be {what}, got {self.workers!r}")
        object.__setattr__(self, "memory_mb", check_number("memory_mb", self.memory_mb, "MB"))

    @classmethod
    def from_keywords(cls, local_workers: Any = None, memory_mb: Any = None) -> "LocalSettings":
        """From ``Shadho()``'s keywords: a list of worker specs means that many processes."""
        if isinstance(local_workers, (list, tuple)):
            local_workers = len(check_local_workers(local_workers) or ())
        return cls(local_workers, memory_mb)


@dataclass(frozen=True)
class WorkQueueSettings:
    """The Work Queue manager's (see :class:`~shadho.managers.workqueue.WorkQueueManager`).

    ``options`` are its further keyword options (``worker_timeout_s``, ``memory_mb``, ...),
    checked against the manager's table of valid ones (the names before units were added,
    such as ``worker_timeout``, still work, with a DeprecationWarning).

    Example:
        >>> WorkQueueSettings(local_workers=2, name='svm').name
        'svm'
        >>> WorkQueueSettings(options={'worker_timout': 5})
        Traceback (most recent call last):
        ...
        TypeError: WorkQueueManager got unknown option(s) worker_timout (did you mean 'worker_timeout_s'?); valid: ...
    """

    local_workers: int | tuple[dict[str, Any], ...] | None = None
    port: int | tuple[int, int] = 0
    password: str | None = None
    name: str | None = None
    catalog: str | None = None
    worker_python: str | None = None
    max_queued_tasks: int = 100
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        from shadho.config import did_you_mean
        from shadho.managers.workqueue import OPTIONS

        from shadho.deprecation import renamed_options
        from shadho.managers.workqueue import RENAMED_OPTIONS

        opts = renamed_options(dict(check_options("worker_options", self.options) or {}), RENAMED_OPTIONS,
                               "WorkQueueManager", stacklevel=5)
        bad = sorted(set(opts) - set(OPTIONS))
        if bad:
            raise TypeError(f"WorkQueueManager got unknown option(s) {', '.join(bad)}"
                            f"{did_you_mean(bad[0], OPTIONS)}; valid: "
                            f"{', '.join(f'{k} (default {v!r})' for k, v in OPTIONS.items())}")
        check_number("memory_mb", opts.get("memory_mb"), "MB")
        fixed = {"local_workers": check_local_workers(self.local_workers), "port": check_port(self.port),
                 "password": check_password(self.password), "name": check_text("name", self.name),
                 "catalog": check_text("catalog", self.catalog),
                 "worker_python": check_text("worker_python", self.worker_python),
                 "max_queued_tasks": check_int("max_queued_tasks", self.max_queued_tasks, 1), "options": opts}
        for key, value in fixed.items():
            object.__setattr__(self, key, value)


def manager_choice(manager: Any, cmd: Any) -> Any:
    """The manager ``Shadho(manager=...)`` asks for: a name of :data:`MANAGERS` or a configured
    ExecutionManager; None: local for a callable ``cmd``, Work Queue for a shell command."""
    from shadho.managers.base import ExecutionManager

    if isinstance(manager, str) and manager not in MANAGERS:
        raise ValueError(f"unknown manager {manager!r}; valid: {', '.join(MANAGERS)} or an ExecutionManager")
    if manager is not None and not isinstance(manager, (str, ExecutionManager)):
        raise TypeError(f"manager must be {', '.join(MANAGERS)} or an ExecutionManager, got {manager!r}")
    choice = manager if manager is not None else ("local" if callable(cmd) else "workqueue")
    if choice == "workqueue":
        from shadho.managers.wq_setup import require_work_queue
        require_work_queue()  # before any file exists: the fix, not a traceback at run()
    return choice


def manager_settings(choice: Any, given: dict[str, Any], max_queued_tasks: int
                     ) -> tuple["WorkQueueSettings", "LocalSettings | None"]:
    """The manager's settings from ``Shadho()``'s keywords (checked even for the local manager:
    ``opt.config.manager`` may still switch to Work Queue). A configured manager takes none."""
    from shadho.managers.base import ExecutionManager

    if isinstance(choice, ExecutionManager) and given:
        keys = ", ".join(f"{k}=" for k in given)
        raise TypeError(f"{keys} configure the manager Shadho builds; manager={type(choice).__name__}(...) "
                        f"is already configured: give them to its constructor instead")
    local = (LocalSettings.from_keywords(given.get("local_workers"), given.get("memory_mb"))
             if choice == "local" else None)
    extra = check_options("worker_options", given.get("worker_options")) or {}
    wq = WorkQueueSettings(given.get("local_workers"), given.get("port", 0), given.get("password"),
                           given.get("name"), given.get("catalog"), given.get("worker_python"),
                           max_queued_tasks, {"memory_mb": given.get("memory_mb"), **extra})
    return wq, local
