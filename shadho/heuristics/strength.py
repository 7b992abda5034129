"""How fast each compute class runs each search space, learned from finished trials.

Hardware strength is measured, not declared, and it is per space: a 16-core node
may run a polynomial-kernel SVM 8x faster than a laptop core and a linear one no
faster at all. :class:`RuntimeModel` keeps, for every (space, class) pair, the
count and the sum of log runtimes of its finished trials (O(1) per observation)
and estimates the log runtime of every pair, including pairs never run:

* an additive model ``log t[s, c] ~ a_s + b_c`` is fitted to the pair means by a few
  alternating weighted means, each shrunk toward a prior with the weight of
  ``k_prior`` trials: ``b_c`` toward ``-log(declared_speed_c)`` (the class's declared
  resources, see :attr:`ComputeClass.declared_speed`) and ``a_s`` toward the mean of
  all spaces;
* the pair estimate is the pair's own mean shrunk toward the additive fit:
  ``(n_sc * mean_sc + k * (a_s + b_c)) / (n_sc + k)``, where ``k`` is huge (the pair
  follows the additive fit) until an F test rejects the additive model, i.e. until
  the pairs' departures from it exceed what the spread of runtimes within pairs
  explains, and the empirical-Bayes ratio of within-pair to between-pair variance
  (at least ``k_pair``) after (:meth:`RuntimeModel._pair_shrinkage`).

With no data every pair's speed is the class's declared speed; with data each pair
converges to its own measured mean, so a class's strength becomes a property of
the pair. Failed trials are left out of the runtimes (a crash says nothing about
speed) but counted in :meth:`RuntimeModel.log_success`, the log of each pair's share
of trials that succeed: the pair's own rate shrunk toward its space's rate over all
classes (with the weight of ``k_pair`` trials), itself shrunk toward 1 (``k_prior``),
so a class that fails every trial of a space soon gets none of them while a space
that fails everywhere keeps its standing among the classes.

Example:
    >>> m = RuntimeModel(n_spaces=2, declared_speed=[1.0, 8.0])
    >>> bool(m.log_runtime()[0, 1] < m.log_runtime()[0, 0])     # declared: class 1 faster
    True
    >>> for _ in range(500): m.add(0, 1, 2.0); m.add(0, 0, 2.0)  # measured: same speed
    >>> bool(abs(m.log_runtime()[0, 1] - m.log_runtime()[0, 0]) < 0.05)
    True
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["RuntimeModel"]


def f_survival(x: float, d1: float, d2: float) -> float:
    """P(F > x) for Fisher's F with ``(d1, d2)`` degrees of freedom, as the regularized
    incomplete beta ``I_{d2 / (d2 + d1 x)}(d2 / 2, d1 / 2)``. scipy.special is imported
    here, not scipy.stats (1.2 s to import, which a 1,000-trial search paid as 1 ms per
    decision).

    >>> round(f_survival(3.0, 2, 10), 6)
    0.095367
    """
    from scipy.special import betainc

    if x <= 0:
        return 1.0
    return float(betainc(d2 / 2.0, d1 / 2.0, d2 / (d2 + d1 * x)))


class RuntimeModel:
    """Online per-(space, class) runtime estimates (see the module docstring)."""

    def __init__(self, n_spaces: int, declared_speed: Sequence[float], *, k_prior: float = 5.0,
                 k_pair: float = 2.0, sweeps: int = 4) -> None:
        C = len(declared_speed)
        self.sum_log = np.zeros((n_spaces, C))
        self.sum_log2 = np.zeros((n_spaces, C))
        self.count = np.zeros((n_spaces, C))
        self.busy = np.zeros(C)
        self.tries = np.zeros((n_spaces, C))
        self.fails = np.zeros((n_spaces, C))
        self.prior_b = -np.log(np.maximum(np.asarray(declared_speed, dtype=float), 1e-9))
        self.k_prior, self.k_pair, self.sweeps = k_prior, k_pair, sweeps
        #: Level of the test for comparative advantage (see :meth:`_pair_shrinkage`), shared
        #: out over the looks: one per ``look_every`` results, the scheduler's default
        #: reassignment cadence.
        self.alpha = 0.01
        self.look_every = 10

    def add(self, s: int, c: int, runtime: float | None, ok: bool = True) -> None:
        """One finished trial of space ``s`` on class ``c`` that ran ``runtime`` seconds."""
        self.tries[s, c] += 1
        if not ok:
            self.fails[s, c] += 1
        if runtime is None or not runtime > 0 or not math.isfinite(runtime):
            return
        self.busy[c] += runtime
        if ok:
            lt = math.log(runtime)
            self.sum_log[s, c] += lt
            self.sum_log2[s, c] += lt * lt
            self.count[s, c] += 1

    def log_runtime(self, variance: np.ndarray | None = None) -> np.ndarray:
        """``S x C`` estimated log seconds per trial (``variance``: :meth:`log_variance`,
        when the caller has it already)."""
        n = self.count
        seen = n > 0
        m = np.where(seen, self.sum_log / np.where(seen, n, 1.0), 0.0)
        b = self.prior_b.copy()
        a = np.zeros(n.shape[0])
        if seen.any():
            k = self.k_prior
            for _ in range(self.sweeps):
                resid_a = (n * (m - b[None, :])).sum(axis=1)
                a_global = resid_a.sum() / n.sum()
                a = (resid_a + k * a_global) / (n.sum(axis=1) + k)
                resid_b = (n * (m - a[:, None])).sum(axis=0)
                b = (resid_b + k * self.prior_b) / (n.sum(axis=0) + k)
        fit = a[:, None] + b[None, :]
        k = self._pair_shrinkage(m, self.log_variance() if variance is None else variance)
        return (n * m + k * fit) / (n + k)

    def log_variance(self) -> np.ndarray:
        """Per space, the variance of a trial's log runtime about its pair's mean
        (pooled over classes, shrunk toward all spaces' with the weight of ``k_prior``
        degrees of freedom; 0 before any pair has two runs)."""
        n = self.count
        m = np.where(n > 0, self.sum_log / np.where(n > 0, n, 1.0), 0.0)
        ss = np.clip(self.sum_log2 - n * m * m, 0.0, None).sum(axis=1)
        df = np.clip(n - 1, 0, None).sum(axis=1)
        if df.sum() <= 0:
            return np.zeros(n.shape[0])
        pooled = ss.sum() / df.sum()
        return (ss + self.k_prior * pooled) / (df + self.k_prior)

    def log_mean_runtime(self) -> np.ndarray:
        """``S x C`` log of the expected seconds per trial: :meth:`log_runtime` plus half
        the space's log variance (a log-normal's mean). Trials per second follow the
        mean runtime, not the typical one: a kernel whose runtimes spread over 10x has a
        mean several times its median, and planning with the median gave it too little time."""
        var = self.log_variance()
        return self.log_runtime(var) + 0.5 * var[:, None]

    def _pair_shrinkage(self, m: np.ndarray, variance: np.ndarray) -> float | np.ndarray:
        """Weight (in trials) of the additive fit in each pair's estimate.

        Comparative advantage is claimed only when the log runtimes reject the additive
        model (no space-class interaction) by an F test at level ``alpha``: the pairs'
        departures from the fit (weighted by their counts) against the spread of
        trials within pairs. Until then every pair follows the additive fit (weight
        ``1e6``): a class faster or slower at everything is learned at once, but noise
        in a handful of trials (whose runtimes vary with their configurations) is not
        taken for a space that suits a class. After it, empirical Bayes: ``s2 / tau2``
        with ``s2`` the within-pair variance and ``tau2`` the variance of the true
        departures (observed less noise), at least ``k_pair``.
        """
        n = self.count
        seen = n > 0
        df_w = float(np.clip(n - 1, 0, None).sum())
        df_i = int(seen.sum()) - int(seen.any(axis=1).sum()) - int(seen.any(axis=0).sum()) + 1
        if df_w < 2 or df_i < 1:
            return 1e6
        s2 = variance[:, None] * np.ones_like(n)
        within = float(np.clip(self.sum_log2 - n * m * m, 0.0, None).sum()) / df_w
        # The test needs the least-squares additive fit, not log_runtime's (shrunk toward the
        # declared speeds): a wrong declaration is a class effect, not an interaction.
        ls = _additive_least_squares(m, n)
        ss_i = float((n * (m - ls) ** 2)[seen].sum())
        if within <= 1e-12:
            return self.k_pair if ss_i > 0 else 1e6
        p = f_survival((ss_i / df_i) / within, df_i, df_w)
        if p > self.level():
            return 1e6
        tau2 = float(((m - ls) ** 2 - s2 / np.where(seen, n, 1.0))[seen].mean())
        return np.maximum(self.k_pair, s2 / max(tau2, 1e-12))

    def level(self) -> float:
        """The F test's level now: ``alpha`` over the number of looks so far (Bonferroni).

        Why: the scheduler tests again every few results, and at a fixed ``alpha`` one of
        the hundreds of looks of a long search rejects by chance. On a pool where every
        class was equally fast on every space, one such look (at 60 results) made the
        scheduler leave the baseline's decisions for one reassignment, and the search
        then went its own way (time to target 0.85x and 0.91x of the baseline's in 2 of
        10 seeds of ``bench/heterogeneity.py``'s flat profile). A real advantage (8x on one
        space) is still found within a few dozen results: its F statistic grows with the
        data, the level only with its log. A function of the counts alone, so a resumed
        scheduler tests as the uninterrupted one.
        """
        looks = float(self.count.sum()) / self.look_every
        return self.alpha / max(1.0, looks)

    def log_success(self) -> np.ndarray:
        """``S x C`` log of the estimated share of trials that succeed (0 with no failures)."""
        ok = self.tries - self.fails
        space = (ok.sum(axis=1) + self.k_prior) / (self.tries.sum(axis=1) + self.k_prior)
        rate = (ok + self.k_pair * space[:, None]) / (self.tries + self.k_pair)
        return np.log(np.maximum(rate, 1e-6))

    def capacity(self) -> np.ndarray:
        """Relative capacity of each class: its busy seconds so far (equal until every
        class has reported), which grows with its number of slots."""
        if (self.busy > 0).all():
            return self.busy / self.busy.sum()
        return np.full(len(self.busy), 1.0 / len(self.busy))


def _additive_least_squares(m: np.ndarray, n: np.ndarray, sweeps: int = 20) -> np.ndarray:
    """The weighted least-squares fit ``a_s + b_c`` of the pair means ``m`` (weights
    ``n``), by alternating weighted means; pairs with no trials get the fit's value."""
    a = np.zeros(m.shape[0])
    b = np.zeros(m.shape[1])
    rows, cols = np.maximum(n.sum(axis=1), 1e-300), np.maximum(n.sum(axis=0), 1e-300)
    for _ in range(sweeps):
        a = (n * (m - b[None, :])).sum(axis=1) / rows
        b = (n * (m - a[:, None])).sum(axis=0) / cols
    return a[:, None] + b[None, :]
