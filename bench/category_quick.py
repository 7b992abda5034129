"""Quick loop over the mixed spaces: shadho's TPE driven directly (no driver, no store).

Run:  .venv/bin/python bench/category_quick.py [--seeds 0-19] [--budget 100]
      [--opts '{"category_explore": 0.0}'] [--spaces 0,1,2,3] [--trace SEED]

The sampler sees one search space, a History and the same per-space generator the
driver would give it (``SeedSequence([seed, 0])``) and the budget as its context, so
figures match ``bench/samplers.py --suites mixed`` up to the driver's bookkeeping, in
seconds instead of minutes. Prints, per space, the share of seeds whose best trial is in
the optimum's category and the median regret. Space 3 (``mixed-validation``) is for
validation only: nothing was tuned on it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import mixed_spaces
from shadho import spaces
from shadho.history import History
from shadho.samplers.startup import SearchContext
from shadho.samplers.tpe import TPESampler


def run(m: mixed_spaces.Mixed, seed: int, budget: int, opts: dict, trace: bool = False) -> tuple[float, bool]:
    prob = m.problem(budget)
    (space,) = spaces.split(prob.spec)
    h = History(space.dim)
    tpe = TPESampler(**opts)
    tpe.bind(SearchContext((space,), {space.id: h}, budget))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    best, best_p = np.inf, {}
    j = space.labels.index(m.cat)
    for i in range(budget):
        x = tpe.suggest(space, h, rng)
        p = space.params(x)
        loss = m.loss(p)
        h.complete(i, x, loss)
        if loss < best:
            best, best_p = loss, p
        if trace:
            print(f"{i:3d} {p[m.cat]:>8} loss {loss:.3f} best {best:.3f}")
    if trace:
        col = h.X[:, j].astype(int)
        print("trials per category:", np.bincount(col, minlength=len(m.values)).tolist())
    return best, best_p[m.cat] == m.best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--opts", default="{}")
    ap.add_argument("--spaces", default="0,1,2")
    ap.add_argument("--trace", type=int, default=None)
    a = ap.parse_args()
    lo, _, hi = a.seeds.partition("-")
    seeds = range(int(lo), int(hi or lo) + 1)
    opts = json.loads(a.opts)
    probs = [mixed_spaces.ALL_MIXED[int(i)] for i in a.spaces.split(",")]
    if a.trace is not None:
        run(probs[0], a.trace, a.budget, opts, trace=True)
        return 0
    t0 = time.perf_counter()
    hits_all, n_all = 0, 0
    for m in probs:
        res = [run(m, s, a.budget, opts) for s in seeds]
        hits = sum(r[1] for r in res)
        hits_all += hits
        n_all += len(res)
        print(f"{m.name:20s} on-category {hits:2d}/{len(res)}  median regret {np.median([r[0] for r in res]):.4f}")
    print(f"all: {hits_all}/{n_all} = {100 * hits_all / n_all:.0f}%   ({time.perf_counter() - t0:.0f} s) opts={opts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
