"""A study's rungs: which trial ran which configuration at which budget, rebuilt from the store.

A multi-fidelity study keeps one :class:`RungBook`. It maps every rung trial to its
configuration, rung and bracket, holds the rung results :func:`shadho.asha.next_job`
decides from, a :class:`~shadho.history.History` per (search space, rung) for the
samplers (BOHB-style: they fit on the highest rung with enough results), and the
configurations' checkpoints. Everything in it comes from the store's trial and rung
rows, so a restarted master rebuilds it exactly: finished rungs are neither lost nor
run again.

Example:
    >>> from shadho.fidelity import Fidelity
    >>> book = RungBook(Fidelity('epochs', 1, 9, eta=3), {'s': 1})
    >>> for c in range(3):
    ...     book.add(c, c, 0, 0, 's', {'x': c}, (float(c),))
    ...     _ = book.finish(c, 3.0 - c)
    >>> book.next_job(set())
    Job(config=2, rung=1, bracket=0)
    >>> book.budget_spent()
    3.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping

from shadho.asha import Job, RungResult
from shadho.asha_index import RungIndex
from shadho.fidelity import Fidelity
from shadho.history import History

__all__ = ["RungBook", "RungOf"]


@dataclass(frozen=True)
class RungOf:
    """Where one trial stands in the search: ``config`` at ``rung`` of ``bracket``."""

    config: int
    rung: int
    bracket: int


class RungBook:
    """The rung records of one multi-fidelity study (see the module docstring).

    Args:
        fidelity: the search's budget.
        dims: search space id -> its dimension (one History per space and rung).
    """

    def __init__(self, fidelity: Fidelity, dims: Mapping[str, int]) -> None:
        self.fidelity = fidelity
        self.dims = dict(dims)
        self.of_trial: dict[int, RungOf] = {}
        #: config -> (space id, params, encoded point) of its first rung.
        self.configs: dict[int, tuple[str, dict[str, Any], tuple[float, ...]]] = {}
        self.results: list[RungResult] = []
        self._finished: set[int] = set()
        self._index = RungIndex(fidelity)  # the rule of shadho.asha, kept up to date per result
        self._latest: dict[int, float] = {}  # config -> its latest rung's loss (inf: failed)
        self._spent = 0.0  # the budgets of the finished rung runs, summed
        self._histories: dict[tuple[str, int], History] = {}

    def history(self, space_id: str, rung: int) -> History:
        """The results of ``space_id``'s configurations at ``rung``."""
        key = (space_id, rung)
        if key not in self._histories:
            self._histories[key] = History(self.dims[space_id])
        return self._histories[key]

    def add(self, trial_id: int, config: int, rung: int, bracket: int, space_id: str,
            params: dict[str, Any], x: tuple[float, ...]) -> None:
        """Trial ``trial_id`` runs ``config`` at ``rung`` (pending until :meth:`finish`)."""
        self.of_trial[trial_id] = RungOf(config, rung, bracket)
        self.configs.setdefault(config, (space_id, params, x))
        if space_id in self.dims:
            self.history(space_id, rung).add_pending(trial_id, x)

    def finish(self, trial_id: int, loss: float | None) -> RungOf | None:
        """Record the result of rung trial ``trial_id`` (``loss`` None: it failed)."""
        at = self.of_trial.get(trial_id)
        if at is None or trial_id in self._finished:
            return None
        self._finished.add(trial_id)
        ok = loss is not None and math.isfinite(loss)
        result = RungResult(at.config, at.rung, loss if ok else None, at.bracket)
        self.results.append(result)
        self._index.add(result)
        self._latest[at.config] = float(loss) if ok else math.inf  # type: ignore[arg-type]
        self._spent += self.fidelity.budget(at.rung)
        space_id, _, x = self.configs[at.config]
        if space_id in self.dims:
            hist = self.history(space_id, at.rung)
            if ok:
                hist.complete(trial_id, x, float(loss))  # type: ignore[arg-type]
            else:
                hist.fail(trial_id)
        return at

    def next_job(self, pending: Collection[int]) -> Job:
        """What the next free slot runs, given the trials in flight or waiting to run."""
        jobs = [Job(self.of_trial[t].config, self.of_trial[t].rung, self.of_trial[t].bracket)
                for t in pending if t in self.of_trial and t not in self._finished]
        return self._index.next_job(jobs)

    def sampling_history(self, space_id: str, startup: int) -> History:
        """BOHB-style: the highest rung of ``space_id`` with at least ``startup`` results,
        else the rung with the most (the sampler then draws its start-up points)."""
        rungs = [self.history(space_id, k) for k in range(self.fidelity.n_rungs)]
        for hist in reversed(rungs):
            if hist.n >= max(1, startup):
                return hist
        return max(reversed(rungs), key=lambda h: h.n)

    def budget_spent(self) -> float:
        """The sum of the budgets of the finished rung runs (e.g. epochs trained, counting
        a continued run at its whole rung budget)."""
        return self._spent

    def rank(self) -> Mapping[int, float]:
        """Each configuration's latest loss (for evicting checkpoints worst first)."""
        return self._latest

    def load(self, records: list[Any], trials: Mapping[int, Any],
             state_of: Callable[[Any], float | None | bool]) -> None:
        """Rebuild from the store: ``records`` (:class:`~shadho.store_rungs.RungRecord`),
        ``trials`` by id and ``state_of(trial)`` -> its loss, None (failed) or False (unfinished)."""
        for r in records:
            t = trials.get(r.trial_id)
            if t is None:
                continue
            self.add(r.trial_id, r.config_id, r.rung, r.bracket, t.space_id, t.params, tuple(t.x))
            loss = state_of(t)
            if loss is not False:
                self.finish(r.trial_id, loss)  # type: ignore[arg-type]
