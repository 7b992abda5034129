"""Tree-structured Parzen Estimator (Bergstra et al. 2011), modelled in working space.

The finished trials are split into the best ``gamma(n)`` ("below", density ``l``) and
the rest ("above", density ``g``). Each group becomes a mixture of kernels, one per
trial plus one prior kernel; candidates drawn from ``l`` are scored by
``log l(x) - log g(x)`` and the best one is proposed.

Kernels follow Optuna 5's estimator:

* ``'float'`` dims: Gaussians truncated to ``[low, high]``; a kernel's bandwidth is the
  larger gap to its sorted neighbours, clipped to ``[range / min(100, 1 + n_kernels),
  range]`` (hyperopt's "magic clip"); the prior kernel sits mid-range with the full
  range as its bandwidth.
* ``'int'`` dims: the same on ``[low - 0.5, high + 0.5]``, each integer getting the
  probability mass of its unit cell.
* ``'cat'`` dims: each trial puts weight 1 on its category, plus ``prior_weight /
  n_kernels`` spread on every category.
* Normal-prior domains use their own ``N(mu, sigma)`` as the prior kernel and are
  truncated only at ``mu -/+ 6 sigma``.

Because everything happens in working space, log domains are modelled by their
exponent. With ``multivariate=True`` (the default, as in Optuna 5) a kernel is a
product over the dimensions, so candidates keep the joint structure of good trials;
with ``multivariate=False`` every dimension is modelled and chosen independently.

Pending trials are treated as constant liars: they join the "above" group with the
worst observed loss, so queued trials do not crowd one spot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import ndtr, ndtri

from shadho.samplers.base import History, Sampler
from shadho.spaces import SearchSpace

__all__ = ["TPESampler", "default_gamma", "default_weights"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_TINY = 1e-300


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


@dataclass(frozen=True)
class _Layout:
    """Per-dimension constants of a search space, grouped by kernel type."""

    num: np.ndarray        # indices of numeric (float/int) dims
    disc: np.ndarray       # bool over num: integer grid
    cat: np.ndarray        # indices of categorical dims
    n_cat: tuple[int, ...]  # number of categories of each cat dim
    tlow: np.ndarray       # truncation bounds of numeric dims (with the +-0.5 cells)
    thigh: np.ndarray
    blow: np.ndarray       # endpoints used by the bandwidth rule
    bhigh: np.ndarray
    prior_mu: np.ndarray
    prior_sigma: np.ndarray
    out_low: np.ndarray    # final clip of every dim
    out_high: np.ndarray
    is_int: np.ndarray     # bool over all dims: round the output


def _layout(space: SearchSpace) -> _Layout:
    num, disc, cat, n_cat = [], [], [], []
    tlow, thigh, blow, bhigh, pmu, psig = [], [], [], [], [], []
    out_low, out_high, is_int = [], [], []
    for i, dom in enumerate(space.domains):
        lo, hi = float(dom.low), float(dom.high)
        if dom.kind == "cat":
            cat.append(i)
            n_cat.append(int(dom.n_values))
            out_low.append(lo); out_high.append(hi); is_int.append(True)
            continue
        num.append(i)
        if dom.kind == "int":
            disc.append(True)
            a, b = lo - 0.5, hi + 0.5
            tlow.append(a); thigh.append(b); blow.append(a); bhigh.append(b)
            pmu.append(0.5 * (a + b)); psig.append(b - a)
            out_low.append(lo); out_high.append(hi); is_int.append(True)
        elif dom.prior == "normal":
            mu, sigma = float(dom.mu), float(dom.sigma)  # type: ignore[attr-defined]
            disc.append(False)
            tlow.append(mu - 6 * sigma); thigh.append(mu + 6 * sigma)
            blow.append(lo); bhigh.append(hi)
            pmu.append(mu); psig.append(sigma)
            out_low.append(mu - 6 * sigma); out_high.append(mu + 6 * sigma); is_int.append(False)
        else:
            disc.append(False)
            tlow.append(lo); thigh.append(hi); blow.append(lo); bhigh.append(hi)
            pmu.append(0.5 * (lo + hi)); psig.append(hi - lo)
            out_low.append(lo); out_high.append(hi); is_int.append(False)
    f = lambda v: np.asarray(v, dtype=float)  # noqa: E731
    return _Layout(np.asarray(num, dtype=int), np.asarray(disc, dtype=bool),
                   np.asarray(cat, dtype=int), tuple(n_cat), f(tlow), f(thigh), f(blow),
                   f(bhigh), f(pmu), f(psig), f(out_low), f(out_high),
                   np.asarray(is_int, dtype=bool))


@dataclass(frozen=True)
class _Mixture:
    """A mixture of product kernels (the last kernel is the prior)."""

    logw: np.ndarray             # (K,) log mixture weights
    cumw: np.ndarray             # (K,) cumulative weights, for sampling
    mu: np.ndarray               # (Dn, K)
    sigma: np.ndarray            # (Dn, K)
    log_norm: np.ndarray         # (Dn, K) log of each truncated kernel's mass
    cat_probs: tuple[np.ndarray, ...]  # per cat dim: (K, n_choices)
    cat_logp: tuple[np.ndarray, ...]
    # Continuous dims expanded as a quadratic form, so the joint density is a matmul.
    prec: np.ndarray             # (Dcont, K) 1 / sigma**2
    mu_prec: np.ndarray          # (Dcont, K) (mu - centre) / sigma**2
    const: np.ndarray            # (K,) log w - sum over cont dims of the kernels' log scale
                                 # and log mass, minus 0.5 * sum (mu - centre)**2 / sigma**2


def _gap_bandwidths(obs: np.ndarray, blow: np.ndarray, bhigh: np.ndarray,
                    consider_endpoints: bool, magic_clip: bool) -> np.ndarray:
    """Bandwidths (Dn, n) of the observation kernels: the larger gap to a sorted neighbour."""
    dn, n = obs.shape
    if n == 0:
        return np.empty((dn, 0))
    order = np.argsort(obs, axis=1, kind="stable")
    srt = np.take_along_axis(obs, order, axis=1)
    ext = np.concatenate([blow[:, None], srt, bhigh[:, None]], axis=1)
    gaps = np.maximum(np.diff(ext, axis=1), 0.0)  # observations beyond the endpoints
    sig = np.maximum(gaps[:, :-1], gaps[:, 1:])
    if not consider_endpoints and n >= 2:
        sig[:, 0] = ext[:, 2] - ext[:, 1]
        sig[:, -1] = ext[:, -2] - ext[:, -3]
    out = np.empty_like(sig)
    np.put_along_axis(out, order, sig, axis=1)
    rng_ = (bhigh - blow)[:, None]
    lo = rng_ / min(100.0, 1.0 + n + 1) if magic_clip else 1e-12 * rng_
    return np.clip(out, lo, rng_)


def _build(lay: _Layout, X: np.ndarray, w: np.ndarray, prior_weight: float,
           consider_endpoints: bool, magic_clip: bool, bw_factor: float = 1.0) -> _Mixture:
    """The Parzen mixture of trials ``X`` (n, d) with weights ``w`` plus the prior kernel."""
    n = X.shape[0]
    weights = np.append(w, prior_weight) if n else np.ones(1)
    weights = weights / weights.sum()
    logw = np.log(np.maximum(weights, _TINY))
    cumw = np.cumsum(weights)
    cumw[-1] = 1.0
    obs = np.clip(X[:, lay.num].T, lay.tlow[:, None], lay.thigh[:, None])
    sig = _gap_bandwidths(obs, lay.blow, lay.bhigh, consider_endpoints, magic_clip)
    if bw_factor != 1.0:
        sig = np.maximum(sig * bw_factor, (lay.bhigh - lay.blow)[:, None] / min(100.0, X.shape[0] + 2.0))
    mu = np.concatenate([obs, lay.prior_mu[:, None]], axis=1)
    sigma = np.concatenate([sig, lay.prior_sigma[:, None]], axis=1)
    a = (lay.tlow[:, None] - mu) / sigma
    b = (lay.thigh[:, None] - mu) / sigma
    log_norm = np.log(np.maximum(_cdf_diff(a, b), _TINY))
    probs, logps = [], []
    for j, nc in zip(lay.cat, lay.n_cat):
        k = n + 1
        p = np.full((k, nc), prior_weight / k)
        if n:
            idx = np.clip(np.rint(X[:, j]).astype(int), 0, nc - 1)
            p[np.arange(n), idx] += 1.0
        p /= p.sum(axis=1, keepdims=True)
        probs.append(p)
        logps.append(np.log(p))
    cont = ~lay.disc
    mc = mu[cont] - lay.prior_mu[cont][:, None]
    prec = 1.0 / sigma[cont] ** 2
    const = logw - (np.log(sigma[cont]) + _LOG_SQRT_2PI + log_norm[cont] + 0.5 * mc * mc * prec).sum(axis=0)
    return _Mixture(logw, cumw, mu, sigma, log_norm, tuple(probs), tuple(logps), prec, mc * prec, const)


def _cdf_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Phi(b) - Phi(a) for a <= b, computed on the side where it does not cancel."""
    flip = a > 0
    return np.where(flip, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))


