"""What the search spaces of one experiment share, and how many start-up trials fit.

An exclusive choice splits a spec into several search spaces (``svm/linear``,
``svm/rbf``, ...), each with its own :class:`~shadho.history.History`. Parameters
with the same name and the same domain in two spaces (``C`` in every SVM kernel) are
the same hyperparameter seen in different company, so a sampler may borrow the other
spaces' observations of them: a borrowed trial carries its loss and its values of the
shared dims, and NaN in the dims the borrowing space has and it had not.

How much borrowed trials may weigh is :func:`borrow_factors`: together at most a
fixed number of trials' worth (not one per borrowed trial), fading to nothing as the
space's own trials accumulate, so a space's model does not follow how many trials the
scheduler happened to run in the other spaces.

The start-up (random trials before a model is fitted) scales with the dimension and,
when the driver knows the budget, with the budget per space:
``min(max(10, 2 * dim), max(2, budget / (5 * n_spaces)))`` (see :func:`startup_size`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from shadho.history import History
from shadho.spaces import SearchSpace

__all__ = ["SearchContext", "startup_size", "shared_dims", "borrowed", "borrow_factors"]


@dataclass(frozen=True)
class SearchContext:
    """What a sampler may know beyond one space: all spaces, their histories, the budget.

    The driver hands one to :meth:`Sampler.bind` once its histories exist; samplers
    driven directly (without a driver) simply never get one.

    Example:
        >>> from shadho.spaces import split, uniform
        >>> from shadho.history import History
        >>> sp = split({'exclusive': True, 'a': {'C': uniform(0, 1)}, 'b': {'C': uniform(0, 1)}})
        >>> ctx = SearchContext(sp, {s.id: History(s.dim) for s in sp}, budget=40)
        >>> ctx.n_spaces, ctx.budget
        (2, 40)
    """

    spaces: Sequence[SearchSpace]
    histories: Mapping[str, History]  # by space id
    budget: int | None = None        # the experiment's total trials, when known

    @property
    def n_spaces(self) -> int:
        return max(1, len(self.spaces))


def startup_size(dim: int, budget: int | None = None, n_spaces: int = 1, base: int = 10) -> int:
    """Random start-up trials of one space: ``min(max(base, 2 dim), max(2, budget / (5 S)))``.

    Many dims need more random points to seed a model (two per dim past 5 dims; at
    2 and 5 dims, BBOB with 4 seeds showed no gain from fewer than 10); a small budget
    spread over ``S`` spaces cannot afford that many random trials in each (they would
    be all it gets), so at most a fifth of a space's share goes to start-up.

    Example:
        >>> startup_size(2), startup_size(12), startup_size(6, budget=40, n_spaces=4)
        (10, 24, 2)
    """
    n = max(base, 2 * dim)
    if budget is not None and budget > 0:
        n = min(n, max(2, math.floor(budget / (5 * max(1, n_spaces)))))
    return max(1, n)


def _key(space: SearchSpace, i: int) -> tuple[str, str]:
    return space.paths[i][-1], repr(space.domains[i].describe())


def shared_dims(space: SearchSpace, other: SearchSpace) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``: dim ``i`` of ``space`` is dim ``j`` of ``other`` (same name, same domain).

    A name that occurs twice in one space with the same domain is ambiguous and not shared.

    Example:
        >>> from shadho.spaces import split, uniform, log10_uniform
        >>> a, b = split({'exclusive': True, 'lin': {'C': log10_uniform(-3, 3)},
        ...               'rbf': {'g': uniform(0, 1), 'C': log10_uniform(-3, 3)}})
        >>> shared_dims(a, b)
        [(0, 1)]
    """
    mine: dict[tuple[str, str], list[int]] = {}
    theirs: dict[tuple[str, str], list[int]] = {}
    for i in range(space.dim):
        mine.setdefault(_key(space, i), []).append(i)
    for j in range(other.dim):
        theirs.setdefault(_key(other, j), []).append(j)
    return sorted((m[0], theirs[k][0]) for k, m in mine.items()
                  if len(m) == 1 and len(theirs.get(k, ())) == 1)


def borrowed(space: SearchSpace, context: SearchContext | None, limit: int | None = None,
             first: int | Mapping[str, int] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Other spaces' COMPLETE trials in ``space``'s coordinates (NaN where not shared);
    ``limit``: at most that many of each other space, its earliest complete ones (None:
    all); ``first``: only those among each other space's first trials by proposal order
    (:meth:`History.earliest`), this many or, a mapping, this many by space id.

    Returns ``(X, y, coverage)``: ``X`` (m, space.dim), their losses, and the number of
    trials they are worth for the start-up count (each counts the share of ``space``'s
    dims it informs).
    """
    empty = np.empty((0, space.dim)), np.empty(0), 0.0
    if context is None or space.dim == 0 or len(context.spaces) < 2:
        return empty
    rows, ys, worth = [], [], 0.0
    for other in context.spaces:
        if other.id == space.id:
            continue
        hist = context.histories.get(other.id)
        pairs = shared_dims(space, other)
        if hist is None or not pairs or hist.n == 0:
            continue
        n = hist.n if limit is None else min(hist.n, int(limit))
        take = np.arange(n)
        if first is not None:
            k = first if isinstance(first, int) else first.get(other.id, hist.n)
            take = take[hist.earliest(k)[:n]]
            n = len(take)
        mine, theirs = (np.array(p) for p in zip(*pairs))
        X = np.full((n, space.dim), np.nan)
        X[:, mine] = hist.X[take][:, theirs]
        rows.append(X)
        ys.append(hist.y[take])
        worth += n * len(pairs) / space.dim
    if not rows:
        return empty
    return np.concatenate(rows), np.concatenate(ys), worth


def borrow_factors(n_own: int, m: int, startup: int, shared_weight: float,
                   cap: float | None, fade_span: float = 3.0) -> np.ndarray:
    """Kernel weight factor of each of ``m`` borrowed trials, given ``n_own`` own ones.

    Each borrowed trial weighs ``shared_weight * fade`` with
    ``fade = max(0, 1 - n_own / (fade_span * startup))``, as long as they weigh no more
    together than ``cap`` such trials; past that, they share that total equally
    (``cap=None``: no total, each keeps its weight). With a cap, a space's model gives
    the other spaces' data the same total weight whether they ran ``cap`` trials or ten
    times as many: borrowed data is a prior of bounded strength, not evidence that grows
    with the others' counts.

    Example:
        >>> borrow_factors(0, 4, 10, 0.5, 10).tolist()       # few: each its own weight
        [0.5, 0.5, 0.5, 0.5]
        >>> float(borrow_factors(0, 40, 10, 0.5, 10).sum())  # many: 10 trials' worth in all
        5.0
        >>> float(borrow_factors(15, 40, 10, 0.5, 10).sum()), borrow_factors(30, 4, 10, 0.5, 10).tolist()
        (2.5, [0.0, 0.0, 0.0, 0.0])
        >>> borrow_factors(0, 40, 10, 0.5, None).tolist()[:2]  # no cap: every trial 0.5
        [0.5, 0.5]
    """
    each = shared_weight * max(0.0, 1.0 - n_own / (fade_span * max(1, startup)))
    if cap is not None and m > cap:
        each *= cap / m
    return np.full(m, each)
