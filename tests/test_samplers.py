"""One suite run against every registered sampler, plus TPE/GP-specific checks."""
from __future__ import annotations

import time

import numpy as np
import pytest

from shadho import spaces
from shadho.samplers import SAMPLERS, History, Sampler, make_sampler
from shadho.samplers.gp import expected_improvement, log_expected_improvement
from shadho.spaces import SearchSpace

METHODS = ["random", "tpe", "bayes"]


@pytest.fixture(params=METHODS)
def method(request: pytest.FixtureRequest) -> str:
    return request.param


def _sampler(method: str, **kw: object) -> Sampler:
    return make_sampler(method, **kw) if method != "random" else make_sampler(method)


def _all_kinds() -> SearchSpace:
    (space,) = spaces.split({
        "u": spaces.uniform(-2, 3),
        "l10": spaces.log10_uniform(-4, 1),
        "ln": spaces.ln_uniform(0, 2),
        "l2": spaces.log2_uniform(1, 8),
        "n": spaces.normal(5.0, 2.0),
        "l10n": spaces.log10_normal(-2.0, 0.5),
        "ri": spaces.randint(3, 30, step=4),
        "l2i": spaces.log2_randint(0, 6),
        "ch": spaces.choice([1, "two", 3.5, None, [4]]),
    })
    return space


def _check_inside(space: SearchSpace, x: np.ndarray) -> None:
    assert x.shape == (space.dim,)
    assert np.isfinite(x).all()
    for dom, w in zip(space.domains, x):
        if dom.prior == "uniform":
            assert dom.low <= w <= dom.high, (dom, w)
        if dom.kind in ("int", "cat"):
            assert w == round(w), (dom, w)
    params = space.params(x)
    assert params["ch"] in ([1, "two", 3.5, None, [4]])
    assert params["ri"] in range(3, 30, 4)
    assert params["l2i"] in (1, 2, 4, 8, 16, 32)
    assert 1e-4 <= params["l10"] <= 10 and 2 <= params["l2"] <= 256


def _loss(space: SearchSpace, x: np.ndarray) -> float:
    z = (x - np.array([d.low + 0.3 * (d.high - d.low) for d in space.domains]))
    return float((z / np.array([d.high - d.low for d in space.domains])) @ z)


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError) as err:
        make_sampler("nope")
    for name in SAMPLERS:
        assert name in str(err.value)


def test_outputs_inside_every_domain(method: str) -> None:
    space = _all_kinds()
    rng = np.random.default_rng(1)
    h = History(space.dim)
    for i in range(25):
        x = space.sample(rng)
        h.complete(i, x, _loss(space, x))
    sampler = _sampler(method)
    for i in range(25, 40):
        x = sampler.suggest(space, h, rng)
        _check_inside(space, x)
        h.add_pending(i, x)
        if i % 2:
            h.complete(i, x, _loss(space, x))


def test_inside_with_extreme_history(method: str) -> None:
    """Observations at the bounds and far-out normal values stay harmless."""
    space = _all_kinds()
    rng = np.random.default_rng(2)
    h = History(space.dim)
    lows = np.array([d.low for d in space.domains])
    highs = np.array([d.high for d in space.domains])
    for i in range(12):
        x = lows.copy() if i % 2 else highs.copy()
        x[4] = 5.0 + (-1) ** i * 30.0  # a normal draw 15 sigma out
        h.complete(i, x, float(i))
    for _ in range(5):
        _check_inside(space, _sampler(method).suggest(space, h, rng))


def _run(method: str, seed: int, n: int = 18, **kw: object) -> np.ndarray:
    space = _all_kinds()
    rng = np.random.default_rng(seed)
    h = History(space.dim)
    sampler = _sampler(method, n_startup_trials=5, **kw)
    out = []
    for i in range(n):
        x = sampler.suggest(space, h, rng)
        out.append(x)
        if i % 3 == 2:
            h.add_pending(i, x)  # a few stay pending, as in a parallel run
        else:
            h.complete(i, x, _loss(space, x))
    return np.array(out)


def test_reproducible_with_same_seed(method: str) -> None:
    a, b = _run(method, 7), _run(method, 7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _run(method, 8))


