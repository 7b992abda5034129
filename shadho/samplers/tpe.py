"""Tree-structured Parzen Estimator (Bergstra et al. 2011), modelled in working space.

The finished trials are split into the best ``gamma(n)`` ("below", density ``l``) and
the rest ("above", density ``g``). Each group becomes a mixture of kernels, one per
trial plus one prior kernel (:mod:`shadho.samplers.parzen`); candidates drawn from
``l`` are scored by ``log l(x) - log g(x)`` and the best one is proposed.

Because everything happens in working space, log domains are modelled by their
exponent. With ``multivariate=True`` (the default, as in Optuna 5) a kernel is a
product over the dimensions, so candidates keep the joint structure of good trials;
with ``multivariate=False`` every dimension is modelled and chosen independently.

Categorical dims, without collapsing onto one category. A multivariate TPE settles on
the first category that looks good: ``l`` is built from a handful of good trials of one
category, so the other categories are only ever tried with that category's values of
the other dims (a learning rate good for one activation), look bad, and are dropped.
Two changes keep the joint model and fix it:

* category-conditional kernels: a trial's kernel keeps its own category; another
  category is reached through the prior kernel only, whose numeric dims are the
  prior, so a new category is tried with fresh values instead of another category's;
* category exploration: a share ``category_explore`` of the proposals (by default
  all) picks one categorical dim and a value of it by a budgeted bandit rule
  (:mod:`shadho.samplers.categories`: every value gets its own random start-up of up
  to 8 trials, stratified over its uniform dims, values are explored evenly for the first 85% of the budget, then 70%
  of the proposals follow each value's best loss), and runs TPE on the trials of that
  value alone (its own "below"/"above" split, bandwidths from the gaps among all its
  trials, 24 candidates), so each category's own good region is found even while
  another category holds the best trials; the numeric dims keep their joint
  (multivariate) model inside the category.

  Measured with bench/category_quick.py (budget 100, share of seeds whose best trial
  is in the optimum's category, over the three bench spaces and a validation space;
  seeds 0-99 / held-out 100-199): the previous rule 56% / 58%, random search 57% / 58%,
  this one 73% / 70% (99-100% and 91% on the spaces with 4-5 values, 40-51% on those
  with 6-8, where a value gets only ~12 trials of the budget: short of the 90% aimed
  at). Spaces without categorical dims (BBOB) are unaffected, bit for bit.

Start-up: until the space has ``n_startup_trials`` complete trials (by default
:func:`~shadho.samplers.startup.startup_size`: scaled with the dimension and, when the
driver tells the budget, with the budget per space), points come from the priors.
With ``share_across_spaces`` the other search spaces' trials of parameters with the
same name and domain (``C`` across SVM kernels) count towards the start-up and join
the model with a weight that fades as the space's own trials accumulate. With the
hardware-aware heuristics on, the other spaces run more, and this borrowing can move
the space holding the target off its heuristics-off sequence (issue 15). Options bound
it, so that a space's proposals do not follow how many trials ran elsewhere:

* ``borrow_cap``: together they weigh at most as much as that many trials at
  ``shared_weight``, fading to 0 at ``borrow_fade * n_startup`` own trials
  (:func:`~shadho.samplers.startup.borrow_factors`);
* ``borrow_first='startup'``: only each other space's first trials (as many as its
  start-up, mostly draws from its priors), a set that does not grow later;
* ``borrow_startup``: they end at most that share of the start-up;
* ``borrow_rank='separate'``: they are ranked into "below"/"above" among themselves,
  the space's own trials among themselves.

Measured with bench/heterogeneity.py (bench/results/heterogeneity.txt) with all four
bounds, they helped one profile and hurt another, so the defaults keep the old rule.

Pending trials are treated as constant liars: they join the "above" group with the
worst observed loss, so queued trials do not crowd one spot.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from shadho.history import History
from shadho.samplers.base import ModelSampler
from shadho.samplers.parzen import _build, _Layout, _layout, _log_pdf, _Mixture, _sample
from shadho.samplers.categories import category_shares, category_startup, spread_share, stratified_point
from shadho.samplers.startup import borrow_factors, borrowed
from shadho.spaces import SearchSpace

#: Trials a model is fitted to: X, y, a weight factor per row, which rows are the space's
#: own (the others borrowed), and their start-up worth.
_Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]

__all__ = ["TPESampler", "default_gamma", "default_weights", "default_candidates", "category_shares"]


def default_gamma(n: int) -> int:
    """Number of "below" trials among ``n`` finished ones: the best 15%, at most 25.

    Optuna uses 10%. With 200 EI candidates (below) the search exploits harder, and a
    wider "below" group keeps it from settling in the first basin it finds: on tuning
    seeds 100-139 (not the reported ones) 15% lowered the median regret on Levy-6 from
    2.7 to 1.0 at no cost on Branin, Hartmann-6 and Rosenbrock-4.

    Example:
        >>> [default_gamma(n) for n in (1, 10, 11, 100, 1000)]
        [1, 2, 2, 15, 25]
    """
    return min(math.ceil(0.15 * n), 25)


def default_weights(n: int) -> np.ndarray:
    """Kernel weights of ``n`` trials in trial order: the 25 newest weigh 1, older ones less.

    Example:
        >>> default_weights(3).tolist()
        [1.0, 1.0, 1.0]
        >>> w = default_weights(30); (round(float(w[0]), 3), float(w[-1]))
        (0.033, 1.0)
    """
    if n == 0:
        return np.empty(0)
    if n < 25:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - 25), np.ones(25)])

def default_candidates(dim: int) -> int:
    """EI candidates per proposal: 24 at 1-2 dims, doubling per dim up to 200.

    The best of many candidates exploits the model hard, which pays in 5+ dims
    (tuning seeds 100-139: Hartmann-6 0.19 -> 0.11, Rosenbrock-4 4.7 -> 3.8 with 200)
    and hurts at 2 dims, where it settles in the first basin (BBOB d=2: 24 candidates
    took f10 from 2.2e3 to 45 and f12 from 307 to 76).

    Example:
        >>> [default_candidates(d) for d in (1, 2, 3, 4, 5, 8)]
        [24, 24, 48, 96, 192, 200]
    """
    return min(200, 24 * 2 ** max(0, dim - 2))


class TPESampler(ModelSampler):
    """Tree-structured Parzen Estimator over one search space's working vectors.

    Args:
        n_startup_trials: draw from the priors until this many trials are complete
            (borrowed trials count by the share of dims they inform). None (default):
            :func:`~shadho.samplers.startup.startup_size` of the dimension, the budget
            and the number of spaces (10 up to 5 dims without a budget).
        n_ei_candidates: candidates drawn from ``l(x)`` per proposal; None (default):
            :func:`default_candidates` of the dimension.
        gamma: ``n_complete -> n_below`` (default :func:`default_gamma`).
        weights: ``n -> kernel weights`` in trial order (default :func:`default_weights`).
        prior_weight: weight of the prior kernel in each mixture.
        consider_magic_clip: bound bandwidths below by ``range / min(100, 1 + n_kernels)``.
        consider_endpoints: let the domain bounds count as neighbours of the extreme
            kernels when choosing bandwidths.
        multivariate: product kernels over all dims (True) or one TPE per dim (False).
        constant_liar: count pending trials as "above" trials with the worst loss.
        bandwidth_factor: multiplies the trial kernels' bandwidths (before the magic
            clip's lower bound); below 1 exploits more.
        max_scored_pairs: caps candidates x kernels scored per proposal (but never
            fewer than 24 candidates), so a long history keeps a proposal within a few
            ms: at 1,000 trials 40 candidates are scored instead of 200.
        cat_prior: ``'conditional'`` (default: a trial's kernel keeps its category) or
            ``'spread'`` (Optuna's: ``prior_weight / n_kernels`` on every category).
        category_explore: share of proposals (in spaces with categorical dims) that
            run TPE on the trials of one value of one categorical dim (default: all).
        category_floor: once the search commits, the share of those proposals spread
            evenly over the values; the rest follows each value's best loss
            (:func:`~shadho.samplers.categories.category_shares`).
        category_commit: the share of the budget (when the driver tells it) during which
            every value is explored equally often; without a budget, the first 10 trials
            per value (:func:`~shadho.samplers.categories.spread_share`).
        category_startup: random trials (stratified over the uniform dims, see
            :func:`~shadho.samplers.categories.stratified_point`) each value of a
            categorical dim gets before its own model (at least 2); None (default):
            :func:`~shadho.samplers.categories.category_startup` (8, at most half the
            budget spread over the values).
        category_candidates: EI candidates of a proposal inside one category (24: a
            category's own search is young and exploits less).
        share_across_spaces: borrow other spaces' trials of same-named, same-domain
            parameters (needs the driver's :meth:`bind`; a no-op without it).
        shared_weight: kernel weight of a borrowed trial while the space has none of its
            own; it fades linearly to 0 at ``borrow_fade * n_startup`` own trials.
        borrow_cap: borrowed trials weigh together at most as much as this many
            trials at ``shared_weight`` (however many there are); None (default): no
            cap, each borrowed trial weighs ``shared_weight`` faded.
        borrow_startup: borrowed trials count towards the start-up by at most this
            share of it (1.0, the default: up to all of it).
        borrow_rank: ``'separate'`` (own and borrowed trials are split into
            "below"/"above" each among themselves) or ``'pooled'`` (default: one
            ranking over both).
        borrow_fade: own trials, in start-up sizes, at which borrowing ends.
        borrow_first: borrow only among each other space's first this many trials by
            proposal order; ``'startup'``: its own start-up size; None (default): all.
        borrow_limit: borrow at most this many trials of each other space, its earliest
            (None, the default: all). A cap keeps a space's proposals from depending on
            how many trials the scheduler ran in the others: with the heuristics on,
            the other spaces run more, and the borrowed data moved the space that held
            the target off the heuristics-off sequence (bench/results/heterogeneity.txt).

    Example:
        >>> import numpy as np
        >>> from shadho.spaces import split, uniform, randint
        >>> (space,) = split({'x': uniform(-1, 1), 'k': randint(0, 5)})
        >>> h, rng, tpe = History(2), np.random.default_rng(0), TPESampler(n_startup_trials=5)
        >>> for i in range(30):
        ...     x = tpe.suggest(space, h, rng)
        ...     h.complete(i, x, (x[0] - 0.3) ** 2 + (x[1] - 2) ** 2)
        >>> bool(h.best < 0.05)
        True
    """

    name = "tpe"

    def __init__(self, *, n_startup_trials: int | None = None, n_ei_candidates: int | None = None,
                 gamma: Callable[[int], int] | None = None,
                 weights: Callable[[int], np.ndarray] | None = None,
                 prior_weight: float = 1.0, consider_magic_clip: bool = True,
                 consider_endpoints: bool = False, multivariate: bool = True,
                 constant_liar: bool = True, bandwidth_factor: float = 1.0,
                 max_scored_pairs: int = 40_000, cat_prior: str = "conditional",
                 category_explore: float = 1.0, category_floor: float = 0.3,
                 category_commit: float = 0.85, category_startup: int | None = None,
                 category_candidates: int = 24, share_across_spaces: bool = True,
                 shared_weight: float = 0.5, borrow_limit: int | None = None,
                 borrow_cap: float | None = None, borrow_startup: float = 1.0,
                 borrow_rank: str = "pooled", borrow_fade: float = 3.0,
                 borrow_first: int | str | None = None) -> None:
        super().__init__(n_startup_trials)
        if n_ei_candidates is not None and n_ei_candidates < 1:
            raise ValueError(f"n_ei_candidates must be None or >= 1, got {n_ei_candidates}")
        if not bandwidth_factor > 0:
            raise ValueError(f"bandwidth_factor must be > 0, got {bandwidth_factor}")
        if not prior_weight > 0:
            raise ValueError(f"prior_weight must be > 0, got {prior_weight}")
        if cat_prior not in ("conditional", "spread"):
            raise ValueError(f"cat_prior must be 'conditional' or 'spread', got {cat_prior!r}")
        for key, val in (("category_explore", category_explore), ("category_floor", category_floor),
                         ("category_commit", category_commit), ("shared_weight", shared_weight),
                         ("borrow_startup", borrow_startup)):
            if not 0.0 <= val <= 1.0:
                raise ValueError(f"{key} must be in [0, 1], got {val!r}")
        if category_startup is not None and category_startup < 1:
            raise ValueError(f"category_startup must be None or >= 1, got {category_startup}")
        if category_candidates < 1:
            raise ValueError(f"category_candidates must be >= 1, got {category_candidates}")
        if borrow_limit is not None and borrow_limit < 0:
            raise ValueError(f"borrow_limit must be None or >= 0, got {borrow_limit}")
        if borrow_cap is not None and not borrow_cap >= 0:
            raise ValueError(f"borrow_cap must be None or >= 0, got {borrow_cap!r}")
        if borrow_rank not in ("separate", "pooled"):
            raise ValueError(f"borrow_rank must be 'separate' or 'pooled', got {borrow_rank!r}")
        if not borrow_fade > 0:
            raise ValueError(f"borrow_fade must be > 0, got {borrow_fade!r}")
        if not (borrow_first is None or borrow_first == "startup"
                or (isinstance(borrow_first, int) and borrow_first >= 0)):
            raise ValueError(f"borrow_first must be None, 'startup' or an int >= 0, got {borrow_first!r}")
        self.n_ei_candidates = n_ei_candidates
        self.gamma = gamma or default_gamma
        self.weights = weights or default_weights
        self.prior_weight = prior_weight
        self.consider_magic_clip = consider_magic_clip
        self.consider_endpoints = consider_endpoints
        self.multivariate = multivariate
        self.constant_liar = constant_liar
        self.bandwidth_factor = bandwidth_factor
        self.max_scored_pairs = max_scored_pairs
        self.cat_prior = cat_prior
        self.category_explore = category_explore
        self.category_floor = category_floor
        self.category_commit = category_commit
        self.category_startup = category_startup
        self.category_candidates = category_candidates
        self.share_across_spaces = share_across_spaces
        self.shared_weight = shared_weight
        self.borrow_limit = borrow_limit
        self.borrow_cap = borrow_cap
        self.borrow_startup = borrow_startup
        self.borrow_rank = borrow_rank
        self.borrow_fade = borrow_fade
        self.borrow_first = borrow_first
        # Derived data only (a pure function of space and history), so resume is unaffected.
        self._cache: tuple[tuple, tuple[_Layout, _Mixture, _Mixture]] | None = None
        self._layouts: dict[str, _Layout] = {}
        self._data_cache: tuple[tuple, _Data] | None = None

    def observed(self, space: SearchSpace, history: History) -> float:
        """Own complete trials plus borrowed ones, each by the share of dims it informs,
        these at most ``borrow_startup`` of the start-up."""
        worth = self._data(space, history)[4]
        return history.n + min(worth, self.borrow_startup * self.startup(space))

    def _data(self, space: SearchSpace, history: History) -> _Data:
        """Own trials plus borrowed ones: X, y, per-row weight factor, start-up worth.

        Kept for one (space, history version): :meth:`observed` and :meth:`propose` both read it.
        """
        key = (space.id, id(history), history.version, id(self.context), self._versions())
        if self._data_cache is None or self._data_cache[0] != key:
            self._data_cache = (key, self._own_and_borrowed(space, history))
        return self._data_cache[1]

    def _own_and_borrowed(self, space: SearchSpace, history: History) -> _Data:
        X, y = history.X, history.y
        alone = X, y, np.ones(len(y)), np.ones(len(y), bool), 0.0
        if not self.share_across_spaces:
            return alone
        first = self.borrow_first
        if first == "startup" and self.context is not None:
            first = {s.id: self.startup(s) for s in self.context.spaces}
        Xb, yb, worth = borrowed(space, self.context, self.borrow_limit, first)
        if not len(yb):
            return alone
        fb = borrow_factors(history.n, len(yb), self.startup(space), self.shared_weight,
                            self.borrow_cap, self.borrow_fade)
        if not fb.any():
            return alone
        own = np.concatenate([np.zeros(len(yb), bool), np.ones(len(y), bool)])
        return (np.concatenate([Xb, X]), np.concatenate([yb, y]), np.concatenate([fb, np.ones(len(y))]),
                own, worth)

    def _split(self, y: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the "below" and "above" groups, each in trial order."""
        y = np.where(np.isnan(y), np.inf, y)
        groups = [np.arange(len(y))]
        if self.borrow_rank == "separate" and not own.all():
            groups = [np.flatnonzero(~own), np.flatnonzero(own)]
        below, above = [], []
        for rows in groups:
            if not len(rows):
                continue
            n_below = min(max(int(self.gamma(len(rows))), 1), len(rows))
            order = rows[np.argsort(y[rows], kind="stable")]
            below.append(order[:n_below])
            above.append(order[n_below:])
        empty = [np.empty(0, int)]
        return np.sort(np.concatenate(below or empty)), np.sort(np.concatenate(above or empty))

    def _fit(self, lay: _Layout, X: np.ndarray, y: np.ndarray, factor: np.ndarray,
             own: np.ndarray, pending: np.ndarray,
             local_bw: bool = False) -> tuple[_Mixture, _Mixture]:
        """The "below" and "above" mixtures of trials ``X`` (rows in trial order).

        ``local_bw``: the "below" bandwidths are gaps to neighbours among all of ``X``.
        """
        below, above = self._split(y, own)
        Xa, fa = X[above], factor[above]
        if len(pending):  # pending come last: the newest trials
            Xa = np.concatenate([Xa, pending])
            fa = np.concatenate([fa, np.ones(len(pending))])

        def mk(Z: np.ndarray, f: np.ndarray, ref: np.ndarray | None = None) -> _Mixture:
            w = np.asarray(self.weights(len(Z)), float)[: len(Z)] * f
            return _build(lay, Z, w, self.prior_weight, self.consider_endpoints,
                          self.consider_magic_clip, self.bandwidth_factor,
                          cat_spread=self.cat_prior == "spread", ref=ref)

        return mk(X[below], factor[below], X if local_bw else None), mk(Xa, fa)

    def _layout_of(self, space: SearchSpace) -> _Layout:
        if space.id not in self._layouts:
            self._layouts[space.id] = _layout(space)
        return self._layouts[space.id]

    def _versions(self) -> tuple[int, ...]:
        if not self.share_across_spaces or self.context is None:
            return ()
        return tuple(h.version for h in self.context.histories.values())

    def propose(self, space: SearchSpace, history: History, rng: np.random.Generator) -> np.ndarray:
        X, y, factor, own, _ = self._data(space, history)
        lay = self._layout_of(space)
        pending = history.pending if self.constant_liar and history.n_pending else np.empty((0, space.dim))
        if len(lay.cat) and self.category_explore > 0 and rng.random() < self.category_explore:
            return self._explore_category(space, lay, X, y, factor, own, pending, rng)
        key = (space.id, id(history), history.version, self._versions())
        if self._cache is not None and self._cache[0] == key:
            below, above = self._cache[1][1:]
        else:
            below, above = self._fit(lay, X, y, factor, own, pending)
            self._cache = (key, (lay, below, above))
        return self._propose(space, lay, below, above, rng, None)

    def _explore_category(self, space: SearchSpace, lay: _Layout, X: np.ndarray, y: np.ndarray,
                          factor: np.ndarray, own: np.ndarray, pending: np.ndarray,
                          rng: np.random.Generator) -> np.ndarray:
        """TPE on the trials of one value of one categorical dim, the value from a bandit rule."""
        i = int(rng.integers(len(lay.cat)))
        j, nc = int(lay.cat[i]), lay.n_cat[i]
        col = X[:, j]
        ctx = self.context
        budget = ctx.budget // ctx.n_spaces if ctx is not None and ctx.budget else None  # this space's share
        floor = spread_share(len(col), nc, budget, self.category_commit, self.category_floor)
        v = int(rng.choice(nc, p=category_shares(col, y, nc, floor=floor)))
        rows = col == v
        k = self.category_startup or category_startup(nc, budget)
        if rows.sum() < max(2, k):  # the value's own start-up: no model on a few arbitrary points
            mine = X[rows]
            if len(pending):  # queued trials of the value hold their strata too
                mine = np.concatenate([mine, pending[pending[:, j] == v]])
            x = stratified_point(space, mine, max(2, k), rng)
            x[j] = v
            return x
        pend = pending[pending[:, j] == v] if len(pending) else pending
        below, above = self._fit(lay, X[rows], y[rows], factor[rows], own[rows], pend, local_bw=True)
        return self._propose(space, lay, below, above, rng, (j, v))

    def _propose(self, space: SearchSpace, lay: _Layout, below: _Mixture, above: _Mixture,
                 rng: np.random.Generator, fixed: tuple[int, int] | None) -> np.ndarray:
        """The best of the candidates drawn from ``below`` (optionally one dim fixed)."""
        n_ei = self.n_ei_candidates or default_candidates(space.dim)
        if fixed is not None:  # inside one category: fewer candidates, less exploitation
            n_ei = min(n_ei, self.category_candidates)
        n_cand = min(n_ei, max(24, self.max_scored_pairs // max(1, len(above.logw))))
        cand = _sample(lay, below, n_cand, self.multivariate, rng)
        if fixed is not None:
            cand[:, fixed[0]] = fixed[1]
        score = (_log_pdf(lay, below, cand, self.multivariate)
                 - _log_pdf(lay, above, cand, self.multivariate))
        if self.multivariate:
            x = cand[int(np.argmax(score))].copy()
        else:
            x = cand[np.argmax(score, axis=1), np.arange(space.dim)]
        x = np.clip(x, lay.out_low, lay.out_high)
        x[lay.is_int] = np.rint(x[lay.is_int])
        return x
