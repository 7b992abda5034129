"""Which search space each compute class samples next.

The driver asks :meth:`Scheduler.pick` for a space each time a slot of a class
needs work (late binding), reports every finished trial to :meth:`observe`, and
calls :meth:`reassign` when :meth:`due` says so; the rows it returns are written
to the results store so users can see why the search went where it went.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from shadho.compute import ComputeClass
from shadho.samplers.base import History
from shadho.spaces import SearchSpace


class Scheduler:
    """Hardware-oblivious baseline: every space on every class, uniform choice.

    Example:
        >>> from shadho.spaces import split, uniform
        >>> sp = split({'exclusive': True, 'a': {'x': uniform(0, 1)}, 'b': {'y': uniform(0, 1)}})
        >>> s = Scheduler(sp, [])
        >>> s.pick(None, np.random.default_rng(0)) in {x.id for x in sp}
        True
    """

    def __init__(self, spaces: Sequence[SearchSpace], classes: Sequence[ComputeClass], *,
                 use_complexity: bool = True, use_uncertainty: bool = True, cost_aware: bool = False,
                 reassign_every: int = 10) -> None:
        self.spaces = list(spaces)
        self.classes = list(classes)
        self.keys: list[str | None] = [c.name for c in classes] or [None]
        self.use_complexity = use_complexity
        self.use_uncertainty = use_uncertainty
        self.cost_aware = cost_aware
        self.reassign_every = max(1, int(reassign_every))
        self._since = 0
        self._ids = [s.id for s in self.spaces]

    def observe(self, space_id: str, class_key: str | None, runtime: float | None,
                loss: float | None, ok: bool) -> None:
        """One finished trial (loss None when it failed)."""
        self._since += 1

    def due(self) -> bool:
        return self._since >= self.reassign_every

    def reassign(self, histories: Mapping[str, History]) -> list[dict[str, Any]]:
        """Recompute rankings and assignments; return one stats row per space."""
        self._since = 0
        return [{"space_id": s.id, "n_complete": histories[s.id].n, "classes": self.keys}
                for s in self.spaces]

    def pick(self, class_key: str | None, rng: np.random.Generator) -> str:
        """The id of the space the next trial of ``class_key`` samples."""
        return self._ids[int(rng.integers(len(self._ids)))]

    def priorities(self) -> dict[str | None, dict[str, float]]:
        """Work Queue priority of each space's tasks per class (higher runs first)."""
        return {k: {i: 0.0 for i in self._ids} for k in self.keys}
