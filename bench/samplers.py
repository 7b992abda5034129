"""Benchmark shadho's samplers against Optuna's and Hyperopt's at equal budgets and seeds.

Run:  .venv/bin/python bench/samplers.py [--suites bbob,mixed,sklearn,latency] [--seeds N]
      [--slow-seeds N] [--dims 2,5] [--functions 1-24] [--samplers a,b] [--budget N]
      [--sklearn-budgets 40,150] [--jobs 1|2] [--out bench/results/samplers-bbob.txt]

Suites:

* ``bbob``: the 24 noiseless BBOB functions of COCO (``cocoex``), regret ``f - f_opt``
  (:mod:`bbob`);
* ``mixed``: three mixed spaces of our own whose optimum sits in a narrow-basin category;
  besides regret, the share of seeds whose best trial lies in that category
  (:mod:`mixed_spaces`);
* ``sklearn``: SVC on digits with an exclusive choice of 4 kernels (4 shadho search
  spaces), loss = 3-fold CV error, at each of ``--sklearn-budgets``;
* ``latency``: one TPE ``ask()``+``tell()`` with 100 and 1,000 finished trials, shadho vs
  Optuna (the ratio is the figure; absolute times depend on the machine).

Samplers: shadho ``random``/``tpe``/``gp`` (and ``shadho-tpe-prev``, the TPE as it was
before issue 18), Optuna's TPE (defaults: multivariate, constant liar; and
``multivariate=False``), Optuna's ``GPSampler``, Optuna's random search and Hyperopt's
TPE. The slow GP samplers run ``--slow-seeds`` seeds (the output says so).

Seeds are enough when a sampler against itself with other seeds comes out even: the
``shadho-tpe@alt`` column is shadho's TPE with seeds 1000+ (``--self-check``), compared
with the same test as every other pair.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

import bbob
import mixed_spaces
import sampler_report as rep
import sampler_runners as runners

SLOW = {"shadho-gp", "optuna-gp"}
SELF = "shadho-tpe@alt"
DEFAULT = ["shadho-random", "shadho-tpe", "shadho-tpe-prev", "shadho-gp", "optuna-tpe",
           "optuna-tpe-indep", "optuna-gp", "hyperopt-tpe"]


def _parse_ints(text: str) -> list[int]:
    out: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def build(key: tuple[Any, ...]) -> runners.Problem:
    """A problem from its picklable key (COCO problems are built inside each process)."""
    if key[0] == "bbob":
        return bbob.problem(key[1], key[2], key[3])
    if key[0] == "mixed":
        return mixed_spaces.MIXED[key[1]].problem(key[2])
    return mixed_spaces.svc(key[1])


def run_one(job: tuple[tuple[Any, ...], str, int]) -> rep.Row:
    key, sampler, seed = job
    prob = build(key)
    t0 = time.perf_counter()
    real, real_seed = (("shadho-tpe", seed + 1000) if sampler == SELF else (sampler, seed))
    best, params = runners.run(prob, real, real_seed)
    on_cat = None
    if prob.category is not None and prob.best_category is not None:
        on_cat = bool(params) and prob.category(params) == prob.best_category
    return prob.name, sampler, seed, best - prob.optimum, on_cat, time.perf_counter() - t0


# ---------------------------------------------------------------- latency


def latency(n_trials: int, repeats: int) -> tuple[float, float]:
    """Median ms of one TPE ask()+tell() with ``n_trials`` finished 6-dim trials: shadho, Optuna."""
    import optuna

    from shadho import spaces
    from shadho.samplers import History, make_sampler
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
        t0 = time.perf_counter()
        x = tpe.suggest(space, h, rng)
        h.add_pending(-1 - r, x)
        h.drop_pending(-1 - r)  # "tell" a failure: a new history version, nothing modelled
        ts.append(time.perf_counter() - t0)
    shadho_ms = 1e3 * float(np.median(ts))
    dists = {f"x{i}": optuna.distributions.FloatDistribution(0, 1) for i in range(6)}
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.add_trials([optuna.trial.create_trial(params={f"x{i}": float(X[j, i]) for i in range(6)},
                                                distributions=dists, value=float(y[j]))
                      for j in range(n_trials)])
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        trial = study.ask(fixed_distributions=dists)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # failed trials are not modelled
        ts.append(time.perf_counter() - t0)
    return shadho_ms, 1e3 * float(np.median(ts))


# ---------------------------------------------------------------- main


def _jobs(args: argparse.Namespace, samplers: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    suites = set(args.suites.split(","))
    groups: dict[str, list[tuple[Any, ...]]] = {}
    if "bbob" in suites:
        for d in _parse_ints(args.dims):
            groups[f"BBOB d={d}, budget {args.budget}"] = [
                ("bbob", fn, d, args.budget) for fn in _parse_ints(args.functions)]
    if "mixed" in suites:
        groups[f"mixed spaces, budget {args.budget}"] = [
            ("mixed", i, args.budget) for i in range(len(mixed_spaces.MIXED))]
    if "sklearn" in suites:
        groups["scikit-learn SVC, exclusive kernel"] = [
            ("sklearn", b) for b in _parse_ints(args.sklearn_budgets)]
    return groups


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suites", default="bbob,mixed,sklearn,latency")
    ap.add_argument("--seeds", type=int, default=10, help="seeds per problem and sampler")
    ap.add_argument("--slow-seeds", type=int, default=None, help="seeds for the GP samplers")
    ap.add_argument("--dims", default="2,5", help="BBOB dimensions")
    ap.add_argument("--functions", default="1-24", help="BBOB functions, e.g. 1-24 or 2,10,12")
    ap.add_argument("--budget", type=int, default=100, help="trials per run (BBOB, mixed)")
    ap.add_argument("--sklearn-budgets", default="40,150")
    ap.add_argument("--samplers", default=",".join(DEFAULT),
                    help=f"valid: {', '.join(runners.ALL + [SELF])}")
    ap.add_argument("--self-check", action="store_true", help=f"add {SELF} (shadho-tpe, seeds 1000+)")
    ap.add_argument("--jobs", type=int, default=1, choices=(1, 2), help="processes (the machine is shared)")
    ap.add_argument("--out", default="", help="also write the tables to this file")
    args = ap.parse_args(argv)
    samplers = [s for s in args.samplers.split(",") if s]
    for s in samplers:
        if s not in runners.ALL + [SELF]:
            ap.error(f"unknown sampler {s!r}; valid: {', '.join(runners.ALL + [SELF])}")
    if args.self_check and SELF not in samplers:
        samplers.append(SELF)
    slow_seeds = args.seeds if args.slow_seeds is None else args.slow_seeds
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    groups = _jobs(args, samplers)
    jobs = [(key, s, seed) for keys in groups.values() for key in keys for s in samplers
            for seed in range(slow_seeds if s in SLOW else args.seeds)]
    jobs.sort(key=lambda j: j[1] not in SLOW)  # slow ones first, so the pool ends together
    t0 = time.perf_counter()
    if args.jobs > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(args.jobs) as pool:
            rows = pool.map(run_one, jobs, chunksize=1)
    else:
        rows = [run_one(j) for j in jobs]
    lines = [f"shadho samplers vs Optuna {_version('optuna')} / Hyperopt {_version('hyperopt')}: "
             f"{args.seeds} seeds ({slow_seeds} for {', '.join(sorted(SLOW & set(samplers))) or '-'}); "
             "median final regret (sklearn: CV error)"]
    for title, keys in groups.items():
        names = [build(k).name for k in keys]
        lines += ["", f"== {title}", *rep.regret_table(rows, names, samplers), "",
                  "  summary (reference shadho-tpe; ratio: geometric mean of median-regret ratios):",
                  *rep.group_summary(rows, names, samplers, "shadho-tpe", "optuna-tpe")]
        if keys[0][0] in ("mixed", "sklearn"):
            lines += ["", "  seeds whose best trial is in the optimum's category" if keys[0][0] == "mixed"
                      else "", *(rep.category_table(rows, names, samplers) if keys[0][0] == "mixed" else [])]
    if "latency" in args.suites:
        lines += ["", "TPE ask()+tell() latency, 6-dim continuous space (median ms):"]
        for n in (100, 1000):
            s_ms, o_ms = latency(n, 50)
            lines.append(f"  {n:>5} trials: shadho {s_ms:7.2f} ms   optuna {o_ms:8.2f} ms   "
                         f"optuna/shadho {o_ms / s_ms:.1f}x")
    secs = rep.seconds(rows)
    lines += ["", "wall seconds per sampler (all runs): "
              + ", ".join(f"{s} {secs[s]:.0f}" for s in samplers if s in secs),
              f"(benchmark wall time {time.perf_counter() - t0:.0f} s, {args.jobs} processes)",
              "command: .venv/bin/python bench/samplers.py " + " ".join(sys.argv[1:] if argv is None else argv)]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


def _version(mod: str) -> str:
    import importlib
    return getattr(importlib.import_module(mod), "__version__", "?")


if __name__ == "__main__":
    sys.exit(main())
