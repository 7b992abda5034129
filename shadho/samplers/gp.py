"""Gaussian-process Bayesian optimisation with expected improvement (numpy/scipy only).

Inputs: each working dimension is scaled to [0, 1] (normal domains over mu -/+ 3 sigma);
``'int'`` dims are treated as ordinal (their index scaled to [0, 1]) and candidates are
rounded to the grid; ``'cat'`` dims are one-hot encoded, so every category gets its own
ARD length scale and no false order is imposed.

Outputs: losses are warped by ``log1p((y - min) / s)`` with ``s`` the median excess over
the minimum, then standardised. The warp is monotone (the best point stays the best), is
close to linear near the minimum and tames heavy tails such as Rosenbrock's.

Model: zero-mean GP with a Matern-5/2 ARD kernel; length scales, signal variance and
noise are fitted by maximising the log marginal likelihood (plus weak log-normal priors
that keep the length scales away from degenerate values) with L-BFGS-B and analytic
gradients, from a fixed start plus a few random restarts.

Acquisition: expected improvement for minimisation, maximised over random candidates,
perturbations of the best trials, and a few L-BFGS-B refinements of the continuous
dims. Pending trials are constant liars: they enter the training set with the worst
(warped) loss seen, which flattens EI around them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import erfcx, ndtr

from shadho.history import History
from shadho.samplers.base import ModelSampler
from shadho.spaces import SearchSpace

__all__ = ["GPSampler", "expected_improvement", "log_expected_improvement", "matern52"]

_SQRT5 = math.sqrt(5.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float) -> np.ndarray:
    """EI of a Gaussian prediction ``N(mu, sigma**2)`` below ``best`` (minimisation).

    ``EI = sigma * (z * Phi(z) + phi(z))`` with ``z = (best - mu) / sigma``.

    Example:
        >>> round(float(expected_improvement(np.array(0.0), np.array(1.0), 0.0)), 4)
        0.3989
    """
    mu, sigma = np.asarray(mu, float), np.maximum(np.asarray(sigma, float), 1e-300)
    z = (best - mu) / sigma
    return sigma * (z * ndtr(z) + np.exp(-0.5 * z * z - _LOG_SQRT_2PI))


def log_expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float) -> np.ndarray:
    """``log(expected_improvement)``, accurate where EI underflows (far below the best).

    Example:
        >>> float(log_expected_improvement(np.array(50.0), np.array(1.0), 0.0)) > -1e4
        True
    """
    mu, sigma = np.asarray(mu, float), np.maximum(np.asarray(sigma, float), 1e-300)
    z = np.asarray((best - mu) / sigma, float)
    out = np.empty_like(z)
    near = z > -6.0
    zn = z[near]
    out[near] = np.log(np.maximum(zn * ndtr(zn) + np.exp(-0.5 * zn * zn - _LOG_SQRT_2PI), 1e-300))
    zf = -z[~near]  # > 6
    # z Phi(z) + phi(z) = phi(z) * (1 - |z| Phi(z) / phi(z)), and the Mills ratio
    # Phi(z) / phi(z) = sqrt(pi / 2) * erfcx(|z| / sqrt(2)) does not underflow.
    mid = 1.0 - zf * _SQRT_HALF_PI * erfcx(zf / math.sqrt(2.0))
    # Past |z| ~ 1e3 the difference cancels; use the series 1/z**2 - 3/z**4 + 15/z**6.
    series = (1.0 - 3.0 / zf ** 2 + 15.0 / zf ** 4) / zf ** 2
    bracket = np.where(zf < 1e3, mid, series)
    out[~near] = -0.5 * zf * zf - _LOG_SQRT_2PI + np.log(np.maximum(bracket, 1e-300))
    return out + np.log(sigma)


def matern52(A: np.ndarray, B: np.ndarray, lengthscales: np.ndarray, variance: float) -> np.ndarray:
    """Matern-5/2 ARD kernel matrix between rows of ``A`` and ``B``.

    Example:
        >>> float(matern52(np.zeros((1, 2)), np.zeros((1, 2)), np.ones(2), 2.0)[0, 0])
        2.0
    """
    a, b = A / lengthscales, B / lengthscales
    r2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    r = np.sqrt(np.maximum(r2, 0.0))
    return variance * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * np.exp(-_SQRT5 * r)


@dataclass(frozen=True)
class _Encoder:
    """Working vectors <-> GP features in [0, 1]."""

    lo: np.ndarray        # per working dim, the value mapped to 0
    scale: np.ndarray     # per working dim, the span mapped to 1
    kinds: tuple[str, ...]
    n_values: tuple[int, ...]
    out_low: np.ndarray   # final clip per working dim (normal: mu -/+ 6 sigma)
    out_high: np.ndarray
    cand_low: np.ndarray  # random candidates are uniform here
    cand_high: np.ndarray

    @classmethod
    def of(cls, space: SearchSpace) -> _Encoder:
        lo, sc, ol, oh, cl, ch = [], [], [], [], [], []
        encs = space.encodings
        for e in encs:
            if e.prior == "normal" and e.mu is not None and e.sigma is not None:
                a, b = e.mu - 3 * e.sigma, e.mu + 3 * e.sigma  # features span the likely range
                lo.append(a); sc.append(b - a)
            else:
                a, b = e.low, e.high
                lo.append(a); sc.append(max(b - a, 1.0))
            s_lo, s_hi = e.support
            ol.append(s_lo); oh.append(s_hi); cl.append(a); ch.append(b)
        f = lambda v: np.asarray(v, float)  # noqa: E731
        return cls(f(lo), f(sc), tuple(e.kind for e in encs), tuple(int(e.n_values or 0) for e in encs),
                   f(ol), f(oh), f(cl), f(ch))

    def features(self, X: np.ndarray) -> np.ndarray:
        cols = []
        for j, kind in enumerate(self.kinds):
            if kind == "cat":
                idx = np.clip(np.rint(X[:, j]).astype(int), 0, self.n_values[j] - 1)
                cols.append(np.eye(self.n_values[j])[idx])
            else:
                cols.append(((X[:, j] - self.lo[j]) / self.scale[j])[:, None])
        return np.concatenate(cols, axis=1)

    def tidy(self, X: np.ndarray) -> np.ndarray:
        X = np.clip(X, self.out_low, self.out_high)
        for j, kind in enumerate(self.kinds):
            if kind != "float":
                X[:, j] = np.rint(X[:, j])
        return X


def _warp(y: np.ndarray, log: bool = True) -> np.ndarray:
    """Monotone log-warp of losses (``log=False``: none), then standardisation."""
    y = np.where(np.isfinite(y), y, np.nan)
    if np.isnan(y).all():
        return np.zeros_like(y)
    y = np.where(np.isnan(y), np.nanmax(y), y)
    if not log:
        sd = float(y.std())
        return (y - y.mean()) / (sd if sd > 0 else 1.0)
    ex = y - y.min()
    s = float(np.median(ex))
    if s <= 0:
        s = float(ex.max()) or 1.0
    w = np.log1p(ex / s)
    sd = float(w.std())
    return (w - w.mean()) / (sd if sd > 0 else 1.0)


class _GP:
    """A fitted zero-mean GP (Matern-5/2 ARD) on standardised targets."""

    # log bounds: length scales, signal variance, noise variance
    LS_BOUNDS = (math.log(0.02), math.log(20.0))
    VAR_BOUNDS = (math.log(0.05), math.log(20.0))
    NOISE_BOUNDS = (math.log(1e-6), math.log(0.5))

    def __init__(self, F: np.ndarray, y: np.ndarray, theta: np.ndarray) -> None:
        p = F.shape[1]
        self.F, self.y = F, y
        self.ls = np.exp(theta[:p])
        self.var = float(np.exp(theta[p]))
        self.noise = float(np.exp(theta[p + 1]))
        K = matern52(F, F, self.ls, self.var) + (self.noise + 1e-8) * np.eye(len(F))
        self.L = np.linalg.cholesky(K)
        self.alpha = cho_solve((self.L, True), y)

    def predict(self, Fs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Ks = matern52(Fs, self.F, self.ls, self.var)
        mu = Ks @ self.alpha
        v = solve_triangular(self.L, Ks.T, lower=True)
        var = np.maximum(self.var - (v * v).sum(0), 1e-12)
        return mu, np.sqrt(var)


def _neg_lml(theta: np.ndarray, F: np.ndarray, y: np.ndarray, diff2: np.ndarray
             ) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood (+ priors) and its gradient in log parameters."""
    n, p = F.shape
    ls2 = np.exp(2.0 * theta[:p])
    var, noise = math.exp(theta[p]), math.exp(theta[p + 1])
    D = diff2 / ls2[:, None, None]           # (p, n, n) scaled squared differences
    r = np.sqrt(D.sum(0))
    e = np.exp(-_SQRT5 * r)
    K0 = var * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * e
    K = K0 + (noise + 1e-8) * np.eye(n)
    try:
        c = cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 1e10, np.zeros_like(theta)
    alpha = cho_solve(c, y, check_finite=False)
    logdet = 2.0 * np.log(np.diag(c[0])).sum()
    nll = 0.5 * float(y @ alpha) + 0.5 * logdet + n * _LOG_SQRT_2PI
    W = np.outer(alpha, alpha) - cho_solve(c, np.eye(n), check_finite=False)
    g = np.empty_like(theta)
    dK_common = var * (5.0 / 3.0) * (1.0 + _SQRT5 * r) * e
    g[:p] = -0.5 * np.einsum("ij,kij->k", W * dK_common, D)
    g[p] = -0.5 * float((W * K0).sum())
    g[p + 1] = -0.5 * noise * float(np.trace(W))
    # Weak priors: log length scale ~ N(log 0.5, 1.5^2), log noise ~ N(log 1e-3, 3^2).
    pl = theta[:p] - math.log(0.5)
    nll += float((pl * pl).sum()) / (2 * 1.5 ** 2)
    g[:p] += pl / 1.5 ** 2
    pn = theta[p + 1] - math.log(1e-3)
    nll += pn * pn / (2 * 3.0 ** 2)
    g[p + 1] += pn / 3.0 ** 2
    return nll, g


