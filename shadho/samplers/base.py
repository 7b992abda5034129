"""The sampler interface and the trial history samplers read."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from shadho.samplers.startup import SearchContext
from shadho.spaces import SearchSpace


class History:
    """Finished and pending trials of one search space, in working coordinates.

    The driver appends as results arrive (amortised O(1)); samplers read the views
    ``X`` (COMPLETE trials, one row each), ``y`` (their losses) and ``pending``
    (submitted, unfinished trials). Failed trials are counted in ``n_failed`` only.

    Example:
        >>> h = History(dim=2)
        >>> h.add_pending(7, [0.1, 0.2]); h.complete(7, [0.1, 0.2], 0.5)
        >>> h.X.shape, h.y.tolist(), len(h.pending)
        ((1, 2), [0.5], 0)
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._X = np.empty((16, dim))
        self._y = np.empty(16)
        self._n = 0
        self._pending: dict[int, np.ndarray] = {}
        self.n_failed = 0
        self.version = 0  # bumps on every change; lets samplers cache fitted models

    @property
    def X(self) -> np.ndarray:
        return self._X[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]

    @property
    def n(self) -> int:
        return self._n

    @property
    def pending(self) -> np.ndarray:
        if not self._pending:
            return np.empty((0, self.dim))
        return np.array(list(self._pending.values()), dtype=float).reshape(-1, self.dim)

    @property
    def n_pending(self) -> int:
        return len(self._pending)

    def add_pending(self, trial_id: int, x: Any) -> None:
        self._pending[trial_id] = np.asarray(x, dtype=float)
        self.version += 1

    def complete(self, trial_id: int | None, x: Any, loss: float) -> None:
        """Record a COMPLETE trial (and drop it from pending)."""
        if trial_id is not None:
            self._pending.pop(trial_id, None)
        if self._n == len(self._y):
            self._X = np.concatenate([self._X, np.empty_like(self._X)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._X[self._n] = np.asarray(x, dtype=float)
        self._y[self._n] = float(loss)
        self._n += 1
        self.version += 1

    def fail(self, trial_id: int | None) -> None:
        """Record a FAILED trial (and drop it from pending)."""
        if trial_id is not None:
            self._pending.pop(trial_id, None)
        self.n_failed += 1
        self.version += 1

    def drop_pending(self, trial_id: int) -> None:
        self._pending.pop(trial_id, None)
        self.version += 1

    @property
    def best(self) -> float | None:
        return float(self.y.min()) if self._n else None


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
