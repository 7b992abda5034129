"""Parzen mixtures over a search space's working vectors: the kernels TPE is made of.

Kernels follow Optuna 5's estimator:

* ``'float'`` dims: Gaussians truncated to ``[low, high]``; a kernel's bandwidth is the
  larger gap to its sorted neighbours, clipped to ``[range / min(100, 1 + n_kernels),
  range]`` (hyperopt's "magic clip"); the prior kernel sits mid-range with the full
  range as its bandwidth.
* ``'int'`` dims: the same on ``[low - 0.5, high + 0.5]``, each integer getting the
  probability mass of its unit cell.
* ``'cat'`` dims: with ``cat_spread`` each trial puts weight 1 on its category plus
  ``prior_weight / n_kernels`` on every category (Optuna's rule); without it a trial's
  kernel keeps its own category only, and every other category is reached through the
  prior kernel, whose numeric part is the prior too (see :mod:`shadho.samplers.tpe`).
* Normal-prior domains use their own ``N(mu, sigma)`` as the prior kernel and are
  truncated only at ``mu -/+ 6 sigma``.
* A trial may be NaN in some dims (an observation borrowed from another search space
  that lacks them, :mod:`shadho.samplers.startup`): its kernel is the prior in those.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from shadho.spaces import SearchSpace

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_TINY = 1e-300


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
    for i, enc in enumerate(space.encodings):
        lo, hi = enc.low, enc.high
        s_lo, s_hi = enc.support
        if enc.categorical:
            cat.append(i)
            n_cat.append(int(enc.n_values or 0))
            out_low.append(lo); out_high.append(hi); is_int.append(True)
            continue
        num.append(i)
        if enc.integer:
            disc.append(True)
            a, b = lo - 0.5, hi + 0.5
            tlow.append(a); thigh.append(b); blow.append(a); bhigh.append(b)
            pmu.append(0.5 * (a + b)); psig.append(b - a)
            out_low.append(lo); out_high.append(hi); is_int.append(True)
        elif enc.prior == "normal":
            disc.append(False)
            tlow.append(s_lo); thigh.append(s_hi)
            blow.append(lo); bhigh.append(hi)
            pmu.append(enc.mu); psig.append(enc.sigma)
            out_low.append(s_lo); out_high.append(s_hi); is_int.append(False)
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


def _bandwidths(obs: np.ndarray, lay: _Layout, consider_endpoints: bool,
                magic_clip: bool) -> np.ndarray:
    """Bandwidths of the observation kernels; NaN entries (unobserved dims) get NaN."""
    nan = np.isnan(obs)
    if not nan.any():
        return _gap_bandwidths(obs, lay.blow, lay.bhigh, consider_endpoints, magic_clip)
    sig = np.full(obs.shape, np.nan)
    for d in range(obs.shape[0]):  # rare path (borrowed trials): one dim at a time
        ok = ~nan[d]
        sig[d, ok] = _gap_bandwidths(obs[d:d + 1, ok], lay.blow[d:d + 1], lay.bhigh[d:d + 1],
                                     consider_endpoints, magic_clip)[0]
    return sig


def _ref_bandwidths(obs: np.ndarray, ref: np.ndarray, lay: _Layout) -> np.ndarray:
    """Bandwidths (Dn, n): the larger gap from each kernel to its neighbours among ``ref``.

    Used for a group of few kernels inside a well-sampled region (one category's best
    trials among all its trials): gaps to the group's own members alone would span the
    whole range, gaps to every trial seen there follow the local sampling density.
    """
    out = np.empty(obs.shape)
    span = lay.bhigh - lay.blow
    for d in range(obs.shape[0]):
        s = np.sort(ref[d][~np.isnan(ref[d])])
        x = obs[d]
        i_lo = np.searchsorted(s, x, side="left") - 1
        i_hi = np.searchsorted(s, x, side="right")
        left = np.where(i_lo >= 0, x - s[np.maximum(i_lo, 0)], np.nan)
        right = np.where(i_hi < len(s), s[np.minimum(i_hi, len(s) - 1)] - x, np.nan)
        gap = np.fmax(left, right)  # an edge kernel uses its one inner neighbour
        out[d] = np.where(np.isnan(gap), span[d], gap)
    lo = span[:, None] / min(100.0, ref.shape[1] + 2.0)
    return np.clip(out, lo, span[:, None])


def _cat_probs(X: np.ndarray, j: int, nc: int, prior_weight: float, spread: bool) -> np.ndarray:
    """(n + 1, nc) category probabilities of the trial kernels and the prior kernel."""
    n = X.shape[0]
    k = n + 1
    p = np.full((k, nc), prior_weight / k if spread else 1e-12)
    p[-1] = 1.0
    seen = ~np.isnan(X[:, j]) if n else np.zeros(0, bool)
    p[:n][~seen] = 1.0  # unobserved in a borrowed trial: the prior
    if seen.any():
        idx = np.clip(np.rint(X[seen, j]).astype(int), 0, nc - 1)
        p[np.flatnonzero(seen), idx] += 1.0
    return p / p.sum(axis=1, keepdims=True)


def _build(lay: _Layout, X: np.ndarray, w: np.ndarray, prior_weight: float,
           consider_endpoints: bool, magic_clip: bool, bw_factor: float = 1.0,
           cat_spread: bool = True, ref: np.ndarray | None = None) -> _Mixture:
    """The Parzen mixture of trials ``X`` (n, d) with weights ``w`` plus the prior kernel.

    With ``ref`` (m, d), bandwidths are gaps to the neighbours among ``ref``
    (:func:`_ref_bandwidths`) instead of among ``X``.
    """
    n = X.shape[0]
    weights = np.append(w, prior_weight) if n else np.ones(1)
    weights = weights / weights.sum()
    logw = np.log(np.maximum(weights, _TINY))
    cumw = np.cumsum(weights)
    cumw[-1] = 1.0
    raw = X[:, lay.num].T
    obs = np.clip(raw, lay.tlow[:, None], lay.thigh[:, None])  # NaN stays NaN
    if ref is not None and n:
        sig = _ref_bandwidths(obs, np.clip(ref[:, lay.num].T, lay.tlow[:, None], lay.thigh[:, None]), lay)
    else:
        sig = _bandwidths(obs, lay, consider_endpoints, magic_clip)
    if bw_factor != 1.0:
        sig = np.maximum(sig * bw_factor, (lay.bhigh - lay.blow)[:, None] / min(100.0, X.shape[0] + 2.0))
    unseen = np.isnan(obs)
    obs = np.where(unseen, lay.prior_mu[:, None], obs)
    sig = np.where(unseen, lay.prior_sigma[:, None], sig)
    mu = np.concatenate([obs, lay.prior_mu[:, None]], axis=1)
    sigma = np.concatenate([sig, lay.prior_sigma[:, None]], axis=1)
    a = (lay.tlow[:, None] - mu) / sigma
    b = (lay.thigh[:, None] - mu) / sigma
    log_norm = np.log(np.maximum(_cdf_diff(a, b), _TINY))
    probs = tuple(_cat_probs(X, j, nc, prior_weight, cat_spread) for j, nc in zip(lay.cat, lay.n_cat))
    cont = ~lay.disc
    mc = mu[cont] - lay.prior_mu[cont][:, None]
    prec = 1.0 / sigma[cont] ** 2
    const = logw - (np.log(sigma[cont]) + _LOG_SQRT_2PI + log_norm[cont] + 0.5 * mc * mc * prec).sum(axis=0)
    return _Mixture(logw, cumw, mu, sigma, log_norm, probs, tuple(np.log(p) for p in probs),
                    prec, mc * prec, const)


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
