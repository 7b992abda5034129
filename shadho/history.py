"""The trial history of one search space, in working coordinates.

Samplers read it to propose the next point, and the scheduler's heuristics read it to
decide where compute goes; the driver fills it from results (and, on resume, from the
results store), so it holds nothing that the store does not.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["History"]


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
        self._ids = np.empty(16)  # trial id of each complete row; NaN: recorded without one
        self._n = 0
        self._failed_ids: list[float] = []
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
            self._ids = np.concatenate([self._ids, np.empty_like(self._ids)])
        self._X[self._n] = np.asarray(x, dtype=float)
        self._ids[self._n] = np.nan if trial_id is None else float(trial_id)
        self._y[self._n] = float(loss)
        self._n += 1
        self.version += 1

    def fail(self, trial_id: int | None) -> None:
        """Record a FAILED trial (and drop it from pending)."""
        if trial_id is not None:
            self._pending.pop(trial_id, None)
        self._failed_ids.append(np.nan if trial_id is None else float(trial_id))
        self.n_failed += 1
        self.version += 1

    def drop_pending(self, trial_id: int) -> None:
        self._pending.pop(trial_id, None)
        self.version += 1

    def earliest(self, k: int) -> np.ndarray:
        """Which complete rows belong to the space's first ``k`` trials (complete, failed
        or pending), earliest by trial id (the order they were proposed in).

        Rows recorded without an id (a resume, which replays the store in id order) come
        before those with one, in the order they were recorded. The set does not grow
        with later trials: it is the same however many the space ran after its first k.

        Example:
            >>> h = History(1)
            >>> for t in (3, 1, 4): h.add_pending(t, [t])
            >>> h.complete(4, [4], 0.0); h.complete(3, [3], 0.0)
            >>> h.earliest(2).tolist()   # trial 1 (pending) and 3 are the first two
            [False, True]
        """
        n = self._n
        ids = np.concatenate([self._ids[:n], np.array(self._failed_ids, float),
                              np.array(list(self._pending), float)])
        known = ~np.isnan(ids)
        order = np.lexsort((np.where(known, ids, 0.0), np.arange(len(ids)) * ~known, known))
        mask = np.zeros(len(ids), bool)
        mask[order[:max(0, int(k))]] = True
        return mask[:n]

    @property
    def best(self) -> float | None:
        return float(self.y.min()) if self._n else None
