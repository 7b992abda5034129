"""Benchmark problems seen by every sampler library, and one runner per library.

A :class:`Problem` carries the same search space three ways (a shadho spec, an Optuna
``ask`` function, a Hyperopt space) plus ``canon`` functions that turn each library's
sample into one flat dict, so the objective ``f`` and the category read-out never
depend on who sampled. Flat problems are written once as a list of :class:`Param`.

Runners return the best loss and the flat dict that reached it. Shadho is driven
through its real path: ``Shadho(..., method=..., seed=s, max_tasks=budget)`` and a
sequential ``trial = opt.ask(); opt.tell(trial, loss)`` loop (the driver's scheduler
picks the search space when a spec splits; ``max_tasks`` lets the sampler plan its
start-up for the budget).
"""
from __future__ import annotations

import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from shadho import spaces

Flat = dict[str, Any]

#: Sampler name -> library; the shadho ones map to (method, sampler_options).
SHADHO = {
    "shadho-random": ("random", {}),
    "shadho-tpe": ("tpe", {}),
    # The TPE as it was before issue 18 (200 EI candidates, categorical pseudo-counts
    # spread over all categories, no category exploration, fixed 10 start-up trials
    # per space, nothing shared across spaces), for before/after figures.
    "shadho-tpe-prev": ("tpe", {"n_ei_candidates": 200, "category_explore": 0.0,
                                "n_startup_trials": 10, "share_across_spaces": False,
                                "cat_prior": "spread"}),
    # The TPE's bounded cross-space borrowing (issue 15; options, not the default): the
    # borrowed trials weigh at most 10 trials' worth, end at most half the start-up, are
    # ranked apart from the space's own and come from each other space's first trials.
    "shadho-tpe-bounded": ("tpe", {"borrow_cap": 10.0, "borrow_startup": 0.5,
                                   "borrow_rank": "separate", "borrow_first": "startup"}),
    "shadho-gp": ("gp", {}),
    "shadho-gp-plain": ("gp", {"warp": False}),
}
OTHERS = ["optuna-tpe", "optuna-tpe-indep", "optuna-gp", "optuna-random", "hyperopt-tpe"]
ALL = list(SHADHO) + OTHERS


@dataclass(frozen=True)
class Param:
    """One flat parameter: kind ``'float'``, ``'log10'`` (10**U(lo, hi)), ``'int'`` (lo..hi) or ``'cat'``."""

    name: str
    kind: str
    lo: float = 0.0
    hi: float = 1.0
    values: tuple[Any, ...] = ()

    def shadho(self) -> spaces.Domain:
        if self.kind == "float":
            return spaces.uniform(self.lo, self.hi)
        if self.kind == "log10":
            return spaces.log10_uniform(self.lo, self.hi)
        if self.kind == "int":
            return spaces.randint(int(self.lo), int(self.hi) + 1)
        return spaces.choice(list(self.values))

    def optuna(self, trial: Any) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, self.lo, self.hi)
        if self.kind == "log10":
            return trial.suggest_float(self.name, 10.0 ** self.lo, 10.0 ** self.hi, log=True)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.lo), int(self.hi))
        return trial.suggest_categorical(self.name, list(self.values))

    def hyperopt(self) -> Any:
        from hyperopt import hp
        if self.kind == "float":
            return hp.uniform(self.name, self.lo, self.hi)
        if self.kind == "log10":
            return hp.loguniform(self.name, self.lo * math.log(10), self.hi * math.log(10))
        if self.kind == "int":
            return hp.uniformint(self.name, int(self.lo), int(self.hi))
        return hp.choice(self.name, list(self.values))


