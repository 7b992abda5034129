"""Benchmark shadho's samplers against Optuna's at equal budgets.

Run:  .venv/bin/python bench/samplers.py [--seeds N] [--quick] [--jobs J] [--round-robin]

Methods: shadho ``random``, ``tpe`` and ``bayes`` (GP), Optuna 5 ``TPESampler()`` with
its defaults (multivariate, constant liar), ``TPESampler(multivariate=False,
constant_liar=False)`` and ``RandomSampler``.

Shadho is driven through its real path: ``Shadho(..., method=..., seed=s)`` and a
sequential ``trial = opt.ask(); opt.tell(trial, loss)`` loop (results in a temporary
SQLite file). When a spec splits into several search spaces (an exclusive choice), the
driver's scheduler picks the space of every trial, as in any shadho run with one compute
class; each space is searched by its own model. The model-based samplers' 10 random
start-up trials are shared among the spaces (``max(3, ceil(10 / n_spaces))`` each), as
Optuna spends 10 in all. Optuna sees the same problem with ``suggest_categorical`` for
the branch. ``--round-robin`` instead drives the samplers directly and takes the spaces
in turn (the previous protocol), for comparison.

Regret is the best loss found minus the known optimum; the scikit-learn problems have
no known optimum, so their "regret" is the best CV error itself.

The TPE latency figure is the median time of one proposal with 100 and 1,000 finished
trials in a 6-dim continuous space; the ratio shadho / Optuna is the number to read,
as absolute times depend on the machine.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from shadho import spaces
from shadho.samplers import History, make_sampler

METHODS = ["shadho-random", "shadho-tpe", "shadho-bayes", "optuna-tpe", "optuna-tpe-indep",
           "optuna-random"]


# ---------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """A benchmark problem seen both ways.

    ``spec`` is the shadho spec; ``canon(params)`` turns shadho's nested params into a
    flat dict; ``ask(trial)`` draws the same flat dict with Optuna; ``f`` maps it to a loss.
    """

    name: str
    spec: dict[str, Any]
    canon: Callable[[dict[str, Any]], dict[str, Any]]
    ask: Callable[[Any], dict[str, Any]]
    f: Callable[[dict[str, Any]], float]
    optimum: float
    budget: int
    continuous: bool


def _box(name: str, fn: Callable[[np.ndarray], float], bounds: list[tuple[float, float]],
         optimum: float, budget: int) -> Problem:
    keys = [f"x{i}" for i in range(len(bounds))]
    spec = {k: spaces.uniform(lo, hi) for k, (lo, hi) in zip(keys, bounds)}
    return Problem(
        name, spec, lambda p: dict(p),
        lambda t: {k: t.suggest_float(k, lo, hi) for k, (lo, hi) in zip(keys, bounds)},
        lambda p: float(fn(np.array([p[k] for k in keys]))), optimum, budget, True)


def branin(x: np.ndarray) -> float:
    a, b, c = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x: np.ndarray) -> float:
    return float(-(_H6_ALPHA * np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(1))).sum())


def rosenbrock(x: np.ndarray) -> float:
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())


def levy(x: np.ndarray) -> float:
    w = 1 + (x - 1) / 4
    return float(math.sin(math.pi * w[0]) ** 2
                 + ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2)).sum()
                 + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2))


_ACT = {"relu": 0.0, "tanh": 0.3, "sigmoid": 1.0}


def _conditional_f(p: dict[str, Any]) -> float:
    pen = _ACT[p["act"]] + 0.1 * abs(p["n"] - 7)
    if p["branch"] == "a":
        return (p["x"] - 1) ** 2 + (p["y"] + 2) ** 2 + pen
    return 0.5 + (p["u"] - 0.5) ** 2 + (p["v"] + 1) ** 2 + abs(p["w"]) + pen


def _conditional_ask(t: Any) -> dict[str, Any]:
    b = t.suggest_categorical("branch", ["a", "b"])
    p: dict[str, Any] = {"branch": b}
    for k in (("x", "y") if b == "a" else ("u", "v", "w")):
        p[k] = t.suggest_float(f"{b}.{k}", -5, 5)
    p["act"] = t.suggest_categorical("act", list(_ACT))
    p["n"] = t.suggest_int("n", 1, 10)
    return p


def _conditional_canon(params: dict[str, Any]) -> dict[str, Any]:
    (b, sub), = params["branch"].items()
    return {"branch": b, **sub, "act": params["act"], "n": params["n"]}


def conditional(budget: int) -> Problem:
    spec = {"branch": spaces.scope(
                exclusive=True,
                a={"x": spaces.uniform(-5, 5), "y": spaces.uniform(-5, 5)},
                b={"u": spaces.uniform(-5, 5), "v": spaces.uniform(-5, 5),
                   "w": spaces.uniform(-5, 5)}),
            "act": spaces.choice(list(_ACT)), "n": spaces.randint(1, 11)}
    return Problem("conditional", spec, _conditional_canon, _conditional_ask, _conditional_f,
                   0.0, budget, False)


_DATA: dict[str, Any] = {}


def _digits() -> tuple[np.ndarray, np.ndarray]:
    if "digits" not in _DATA:
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        idx = np.random.default_rng(0).permutation(len(y))[:600]  # a subsample keeps it fast
        _DATA["digits"] = (X[idx] / 16.0, y[idx])
    return _DATA["digits"]


def _svc_f(p: dict[str, Any]) -> float:
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC
    X, y = _digits()
    kw = {k: v for k, v in p.items() if k != "kernel"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = SVC(kernel=p["kernel"], max_iter=20000, **kw)
        return 1.0 - float(cross_val_score(clf, X, y, cv=3).mean())


def _svc_ask(t: Any) -> dict[str, Any]:
    k = t.suggest_categorical("kernel", ["linear", "rbf", "poly", "sigmoid"])
    p: dict[str, Any] = {"kernel": k, "C": 10 ** t.suggest_float(f"{k}.logC", -3, 3)}
    if k != "linear":
        p["gamma"] = 10 ** t.suggest_float(f"{k}.loggamma", -4, 1)
    if k == "poly":
        p["degree"] = t.suggest_int("poly.degree", 2, 4)
        p["coef0"] = t.suggest_float("poly.coef0", 0, 1)
    if k == "sigmoid":
        p["coef0"] = t.suggest_float("sigmoid.coef0", -1, 1)
    return p


def _svc_canon(params: dict[str, Any]) -> dict[str, Any]:
    (k, sub), = params["svm"].items()
    return {"kernel": k, **sub}


def svc(budget: int) -> Problem:
    C, g = spaces.log10_uniform(-3, 3), spaces.log10_uniform(-4, 1)
    spec = {"svm": spaces.scope(
        exclusive=True,
        linear={"C": C},
        rbf={"C": C, "gamma": g},
        poly={"C": C, "gamma": g, "degree": spaces.randint(2, 5), "coef0": spaces.uniform(0, 1)},
        sigmoid={"C": C, "gamma": g, "coef0": spaces.uniform(-1, 1)})}
    return Problem("svc-digits", spec, _svc_canon, _svc_ask, _svc_f, 0.0, budget, False)


def _hgb_f(p: dict[str, Any]) -> float:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score
    if "bc" not in _DATA:
        _DATA["bc"] = load_breast_cancer(return_X_y=True)
    X, y = _DATA["bc"]
    clf = HistGradientBoostingClassifier(max_iter=40, early_stopping=False, random_state=0, **p)
    return 1.0 - float(cross_val_score(clf, X, y, cv=3).mean())


def _hgb_ask(t: Any) -> dict[str, Any]:
    return {"learning_rate": t.suggest_float("learning_rate", 1e-3, 1.0, log=True),
            "max_leaf_nodes": 2 ** t.suggest_int("log2_leaves", 2, 6),
            "min_samples_leaf": t.suggest_int("min_samples_leaf", 2, 60),
            "l2_regularization": t.suggest_float("l2_regularization", 1e-4, 10.0, log=True)}


def hgb(budget: int) -> Problem:
    spec = {"learning_rate": spaces.log10_uniform(-3, 0), "max_leaf_nodes": spaces.log2_randint(2, 7),
            "min_samples_leaf": spaces.randint(2, 61), "l2_regularization": spaces.log10_uniform(-4, 1)}
    return Problem("hgb-cancer", spec, dict, _hgb_ask, _hgb_f, 0.0, budget, False)


def problems(synthetic_budget: int, sklearn_budget: int) -> list[Problem]:
    return [
        _box("branin", branin, [(-5, 10), (0, 15)], 0.397887357729738, synthetic_budget),
        _box("hartmann6", hartmann6, [(0, 1)] * 6, -3.322368011391339, synthetic_budget),
        _box("rosenbrock4", rosenbrock, [(-2.048, 2.048)] * 4, 0.0, synthetic_budget),
        _box("levy6", levy, [(-10, 10)] * 6, 0.0, synthetic_budget),
        conditional(synthetic_budget),
        svc(sklearn_budget),
        hgb(sklearn_budget),
    ]


# ---------------------------------------------------------------- runners


def _startup(method: str, n_spaces: int) -> dict[str, int]:
    """The 10 random start-up trials, shared among the spaces (at least 3 each)."""
    return {} if method == "random" else {"n_startup_trials": max(3, math.ceil(10 / n_spaces))}


def run_shadho(prob: Problem, method: str, seed: int) -> float:
    """Shadho's own ask/tell path: the driver picks the space, its sampler the point."""
    import tempfile

    from shadho import Shadho
    n_spaces = len(spaces.split(prob.spec))
    best = math.inf
    with tempfile.TemporaryDirectory() as tmp:
        opt = Shadho(f"bench-{prob.name}", lambda p: 0.0, prob.spec, method=method,
                     backend=os.path.join(tmp, "r.db"), seed=seed, quiet=True,
                     sampler_options=_startup(method, n_spaces))
        try:
            for _ in range(prob.budget):
                trial = opt.ask()
                loss = prob.f(prob.canon(trial.params))
                opt.tell(trial, loss)
                best = min(best, loss)
        finally:
            opt.close()
    return best


