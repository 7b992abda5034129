"""Mixed search spaces of our own, and a scikit-learn task with an exclusive kernel choice.

Mixed spaces (integers, a categorical of 4-8 values, log-scaled floats whose best value
depends on the category, plain floats) imitate deep-learning tuning: every category has
a basin in the log-scaled floats, the easy categories have wide basins and a worse
best, and the category holding the optimum has a narrow one, so a search that settles
on the first category that looks good misses it. The loss of category ``c`` is

    base[c] + sum over log dims min(1, ((u - centre[c]) / width[c])**2)
            + 0.1 * (sum over int dims ((k - opt[c]) / span)**2 + sum over floats ((x - opt) / span)**2)

with optimum 0 in category ``best``. The figure to read is the share of seeds whose best
trial lies in that category.

The scikit-learn task is an SVC on a subsample of the digits data with an exclusive
choice of 4 kernels, each its own search space in shadho (``C`` and ``gamma`` have the
same name and domain in every kernel that has them, so a sampler may share them).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from shadho import spaces
from sampler_runners import Flat, Param, Problem, flat_problem


@dataclass(frozen=True)
class Mixed:
    """The definition of one mixed space (see the module docstring)."""

    name: str
    cat: str
    values: tuple[str, ...]
    base: tuple[float, ...]
    #: (name, lo, hi, centre per category, width per category), in decades
    logs: tuple[tuple[str, float, float, tuple[float, ...], tuple[float, ...]], ...]
    #: (name, lo, hi, optimum per category)
    ints: tuple[tuple[str, int, int, tuple[int, ...]], ...]
    #: (name, lo, hi, optimum)
    floats: tuple[tuple[str, float, float, float], ...]

    @property
    def best(self) -> str:
        return self.values[int(np.argmin(self.base))]

    def loss(self, p: Flat) -> float:
        c = self.values.index(p[self.cat])
        out = self.base[c]
        for name, _, _, centre, width in self.logs:
            out += min(1.0, ((math.log10(p[name]) - centre[c]) / width[c]) ** 2)
        for name, lo, hi, opt in self.ints:
            out += 0.1 * ((p[name] - opt[c]) / (hi - lo)) ** 2
        for name, lo, hi, fopt in self.floats:
            out += 0.1 * ((p[name] - fopt) / (hi - lo)) ** 2
        return float(out)

    def problem(self, budget: int) -> Problem:
        params = [Param(self.cat, "cat", values=self.values)]
        params += [Param(n, "log10", lo, hi) for n, lo, hi, _, _ in self.logs]
        params += [Param(n, "int", lo, hi) for n, lo, hi, _ in self.ints]
        params += [Param(n, "float", lo, hi) for n, lo, hi, _ in self.floats]
        return flat_problem(self.name, params, self.loss, 0.0, budget,
                            category=lambda p: p[self.cat], best_category=self.best,
                            tags=("mixed",))


MIXED = [
    # activation (5) x depth x log learning rate x dropout x width multiplier
    Mixed("mixed-activation", "act", ("relu", "tanh", "elu", "gelu", "sigmoid"),
          (0.30, 0.20, 0.25, 0.0, 0.30),
          (("lr", -6.0, 0.0, (-2.0, -3.0, -1.5, -4.2, -0.8), (2.5, 2.0, 1.5, 1.0, 1.5)),),
          (("depth", 1, 8, (3, 2, 4, 6, 2)),),
          (("dropout", 0.0, 0.8, 0.3), ("width", 0.5, 2.0, 1.2))),
    # optimizer (4) x log learning rate x log weight decay x log2 batch size x momentum
    Mixed("mixed-optimizer", "opt", ("sgd", "momentum", "adam", "rmsprop"),
          (0.30, 0.20, 0.0, 0.25),
          (("lr", -5.0, 0.0, (-1.0, -1.5, -3.6, -2.5), (2.0, 1.5, 1.0, 1.2)),
           ("wd", -6.0, -1.0, (-3.0, -4.0, -5.2, -2.0), (2.5, 2.5, 1.5, 2.0))),
          (("log2_batch", 4, 10, (5, 6, 8, 7)),),
          (("beta", 0.0, 0.99, 0.9),)),
    # model family (8) x two log-scaled floats x layers x one float
    Mixed("mixed-family", "family", tuple(f"m{i}" for i in range(8)),
          (0.30, 0.20, 0.35, 0.25, 0.30, 0.0, 0.35, 0.20),
          (("alpha", -4.0, 2.0, (0.0, -1.0, 1.0, -2.0, 0.5, -3.2, -0.5, 1.5),
            (2.5, 2.0, 2.0, 2.0, 2.5, 1.2, 2.0, 1.5)),
           ("beta", -3.0, 3.0, (1.0, 0.0, -1.0, 2.0, -2.0, 1.8, 0.5, -0.5),
            (2.5, 2.0, 2.0, 2.0, 2.5, 1.2, 2.0, 1.5))),
          (("layers", 1, 6, (2, 3, 1, 4, 2, 5, 3, 2)),),
          (("frac", 0.0, 1.0, 0.7),)),
]


#: A fourth space for validation only (no setting was tuned on it): a solver (6) x two
#: log-scaled floats x two integers x one float, the optimum in a narrow basin of "s4".
VALIDATION = Mixed(
    "mixed-validation", "solver", tuple(f"s{i}" for i in range(6)),
    (0.25, 0.15, 0.30, 0.20, 0.0, 0.30),
    (("tol", -8.0, -1.0, (-3.0, -4.0, -2.0, -5.0, -6.5, -3.5), (2.5, 2.0, 2.5, 2.0, 1.0, 2.0)),
     ("reg", -5.0, 1.0, (-1.0, -2.0, 0.0, -3.0, -3.8, -1.5), (2.0, 2.0, 2.5, 2.0, 1.2, 2.0))),
    (("iters", 1, 10, (3, 5, 2, 7, 8, 4)), ("rank", 1, 16, (4, 8, 2, 12, 10, 6))),
    (("mix", 0.0, 1.0, 0.4),))

#: The three benchmark spaces, then the validation space.
ALL_MIXED = MIXED + [VALIDATION]


def mixed_problems(budget: int) -> list[Problem]:
    return [m.problem(budget) for m in MIXED]


# ---------------------------------------------------------------- scikit-learn

_DATA: dict[str, Any] = {}
_KERNELS = ("linear", "rbf", "poly", "sigmoid")


def _digits() -> tuple[np.ndarray, np.ndarray]:
    if "digits" not in _DATA:
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        idx = np.random.default_rng(0).permutation(len(y))[:500]  # a subsample keeps it fast
        _DATA["digits"] = (X[idx] / 16.0, y[idx])
    return _DATA["digits"]


def svc_error(p: Flat) -> float:
    """3-fold CV error of an SVC with the flat params ``p`` (``kernel``, ``C``, ...)."""
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC
    X, y = _digits()
    kw = {k: v for k, v in p.items() if k != "kernel"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = SVC(kernel=p["kernel"], max_iter=5000, **kw)
        return 1.0 - float(cross_val_score(clf, X, y, cv=3).mean())


def _svc_optuna(t: Any) -> Flat:
    k = t.suggest_categorical("kernel", list(_KERNELS))
    p: Flat = {"kernel": k, "C": t.suggest_float(f"{k}.C", 1e-3, 1e3, log=True)}
    if k != "linear":
        p["gamma"] = t.suggest_float(f"{k}.gamma", 1e-4, 10.0, log=True)
    if k == "poly":
        p["degree"] = t.suggest_int("poly.degree", 2, 4)
        p["coef0"] = t.suggest_float("poly.coef0", 0, 1)
    if k == "sigmoid":
        p["coef0"] = t.suggest_float("sigmoid.coef0", -1, 1)
    return p


def _svc_hyperopt() -> Any:
    from hyperopt import hp
    ln10 = math.log(10)
    C = lambda k: hp.loguniform(f"{k}.C", -3 * ln10, 3 * ln10)  # noqa: E731
    g = lambda k: hp.loguniform(f"{k}.gamma", -4 * ln10, 1 * ln10)  # noqa: E731
    return hp.choice("kernel", [
        {"kernel": "linear", "C": C("linear")},
        {"kernel": "rbf", "C": C("rbf"), "gamma": g("rbf")},
        {"kernel": "poly", "C": C("poly"), "gamma": g("poly"),
         "degree": hp.uniformint("poly.degree", 2, 4), "coef0": hp.uniform("poly.coef0", 0, 1)},
        {"kernel": "sigmoid", "C": C("sigmoid"), "gamma": g("sigmoid"),
         "coef0": hp.uniform("sigmoid.coef0", -1, 1)}])


def _svc_canon(params: dict[str, Any]) -> Flat:
    (k, sub), = params["svm"].items()
    return {"kernel": k, **sub}


def _svc_hcanon(d: dict[str, Any]) -> Flat:
    return {k: int(v) if k == "degree" else v for k, v in d.items()}


def svc(budget: int) -> Problem:
    """SVC on digits, exclusive kernel choice (4 shadho search spaces); loss = CV error."""
    C, g = spaces.log10_uniform(-3, 3), spaces.log10_uniform(-4, 1)
    spec = {"svm": spaces.scope(
        exclusive=True,
        linear={"C": C},
        rbf={"C": C, "gamma": g},
        poly={"C": C, "gamma": g, "degree": spaces.randint(2, 5), "coef0": spaces.uniform(0, 1)},
        sigmoid={"C": C, "gamma": g, "coef0": spaces.uniform(-1, 1)})}
    return Problem(f"svc-digits-b{budget}", spec, _svc_canon, _svc_optuna, _svc_hyperopt,
                   _svc_hcanon, svc_error, 0.0, budget, category=lambda p: p["kernel"],
                   tags=("sklearn",))