@pytest.mark.parametrize("method", ["tpe", "bayes"])
def test_constant_liar_spreads_pending(method: str) -> None:
    (space,) = spaces.split({"x": spaces.uniform(0, 1), "y": spaces.uniform(0, 1)})
    rng = np.random.default_rng(0)
    h = History(2)
    for i in range(30):
        x = space.sample(rng)
        h.complete(i, x, float(((x - 0.25) ** 2).sum()))
    sampler = make_sampler(method)
    x0 = sampler.suggest(space, h, np.random.default_rng(1))
    for j in range(40):
        h.add_pending(1000 + j, x0)
    far = [np.abs(sampler.suggest(space, h, np.random.default_rng(s)) - x0).max()
           for s in range(2, 7)]
    assert min(far) > 1e-3, far
    # Without the lie they would crowd the same spot.
    liar_off = make_sampler(method, constant_liar=False)
    near = [np.abs(liar_off.suggest(space, h, np.random.default_rng(s)) - x0).max()
            for s in range(2, 7)]
    assert np.median(far) > np.median(near)


def _quadratic_best(method: str, seed: int, dim: int, budget: int) -> float:
    (space,) = spaces.split({f"x{i}": spaces.uniform(-5, 5) for i in range(dim)})
    opt = np.linspace(-2, 3, dim)
    rng = np.random.default_rng(seed)
    h = History(dim)
    sampler = make_sampler(method)
    for i in range(budget):
        x = sampler.suggest(space, h, rng)
        h.complete(i, x, float(((x - opt) ** 2).sum()))
    return float(h.best)


@pytest.mark.parametrize("method,dim", [("tpe", 2), ("tpe", 4), ("bayes", 3)])
def test_model_beats_random_on_quadratic(method: str, dim: int) -> None:
    budget = 40
    seeds = range(4)
    model = np.mean([_quadratic_best(method, s, dim, budget) for s in seeds])
    rand = np.mean([_quadratic_best("random", s, dim, budget) for s in seeds])
    assert model < 0.5 * rand, (model, rand)


def test_expected_improvement_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    for mu, sigma, best in [(0.0, 1.0, 0.0), (1.0, 0.5, 0.2), (-0.3, 2.0, 0.5), (2.0, 0.7, 0.0)]:
        f = rng.normal(mu, sigma, 2_000_000)
        mc = np.maximum(best - f, 0.0).mean()
        ei = float(expected_improvement(np.array(mu), np.array(sigma), best))
        assert ei == pytest.approx(mc, rel=0.02, abs=1e-4)
        assert float(np.exp(log_expected_improvement(np.array([mu]), np.array([sigma]), best)[0])) \
            == pytest.approx(ei, rel=1e-9)


def test_log_expected_improvement_far_tail_is_finite_and_monotone() -> None:
    mus = np.concatenate([np.linspace(0.0, 60.0, 61), [1e3, 1e5]])
    lei = log_expected_improvement(mus, np.ones_like(mus), 0.0)
    assert np.isfinite(lei).all()
    assert (np.diff(lei) < 0).all()
    # Continuous across the switch to the asymptotic branch at z = -6.
    a, b = log_expected_improvement(np.array([5.999999, 6.000001]), np.ones(2), 0.0)
    assert a == pytest.approx(b, abs=1e-4)


def test_tpe_latency_has_no_pathology() -> None:
    """Not a timing test (the speed figure lives in bench/samplers.py): catches blow-ups."""
    (space,) = spaces.split({f"x{i}": spaces.uniform(0, 1) for i in range(6)})
    rng = np.random.default_rng(0)
    h = History(6)
    X = rng.random((1000, 6))
    for i, x in enumerate(X):
        h.complete(i, x, float(((x - 0.3) ** 2).sum()))
    tpe = make_sampler("tpe")
    ts = []
    for r in range(10):
        h.add_pending(-1, X[r]); h.drop_pending(-1)  # new version: no cached model
        t0 = time.perf_counter()
        tpe.suggest(space, h, rng)
        ts.append(time.perf_counter() - t0)
    assert np.median(ts) < 0.05


def test_tpe_int_and_cat_dims_learn() -> None:
    """Integer and categorical dims are modelled, not just sampled from the prior."""
    (space,) = spaces.split({"k": spaces.randint(0, 50), "c": spaces.choice(list("abcdefgh"))})
    rng = np.random.default_rng(0)
    h = History(2)
    tpe = make_sampler("tpe")
    for i in range(100):
        x = tpe.suggest(space, h, rng)
        h.complete(i, x, abs(x[0] - 37) + (0.0 if x[1] == 5 else 5.0))
    tail = h.X[-40:]
    # 1/8 when sampled at random; TPE keeps exploring the other values (each value gets
    # its own search while the trials per value are few), so not all go to the best.
    assert np.mean(tail[:, 1] == 5) > 0.3
    assert np.median(np.abs(tail[:, 0] - 37)) <= 5


