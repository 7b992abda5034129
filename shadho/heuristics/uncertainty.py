"""How little a search space's losses are understood: the *uncertainty* heuristic.

Formula. The finished trials of a space (working vectors ``X`` scaled to [0, 1] by
the domains' bounds, losses ``y``) are fitted by a small ridge-regression surrogate
on quadratic features ``[1, x_i, x_i x_j]`` (linear features when there are too few
trials for the quadratic ones). Its leave-one-out residuals come in closed form,
``e_i / (1 - h_ii)`` with ``h`` the hat matrix, so no refitting is needed. Then

    U = min(1, sqrt(mean(loo_i^2)) / std(y))

is the share of the loss spread the surrogate cannot predict on unseen points:
close to 0 when the losses follow a smooth function of the parameters the
surrogate has pinned down, 1 when they look like noise, or when fewer than
``min_trials`` trials have finished (nothing is known yet). More data lowers it
on a smooth function, both because the fit improves and because the leverages
``h_ii`` (about p/n) shrink.

Cost: one ``p x p`` solve on at most ``max_points`` most recent trials (p = 1 + d +
d(d+1)/2), about 0.1 ms for d = 4 and 256 points; the scheduler recomputes it only
for spaces whose history changed.

:func:`expected_improvement` uses the same fit for the cost-aware mode.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, (60, 2))
    >>> smooth = uncertainty(X, (X[:, 0] - 0.3) ** 2 + X[:, 1], [0, 0], [1, 1])
    >>> noise = uncertainty(X, rng.normal(size=60), [0, 0], [1, 1])
    >>> smooth < 0.1 < 0.9 < noise
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["Fit", "fit_surrogate", "uncertainty", "expected_improvement", "min_trials_for"]

_RIDGE = 1e-6


def min_trials_for(dim: int) -> int:
    """Fewest finished trials before uncertainty is estimated (below: 1.0)."""
    return max(5, dim + 3)


@dataclass(frozen=True)
class Fit:
    """A fitted surrogate's summary (losses in their own units)."""

    uncertainty: float
    loo_rmse: float
    best_mean: float  # lowest prediction over the observed points


def _features(Z: np.ndarray, n: int) -> np.ndarray:
    d = Z.shape[1]
    quad = 1 + d + d * (d + 1) // 2
    if quad <= n // 2:
        iu, ju = np.triu_indices(d)
        return np.hstack([np.ones((len(Z), 1)), Z, Z[:, iu] * Z[:, ju]])
    if 1 + d <= n // 2:
        return np.hstack([np.ones((len(Z), 1)), Z])
    return np.ones((len(Z), 1))


def fit_surrogate(X: np.ndarray, y: np.ndarray, low: Sequence[float], high: Sequence[float], *,
                  min_trials: int | None = None, max_points: int = 256) -> Fit | None:
    """Fit the quadratic ridge surrogate; None while too few trials have finished."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < (min_trials_for(X.shape[1] if X.ndim == 2 else 0) if min_trials is None else min_trials):
        return None
    if n > max_points:
        X, y, n = X[-max_points:], y[-max_points:], max_points
    lo = np.asarray(low, dtype=float)
    span = np.asarray(high, dtype=float) - lo
    span[span <= 0] = 1.0
    Z = (X - lo) / span
    sd = float(np.std(y, ddof=1)) if n > 1 else 0.0
    mu = float(np.mean(y))
    if not math.isfinite(sd) or sd <= 1e-12:
        return Fit(0.0, 0.0, mu)
    t = (y - mu) / sd
    F = _features(Z, n)
    A = F.T @ F + _RIDGE * n * np.eye(F.shape[1])
    A[0, 0] -= _RIDGE * n  # do not shrink the intercept
    try:
        Ainv = np.linalg.inv(A)
    except np.linalg.LinAlgError:
        return Fit(1.0, sd, mu)
    beta = Ainv @ (F.T @ t)
    pred = F @ beta
    h = ((F @ Ainv) * F).sum(axis=1)
    loo = (t - pred) / np.maximum(1.0 - h, 1e-3)
    rmse = float(np.sqrt(np.mean(loo ** 2)))
    return Fit(min(1.0, rmse), rmse * sd, mu + sd * float(pred.min()))


def uncertainty(X: np.ndarray, y: np.ndarray, low: Sequence[float], high: Sequence[float], *,
                min_trials: int | None = None, max_points: int = 256) -> float:
    """``U`` in [0, 1] (see the module docstring); 1.0 before ``min_trials`` trials."""
    fit = fit_surrogate(X, y, low, high, min_trials=min_trials, max_points=max_points)
    return 1.0 if fit is None else fit.uncertainty


def expected_improvement(fit: Fit | None, best: float | None) -> float | None:
    """EI of one more trial over the global ``best`` loss, from a Gaussian with the
    surrogate's best prediction as mean and its LOO error as spread; None when unknown."""
    if fit is None or best is None:
        return None
    sigma = max(fit.loo_rmse, 1e-12)
    z = (best - fit.best_mean) / sigma
    cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return max(0.0, (best - fit.best_mean) * cdf + sigma * pdf)
