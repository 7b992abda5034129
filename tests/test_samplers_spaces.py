"""Samplers on real search spaces: categories, spaces that share parameters, start-up, GP scaling.

All fast (deterministic seeds, small budgets): the figures on standard suites live in
bench/samplers.py.
"""
from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pytest

from shadho import Shadho, spaces
from shadho.samplers import History, Sampler, make_sampler
from shadho.samplers.startup import SearchContext, borrowed, shared_dims, startup_size
from shadho.samplers.tpe import TPESampler, category_shares
from shadho.spaces import SearchSpace

# A small mixed space: the category holding the optimum (3) has a narrow basin in the
# log learning rate, the others wide ones and a worse best.
_CENTRE = (-1.0, -2.0, -0.5, -4.0)
_WIDTH = (2.0, 1.5, 1.5, 0.8)
_BASE = (0.3, 0.15, 0.2, 0.0)


def _mixed_loss(x: np.ndarray) -> float:
    c = int(x[0])
    return _BASE[c] + min(1.0, ((x[1] - _CENTRE[c]) / _WIDTH[c]) ** 2) + 0.1 * (x[2] - 0.5) ** 2


def _mixed_space() -> SearchSpace:
    (space,) = spaces.split({"act": spaces.choice(["a", "b", "c", "d"]),
                             "lr": spaces.log10_uniform(-6, 0), "x": spaces.uniform(0, 1)})
    return space


def _best_category(sampler: Sampler, seed: int, budget: int = 60) -> int:
    space = _mixed_space()
    rng = np.random.default_rng(seed)
    h = History(space.dim)
    for i in range(budget):
        x = sampler.suggest(space, h, rng)
        h.complete(i, x, _mixed_loss(x))
    return int(h.X[int(np.argmin(h.y)), 0])


def test_tpe_does_not_collapse_onto_one_category() -> None:
    seeds = range(8)
    new = [_best_category(TPESampler(n_startup_trials=10), s) for s in seeds]
    old = [_best_category(TPESampler(n_startup_trials=10, category_explore=0.0, cat_prior="spread",
                                     n_ei_candidates=200), s) for s in seeds]
    assert new.count(3) >= 7, new
    assert new.count(3) > old.count(3), (new, old)


def test_category_shares_floor_and_untried_values() -> None:
    col = np.array([0.0, 0.0, 1.0, 1.0, 2.0])
    y = np.array([5.0, 1.0, 9.0, 8.0, 3.0])
    p = category_shares(col, y, 4)
    assert p.sum() == pytest.approx(1.0)
    assert (p >= 0.5 / 4 - 1e-12).all()          # every value keeps the floor
    assert p[3] == pytest.approx(p[0])           # untried counts as the best
    assert p[0] > p[2] > p[1]                    # better best loss, more exploration


# ---------------------------------------------------------------- shared start-up

_C = spaces.log10_uniform(-3, 3)
_SVM = {"svm": spaces.scope(exclusive=True, linear={"C": _C},
                            rbf={"C": _C, "gamma": spaces.log10_uniform(-4, 1)},
                            poly={"C": _C, "degree": spaces.randint(2, 5)})}


def test_shared_dims_match_name_and_domain() -> None:
    lin, poly, rbf = sorted(spaces.split(_SVM), key=lambda s: s.name)
    assert [s.name for s in (lin, poly, rbf)] == ["svm/linear", "svm/poly", "svm/rbf"]
    assert shared_dims(rbf, lin) == [(0, 0)]
    assert shared_dims(lin, poly) == [(0, 0)]
    (other,) = spaces.split({"C": spaces.log10_uniform(-2, 2)})  # same name, other domain
    assert shared_dims(lin, other) == []


def _context_with_rbf_trials(n: int) -> tuple[SearchContext, SearchSpace, SearchSpace]:
    sps = spaces.split(_SVM)
    hists = {s.id: History(s.dim) for s in sps}
    lin = next(s for s in sps if s.name == "svm/linear")
    rbf = next(s for s in sps if s.name == "svm/rbf")
    rng = np.random.default_rng(0)
    for i in range(n):
        x = rbf.sample(rng)
        hists[rbf.id].complete(i, x, (x[0] - 2.0) ** 2 + 0.1 * x[1] ** 2)  # best C = 10**2
    return SearchContext(tuple(sps), hists, budget=40), lin, rbf


def test_borrowed_trials_fill_shared_dims_only() -> None:
    ctx, lin, rbf = _context_with_rbf_trials(12)
    X, y, worth = borrowed(rbf, ctx)
    assert X.shape == (0, 2) and worth == 0  # no other space has trials yet
    X, y, worth = borrowed(lin, ctx)
    assert X.shape == (12, 1) and len(y) == 12 and worth == 12
    sps = {s.name: s for s in ctx.spaces}
    ctx.histories[lin.id].complete(99, [1.0], 1.0)  # type: ignore[attr-defined]
    X, y, worth = borrowed(sps["svm/rbf"], ctx)
    assert X.shape == (1, 2) and np.isnan(X[0, 1]) and worth == pytest.approx(0.5)


