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
  ``(n_sc * mean_sc + k_pair * (a_s + b_c)) / (n_sc + k_pair)``.

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
    >>> for _ in range(50): m.add(0, 1, 2.0); m.add(0, 0, 2.0)   # measured: same speed
    >>> bool(abs(m.log_runtime()[0, 1] - m.log_runtime()[0, 0]) < 0.05)
    True
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["RuntimeModel"]


class RuntimeModel:
    """Online per-(space, class) runtime estimates (see the module docstring)."""

    def __init__(self, n_spaces: int, declared_speed: Sequence[float], *, k_prior: float = 5.0,
                 k_pair: float = 2.0, sweeps: int = 4) -> None:
        C = len(declared_speed)
        self.sum_log = np.zeros((n_spaces, C))
        self.count = np.zeros((n_spaces, C))
        self.busy = np.zeros(C)
        self.tries = np.zeros((n_spaces, C))
        self.fails = np.zeros((n_spaces, C))
        self.prior_b = -np.log(np.maximum(np.asarray(declared_speed, dtype=float), 1e-9))
        self.k_prior, self.k_pair, self.sweeps = k_prior, k_pair, sweeps

    def add(self, s: int, c: int, runtime: float | None, ok: bool = True) -> None:
        """One finished trial of space ``s`` on class ``c`` that ran ``runtime`` seconds."""
        self.tries[s, c] += 1
        if not ok:
            self.fails[s, c] += 1
        if runtime is None or not runtime > 0 or not math.isfinite(runtime):
            return
        self.busy[c] += runtime
        if ok:
            self.sum_log[s, c] += math.log(runtime)
            self.count[s, c] += 1

    def log_runtime(self) -> np.ndarray:
        """``S x C`` estimated log seconds per trial."""
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
        return (n * m + self.k_pair * fit) / (n + self.k_pair)

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
