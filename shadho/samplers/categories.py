"""Which value of a categorical dim a TPE proposal explores: a budgeted bandit over the values.

Why a joint TPE collapses onto one category: its "below" group is a handful of trials,
all of the first category that looked good; the other categories are tried with that
category's values of the other dims (or, with category-conditional kernels, with a
kernel fitted to their own two or three trials, centred on whichever of those happened
to be least bad), look bad, and drop out. A category whose optimum sits in a narrow
basin (a learning rate that only works in one decade) looks the worst of all until a
trial lands in that basin, so any rule that follows the losses early starves it.

So the value is chosen by a rule over the values, and only the other dims come from
the joint model fitted to that value's trials (:mod:`shadho.samplers.tpe`):

* the value's own start-up (:func:`category_startup`): until a value has ``k`` trials
  its proposals are random points inside it, stratified over its uniform dims
  (:func:`stratified_point`), so its model is never fitted to two or three arbitrary
  points and no chance gap hides a narrow basin;
* an even spread, then a commitment (:func:`spread_share`): while the search is young
  (the first ``commit`` share of the budget when the driver tells it, else the first
  ``10`` trials per value) every value is explored equally often; after that only a
  ``floor`` share stays even and the rest follows each value's best loss
  (:func:`category_shares`), so the search converges on the best value and keeps trying
  the others with a bounded share (explore-then-commit, as in the bandit literature).

Tried and measured worse on bench/category_quick.py (seeds 0-99, budget 100, the share
of seeds whose best trial is in the optimum's category, four spaces): fitting a young
value's proposals to all trials with the categorical dim marginalised (44-56% against
70%: other values' good regions mislead), a decaying even share as before (62%),
wider sampling bandwidths (BOHB's factor) or a heavier prior kernel inside a value
(no change beyond the noise of +-3 points); a Thompson draw over the values on the rank
of their trials (Beta(1 + trials in the best 15%, 1 + the others)) from the end of the
start-ups on, without the even spread: 48% (the narrow-basin value has no good trial
until found, so its draws shrink and it is starved); the same draw in place of the
best-loss shares after the commitment: 72% against 73% (the spread does the work).
"""
from __future__ import annotations

import numpy as np

from shadho.spaces import SearchSpace

__all__ = ["category_shares", "category_startup", "spread_share", "stratified_point"]


def category_shares(col: np.ndarray, y: np.ndarray, nc: int, floor: float = 0.5,
                    sharpness: float = 4.0) -> np.ndarray:
    """How often each value of a categorical dim is explored, from its best loss so far.

    ``floor / nc + (1 - floor) * s_v / sum(s)`` with ``s_v = exp(-k (b_v - b*) / (m - b*))``, k = 4,
    ``b_v`` the value's best loss, ``b*`` the best and ``m`` the median of them (the
    scheduler's performance term): the best value is explored most, every value keeps
    ``floor / nc``, and a value not tried yet counts as the best.

    Example:
        >>> category_shares(np.array([0., 0., 1., 2.]), np.array([1., 2., 5., 9.]), 4).round(3).tolist()
        [0.373, 0.13, 0.125, 0.373]
    """
    best = np.full(nc, np.inf)
    for v in range(nc):
        mine = y[(col == v) & np.isfinite(y)]
        if len(mine):
            best[v] = mine.min()
    seen = np.isfinite(best)
    s = np.ones(nc)
    if seen.sum() >= 2:
        b, m = best[seen].min(), float(np.median(best[seen]))
        if m > b:
            s[seen] = np.exp(-sharpness * (best[seen] - b) / (m - b))
    return floor / nc + (1.0 - floor) * s / s.sum()


def category_startup(n_values: int, budget: int | None = None, cap: int = 8) -> int:
    """Random trials a categorical value gets before its own model: ``cap``, at most half the budget.

    ``min(cap, max(2, budget // (2 n_values)))``; without a budget as if it were 160 (8
    per value up to 10 values, fewer for more, so an open-ended search over 50 values
    does not spend 400 trials on start-ups). Eight random trials per value before its
    TPE: on bench/category_quick.py 2 found the optimum's category in 61% of seeds
    (0-39), 5 in 67%, 8 in 70%, 10 in 66% (0-99).

    Example:
        >>> category_startup(5), category_startup(5, budget=100), category_startup(8, budget=100)
        (8, 8, 6)
        >>> category_startup(4, budget=10), category_startup(50)
        (2, 2)
    """
    if budget is None or budget <= 0:
        budget = 160
    return min(cap, max(2, budget // (2 * max(1, n_values))))


def spread_share(n: int, n_values: int, budget: int | None, commit: float, floor: float) -> float:
    """Share of proposals spread evenly over the values after ``n`` trials (the rest follows losses).

    1 until ``commit * budget`` trials (or, without a budget, ``10 * n_values``: an open-ended
    search has no end to plan for, so it commits once each value had 10 trials), then ``floor``.

    Example:
        >>> spread_share(50, 4, 100, 0.85, 0.3), spread_share(90, 4, 100, 0.85, 0.3)
        (1.0, 0.3)
        >>> spread_share(39, 4, None, 0.85, 0.3), spread_share(40, 4, None, 0.85, 0.3)
        (1.0, 0.3)
    """
    until = commit * budget if budget else 10.0 * n_values
    return 1.0 if n < until else floor


def stratified_point(space: SearchSpace, mine: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A prior draw whose uniform dims avoid the strata the value's trials ``mine`` already hold.

    Each uniform-prior numeric dim is cut into ``k`` equal strata; the draw lands in a
    stratum none of ``mine`` occupies (a sequential Latin hypercube), so a value's
    ``k`` start-up trials cover every dim evenly instead of leaving chance gaps in which
    a narrow basin hides. Other dims come from the prior.

    Example:
        >>> from shadho.spaces import split, uniform
        >>> (s,) = split({'x': uniform(0, 1)})
        >>> rng, pts = np.random.default_rng(0), np.empty((0, 1))
        >>> for _ in range(4):
        ...     pts = np.vstack([pts, stratified_point(s, pts, 4, rng)])
        >>> sorted(np.floor(pts[:, 0] * 4).astype(int).tolist())
        [0, 1, 2, 3]
    """
    x = space.sample(rng)
    for d, enc in enumerate(space.encodings):
        if enc.categorical or enc.prior != "uniform" or (enc.integer and enc.log):
            continue
        lo, hi = (enc.low - 0.5, enc.high + 0.5) if enc.integer else (enc.low, enc.high)
        width = (hi - lo) / k
        taken = np.floor((mine[:, d] - lo) / width).astype(int) if len(mine) else np.empty(0, int)
        free = np.setdiff1d(np.arange(k), taken)
        cell = int(rng.choice(free)) if len(free) else int(rng.integers(k))
        v = lo + (cell + rng.random()) * width
        x[d] = min(max(np.rint(v), enc.low), enc.high) if enc.integer else v
    return x