def test_borrow_limit_takes_only_the_earliest_trials_of_each_other_space() -> None:
    """With a limit, a space borrows the same rows however many more trials the others ran."""
    ctx, lin, rbf = _context_with_rbf_trials(12)
    X4, y4, worth = borrowed(lin, ctx, limit=4)
    assert X4.shape == (4, 1) and worth == 4
    np.testing.assert_array_equal(y4, ctx.histories[rbf.id].y[:4])
    more, _, _ = _context_with_rbf_trials(30)
    np.testing.assert_array_equal(borrowed(lin, more, limit=4)[1], y4)
    assert borrowed(lin, ctx, limit=0)[0].shape == (0, 1)
    with pytest.raises(ValueError, match="borrow_limit"):
        TPESampler(borrow_limit=-1)


def test_space_without_own_trials_starts_from_shared_ones() -> None:
    """A space with no trials of its own models C from the other spaces' C, when borrowed
    trials may end all of its start-up (by default they end at most half of it)."""
    ctx, lin, _ = _context_with_rbf_trials(12)
    tpe = TPESampler(borrow_startup=1.0)
    tpe.bind(ctx)
    shared = [tpe.suggest(lin, ctx.histories[lin.id], np.random.default_rng(s))[0]  # type: ignore[arg-type]
              for s in range(20)]
    alone = TPESampler()  # no context: its own start-up, i.e. the prior
    prior = [alone.suggest(lin, History(1), np.random.default_rng(s))[0] for s in range(20)]
    assert np.median(np.abs(np.array(shared) - 2.0)) < 0.7 * np.median(np.abs(np.array(prior) - 2.0))
    off = TPESampler(share_across_spaces=False)
    off.bind(ctx)
    np.testing.assert_array_equal(
        [off.suggest(lin, History(1), np.random.default_rng(s))[0] for s in range(20)], prior)


class _Recorder(Sampler):
    name = "recorder"

    def __init__(self) -> None:
        self.bound: list[SearchContext] = []

    def bind(self, context: SearchContext) -> None:
        super().bind(context)
        self.bound.append(context)

    def suggest(self, space: SearchSpace, history: History, rng: np.random.Generator) -> np.ndarray:
        return space.sample(rng)


def test_driver_binds_all_spaces_and_the_budget() -> None:
    rec = _Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        opt = Shadho("bind", lambda p: 0.0, _SVM, method=rec, max_tasks=40, quiet=True,
                     backend=os.path.join(tmp, "r.db"), seed=0)
        try:
            t = opt.ask()
            opt.tell(t, 1.0)
        finally:
            opt.close()
    assert len(rec.bound) == 1
    ctx = rec.bound[0]
    assert ctx.budget == 40 and ctx.n_spaces == 3
    assert sum(h.n for h in ctx.histories.values()) == 1  # type: ignore[attr-defined]


def test_small_budget_leaves_random_search_in_every_space() -> None:
    """Budget 40 over 3 spaces: the model takes over early (it did not before: 10 each)."""
    with tempfile.TemporaryDirectory() as tmp:
        opt = Shadho("small", lambda p: 0.0, _SVM, method="tpe", max_tasks=40, quiet=True,
                     backend=os.path.join(tmp, "r.db"), seed=1)
        try:
            for _ in range(40):
                t = opt.ask()
                (_, sub), = t.params["svm"].items()
                opt.tell(t, (math.log10(sub["C"]) - 2.0) ** 2)
            n_startup = [opt.sampler.startup(s) for s in opt.spaces]  # type: ignore[attr-defined]
            best = opt.best["loss"]
        finally:
            opt.close()
    assert n_startup == [2, 2, 2]  # min(max(10, 2 dim), max(2, 40 / (5 * 3)))
    assert best < 0.05


# ---------------------------------------------------------------- start-up size


def test_startup_scales_with_dimension_and_budget() -> None:
    assert [startup_size(d) for d in (1, 2, 5, 6, 20)] == [10, 10, 10, 12, 40]
    assert startup_size(5, budget=1000, n_spaces=1) == 10
    assert startup_size(5, budget=100, n_spaces=4) == 5
    assert startup_size(5, budget=10, n_spaces=4) == 2  # never below 2
    (space,) = spaces.split({"x": spaces.uniform(0, 1), "y": spaces.uniform(0, 1)})
    tpe = TPESampler()
    assert tpe.startup(space) == 10
    tpe.bind(SearchContext((space,), {space.id: History(2)}, budget=15))
    assert tpe.startup(space) == 3
    assert TPESampler(n_startup_trials=7).startup(space) == 7
    gp = make_sampler("gp")
    gp.bind(SearchContext((space,), {space.id: History(2)}, budget=15))
    assert gp.startup(space) == 3  # type: ignore[attr-defined]
    # Until then proposals are prior draws: the same as random search with the same rng.
    h = History(2)
    for i in range(2):
        h.complete(i, [0.5, 0.5], 1.0)
    np.testing.assert_array_equal(tpe.suggest(space, h, np.random.default_rng(3)),
                                  space.sample(np.random.default_rng(3)))