def _sample(lay: _Layout, mix: _Mixture, size: int, multivariate: bool,
            rng: np.random.Generator) -> np.ndarray:
    """Draw ``size`` candidates (size, d) from the mixture."""
    dn, dc = len(lay.num), len(lay.cat)
    d = dn + dc
    shape = (size,) if multivariate else (d, size)
    ks = np.searchsorted(mix.cumw, rng.random(shape), side="right")
    ks = np.minimum(ks, len(mix.cumw) - 1)
    kn = np.broadcast_to(ks, (dn, size)) if multivariate else ks[:dn]
    kc = np.broadcast_to(ks, (dc, size)) if multivariate else ks[dn:]
    out = np.empty((size, dn + dc))
    if dn:
        mu = np.take_along_axis(mix.mu, kn, axis=1)
        sg = np.take_along_axis(mix.sigma, kn, axis=1)
        a = (lay.tlow[:, None] - mu) / sg
        b = (lay.thigh[:, None] - mu) / sg
        # Inverse-CDF sampling on the left side of the mean avoids precision loss.
        flip = a > 0
        lo_, hi_ = np.where(flip, -b, a), np.where(flip, -a, b)
        plo, phi = ndtr(lo_), ndtr(hi_)
        u = plo + rng.random((dn, size)) * (phi - plo)
        z = ndtri(np.clip(u, 1e-300, 1.0 - 1e-16))
        z = np.where(flip, -z, z)
        x = np.clip(mu + sg * z, lay.tlow[:, None], lay.thigh[:, None])
        x = np.where(lay.disc[:, None], np.clip(np.rint(x), lay.tlow[:, None] + 0.5,
                                                    lay.thigh[:, None] - 0.5), x)
        out[:, lay.num] = x.T
    for i, (j, p) in enumerate(zip(lay.cat, mix.cat_probs)):
        cp = np.cumsum(p[kc[i]], axis=1)
        cp[:, -1] = 1.0
        u = rng.random((size, 1))
        out[:, j] = np.minimum((cp < u).sum(axis=1), p.shape[1] - 1)
    return out


