"""The :class:`Encoding` of one dimension: all a sampler may know of a domain.

Example:
    >>> from shadho import spaces
    >>> e = spaces.log10_uniform(-3, 3).encoding
    >>> e.kind, e.low, e.high, e.log_base, e.support
    ('float', -3.0, 3.0, 10.0, (-3.0, 3.0))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Encoding", "NORMAL_SPAN", "NORMAL_SUPPORT"]

#: Normal priors are unbounded; models span them over mu -/+ this many sigma ...
NORMAL_SPAN = 4
#: ... and may propose out to mu -/+ this many sigma (the tails stay reachable).
NORMAL_SUPPORT = 6


@dataclass(frozen=True)
class Encoding:
    """How one dimension is modelled: what a sampler may know of a domain.

    Attributes:
        kind: ``'float'`` (continuous), ``'int'`` (an ordinal grid: the working value is
            an index or an integer exponent) or ``'cat'`` (categorical: the working value
            is the position in ``choices``).
        low, high: bounds of the working values a model spans (for normal priors
            ``mu -/+ 4 sigma``; sampling from the prior is unbounded).
        prior: ``'uniform'`` or ``'normal'``: how the prior draws the working value.
        mu, sigma: the normal prior in working space (None for a uniform prior).
        log_base: the objective receives ``log_base ** w`` (None: no log scale).
        n_values: the number of distinct values (None for a continuous domain).
        choices: the categorical values, in order (empty unless ``kind == 'cat'``).

    Example:
        >>> from shadho import spaces
        >>> e = spaces.normal(0, 1).encoding
        >>> e.prior, e.low, e.high, e.support, e.integer
        ('normal', -4.0, 4.0, (-6.0, 6.0), False)
        >>> c = spaces.split({'k': spaces.choice(['rbf', 'linear'])})[0].encodings[0]
        >>> c.categorical, c.integer, c.n_values, c.choices
        (True, True, 2, ('rbf', 'linear'))
    """

    kind: str
    low: float
    high: float
    prior: str = "uniform"
    mu: float | None = None
    sigma: float | None = None
    log_base: float | None = None
    n_values: int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def integer(self) -> bool:
        """Working values are whole numbers (an ordinal grid or a category's position)."""
        return self.kind != "float"

    @property
    def categorical(self) -> bool:
        """Working values are positions in ``choices``: unordered."""
        return self.kind == "cat"

    @property
    def log(self) -> bool:
        """The objective receives ``log_base ** w``."""
        return self.log_base is not None

    @property
    def support(self) -> tuple[float, float]:
        """Where proposals are clipped: ``(low, high)``, or ``mu -/+ 6 sigma`` for a normal prior."""
        if self.prior == "normal" and self.mu is not None and self.sigma is not None:
            return self.mu - NORMAL_SUPPORT * self.sigma, self.mu + NORMAL_SUPPORT * self.sigma
        return self.low, self.high