# ---------------------------------------------------------------- GP normalisation


def _gp_proposal(scale_y: float, shift_y: float, span: float) -> np.ndarray:
    (space,) = spaces.split({"x": spaces.uniform(0, span), "y": spaces.uniform(-span, span)})
    rng = np.random.default_rng(0)
    h = History(2)
    for i in range(12):
        u = rng.random(2)
        x = np.array([u[0] * span, (2 * u[1] - 1) * span])
        h.complete(i, x, shift_y + scale_y * ((u[0] - 0.3) ** 2 + 10 * (u[1] - 0.6) ** 2))
    x = make_sampler("gp").suggest(space, h, np.random.default_rng(1))
    return np.array([x[0] / span, (x[1] / span + 1) / 2])  # back to the unit square


def test_gp_is_invariant_to_loss_and_input_scale() -> None:
    ref = _gp_proposal(1.0, 0.0, 1.0)
    for scale_y, shift_y, span in [(1e6, 3.0, 1.0), (1e-4, -50.0, 1.0), (1.0, 0.0, 1e3)]:
        np.testing.assert_allclose(_gp_proposal(scale_y, shift_y, span), ref, atol=1e-3)


# ---------------------------------------------------------------- the bandit over categories

def _clear_best_run(n: int, budget: int | None, seed: int = 0) -> History:
    """TPE on a 4-value categorical (+ one float): value 2 is clearly best from the start."""
    (space,) = spaces.split({"c": spaces.choice(["a", "b", "c", "d"]), "x": spaces.uniform(0, 1)})
    tpe = TPESampler()
    h = History(space.dim)
    if budget is not None:
        tpe.bind(SearchContext((space,), {space.id: h}, budget))
    rng = np.random.default_rng(seed)
    for i in range(n):
        x = tpe.suggest(space, h, rng)
        h.complete(i, x, (0.0 if x[0] == 2 else 1.0) + (x[1] - 0.3) ** 2)
    return h


def test_categories_are_spread_evenly_while_the_search_is_young() -> None:
    """With a budget of 100, the first 85 trials spread over the values (8+ random each first)."""
    h = _clear_best_run(80, budget=100)
    counts = np.bincount(h.X[:, 0].astype(int), minlength=4)
    assert counts.min() >= 8, counts          # every value had its own start-up
    assert counts.max() <= 30, counts         # no value took over: 20 each on average


def test_a_clearly_best_category_is_converged_on_and_others_keep_a_bounded_share() -> None:
    """Without a budget the search commits after 10 trials per value: most trials go to the
    best value, every other value keeps a bounded share (0.3 / 4 spread evenly)."""
    for seed in (0, 1):
        h = _clear_best_run(300, budget=None, seed=seed)
        tail = h.X[100:, 0].astype(int)
        share = np.bincount(tail, minlength=4) / len(tail)
        assert share[2] >= 0.6, share
        others = np.delete(share, 2)
        assert (others >= 0.02).all() and (others <= 0.2).all(), share
        best_rows = h.X[:, 0] == 2
        assert h.y[best_rows].min() < 1e-3        # and the best value's own optimum is found


def test_category_settings_are_validated() -> None:
    for bad in ({"category_commit": 1.5}, {"category_floor": -0.1}, {"category_startup": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TPESampler(**bad)


def test_a_values_start_up_trials_cover_every_uniform_dim_evenly() -> None:
    """8 start-up draws: one per eighth of a log-scaled float, one per value of an 8-value int."""
    from shadho.samplers.categories import stratified_point
    (space,) = spaces.split({"lr": spaces.log10_uniform(-6, 2), "k": spaces.randint(0, 8),
                             "c": spaces.choice(["a", "b"])})
    rng = np.random.default_rng(3)
    mine = np.empty((0, space.dim))
    for _ in range(8):
        mine = np.vstack([mine, stratified_point(space, mine, 8, rng)])
    i_lr, i_k = space.labels.index("lr"), space.labels.index("k")
    assert sorted(np.floor(mine[:, i_lr] + 6).astype(int).tolist()) == list(range(8))
    assert sorted(mine[:, i_k].astype(int).tolist()) == list(range(8))