@dataclass(frozen=True)
class Problem:
    """A benchmark problem as each library sees it (see the module docstring)."""

    name: str
    spec: dict[str, Any]
    canon: Callable[[dict[str, Any]], Flat]
    optuna_ask: Callable[[Any], Flat]
    hyperopt_space: Callable[[], Any]
    hyperopt_canon: Callable[[dict[str, Any]], Flat]
    f: Callable[[Flat], float]
    optimum: float
    budget: int
    #: flat dict -> its category (mixed spaces), and the category holding the optimum.
    category: Callable[[Flat], Any] | None = None
    best_category: Any = None
    tags: tuple[str, ...] = field(default=())


def flat_problem(name: str, params: list[Param], f: Callable[[Flat], float], optimum: float,
                 budget: int, **kw: Any) -> Problem:
    """A problem over a flat list of parameters (no conditional structure)."""
    spec = {p.name: p.shadho() for p in params}
    ints = {p.name for p in params if p.kind == "int"}

    def hcanon(d: dict[str, Any]) -> Flat:
        return {k: int(v) if k in ints else v for k, v in d.items()}

    return Problem(name, spec, dict, lambda t: {p.name: p.optuna(t) for p in params},
                   lambda: {p.name: p.hyperopt() for p in params}, hcanon, f, optimum, budget, **kw)


# ---------------------------------------------------------------- runners


def run_shadho(prob: Problem, sampler: str, seed: int) -> tuple[float, Flat]:
    from shadho import Shadho
    method, options = SHADHO[sampler]
    best, best_p = math.inf, {}
    with tempfile.TemporaryDirectory() as tmp:
        opt = Shadho(f"bench-{prob.name}", lambda p: 0.0, prob.spec, method=method,
                     backend=os.path.join(tmp, "r.db"), seed=seed, quiet=True,
                     max_tasks=prob.budget, sampler_options=dict(options))
        try:
            for _ in range(prob.budget):
                trial = opt.ask()
                p = prob.canon(trial.params)
                loss = prob.f(p)
                opt.tell(trial, loss)
                if loss < best:
                    best, best_p = loss, p
        finally:
            opt.close()
    return best, best_p


def _optuna_sampler(sampler: str, seed: int) -> Any:
    import optuna
    if sampler == "optuna-tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if sampler == "optuna-tpe-indep":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False, constant_liar=False)
    if sampler == "optuna-gp":
        try:
            import torch  # noqa: F401  (Optuna's GPSampler needs it)
        except ImportError:
            raise SystemExit("optuna-gp needs torch: .venv/bin/pip install -e '.[bench-gp]'") from None
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def run_optuna(prob: Problem, sampler: str, seed: int) -> tuple[float, Flat]:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=_optuna_sampler(sampler, seed))
    best: list[Any] = [math.inf, {}]

    def objective(t: Any) -> float:
        p = prob.optuna_ask(t)
        loss = prob.f(p)
        if loss < best[0]:
            best[:] = [loss, p]
        return loss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=prob.budget)
    return best[0], best[1]


def run_hyperopt(prob: Problem, seed: int) -> tuple[float, Flat]:
    import logging

    import numpy as np
    from hyperopt import STATUS_OK, Trials, fmin, tpe
    logging.getLogger("hyperopt").setLevel(logging.ERROR)
    best: list[Any] = [math.inf, {}]

    def objective(d: dict[str, Any]) -> dict[str, Any]:
        p = prob.hyperopt_canon(d)
        loss = prob.f(p)
        if loss < best[0]:
            best[:] = [loss, p]
        return {"loss": loss, "status": STATUS_OK}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fmin(objective, prob.hyperopt_space(), algo=tpe.suggest, max_evals=prob.budget,
             trials=Trials(), rstate=np.random.default_rng(seed), show_progressbar=False)
    return best[0], best[1]


def run(prob: Problem, sampler: str, seed: int) -> tuple[float, Flat]:
    """Best loss and its flat params of one run of ``sampler`` on ``prob``."""
    if sampler in SHADHO:
        return run_shadho(prob, sampler, seed)
    if sampler == "hyperopt-tpe":
        return run_hyperopt(prob, seed)
    if sampler in OTHERS:
        return run_optuna(prob, sampler, seed)
    raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(ALL)}")
