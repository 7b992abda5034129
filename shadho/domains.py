"""Domains: one hyperparameter's distribution, and the :class:`Encoding` samplers model.

Every domain has a *working space*: log domains are modelled by their exponent,
integers by their index (or exponent), choices by their position. A domain's
:attr:`Domain.encoding` says all a sampler may know of that space (its bounds, whether
it is an integer grid or a set of categories, its prior, its log base), so samplers
never read a domain's own attributes. Users build domains with the constructors in
:mod:`shadho.spaces` (``spaces.uniform(0, 1)``).

Example:
    >>> from shadho import spaces
    >>> e = spaces.log10_uniform(-3, 3).encoding
    >>> e.kind, e.low, e.high, e.log_base, e.support
    ('float', -3.0, 3.0, 10.0, (-3.0, 3.0))
"""
from __future__ import annotations

import copy
import json
import math
from typing import Any, Iterable

import numpy as np

from shadho.encoding import NORMAL_SPAN, Encoding
from shadho.errors import SpecError
from shadho.spec_checks import check_values

__all__ = ["Domain", "Encoding"]

def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _plain(value: Any) -> Any:
    """Turn numpy scalars (and containers of them) into plain Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Domain:
    """One hyperparameter's distribution.

    Attributes:
        kind: ``'float'``, ``'int'`` (ordinal, working value is an index or exponent)
            or ``'cat'`` (categorical, working value is the position in ``values``).
        low, high: bounds of the working space (for normal domains, mu -/+ 4 sigma,
            used by models only; sampling is unbounded).
        prior: ``'uniform'`` or ``'normal'``: how the working value is drawn.
        base: the objective receives ``base ** w`` (None: no log scale).

    Samplers read :attr:`encoding` only. Validation is deferred to
    :func:`~shadho.spaces.split` so errors can name the spec path.
    """

    kind: str = "float"
    prior: str = "uniform"
    label: str = "domain"
    base: float | None = None

    def check(self) -> None:
        """Raise SpecError (without path) when the arguments are malformed."""

    @property
    def low(self) -> float:
        raise NotImplementedError

    @property
    def high(self) -> float:
        raise NotImplementedError

    @property
    def n_values(self) -> int | None:
        """Number of distinct values, or None for a continuous domain."""
        return None

    @property
    def encoding(self) -> Encoding:
        """What a sampler may know of this dimension (see :class:`Encoding`)."""
        return Encoding(self.kind, self.low, self.high, self.prior, log_base=self.base,
                        n_values=self.n_values)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """Draw working values from the prior."""
        raise NotImplementedError

    def value(self, w: float) -> Any:
        """Map a working value to the plain Python value the objective receives."""
        raise NotImplementedError

    def encode(self, value: Any) -> float:
        """Inverse of :meth:`value` (used when importing results); here for real-valued domains."""
        v = float(value)
        return v if self.base is None else math.log(v) / math.log(self.base)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (stable: it feeds the search-space id)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "type")
        return f"{self.label}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Domain) and self.describe() == other.describe()

    def __hash__(self) -> int:
        return hash(json.dumps(self.describe(), sort_keys=True, default=str))


class _Continuous(Domain):
    def __init__(self, label: str, lo: Any, hi: Any, base: float | None) -> None:
        self.label, self.lo, self.hi, self.base = label, lo, hi, base

    def check(self) -> None:
        if not (_is_number(self.lo) and _is_number(self.hi)):
            raise SpecError(f"{self.label} needs numbers, got ({self.lo!r}, {self.hi!r})")
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            raise SpecError(f"{self.label} needs finite bounds, got ({self.lo!r}, {self.hi!r})")
        if not self.lo < self.hi:
            raise SpecError(f"{self.label} needs lo < hi, got ({self.lo!r}, {self.hi!r})")
        if self.base is not None and max(abs(self.lo), abs(self.hi)) * math.log(self.base) > 700:
            raise SpecError(f"{self.label} exponents overflow a float, got ({self.lo!r}, {self.hi!r})")

    @property
    def low(self) -> float:
        return float(self.lo)

    @property
    def high(self) -> float:
        return float(self.hi)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.uniform(self.lo, self.hi, size)

    def value(self, w: float) -> float:
        w = min(max(float(w), self.low), self.high)
        if self.base is None:
            return w
        v = float(self.base ** w)
        return min(max(v, float(self.base ** self.low)), float(self.base ** self.high))

    def describe(self) -> dict[str, Any]:
        return {"type": self.label, "lo": _plain(self.lo), "hi": _plain(self.hi)}


class _Normal(Domain):
    prior = "normal"

    def __init__(self, label: str, mu: Any, sigma: Any, base: float | None) -> None:
        self.label, self.mu, self.sigma, self.base = label, mu, sigma, base

    def check(self) -> None:
        if not (_is_number(self.mu) and _is_number(self.sigma)):
            raise SpecError(f"{self.label} needs numbers, got ({self.mu!r}, {self.sigma!r})")
        if not (math.isfinite(self.mu) and math.isfinite(self.sigma)):
            raise SpecError(f"{self.label} needs finite mu and sigma, got ({self.mu!r}, {self.sigma!r})")
        if not self.sigma > 0:
            raise SpecError(f"{self.label} needs sigma > 0, got ({self.mu!r}, {self.sigma!r})")
        if self.base is not None and (abs(self.mu) + 8 * self.sigma) * math.log(self.base) > 700:
            raise SpecError(f"{self.label} exponents overflow a float, got ({self.mu!r}, {self.sigma!r})")

    @property
    def low(self) -> float:
        return float(self.mu - NORMAL_SPAN * self.sigma)

    @property
    def high(self) -> float:
        return float(self.mu + NORMAL_SPAN * self.sigma)

    @property
    def encoding(self) -> Encoding:
        return Encoding(self.kind, self.low, self.high, self.prior, mu=float(self.mu),
                        sigma=float(self.sigma), log_base=self.base)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.normal(self.mu, self.sigma, size)

    def value(self, w: float) -> float:
        w = float(w)
        if self.base is None:
            return w
        # Guard against overflow for far-out proposals.
        w = min(max(w, self.mu - 30 * self.sigma), self.mu + 30 * self.sigma)
        return float(self.base ** w)

    def describe(self) -> dict[str, Any]:
        return {"type": self.label, "mu": _plain(self.mu), "sigma": _plain(self.sigma)}


class _RandInt(Domain):
    """Integers lo, lo+step, ... < hi; working value is the index k."""

    kind = "int"

    def __init__(self, lo: Any, hi: Any, step: Any) -> None:
        self.label, self.lo, self.hi, self.step = "randint", lo, hi, step

    def check(self) -> None:
        ints = all(isinstance(x, (int, np.integer)) and not isinstance(x, bool)
                   for x in (self.lo, self.hi, self.step))
        if not ints:
            raise SpecError(f"randint needs integers, got ({self.lo!r}, {self.hi!r}, step={self.step!r})")
        if not self.lo < self.hi:
            raise SpecError(f"randint needs lo < hi, got ({self.lo!r}, {self.hi!r})")
        if not self.step > 0:
            raise SpecError(f"randint needs step > 0, got step={self.step!r}")

    @property
    def n_values(self) -> int:
        return -(-(int(self.hi) - int(self.lo)) // int(self.step))

    @property
    def low(self) -> float:
        return 0.0

    @property
    def high(self) -> float:
        return float(self.n_values - 1)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.integers(0, self.n_values, size).astype(float)

    def value(self, w: float) -> int:
        k = min(max(int(round(float(w))), 0), self.n_values - 1)
        return int(self.lo) + k * int(self.step)

    def encode(self, value: Any) -> float:
        return float((int(value) - int(self.lo)) // int(self.step))

    def describe(self) -> dict[str, Any]:
        return {"type": "randint", "lo": int(self.lo), "hi": int(self.hi), "step": int(self.step)}


class _LogRandInt(Domain):
    """base**k for integer k in [lo, hi); working value is k."""

    kind = "int"

    def __init__(self, label: str, lo: Any, hi: Any, base: float) -> None:
        self.label, self.lo, self.hi, self.base = label, lo, hi, base

    def check(self) -> None:
        if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (self.lo, self.hi)):
            raise SpecError(f"{self.label} needs integer exponents, got ({self.lo!r}, {self.hi!r})")
        if not self.lo < self.hi:
            raise SpecError(f"{self.label} needs lo < hi, got ({self.lo!r}, {self.hi!r})")
        if max(abs(self.lo), abs(self.hi)) * math.log(self.base) > 700:
            raise SpecError(f"{self.label} exponents overflow a float, got ({self.lo!r}, {self.hi!r})")

    @property
    def n_values(self) -> int:
        return int(self.hi) - int(self.lo)

    @property
    def low(self) -> float:
        return float(self.lo)

    @property
    def high(self) -> float:
        return float(self.hi - 1)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.integers(int(self.lo), int(self.hi), size).astype(float)

    def value(self, w: float) -> int | float:
        k = min(max(int(round(float(w))), int(self.lo)), int(self.hi) - 1)
        v = self.base ** k
        if self.base in (2.0, 10.0) and k >= 0:
            return int(round(v))
        return float(v)

    def encode(self, value: Any) -> float:
        return float(round(math.log(float(value)) / math.log(self.base)))

    def describe(self) -> dict[str, Any]:
        return {"type": self.label, "lo": int(self.lo), "hi": int(self.hi)}


class _Choice(Domain):
    kind = "cat"

    def __init__(self, values: Any, label: str = "choice") -> None:
        self.label = label
        self.raw = values
        self.values: list[Any] = []

    def check(self) -> None:
        if isinstance(self.raw, (str, bytes, dict)) or not isinstance(self.raw, Iterable):
            raise SpecError(f"{self.label} needs a list of values, got {self.raw!r}")
        values = check_values(self.raw, self.label, _plain)  # ordered, JSON-able
        if not values:
            raise SpecError(f"{self.label} needs at least one value, got []")
        self.values = values

    @property
    def n_values(self) -> int:
        return len(self.values)

    @property
    def low(self) -> float:
        return 0.0

    @property
    def high(self) -> float:
        return float(len(self.values) - 1)

    @property
    def encoding(self) -> Encoding:
        return Encoding(self.kind, self.low, self.high, n_values=self.n_values,
                        choices=tuple(copy.deepcopy(self.values)))

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.integers(0, len(self.values), size).astype(float)

    def value(self, w: float) -> Any:
        k = min(max(int(round(float(w))), 0), len(self.values) - 1)
        return copy.deepcopy(self.values[k])

    def encode(self, value: Any) -> float:
        for i, v in enumerate(self.values):
            if v == value and type(v) is type(value):
                return float(i)
        return float(self.values.index(value))

    def describe(self) -> dict[str, Any]:
        return {"type": self.label, "values": self.values if self.values else _plain(list(self.raw))}


class _Exhaustive(_Choice):
    """Grid search: :func:`~shadho.spaces.split` makes one search space per value."""

    def __init__(self, values: Any) -> None:
        super().__init__(values, label="exhaustive")
