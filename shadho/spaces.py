"""Search-space domains, the spec tree, and :func:`split` into disjoint search spaces.

A spec is a nested dict whose leaves are domains (``uniform(0, 1)``), constants, or
plain lists (a :func:`choice`). Dicts marked ``exclusive`` pick one child, dicts
marked ``optional`` may be left out, and :func:`exhaustive` domains are tried value
by value; :func:`split` turns all those decisions into separate
:class:`SearchSpace` objects, one per model, each sampled independently.

Every domain has a *working space* that samplers model: log domains are modelled
by their exponent, integers by their index, choices by their position. Samplers
propose working vectors; :meth:`SearchSpace.params` turns one into the nested dict
the objective receives.

Example:
    >>> from shadho import spaces
    >>> spec = {'svm': spaces.scope(exclusive=True,
    ...     linear={'kernel': 'linear', 'C': spaces.log10_uniform(-3, 3)},
    ...     rbf={'kernel': 'rbf', 'C': spaces.log10_uniform(-3, 3),
    ...          'gamma': spaces.log10_uniform(-5, 0)})}
    >>> [s.name for s in spaces.split(spec)]
    ['svm/linear', 'svm/rbf']
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from shadho.compound import Scope, dependent, expand, repeat, restore, sequential
from shadho.errors import SpecError
from shadho.spec_checks import MAX_DEPTH, check_depth, check_flat_names, check_values, space_name, tuple_constant
from shadho.spec_checks import fmt_path as _fmt_path

__all__ = [
    "Domain", "SearchSpace", "split",
    "uniform", "ln_uniform", "log10_uniform", "log2_uniform",
    "normal", "ln_normal", "log10_normal", "log2_normal",
    "randint", "ln_randint", "log10_randint", "log2_randint",
    "choice", "exhaustive", "scope", "MAX_SPACES", "repeat", "sequential", "dependent",
]

#: Splitting a spec into more spaces than this raises SpecError (a product blew up).
MAX_SPACES = 10_000

_FLAGS = ("exclusive", "optional")
_BASES = {"ln": math.e, "log10": 10.0, "log2": 2.0}


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

    Validation is deferred to :func:`split` so errors can name the spec path.
    """

    kind: str = "float"
    prior: str = "uniform"
    label: str = "domain"

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

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """Draw working values from the prior."""
        raise NotImplementedError

    def value(self, w: float) -> Any:
        """Map a working value to the plain Python value the objective receives."""
        raise NotImplementedError

    def encode(self, value: Any) -> float:
        """Inverse of :meth:`value` (used when importing results)."""
        raise NotImplementedError

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

    def encode(self, value: Any) -> float:
        v = float(value)
        return v if self.base is None else math.log(v) / math.log(self.base)

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
        return float(self.mu - 4 * self.sigma)

    @property
    def high(self) -> float:
        return float(self.mu + 4 * self.sigma)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.normal(self.mu, self.sigma, size)

    def value(self, w: float) -> float:
        w = float(w)
        if self.base is None:
            return w
        # Guard against overflow for far-out proposals.
        w = min(max(w, self.mu - 30 * self.sigma), self.mu + 30 * self.sigma)
        return float(self.base ** w)

    def encode(self, value: Any) -> float:
        v = float(value)
        return v if self.base is None else math.log(v) / math.log(self.base)

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
    """Grid search: :func:`split` makes one search space per value."""

    def __init__(self, values: Any) -> None:
        super().__init__(values, label="exhaustive")


# ---------------------------------------------------------------- constructors


def uniform(lo: float, hi: float) -> Domain:
    """Uniform on [lo, hi]."""
    return _Continuous("uniform", lo, hi, None)


def ln_uniform(lo: float, hi: float) -> Domain:
    """e**U(lo, hi): log-uniform between e**lo and e**hi."""
    return _Continuous("ln_uniform", lo, hi, math.e)


def log10_uniform(lo: float, hi: float) -> Domain:
    """10**U(lo, hi): ``log10_uniform(-3, 3)`` spans 1e-3..1e3 log-uniformly."""
    return _Continuous("log10_uniform", lo, hi, 10.0)


def log2_uniform(lo: float, hi: float) -> Domain:
    """2**U(lo, hi)."""
    return _Continuous("log2_uniform", lo, hi, 2.0)


def normal(mu: float, sigma: float) -> Domain:
    """N(mu, sigma)."""
    return _Normal("normal", mu, sigma, None)


def ln_normal(mu: float, sigma: float) -> Domain:
    """e**N(mu, sigma)."""
    return _Normal("ln_normal", mu, sigma, math.e)