def run_shadho_round_robin(prob: Problem, method: str, seed: int) -> float:
    """Samplers driven directly, the split spaces taken in turn (no scheduler)."""
    rng = np.random.default_rng(seed)
    sps = spaces.split(prob.spec)
    hists = [History(s.dim) for s in sps]
    samplers = [make_sampler(method, **_startup(method, len(sps))) for _ in sps]
    best = math.inf
    for t in range(prob.budget):
        i = t % len(sps)
        x = samplers[i].suggest(sps[i], hists[i], rng)
        loss = prob.f(prob.canon(sps[i].params(x)))
        hists[i].complete(t, x, loss)
        best = min(best, loss)
    return best


def _optuna_sampler(method: str, seed: int) -> Any:
    import optuna
    if method == "optuna-tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if method == "optuna-tpe-indep":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False, constant_liar=False)
    return optuna.samplers.RandomSampler(seed=seed)


def run_optuna(prob: Problem, method: str, seed: int) -> float:
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=_optuna_sampler(method, seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(lambda t: prob.f(prob.ask(t)), n_trials=prob.budget)
    return float(study.best_value)


def run_one(job: tuple[int, str, int, int, int, bool]) -> tuple[str, str, int, float, float]:
    pi, method, seed, sb, kb, round_robin = job
    prob = problems(sb, kb)[pi]
    t0 = time.perf_counter()
    if method.startswith("shadho-"):
        run = run_shadho_round_robin if round_robin else run_shadho
        best = run(prob, method.split("-", 1)[1], seed)
    else:
        best = run_optuna(prob, method, seed)
    return prob.name, method, seed, best - prob.optimum, time.perf_counter() - t0


# ---------------------------------------------------------------- latency


def latency(n_trials: int, repeats: int) -> tuple[float, float]:
    """Median ms of one TPE proposal with ``n_trials`` finished 6-dim trials: shadho, Optuna."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rng = np.random.default_rng(0)
    X = rng.random((n_trials, 6))
    y = ((X - 0.3) ** 2).sum(1)
    (space,) = spaces.split({f"x{i}": spaces.uniform(0, 1) for i in range(6)})
    h = History(6)
    for i in range(n_trials):
        h.complete(i, X[i], y[i])
    tpe = make_sampler("tpe")
    ts = []
    for r in range(repeats):
        h.add_pending(-1, X[0]); h.drop_pending(-1)  # a new history version: no cached model
        t0 = time.perf_counter()
        tpe.suggest(space, h, rng)
        ts.append(time.perf_counter() - t0)
    shadho_ms = 1e3 * float(np.median(ts))

    dists = {f"x{i}": optuna.distributions.FloatDistribution(0, 1) for i in range(6)}
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.add_trials([optuna.trial.create_trial(params={f"x{i}": float(X[j, i]) for i in range(6)},
                                                distributions=dists, value=float(y[j]))
                      for j in range(n_trials)])
    ts = []
    for r in range(repeats):
        t0 = time.perf_counter()
        trial = study.ask(fixed_distributions=dists)
        ts.append(time.perf_counter() - t0)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # failed trials are not modelled
    return shadho_ms, 1e3 * float(np.median(ts))


# ---------------------------------------------------------------- report


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def _tie(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b)) or (abs(a) < 1e-9 and abs(b) < 1e-9)


def report(results: list[tuple[str, str, int, float, float]], probs: list[Problem],
           seeds: int, lat: list[tuple[int, float, float]]) -> str:
    by: dict[tuple[str, str], dict[int, float]] = {}
    secs: dict[str, float] = {}
    for name, method, seed, regret, dt in results:
        by.setdefault((name, method), {})[seed] = regret
        secs[method] = secs.get(method, 0.0) + dt
    lines = [f"shadho samplers vs Optuna {_optuna_version()} -- {seeds} seeds; "
             "median final regret [IQR] (sklearn problems: best CV error)", ""]
    table = []
    outcome = {"win": 0, "tie": 0, "loss": 0}
    wtl_rows = []
    bayes_rows = []
    for p in probs:
        cells = []
        med = {}
        for m in METHODS:
            v = np.array(list(by[(p.name, m)].values()))
            q1, q2, q3 = np.percentile(v, [25, 50, 75])
            med[m] = q2
            cells.append(f"{_fmt(q2)} [{_fmt(q1)},{_fmt(q3)}]")
        table.append((p, cells))
        if p.continuous and "shadho-bayes" in med and "shadho-random" in med:
            rb, rr = med["shadho-bayes"], med["shadho-random"]
            bayes_rows.append(f"{p.name} {'yes' if rb < rr else 'NO'}")
        if "shadho-tpe" not in med or "optuna-tpe" not in med:
            continue
        a, b = med["shadho-tpe"], med["optuna-tpe"]
        verdict = "tie" if _tie(a, b) else ("win" if a < b else "loss")
        outcome[verdict] += 1
        s, o = by[(p.name, "shadho-tpe")], by[(p.name, "optuna-tpe")]
        per = [("tie" if _tie(s[k], o[k]) else "win" if s[k] < o[k] else "loss") for k in s]
        wtl_rows.append(f"  {p.name:<13} median: {verdict:<5} per seed W/T/L: "
                        f"{per.count('win')}/{per.count('tie')}/{per.count('loss')}")
    # Each column as wide as its widest cell plus a 2-space gutter, so cells never touch.
    widths = [2 + max([len(m)] + [len(cells[j]) for _, cells in table]) for j, m in enumerate(METHODS)]
    lines.append(f"{'problem':<13}{'budget':>7}" + "".join(f"{m:>{w}}" for m, w in zip(METHODS, widths)))
    for p, cells in table:
        lines.append(f"{p.name:<13}{p.budget:>7}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    lines += ["", "shadho tpe vs Optuna TPE (defaults), lower median regret wins:"] + wtl_rows
    lines.append(f"  total (medians): {outcome['win']} win / {outcome['tie']} tie / "
                 f"{outcome['loss']} loss; no worse on {outcome['win'] + outcome['tie']} of {len(probs)}")
    lines.append("shadho bayes better than shadho random (continuous problems): " + ", ".join(bayes_rows))
    lines += ["", "TPE ask() latency, 6-dim continuous space (median ms):"]
    for n, s_ms, o_ms in lat:
        lines.append(f"  {n:>5} trials: shadho {s_ms:7.2f} ms   optuna {o_ms:8.2f} ms   "
                     f"ratio shadho/optuna {s_ms / o_ms:.3f}")
    lines += ["", "total wall seconds per method (all problems and seeds): "
              + ", ".join(f"{m} {secs[m]:.0f}" for m in METHODS)]
    return "\n".join(lines)


def _optuna_version() -> str:
    import optuna
    return optuna.__version__


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=None, help="seeds per problem (default 10; 3 with --quick)")
    ap.add_argument("--quick", action="store_true", help="3 seeds and small budgets (a <3 min check)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    ap.add_argument("--problems", default="", help="comma-separated subset of problem names")
    ap.add_argument("--methods", default="", help="comma-separated subset of methods")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed+N-1")
    ap.add_argument("--round-robin", action="store_true",
                    help="drive shadho's samplers directly, split spaces in turn (no scheduler)")
    args = ap.parse_args(argv)
    seeds = args.seeds or (3 if args.quick else 10)
    sb, kb = (40, 20) if args.quick else (80, 40)
    # One thread per worker process: the benchmark parallelises over runs instead.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    probs = problems(sb, kb)
    keep = set(filter(None, args.problems.split(",")))
    pidx = [i for i, p in enumerate(probs) if not keep or p.name in keep]
    global METHODS
    if args.methods:
        METHODS = [m for m in METHODS if m in args.methods.split(",")]
    jobs = [(i, m, s, sb, kb, args.round_robin) for i in pidx for m in METHODS
            for s in range(args.first_seed, args.first_seed + seeds)]
    jobs.sort(key=lambda j: (j[1] != "shadho-bayes", -j[0]))  # slow ones first
    t0 = time.perf_counter()
    if args.jobs > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(args.jobs) as pool:
            results = pool.map(run_one, jobs, chunksize=1)
    else:
        results = [run_one(j) for j in jobs]
    lat = [(n, *latency(n, 30 if args.quick else 100)) for n in (100, 1000)]
    print(report(results, [probs[i] for i in pidx], seeds, lat))
    print(f"\n(benchmark wall time {time.perf_counter() - t0:.0f} s, {args.jobs} processes; "
          f"budgets: synthetic {sb}, sklearn {kb}; seeds {args.first_seed}..{args.first_seed + seeds - 1}; "
          f"shadho driven {'round-robin over spaces' if args.round_robin else 'by Shadho.ask/tell'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
