"""The sampler interface, and the base of samplers that fit a model after a start-up.

``History`` lives in :mod:`shadho.history`; importing it from here still works.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from shadho.history import History
from shadho.samplers.startup import SearchContext, startup_size
from shadho.spaces import SearchSpace

__all__ = ["Sampler", "ModelSampler", "FunctionSampler", "History"]  # History re-exported: the old import path


class Sampler(ABC):
    """Proposes the next working vector of a search space from its history.

    A sampler holds only its settings; everything it learns it recomputes from the
    :class:`History` it is given (so resume needs nothing but the results store).
    It may cache derived state keyed on ``history.version``.

    Example:
        >>> import numpy as np
        >>> from shadho.spaces import split, uniform
        >>> from shadho.samplers import make_sampler
        >>> (space,) = split({'x': uniform(0, 1)})
        >>> x = make_sampler('random').suggest(space, History(1), np.random.default_rng(0))
        >>> bool(0 <= x[0] <= 1)
        True
    """

    name: str = "base"
    #: Set by :meth:`bind`; None when the sampler is driven directly.
    context: SearchContext | None = None

    def bind(self, context: SearchContext) -> None:
        """Optional hook: the driver tells the sampler about all spaces and the budget.

        Called once the driver's histories exist (and again on resume). The default
        keeps ``context`` for samplers that use it (TPE and GP share observations of
        same-named parameters across spaces and fit their start-up to the budget);
        a sampler that needs none of it may ignore it.
        """
        self.context = context

    @abstractmethod
    def suggest(self, space: SearchSpace, history: History, rng: np.random.Generator) -> np.ndarray:
        """Return one working vector (``space.dim`` floats) inside the domains."""


class ModelSampler(Sampler):
    """A sampler that models the history once a space has its start-up trials.

    What every model-based sampler shares is handled here, once: a space without
    dimensions gets an empty vector, and until the space has :meth:`startup` trials
    (counted by :meth:`observed`) points come from the priors. A subclass implements
    :meth:`propose`, which is called only past the start-up, and reads a space
    through :attr:`SearchSpace.encodings <shadho.search_space.SearchSpace.encodings>`.

    Args:
        n_startup_trials: draw from the priors until this many trials are complete
            (never fewer than :attr:`min_startup`). None (default):
            :func:`~shadho.samplers.startup.startup_size` of the dimension and, once
            the driver binds its context, of the budget and the number of spaces.

    Example:
        >>> import numpy as np
        >>> from shadho.spaces import split, uniform
        >>> class NearBest(ModelSampler):
        ...     def propose(self, space, history, rng):
        ...         return history.X[int(np.argmin(history.y))] + rng.normal(0, 0.01, space.dim)
        >>> (space,) = split({'x': uniform(0, 1)})
        >>> s, h, rng = NearBest(n_startup_trials=3), History(1), np.random.default_rng(0)
        >>> for i in range(10):
        ...     h.complete(i, s.suggest(space, h, rng), 0.0)
        >>> s.startup(space), h.n
        (3, 10)
    """

    #: The fewest start-up trials whatever the setting (a model needs that many points).
    min_startup: int = 1

    def __init__(self, n_startup_trials: int | None = None) -> None:
        if n_startup_trials is not None and n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be None or >= 0, got {n_startup_trials}")
        self.n_startup_trials = n_startup_trials

    def startup(self, space: SearchSpace) -> int:
        """Start-up trials of ``space`` (the setting, or one scaled to dim and budget)."""
        if self.n_startup_trials is not None:
            return self.n_startup_trials
        ctx = self.context
        return startup_size(space.dim, ctx.budget if ctx else None, ctx.n_spaces if ctx else 1)

    def observed(self, space: SearchSpace, history: History) -> float:
        """How many trials count towards the start-up (by default the space's complete ones)."""
        return float(history.n)

    def suggest(self, space: SearchSpace, history: History, rng: np.random.Generator) -> np.ndarray:
        if space.dim == 0:
            return np.empty(0)
        if self.observed(space, history) < max(self.startup(space), self.min_startup):
            return space.sample(rng)
        return self.propose(space, history, rng)

    @abstractmethod
    def propose(self, space: SearchSpace, history: History, rng: np.random.Generator) -> np.ndarray:
        """The model's proposal (``space.dim`` floats); called only past the start-up."""


class FunctionSampler(Sampler):
    """Wraps a user callable ``fn(space, history, rng) -> working vector``."""

    name = "callable"

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def suggest(self, space: SearchSpace, history: History, rng: np.random.Generator) -> np.ndarray:
        x = np.asarray(self.fn(space, history, rng), dtype=float).reshape(-1)
        if x.shape != (space.dim,):
            raise ValueError(f"sampler {self.fn!r} returned {x.shape[0]} values for a "
                             f"{space.dim}-dimensional space {space.name!r}")
        return x
