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

This module is the public API; the parts live in modules named for them:
:mod:`shadho.domains` (domains and their :class:`~shadho.domains.Encoding`),
:mod:`shadho.search_space` (:class:`SearchSpace`) and :mod:`shadho.spec_split`
(:func:`split`, the spec parser).

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

import math
from typing import Any, Sequence

from shadho.compound import Scope, dependent, repeat, sequential
from shadho.domains import (Domain, Encoding, _Choice, _Continuous, _Exhaustive, _LogRandInt, _Normal,
                            _RandInt)
from shadho.search_space import SearchSpace
from shadho.spec_split import MAX_SPACES, split

__all__ = [
    "Domain", "Encoding", "SearchSpace", "split",
    "uniform", "ln_uniform", "log10_uniform", "log2_uniform",
    "normal", "ln_normal", "log10_normal", "log2_normal",
    "randint", "ln_randint", "log10_randint", "log2_randint",
    "choice", "exhaustive", "scope", "MAX_SPACES", "repeat", "sequential", "dependent",
]

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
