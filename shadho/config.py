"""The original SHADHO's ``opt.config`` and keyword arguments, mapped onto our options.

SHADHO 0.4 scripts configure a search after construction (``opt.config.manager = 'local'``,
``opt.config.workqueue.name = 'x'``) and pass keywords we no longer need (``max_evals``,
``save_frequency``, ``files``). This module accepts both, warns (``DeprecationWarning``,
pointing at the user's line) where a keyword of ``Shadho()`` is the better way, and resolves
everything into plain option values in one place (:func:`apply_config`) before ``run()``.

Example:
    >>> cfg = LegacyConfig(manager='local')
    >>> cfg.workqueue.port = 9123
    >>> cfg['global']['manager']
    'local'
    >>> cfg.workqueue.nmae = 'x'
    Traceback (most recent call last):
    ...
    shadho.config.ConfigKeyError: opt.config.workqueue has no key 'nmae' (did you mean 'name'?); valid: debugfile, logfile, name, password, port, shutdown
"""
from __future__ import annotations

import difflib
import os
import sys
import warnings
from typing import Any, Iterable, Iterator

from shadho.errors import ShadhoError

__all__ = ["LegacyConfig", "ConfigKeyError", "did_you_mean", "legacy_kwargs", "apply_config", "configure",
           "add_legacy_files"]

#: The original's sections and keys. ``None``: no value set (our own default applies).
_KEYS: dict[str, tuple[str, ...]] = {
    "global": ("wrapper", "utils", "output", "result_file", "optimize", "param_file", "backend",
               "manager", "shadho_dir"),
    "workqueue": ("port", "name", "shutdown", "logfile", "debugfile", "password"),
    "backend": ("type", "url"),
}
#: Keys whose value changes what we do; the rest are accepted and have no effect.
_MAPPED = {("global", "manager"), ("workqueue", "port"), ("workqueue", "name"), ("workqueue", "password")}
#: Values of unmapped keys that mean what we do anyway (no warning needed).
_SAME = {("global", "result_file"): "performance.json", ("global", "param_file"): "hyperparameters.json",
         ("global", "optimize"): "loss"}
_WHY = {
    "backend": "results are always stored in the SQLite (or .json) file given as backend=",
    "shutdown": "shadho stops only the workers it started itself (local_workers=)",
}


class ConfigKeyError(ShadhoError, AttributeError, KeyError):
    """An ``opt.config`` key the original SHADHO did not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(word: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid word, or ``""``.

    Example:
        >>> did_you_mean('max_task', ['max_tasks', 'timeout'])
        " (did you mean 'max_tasks'?)"
    """
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _warn(message: str) -> None:
    """A DeprecationWarning attributed to the user's line (the first frame outside this file),
    so Python shows it when that line is in the script being run."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)


class _Section:
    """One config section: attribute and item access to the original's keys only."""

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", values)

    def _check(self, key: str) -> None:
        keys = _KEYS[self._name]
        if key not in keys:
            where = "opt.config" if self._name == "global" else f"opt.config.{self._name}"
            raise ConfigKeyError(f"{where} has no key {key!r}{did_you_mean(key, keys)}; "
                                 f"valid: {', '.join(sorted(keys))}")

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        self._check(key)
        return self._values.get(key)

    def __setattr__(self, key: str, value: Any) -> None:
        self._check(key)
        self._values[key] = value
        where = f"opt.config.{key}" if self._name == "global" else f"opt.config.{self._name}.{key}"
        if (self._name, key) in _MAPPED:
            _warn(f"{where} is deprecated: use Shadho(..., {key}=...)")
        elif _SAME.get((self._name, key)) != value:
            why = _WHY.get(key, _WHY.get(self._name, "shadho has no such setting"))
            _warn(f"{where} has no effect: {why}")

    __getitem__ = __getattr__

    def __setitem__(self, key: str, value: Any) -> None:
        self.__setattr__(key, value)

    def __contains__(self, key: object) -> bool:
        return key in _KEYS[self._name]

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS[self._name])

    def __repr__(self) -> str:
        return f"<opt.config.{self._name} {dict((k, self._values.get(k)) for k in _KEYS[self._name])}>"