def test_tpe_scores_fewer_candidates_on_long_histories() -> None:
    """The work cap: many candidates on short histories, at least 24 on long ones."""
    from shadho.samplers import tpe as tpe_mod
    (space,) = spaces.split({"x": spaces.uniform(0, 1), "y": spaces.uniform(0, 1)})
    sizes = []
    real = tpe_mod._sample
    def spy(lay, mix, size, multivariate, rng):  # type: ignore[no-untyped-def]
        sizes.append(size)
        return real(lay, mix, size, multivariate, rng)
    rng = np.random.default_rng(0)
    for n in (50, 5000):
        h = History(2)
        X = rng.random((n, 2))
        for i, x in enumerate(X):
            h.complete(i, x, float(((x - 0.3) ** 2).sum()))
        tpe_mod._sample = spy
        try:
            x = make_sampler("tpe", n_ei_candidates=200).suggest(space, h, rng)
        finally:
            tpe_mod._sample = real
        assert ((0 <= x) & (x <= 1)).all()
    assert sizes == [200, 24]


def test_history_lives_in_its_own_module_and_the_old_paths_still_import_it():
    from shadho.history import History as H
    from shadho.samplers.base import History as old

    assert H is old is History


def test_model_sampler_base_handles_empty_spaces_and_start_up_once():
    from shadho.samplers.base import ModelSampler

    calls = []

    class Echo(ModelSampler):
        min_startup = 2

        def propose(self, space, history, rng):
            calls.append(history.n)
            return history.X[0]

    (empty,) = spaces.split({"k": "fixed"})
    assert Echo().suggest(empty, History(0), np.random.default_rng(0)).shape == (0,)
    (space,) = spaces.split({"x": spaces.uniform(0, 1)})
    h, rng, s = History(1), np.random.default_rng(0), Echo(n_startup_trials=0)
    for i in range(4):
        h.complete(i, s.suggest(space, h, rng), 1.0)
    assert calls == [2, 3]  # min_startup holds even when n_startup_trials is lower
    with pytest.raises(ValueError, match="n_startup_trials must be None or >= 0"):
        Echo(n_startup_trials=-1)
    assert Echo().startup(space) == 10


@pytest.mark.parametrize("name", ["tpe", "gp"])
def test_model_samplers_read_spaces_through_their_encodings_only(name):
    """A domain that offers only ``encoding``, ``sample`` and ``describe`` is enough for a model."""

    class Bare:
        def __init__(self, dom):
            self.encoding, self._dom = dom.encoding, dom

        def sample(self, rng, size=None):
            return self._dom.sample(rng, size)

        def describe(self):
            return self._dom.describe()

    (full,) = spaces.split({"x": spaces.normal(0, 1), "k": spaces.randint(0, 4), "c": ["a", "b"],
                            "lr": spaces.log10_uniform(-3, 0)})
    space = SearchSpace(full.id, full.name, full.paths, tuple(Bare(d) for d in full.domains), full.template)
    h, rng = History(space.dim), np.random.default_rng(0)
    s = make_sampler(name, n_startup_trials=3)
    for i in range(6):
        x = s.suggest(space, h, rng)
        h.complete(i, x, float(x[0] ** 2))
    assert x.shape == (4,) and all(lo <= v <= hi for v, (lo, hi) in zip(x, (e.support for e in space.encodings)))


def test_gp_without_the_log_warp_standardises_raw_losses_and_still_converges() -> None:
    from shadho.samplers.gp import GPSampler, _warp

    y = np.array([1.0, 3.0, 101.0])
    plain = _warp(y, log=False)
    assert np.allclose(plain, (y - y.mean()) / y.std())
    assert np.argmin(_warp(y)) == np.argmin(plain) == 0
    (space,) = spaces.split({"x": spaces.uniform(-5, 5), "y": spaces.uniform(-5, 5)})
    h, rng = History(2), np.random.default_rng(0)
    gp = GPSampler(n_startup_trials=5, warp=False)
    for i in range(25):  # an ellipsoid with condition number 1e4: where the warp hurts
        x = gp.suggest(space, h, rng)
        h.complete(i, x, float(x[0] ** 2 + 1e4 * x[1] ** 2))
    assert h.best < 1.0