def _fit(F: np.ndarray, y: np.ndarray, rng: np.random.Generator, restarts: int) -> _GP:
    p = F.shape[1]
    bounds = [_GP.LS_BOUNDS] * p + [_GP.VAR_BOUNDS, _GP.NOISE_BOUNDS]
    diff2 = (F.T[:, :, None] - F.T[:, None, :]) ** 2
    lo, hi = np.array(bounds).T
    starts = [np.concatenate([np.full(p, math.log(0.5)), [0.0, math.log(1e-3)]])]
    starts += [rng.uniform(lo, hi) for _ in range(restarts)]
    best_theta, best_val = starts[0], np.inf
    for t0 in starts:
        res = minimize(_neg_lml, t0, args=(F, y, diff2), jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": 60})
        if np.isfinite(res.fun) and res.fun < best_val:
            best_theta, best_val = res.x, float(res.fun)
    return _GP(F, y, best_theta)


class GPSampler(ModelSampler):
    """Bayesian optimisation: a Matern-5/2 GP and expected improvement.

    Args:
        n_startup_trials: draw from the priors until this many trials are complete
            (at least 2); None (default): :func:`~shadho.samplers.startup.startup_size`
            of the dimension, the budget and the number of spaces the driver binds.
        n_candidates: random candidates scored per proposal (plus local perturbations).
        n_local: candidates refined with L-BFGS-B over the continuous dims.
        restarts: random restarts of the hyperparameter fit (besides a fixed start).
        max_train: training-set cap; above it, the best half and the most recent rest
            are kept, bounding the O(n^3) cost.
        constant_liar: add pending trials to the training set with the worst loss.
        warp: log-warp the losses before standardising them (see the module docstring);
            False: standardise the raw losses, as Optuna's GPSampler does. On the
            ill-conditioned BBOB ellipsoids at d=5 the warp costs 5-50x
            (bench/results/samplers-gp.txt).

    Example:
        >>> import numpy as np
        >>> from shadho.spaces import split, uniform
        >>> (space,) = split({'x': uniform(-1, 1)})
        >>> h, rng, gp = History(1), np.random.default_rng(0), GPSampler(n_startup_trials=4)
        >>> for i in range(12):
        ...     x = gp.suggest(space, h, rng)
        ...     h.complete(i, x, (x[0] - 0.3) ** 2)
        >>> bool(h.best < 1e-3)
        True
    """

    name = "bayes"
    min_startup = 2  # a GP fitted to one point has nothing to learn its length scales from

    def __init__(self, *, n_startup_trials: int | None = None, n_candidates: int = 1000, n_local: int = 3,
                 restarts: int = 2, max_train: int = 300, constant_liar: bool = True,
                 warp: bool = True) -> None:
        super().__init__(n_startup_trials)
        if n_candidates < 1 or n_local < 0 or restarts < 0 or max_train < 2:
            raise ValueError("need n_candidates >= 1, n_local >= 0, restarts >= 0, max_train >= 2; "
                             f"got {n_candidates}, {n_local}, {restarts}, {max_train}")
        self.n_candidates = n_candidates
        self.n_local = n_local
        self.restarts = restarts
        self.max_train = max_train
        self.constant_liar = constant_liar
        self.warp = warp

    def _training_set(self, history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, warped y, indices of COMPLETE rows in X) including constant-liar rows."""
        X, y = history.X, history.y
        n = len(y)
        keep = np.arange(n)
        if n > self.max_train:
            yy = np.where(np.isfinite(y), y, np.inf)
            best = np.argsort(yy, kind="stable")[: self.max_train // 2]
            rest = np.setdiff1d(keep, best)[-(self.max_train - len(best)):]
            keep = np.sort(np.concatenate([best, rest]))
        X, yt = X[keep], _warp(y[keep], self.warp)
        if self.constant_liar and history.n_pending:
            P = history.pending
            X = np.concatenate([X, P])
            yt = np.concatenate([yt, np.full(len(P), yt.max())])
        return X, yt, np.arange(len(keep))

    def propose(self, space: SearchSpace, history: History, rng: np.random.Generator) -> np.ndarray:
        enc = _Encoder.of(space)
        X, yt, done = self._training_set(history)
        F = enc.features(X)
        gp = _fit(F, yt, rng, self.restarts)
        best = float(yt[done].min())

        def score(C: np.ndarray) -> np.ndarray:
            mu, sd = gp.predict(enc.features(C))
            return log_expected_improvement(mu, sd, best)

        d = space.dim
        cand = rng.uniform(enc.cand_low, enc.cand_high, (self.n_candidates, d))
        top = X[done][np.argsort(yt[done], kind="stable")[:5]]
        local = []
        for s in (0.2, 0.05, 0.01):
            base = top[rng.integers(0, len(top), self.n_candidates // 6)]
            pert = base + rng.normal(0.0, s, base.shape) * enc.scale
            flip = rng.random(base.shape) < s
            cat = np.array([k == "cat" for k in enc.kinds])
            pert[:, cat] = np.where(flip[:, cat], cand[: len(base)][:, cat], base[:, cat])
            local.append(pert)
        cand = enc.tidy(np.concatenate([cand] + local))
        vals = score(cand)
        order = np.argsort(-vals, kind="stable")
        x_best, v_best = cand[order[0]].copy(), float(vals[order[0]])
        cont = np.array([k == "float" for k in enc.kinds])
        if cont.any() and self.n_local:
            lo_c, hi_c = enc.out_low[cont], enc.out_high[cont]
            for i in order[: self.n_local]:
                x0 = cand[i].copy()

                def f(u: np.ndarray, x0: np.ndarray = x0) -> float:
                    x = x0.copy()
                    x[cont] = lo_c + u * (hi_c - lo_c)
                    return -float(score(x[None])[0])

                u0 = (x0[cont] - lo_c) / (hi_c - lo_c)
                res = minimize(f, u0, method="L-BFGS-B", bounds=[(0.0, 1.0)] * int(cont.sum()),
                               options={"maxiter": 30})
                if np.isfinite(res.fun) and -res.fun > v_best:
                    x_best = x0.copy()
                    x_best[cont] = lo_c + res.x * (hi_c - lo_c)
                    v_best = -float(res.fun)
        return enc.tidy(x_best[None])[0]