def log10_normal(mu: float, sigma: float) -> Domain:
    """10**N(mu, sigma)."""
    return _Normal("log10_normal", mu, sigma, 10.0)


def log2_normal(mu: float, sigma: float) -> Domain:
    """2**N(mu, sigma)."""
    return _Normal("log2_normal", mu, sigma, 2.0)


def randint(lo: int, hi: int, step: int = 1) -> Domain:
    """Integers in [lo, hi) with the given step."""
    return _RandInt(lo, hi, step)


def ln_randint(lo: int, hi: int) -> Domain:
    """e**k for integer k in [lo, hi)."""
    return _LogRandInt("ln_randint", lo, hi, math.e)


def log10_randint(lo: int, hi: int) -> Domain:
    """10**k for integer k in [lo, hi)."""
    return _LogRandInt("log10_randint", lo, hi, 10.0)


def log2_randint(lo: int, hi: int) -> Domain:
    """2**k for integer k in [lo, hi)."""
    return _LogRandInt("log2_randint", lo, hi, 2.0)


def choice(values: Sequence[Any]) -> Domain:
    """One of ``values`` (any JSON-able values, mixed types allowed)."""
    return _Choice(values)


def exhaustive(values: Sequence[Any]) -> Domain:
    """Grid search: every value gets its own search space."""
    return _Exhaustive(values)


def scope(exclusive: bool = False, optional: bool = False, **children: Any) -> dict[str, Any]:
    """A nested dict of ``children``; ``exclusive`` picks one child, ``optional`` may drop it.

    Example:
        >>> scope(exclusive=True, a={'x': uniform(0, 1)}, b={'y': 1})['exclusive']
        True
    """
    out: dict[str, Any] = Scope(children)  # children are attributes too, as in the original
    if exclusive:
        out["exclusive"] = exclusive
    if optional:
        out["optional"] = optional
    return out


# ---------------------------------------------------------------- search spaces

_ABSENT = object()  # an optional dict left out


@dataclass(frozen=True)
class SearchSpace:
    """One disjoint sub-space of a spec: fixed structure, independent domains.

    Attributes:
        id: stable id (same spec -> same id across runs; used to resume).
        name: readable name built from the decisions taken, e.g. ``'svm/rbf'``.
        paths: the path of each dimension in the nested params.
        domains: the domain of each dimension (same order as ``paths``).
        template: nested dict of constants into which sampled values are placed.

    Example:
        >>> import numpy as np
        >>> (s,) = split({'x': uniform(0, 1), 'k': 'rbf'})
        >>> p = s.params(s.sample(np.random.default_rng(0)))
        >>> sorted(p), 0 <= p['x'] <= 1
        (['k', 'x'], True)
    """

    id: str
    name: str
    paths: tuple[tuple[str, ...], ...]
    domains: tuple[Domain, ...]
    template: dict[str, Any] = field(repr=False)

    @property
    def dim(self) -> int:
        return len(self.domains)

    @property
    def labels(self) -> list[str]:
        """Dotted path of each dimension (``'svm.rbf.C'``)."""
        return [".".join(p) for p in self.paths]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A working vector drawn from the priors."""
        return np.array([d.sample(rng) for d in self.domains], dtype=float)

    def params(self, x: Sequence[float]) -> dict[str, Any]:
        """The nested params (plain Python values) for working vector ``x``."""
        out = copy.deepcopy(self.template)
        for path, dom, w in zip(self.paths, self.domains, x):
            node = out
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = dom.value(w)
        return restore(out)  # compound domains (shadho.compound) back to lists / derived values

    def flat(self, x: Sequence[float]) -> dict[str, Any]:
        """Dotted path -> value for the sampled dimensions only."""
        return {lab: d.value(w) for lab, d, w in zip(self.labels, self.domains, x)}

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The working vector of nested ``params`` (inverse of :meth:`params`)."""
        out = []
        for path, dom in zip(self.paths, self.domains):
            node: Any = params
            for key in path:
                node = node[key]
            out.append(dom.encode(node))
        return np.array(out, dtype=float)

    def describe(self) -> dict[str, Any]:
        """JSON-able description stored with the results."""
        return {
            "id": self.id,
            "name": self.name,
            "dims": {lab: d.describe() for lab, d in zip(self.labels, self.domains)},
            "template": self.template,
        }


def _flag(node: Mapping[str, Any], flag: str, path: tuple[str, ...]) -> bool:
    if flag not in node:
        return False
    value = node[flag]
    if not isinstance(value, (bool, np.bool_)):
        raise SpecError(f"{_fmt_path(path)}: '{flag}' must be True or False, got {value!r}")
    return bool(value)


# An alternative: (tokens naming the decisions taken, subtree with domains/constants)
_Alt = tuple[tuple[str, ...], Any]


