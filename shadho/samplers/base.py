"""The sampler interface (``History`` lives in :mod:`shadho.history`; importing it from here still works)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from shadho.history import History
from shadho.samplers.startup import SearchContext
from shadho.spaces import SearchSpace

__all__ = ["Sampler", "FunctionSampler", "History"]  # History re-exported: the old import path


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