class LegacyConfig:
    """The original ``opt.config``: sections ``global`` (also reachable as attributes of the config
    itself and as ``.shadho``), ``workqueue`` and ``backend``, by attribute or by item.

    Reading a key gives the value set here, or the effective setting for the mapped keys
    (``manager``, ``workqueue.name/port/password``), or None.

    Example:
        >>> c = LegacyConfig(manager='workqueue')
        >>> c.workqueue.name = 'shadho_sin_ex'
        >>> c.config['workqueue']['name'], c.manager
        ('shadho_sin_ex', 'workqueue')
    """

    def __init__(self, manager: str | None = None, name: str | None = None, port: Any = 0,
                 password: str | None = None) -> None:
        sections = {"global": {"manager": manager},
                    "workqueue": {"name": name, "port": port, "password": password}, "backend": {}}
        groups = {k: _Section(k, v) for k, v in sections.items()}
        object.__setattr__(self, "_groups", groups)
        object.__setattr__(self, "_initial", {k: dict(v) for k, v in sections.items()})

    @property
    def config(self) -> "LegacyConfig":
        """The original's ``config.config`` dict of sections (item access)."""
        return self

    @property
    def shadho(self) -> _Section:
        return self._groups["global"]

    @property
    def workqueue(self) -> _Section:
        return self._groups["workqueue"]

    @property
    def backend(self) -> _Section:
        return self._groups["backend"]

    def __getitem__(self, section: str) -> _Section:
        if section not in self._groups:
            raise ConfigKeyError(f"opt.config has no section {section!r}{did_you_mean(section, self._groups)}; "
                                 f"valid: {', '.join(self._groups)}")
        return self._groups[section]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        return getattr(self._groups["global"], key)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in ("workqueue", "backend", "shadho", "config"):
            raise ConfigKeyError(f"opt.config.{key} is a section; set its keys, e.g. opt.config.workqueue.name")
        self._groups["global"].__setattr__(key, value)

    def changed(self) -> dict[tuple[str, str], Any]:
        """``{(section, key): value}`` of every value set since construction."""
        out = {}
        for sec, group in self._groups.items():
            for key, value in group._values.items():
                if self._initial[sec].get(key, None) != value or key not in self._initial[sec]:
                    out[(sec, key)] = value
        return out


def _port(value: Any) -> Any:
    """The original kept ports as text: digits are a port, other text is no port number."""
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise ValueError(f"opt.config.workqueue.port must be a port number (0: any free port), got {value!r}")
        return int(value)
    return value


def apply_config(config: LegacyConfig) -> dict[str, Any]:
    """The options ``opt.config`` changes: ``manager``, ``name``, ``port``, ``password``.

    Example:
        >>> c = LegacyConfig()
        >>> c.workqueue.port = '9123'
        >>> apply_config(c)
        {'port': 9123}
    """
    out: dict[str, Any] = {}
    for (sec, key), value in config.changed().items():
        if (sec, key) not in _MAPPED:
            continue
        if key == "manager":
            out["manager"] = value
        elif key == "port":
            out["port"] = _port(value)
        elif key == "password":
            # The original's default was the string 'False' (no password).
            if value not in (False, None, "False", "false", ""):
                out["password"] = os.fspath(value)
        else:
            out[key] = value
    return out


def legacy_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, Any]]]:
    """Split the original's keywords out of ``kwargs``.

    Returns ``(remaining kwargs, [(keyword, warning, value)])``. ``files`` is returned with
    its value for the caller to add; ``max_evals`` and ``save_frequency`` have no effect.
    """
    rest = dict(kwargs)
    found = []
    if "max_evals" in rest:
        v = rest.pop("max_evals")
        found.append(("max_evals", "max_evals= has no effect: every trial is evaluated once "
                      "(max_resubmissions= re-runs failed ones)", v))
    if "save_frequency" in rest:
        v = rest.pop("save_frequency")
        found.append(("save_frequency", "save_frequency= has no effect: every result is saved to "
                      "the results file as it arrives", v))
    if "files" in rest:
        v = rest.pop("files")
        found.append(("files", "files= is deprecated: use opt.add_input_file(path) for each file", v))
    return rest, found


def add_legacy_files(opt: Any, files: Any) -> None:
    """The original ``files=``: paths, or ``(local, remote, 'input'|'output', cache)`` tuples."""
    if files is None:
        return
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    for f in files:
        if isinstance(f, (tuple, list)):
            local, remote, kind, cache = (list(f) + [None, "input", None])[:4]
            if kind not in ("input", "output"):
                raise ValueError(f"files=: the type of {local!r} must be 'input' or 'output', got {kind!r}")
            add = opt.add_input_file if kind == "input" else opt.add_output_file
            add(local, remote, *(() if cache is None else (bool(cache),)))
        else:
            opt.add_input_file(os.fspath(f))


def configure(opt: Any) -> None:
    """Apply ``opt.config`` to ``opt``'s settings before a run, checked as ``Shadho()`` checks them."""
    import dataclasses

    from shadho.managers.base import ExecutionManager
    from shadho.settings import MANAGERS, LocalSettings

    changes = apply_config(opt.config)
    manager = changes.pop("manager", None)
    if manager is not None and not isinstance(opt.manager_choice, ExecutionManager):
        if manager not in MANAGERS:
            raise ValueError(f"opt.config.manager must be 'local' or 'workqueue', got {manager!r}"
                             f"{did_you_mean(str(manager), MANAGERS)}")
        opt.manager_choice = manager
    if changes:
        try:
            opt.workqueue_settings = dataclasses.replace(opt.workqueue_settings, **changes)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"opt.config.workqueue.{exc}") from None
    if opt.manager_choice == "local" and opt.local_settings is None:
        wq = opt.workqueue_settings
        opt.local_settings = LocalSettings.from_keywords(wq.local_workers, wq.options.get("memory_mb"))
    if opt.manager_choice == "workqueue":
        from shadho.managers.wq_setup import require_work_queue

        require_work_queue()