def _split(node: Any, path: tuple[str, ...]) -> list[_Alt]:
    check_depth(path)
    if isinstance(node, Mapping):
        for key in node:
            if not isinstance(key, str):
                raise SpecError(f"{_fmt_path(path)}: keys must be strings, got {key!r}")
        exclusive = _flag(node, "exclusive", path)
        optional = _flag(node, "optional", path)
        children = [(k, v) for k, v in node.items() if k not in _FLAGS]
        alts: list[_Alt] = []
        if exclusive:
            if not children:
                raise SpecError(f"{_fmt_path(path)}: an exclusive dict needs at least one child")
            for key, child in children:
                for tokens, sub in _split(child, path + (key,)):
                    token = "/".join(path + (key,))
                    alts.append(((token,) + tokens, {} if sub is _ABSENT else {key: sub}))
        else:
            parts = [[(k, a) for a in _split(v, path + (k,))] for k, v in children]
            for combo in itertools.product(*parts):
                tokens = tuple(t for _, (ts, _) in combo for t in ts)
                sub = {k: s for k, (_, s) in combo if s is not _ABSENT}
                alts.append((tokens, sub))
                if len(alts) > MAX_SPACES:
                    raise SpecError(f"{_fmt_path(path)}: splits into more than {MAX_SPACES} search spaces")
        if optional:
            alts.append((("/".join(path) + ":off" if path else "<root>:off",), _ABSENT))
        if len(alts) > MAX_SPACES:
            raise SpecError(f"{_fmt_path(path)}: splits into more than {MAX_SPACES} search spaces")
        return alts
    if isinstance(node, _Exhaustive):
        _checked(node, path)
        return [(("/".join(path) + "=" + (v if isinstance(v, str) else json.dumps(v)),), v)
                for v in node.values]
    if isinstance(node, Domain):
        return [((), _checked(node, path))]
    if isinstance(node, tuple):  # a constant (a list is a choice): see shadho.spec_checks
        return [((), tuple_constant(node, path))]
    if isinstance(node, list):
        return [((), _checked(_Choice(node), path))]
    if node is None or isinstance(node, (str, bool, int, float, np.generic)):
        if isinstance(node, float) and not math.isfinite(node):
            raise SpecError(f"{_fmt_path(path)}: constants must be finite, got {node!r}")
        return [((), _plain(node))]
    raise SpecError(
        f"{_fmt_path(path)}: expected a dict, a domain, a list or a constant "
        f"(number, string, bool, None), got {type(node).__name__}")


def _checked(dom: Domain, path: tuple[str, ...]) -> Domain:
    try:
        dom.check()
    except SpecError as exc:
        raise SpecError(f"{_fmt_path(path)}: {exc}") from None
    return dom


def _collect(sub: Any, path: tuple[str, ...], paths: list, domains: list) -> Any:
    """Replace domains by None in a copy of ``sub``, recording their paths."""
    if isinstance(sub, dict):
        return {k: _collect(v, path + (k,), paths, domains) for k, v in sub.items()}
    if isinstance(sub, Domain):
        if not path:
            raise SpecError("<root>: the spec must be a dict, got a bare domain")
        paths.append(path)
        domains.append(sub)
        return None
    return copy.deepcopy(sub)


def split(spec: Mapping[str, Any]) -> list[SearchSpace]:
    """Split a spec into disjoint search spaces (one per exclusive/optional/exhaustive choice).

    Raises:
        SpecError: the spec is malformed; the message names the path of the bad entry.

    Example:
        >>> [s.name for s in split({'C': exhaustive([1, 10]), 'g': uniform(0, 1)})]
        ['C=1', 'C=10']
    """
    if not isinstance(spec, Mapping):
        raise SpecError(f"<root>: the spec must be a dict, got {type(spec).__name__}")
    out: list[SearchSpace] = []
    seen: dict[str, int] = {}
    try:
        expanded = expand(spec)  # compound domains as marked dicts
    except RecursionError:
        raise SpecError(f"<root>: the spec is nested deeper than {MAX_DEPTH} levels") from None
    for tokens, sub in _split(expanded, ()):
        paths: list[tuple[str, ...]] = []
        domains: list[Domain] = []
        template = _collect({} if sub is _ABSENT else sub, (), paths, domains)
        name = space_name(tokens)
        if name in seen:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        else:
            seen[name] = 1
        check_flat_names(template, name)
        desc = {"name": name, "template": template,
                "dims": [[list(p), d.describe()] for p, d in zip(paths, domains)]}
        digest = hashlib.sha1(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()
        out.append(SearchSpace(digest[:12], name, tuple(paths), tuple(domains), template))
    return out