def _log_kernel(lay: _Layout, mix: _Mixture, x: np.ndarray,
                disc_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension kernel log densities: numeric (Dn, C, K) and categorical (Dc, C, K).

    With ``disc_only`` the continuous rows are left unset (the caller has them already).
    """
    c = x.shape[0]
    k = mix.logw.shape[0]
    num = np.zeros((len(lay.num), c, k))
    if len(lay.num):
        xn = x[:, lay.num].T[:, :, None]
        mu, sg = mix.mu[:, None, :], mix.sigma[:, None, :]
        cont = ~lay.disc
        if cont.any() and not disc_only:
            z = (xn[cont] - mu[cont]) / sg[cont]
            num[cont] = (-0.5 * z * z - np.log(sg[cont]) - _LOG_SQRT_2PI
                         - mix.log_norm[cont][:, None, :])
        if lay.disc.any():
            d = lay.disc
            a = (xn[d] - 0.5 - mu[d]) / sg[d]
            b = (xn[d] + 0.5 - mu[d]) / sg[d]
            num[d] = np.log(np.maximum(_cdf_diff(a, b), _TINY)) - mix.log_norm[d][:, None, :]
    cat = np.empty((len(lay.cat), c, k))
    for i, (j, lp) in enumerate(zip(lay.cat, mix.cat_logp)):
        idx = np.clip(np.rint(x[:, j]).astype(int), 0, lp.shape[1] - 1)
        cat[i] = lp[:, idx].T
    return num, cat


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))[..., 0]


def _log_pdf(lay: _Layout, mix: _Mixture, x: np.ndarray, multivariate: bool) -> np.ndarray:
    """Mixture log density of candidates ``x`` (C, d): (C,) joint, or (d, C) per dimension."""
    if multivariate:
        cont = lay.num[~lay.disc]
        xc = x[:, cont] - lay.prior_mu[~lay.disc]
        acc = mix.const + xc @ mix.mu_prec - 0.5 * ((xc * xc) @ mix.prec)
        if lay.disc.any() or len(lay.cat):
            num, cat = _log_kernel(lay, mix, x, disc_only=True)
            acc = acc + num.sum(axis=0) + cat.sum(axis=0)
        return _logsumexp(acc)
    num, cat = _log_kernel(lay, mix, x)
    out = np.empty((x.shape[1], x.shape[0]))
    if len(lay.num):
        out[lay.num] = _logsumexp(num + mix.logw)
    if len(lay.cat):
        out[lay.cat] = _logsumexp(cat + mix.logw)
    return out


class TPESampler(Sampler):
    """Tree-structured Parzen Estimator over one search space's working vectors.

    Args:
        n_startup_trials: draw from the priors until this many trials are complete.
        n_ei_candidates: candidates drawn from ``l(x)`` per proposal. 200 (Optuna: 24):
            scoring is one vectorised matmul, so many candidates cost little, and the
            best of more draws exploits the model better (tuning seeds 100-139: median
            regret Hartmann-6 0.19 -> 0.11, Rosenbrock-4 4.7 -> 3.8).
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

    def __init__(self, *, n_startup_trials: int = 10, n_ei_candidates: int = 200,
                 gamma: Callable[[int], int] | None = None,
                 weights: Callable[[int], np.ndarray] | None = None,
                 prior_weight: float = 1.0, consider_magic_clip: bool = True,
                 consider_endpoints: bool = False, multivariate: bool = True,
                 constant_liar: bool = True, bandwidth_factor: float = 1.0,
                 max_scored_pairs: int = 40_000) -> None:
        if n_startup_trials < 0:
            raise ValueError(f"n_startup_trials must be >= 0, got {n_startup_trials}")
        if n_ei_candidates < 1:
            raise ValueError(f"n_ei_candidates must be >= 1, got {n_ei_candidates}")
        if not bandwidth_factor > 0:
            raise ValueError(f"bandwidth_factor must be > 0, got {bandwidth_factor}")
        if not prior_weight > 0:
            raise ValueError(f"prior_weight must be > 0, got {prior_weight}")
        self.n_startup_trials = n_startup_trials
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
        # Derived data only (a pure function of space and history), so resume is unaffected.
        self._cache: tuple[tuple[str, int, int], tuple[_Layout, _Mixture, _Mixture]] | None = None

    def _models(self, space: SearchSpace, history: History) -> tuple[_Layout, _Mixture, _Mixture]:
        key = (space.id, id(history), history.version)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        lay = _layout(space)
        X, y = history.X, history.y
        y = np.where(np.isnan(y), np.inf, y)
        n = len(y)
        n_below = min(max(int(self.gamma(n)), 1), n)
        order = np.argsort(y, kind="stable")
        below = np.sort(order[:n_below])
        above = np.sort(order[n_below:])
        Xa = X[above]
        if self.constant_liar and history.n_pending:
            Xa = np.concatenate([Xa, history.pending])  # pending come last: the newest trials
        mk = lambda Z: _build(lay, Z, np.asarray(self.weights(len(Z)), float)[: len(Z)],  # noqa: E731
                              self.prior_weight, self.consider_endpoints, self.consider_magic_clip,
                              self.bandwidth_factor)
        models = (lay, mk(X[below]), mk(Xa))
        self._cache = (key, models)
        return models

    def suggest(self, space: SearchSpace, history: History, rng: np.random.Generator) -> np.ndarray:
        if space.dim == 0:
            return np.empty(0)
        if history.n < max(self.n_startup_trials, 1):
            return space.sample(rng)
        lay, below, above = self._models(space, history)
        n_cand = min(self.n_ei_candidates,
                     max(24, self.max_scored_pairs // max(1, len(above.logw))))
        cand = _sample(lay, below, n_cand, self.multivariate, rng)
        score = (_log_pdf(lay, below, cand, self.multivariate)
                 - _log_pdf(lay, above, cand, self.multivariate))
        if self.multivariate:
            x = cand[int(np.argmax(score))].copy()
        else:
            x = cand[np.argmax(score, axis=1), np.arange(space.dim)]
        x = np.clip(x, lay.out_low, lay.out_high)
        x[lay.is_int] = np.rint(x[lay.is_int])
        return x
