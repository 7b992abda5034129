"""What a user tells ``shadho plan``: a pool, prices, and assumptions about unseen classes.

* a pool: ``CLASS=COUNT[xSLOTS],...`` (``cpu=40,gpu=8x4``: 40 one-slot cpu workers
  and 8 gpu workers running 4 trials at once each), or a mapping ``{class: count}`` /
  ``{class: (count, slots)}``;
* prices: ``CLASS=PRICE_PER_HOUR,...`` per worker, or a mapping;
* assumptions: ``NEW=SPEEDx:SEEN,...`` (``gpu=8x:cpu16``: class gpu runs every
  space 8 times as fast as cpu16 does, and fails as often), or a JSON/TOML file
  ``{"gpu": {"like": "cpu16", "speed": 8, "spaces": {"svm/rbf": 30}}}`` where
  ``spaces`` overrides the speed-up of single spaces (by name).

Example:
    >>> parse_pool("cpu=2,accel=2x3")
    {'cpu': (2, 1), 'accel': (2, 3)}
    >>> parse_assume("gpu=8x:cpu16")['gpu']
    Assumption(name='gpu', like='cpu16', speed=8.0, spaces={})
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Assumption", "parse_pool", "parse_prices", "parse_assume", "pool_slots", "format_pool"]

_POOL_ITEM = re.compile(r"^\s*([^=,\s]+)\s*=\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*$")
_ASSUME_ITEM = re.compile(r"^\s*([^=,\s]+)\s*=\s*([0-9.eE+-]+)\s*[xX]\s*:\s*([^=,\s]+)\s*$")


@dataclass(frozen=True)
class Assumption:
    """A compute class the results never saw, declared relative to one they did.

    Example:
        >>> Assumption('gpu', 'cpu16', 8.0).speed_on('svm/rbf')
        8.0
    """

    name: str
    like: str
    speed: float
    spaces: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for what, v in [("speed", self.speed), *((f"speed of space {k!r}", s) for k, s in self.spaces.items())]:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
                raise ValueError(f"assumed class {self.name!r}: {what} must be a positive number, got {v!r}")
        if self.name == self.like:
            raise ValueError(f"assumed class {self.name!r} cannot be declared relative to itself")

    def speed_on(self, space_name: str) -> float:
        """How many times as fast as ``like`` this class runs ``space_name``."""
        return float(self.spaces.get(space_name, self.speed))


def parse_pool(pool: str | Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """``{class: (workers, slots per worker)}`` from ``CLASS=COUNT[xSLOTS],...`` or a mapping."""
    if isinstance(pool, str):
        out: dict[str, tuple[int, int]] = {}
        for item in filter(None, (p.strip() for p in pool.split(","))):
            m = _POOL_ITEM.match(item)
            if m is None:
                raise ValueError(f"bad pool entry {item!r}: expected CLASS=COUNT or CLASS=COUNTxSLOTS "
                                 "(e.g. cpu=40,gpu=8x4)")
            if m.group(1) in out:
                raise ValueError(f"pool names class {m.group(1)!r} twice")
            out[m.group(1)] = (int(m.group(2)), int(m.group(3) or 1))
    elif isinstance(pool, Mapping):
        out = {}
        for k, v in pool.items():
            count, slots = (v, 1) if not isinstance(v, (tuple, list)) else tuple(v)
            if not all(isinstance(n, int) and not isinstance(n, bool) for n in (count, slots)):
                raise TypeError(f"pool[{k!r}] must be a worker count or (count, slots), got {v!r}")
            out[str(k)] = (count, slots)
    else:
        raise TypeError(f"pool must be a string CLASS=COUNT[xSLOTS],... or a mapping, got {pool!r}")
    if not out:
        raise ValueError("the pool is empty: give at least one CLASS=COUNT")
    for k, (count, slots) in out.items():
        if count < 0 or slots < 1:
            raise ValueError(f"pool class {k!r}: need COUNT >= 0 and SLOTS >= 1, got {count}x{slots}")
    if not any(c * s for c, s in out.values()):
        raise ValueError("the pool has no workers: every COUNT is 0")
    return out


def pool_slots(pool: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """Trial slots per class (workers x slots each), classes with none left out."""
    return {k: c * s for k, (c, s) in pool.items() if c * s > 0}


def format_pool(pool: Mapping[str, tuple[int, int]]) -> str:
    """The ``CLASS=COUNT[xSLOTS]`` text of a pool."""
    return ",".join(f"{k}={c}" + (f"x{s}" if s != 1 else "") for k, (c, s) in pool.items())


def parse_prices(prices: str | Mapping[str, Any] | None) -> dict[str, float]:
    """``{class: price per worker-hour}`` from ``CLASS=PRICE,...`` or a mapping."""
    if prices is None:
        return {}
    items = ([tuple(p.split("=", 1)) for p in prices.split(",") if p.strip()]
             if isinstance(prices, str) else list(prices.items()))
    out = {}
    for item in items:
        if len(item) != 2:
            raise ValueError(f"bad price entry {'='.join(item)!r}: expected CLASS=PRICE_PER_HOUR")
        k, v = item
        try:
            price = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"price of class {str(k).strip()!r} must be a number, got {v!r}") from None
        if not (price >= 0 and math.isfinite(price)):
            raise ValueError(f"price of class {str(k).strip()!r} must be >= 0, got {v!r}")
        out[str(k).strip()] = price
    return out


def _assumptions_from_doc(doc: Any, where: str) -> dict[str, Assumption]:
    if not isinstance(doc, Mapping):
        raise ValueError(f"{where}: expected a table of classes, e.g. "
                         '{"gpu": {"like": "cpu16", "speed": 8}}')
    out = {}
    for name, spec in doc.items():
        if not isinstance(spec, Mapping) or "like" not in spec or "speed" not in spec:
            raise ValueError(f"{where}: class {name!r} needs 'like' (a seen class) and 'speed'")
        unknown = sorted(set(spec) - {"like", "speed", "spaces"})
        if unknown:
            raise ValueError(f"{where}: class {name!r} has unknown key(s) {', '.join(unknown)}; "
                             "valid: like, speed, spaces")
        out[str(name)] = Assumption(str(name), str(spec["like"]), spec["speed"], dict(spec.get("spaces", {})))
    return out


def parse_assume(assume: str | Mapping[str, Any] | None) -> dict[str, Assumption]:
    """Assumed classes from ``NEW=SPEEDx:SEEN,...``, a ``.json``/``.toml`` file or a mapping."""
    if assume is None:
        return {}
    if isinstance(assume, Mapping):
        return _assumptions_from_doc(assume, "assume")
    if not isinstance(assume, str):
        raise TypeError(f"assume must be NEW=SPEEDx:SEEN,..., a file path or a mapping, got {assume!r}")
    if assume.endswith((".json", ".toml")) or os.path.isfile(assume):
        if assume.endswith(".toml"):
            try:
                import tomllib
            except ImportError:
                raise ValueError(f"{assume}: TOML needs Python 3.11 or newer; write it as JSON") from None
        try:
            if assume.endswith(".toml"):
                with open(assume, "rb") as fh:
                    doc = tomllib.load(fh)
            else:
                with open(assume) as fh:
                    doc = json.load(fh)
        except OSError as exc:
            raise ValueError(f"{assume}: cannot read the assumptions file ({exc.strerror})") from None
        except ValueError as exc:
            raise ValueError(f"{assume}: not valid {assume.rsplit('.', 1)[-1].upper()} ({exc})") from None
        return _assumptions_from_doc(doc, assume)
    out = {}
    for item in filter(None, (p.strip() for p in assume.split(","))):
        m = _ASSUME_ITEM.match(item)
        if m is None:
            raise ValueError(f"bad assumption {item!r}: expected NEW=SPEEDx:SEEN (e.g. gpu=8x:cpu16) "
                             "or a .json/.toml file")
        out[m.group(1)] = Assumption(m.group(1), m.group(3), float(m.group(2)))
    return out
