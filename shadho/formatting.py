"""How shadho writes numbers, durations, times and parameters for people (every renderer).

The text, rich and HTML renderers of a snapshot, the report's plots and the CSV export
all format through these functions, so a loss or a runtime reads the same everywhere.
A missing value is ``-``.

Example:
    >>> number(0.012345678), number(None), duration(75), seconds(0.0421)
    ('0.01235', '-', '1 min 15 s', '42 ms')
    >>> params_text({'C': 1.23456, 'kernel': 'rbf'})
    'C=1.235, kernel=rbf'
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Iterable

__all__ = ["MISSING", "number", "rate", "duration", "seconds", "params_text", "iso_time",
           "flatten", "short_labels", "space_params"]

#: What a missing value is written as.
MISSING = "-"


def number(value: Any, digits: int = 4) -> str:
    """A float to ``digits`` significant digits; None and non-finite floats are ``-``.

    Example:
        >>> number(1234.5678, 6), number(float('nan')), number(3)
        ('1234.57', '-', '3')
    """
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else MISSING
    return str(value)


def rate(value: float | None) -> str:
    """A rate (trials per minute): whole above 10, two significant digits below.

    Example:
        >>> rate(12.6), rate(0.4567), rate(None)
        ('13', '0.46', '-')
    """
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def duration(secs: float | None) -> str:
    """A long duration (elapsed, ETA) rounded, with units.

    Example:
        >>> [duration(s) for s in (4.26, 75, 7322)]
        ['4.3 s', '1 min 15 s', '2 h 2 min']
    """
    if secs is None or not math.isfinite(secs):
        return MISSING
    if secs < 60:
        return f"{secs:.1f} s" if secs < 10 else f"{secs:.0f} s"
    if secs < 3600:
        return f"{int(secs // 60)} min {int(secs % 60)} s"
    return f"{int(secs // 3600)} h {int(secs % 3600 // 60)} min"


def seconds(value: float | None) -> str:
    """A short duration (a runtime) rounded, with its unit.

    Example:
        >>> [seconds(v) for v in (250.0, 4.26, 0.0421, 3.5e-05)]
        ['250 s', '4.26 s', '42 ms', '35 µs']
    """
    if value is None or not math.isfinite(value):
        return MISSING
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 0.1:
        return f"{value:.3g} s"
    return f"{value * 1000:.2g} ms" if value >= 1e-4 else f"{value * 1e6:.2g} µs"


def params_text(params: dict[str, Any] | None) -> str:
    """``name=value`` pairs, floats to 4 significant digits (a None value reads ``None``,
    as in the CSV export, so that it never looks like a missing one).

    Example:
        >>> params_text({'C': 0.1, 'gamma': None}), params_text({})
        ('C=0.1, gamma=None', '-')
    """
    if not params:
        return MISSING
    return ", ".join(f"{k}={number(v) if isinstance(v, float) else v}" for k, v in params.items())


def iso_time(epoch: float | None) -> str | None:
    """``epoch`` seconds as an ISO 8601 UTC time with milliseconds (None stays None).

    Example:
        >>> iso_time(86400.5)
        '1970-01-02T00:00:00.500+00:00'
    """
    if epoch is None:
        return None
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat(timespec="milliseconds")


def flatten(params: Any, prefix: str = "", keep_empty: bool = False) -> dict[str, Any]:
    """Nested params as ``{'dotted.path': value}`` (``keep_empty``: an empty dict stays a value).

    Example:
        >>> flatten({'svm': {'rbf': {'C': 1.0, 'kernel': 'rbf'}}})
        {'svm.rbf.C': 1.0, 'svm.rbf.kernel': 'rbf'}
        >>> flatten({'a': {}}, 'params', keep_empty=True)
        {'params.a': {}}
    """
    if isinstance(params, dict) and (params or not keep_empty or not prefix):
        out: dict[str, Any] = {}
        for k, v in params.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k), keep_empty))
        return out
    return {prefix: params}


def short_labels(labels: Iterable[str]) -> dict[str, str]:
    """Dotted labels without the prefix they share (``svm.rbf.C`` -> ``C``).

    Example:
        >>> short_labels(['svm.rbf.C', 'svm.rbf.gamma'])
        {'svm.rbf.C': 'C', 'svm.rbf.gamma': 'gamma'}
        >>> short_labels(['a.x', 'b.x'])
        {'a.x': 'a.x', 'b.x': 'b.x'}
    """
    labels = list(labels)
    parts = [lab.split(".") for lab in labels]
    common = 0
    if parts:
        shortest = min(len(p) for p in parts)
        while common < shortest - 1 and len({p[common] for p in parts}) == 1:
            common += 1
    return {lab: ".".join(p[common:]) for lab, p in zip(labels, parts)}


def space_params(params: dict[str, Any], dims: Iterable[str]) -> dict[str, Any]:
    """The sampled hyperparameters of a trial, by short name (all params when no dims).

    Example:
        >>> space_params({'svm': {'C': 1.0, 'kernel': 'rbf'}}, ['svm.C'])
        {'C': 1.0}
    """
    flat = flatten(params)
    dims = [d for d in dims if d in flat]
    if not dims:
        return flat
    names = short_labels(dims)
    return {names[d]: flat[d] for d in dims}
