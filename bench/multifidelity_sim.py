"""Simulated multi-fidelity benchmark: hardware-aware ASHA vs the same ASHA with the heuristics off.

Run:  nice -n 10 .venv/bin/python bench/multifidelity_sim.py [--hours 1] [--seeds 3]
      [--profile default|mild|alike] [--jobs 3] [--out bench/results/multifidelity-sim.txt]

The real master (driver, ASHA, TPE, store) runs on :class:`shadho.sim.SimulatedManager`
with 150 workers in two classes whose start-up overhead and per-epoch speed differ
(ASSUMED, not measured here: no GPU node was at hand; see PROFILE for the reasoning and
PROFILES for a milder pool and one without comparative advantage). A rung run costs its
class's overhead plus
the epochs it trains (its budget less the checkpoint's) times the class's seconds per
epoch, times the search space's factor, with log-normal noise (sigma 0.1).

Losses come from a synthetic learning-curve model (:func:`curve`): each configuration
has an asymptote and a rate, ``loss(e) = floor + (1 - floor) * (1 + e)**-rate``, so
early rungs rank configurations imperfectly (a slow starter can end best).

Both methods run ASHA (epochs 1..81, eta 3) with TPE on two spaces for ``--hours``
virtual hours, same seeds; ``on`` is the default (heuristics on: hardware-aware rungs),
``off`` is ``use_complexity=False, use_uncertainty=False``. Printed per seed, as ratios
on/off measured in the same run: max-budget (81-epoch) completions per hour, and the
best 81-epoch loss (off / on: >= 1 means on is as good or better).
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from shadho import spaces  # noqa: E402
from shadho.rung_task import OverheadRuntime  # noqa: E402
from shadho.sim import simulate  # noqa: E402
from shadho.trial import TrialState  # noqa: E402

#: class -> (workers, start-up overhead s, seconds per epoch). ASSUMED: a small CPU node
#: starts a Python process and loads its data in seconds and trains slowly; a GPU node pays
#: CUDA context creation, framework import, model build and staging the data onto the
#: device (tens of seconds to a minute on shared clusters) and then trains ~10x faster.
PROFILE = {"cpu": (100, 5.0, 10.0), "gpu": (50, 60.0, 1.0)}
#: Other assumed pools (``--profile``): a milder contrast (the GPU's start-up 20 s, 3x
#: faster per epoch), and two classes alike up to speed (no comparative advantage: the
#: router should keep ASHA's order and gain nothing).
PROFILES = {"default": PROFILE, "mild": {"cpu": (100, 5.0, 6.0), "gpu": (50, 20.0, 2.0)},
            "alike": {"cpu": (100, 10.0, 4.0), "gpu": (50, 5.0, 2.0)}}
SPACE_FACTOR = {"mlp": 1.0, "wide": 2.0}  # seconds per epoch relative to the class's
FIDELITY = {"name": "epochs", "min": 1, "max": 81, "eta": 3}
TOP = 81


def spec() -> dict[str, Any]:
    return {"exclusive": True,
            "mlp": {"lr": spaces.log10_uniform(-4, -1), "depth": spaces.uniform(0, 1),
                    "alpha": spaces.log10_uniform(-6, -1), "dropout": spaces.uniform(0, 0.6)},
            "wide": {"lr": spaces.log10_uniform(-4, -1), "width": spaces.uniform(0, 1),
                     "alpha": spaces.log10_uniform(-6, -1), "dropout": spaces.uniform(0, 0.6)}}


def curve(params: dict[str, Any], epochs: float) -> float:
    """Validation loss after ``epochs``, ``floor + (1 - floor) * (1 + epochs)**-rate``: the
    asymptote is lowest near lr 10^-2.5, depth/width 0.7, alpha 10^-4 and dropout 0.3 (with
    an lr-dropout interaction); larger learning rates learn faster early but settle higher,
    so the first rungs rank configurations imperfectly."""
    params = _flat(params)
    lg = math.log10(params["lr"])
    shape = params.get("depth", params.get("width", 0.5))
    la, drop = math.log10(params["alpha"]), params["dropout"]
    floor = (0.05 + 0.25 * ((lg + 2.5) / 1.5) ** 2 + 0.15 * (shape - 0.7) ** 2 + 0.04 * ((la + 4) / 2) ** 2
             + 0.3 * (drop - 0.3 - 0.1 * (lg + 2.5)) ** 2 + (0.02 if "width" in params else 0.0))
    rate = 0.3 + 0.5 * (lg + 4) / 3 - 0.3 * drop
    return floor + (1.0 - floor) * (1.0 + epochs) ** -rate


def _flat(params: dict[str, Any]) -> dict[str, Any]:
    """The chosen space's parameters (an exclusive spec nests them under its name)."""
    while len(params) == 1 and isinstance(next(iter(params.values())), dict):
        params = next(iter(params.values()))
    return params


def objective(params: dict[str, Any], epochs: float) -> float:
    return curve(params, epochs)


def runtime(profile: dict[str, tuple[int, float, float]]) -> OverheadRuntime:
    return OverheadRuntime({k: (oh, per) for k, (_, oh, per) in profile.items()},
                           scale=lambda sid, p: SPACE_FACTOR["wide" if "width" in _flat(p) else "mlp"])


def run(seed: int, hours: float, heuristics: bool, workdir: str,
        profile: dict[str, tuple[int, float, float]] = PROFILE) -> dict[str, Any]:
    """One simulated search; the figures of its first ``hours`` virtual hours."""
    from shadho.store import ResultsStore

    seconds = 3600.0 * hours
    workers = {k: n for k, (n, _, _) in profile.items()}
    # Enough rung runs to outlast the window (every worker running 1-epoch runs back to back).
    max_tasks = int(seconds * sum(n / (oh + per) for n, oh, per in profile.values()))
    key = "on" if heuristics else "off"
    db = os.path.join(workdir, f"{key}-{seed}.db")
    t0 = time.perf_counter()
    res = simulate(spec(), objective, workers, runtime(profile), max_tasks=max_tasks, method="tpe", seed=seed,
                   use_complexity=heuristics, use_uncertainty=heuristics, fidelity=FIDELITY,
                   exp_key=key, backend=db)
    wall = time.perf_counter() - t0
    with ResultsStore(db) as store:
        budget = {r.trial_id: r.budget for r in store.rungs(store.experiment_id(key))}
    w = res.window(seconds)
    done = [t for t in w.trials if t.state == TrialState.COMPLETE]
    top = [t for t in done if budget.get(t.id) == TOP]
    rungs_by_class = {k: _mean_budget([budget[t.id] for t in done if t.compute_class == k]) for k in profile}
    early = [t for t in top if t.finish_time is not None and t.finish_time <= seconds / 4]
    late = [t for t in top if t.finish_time is not None and t.finish_time > seconds / 2]
    return {"top_per_h": len(top) / hours, "best": min((float(t.loss) for t in top), default=math.inf),
            "early_top_per_h": len(early) / (hours / 4), "late_top_per_h": len(late) / (hours / 2),
            "runs": len(done), "wall": wall, "epochs": sum(budget[t.id] for t in done),
            "top_by_class": {k: sum(t.compute_class == k for t in top) for k in profile},
            "mean_budget": rungs_by_class}


def _seed_pair(job: tuple[int, float, str, str]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """One seed's searches with the heuristics on and off."""
    seed, hours, workdir, profile = job
    return seed, run(seed, hours, True, workdir, PROFILES[profile]), run(seed, hours, False, workdir, PROFILES[profile])


def _mean_budget(b: list[float]) -> float:
    return float(np.mean(b)) if b else 0.0


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        return "?"


def _gmean(xs: list[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return float(np.exp(np.mean(np.log(xs)))) if xs else 0.0


def main(argv: list[str] | None = None) -> int:
    import shutil
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "multifidelity-sim.txt"))
    ap.add_argument("--profile", choices=sorted(PROFILES), default="default")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    args = ap.parse_args(argv)
    profile = PROFILES[args.profile]
    prof = ", ".join(f"{k}: {n} workers, overhead {oh:g} s, {per:g} s/epoch" for k, (n, oh, per) in profile.items())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"command: nice -n 10 .venv/bin/python bench/{os.path.basename(__file__)} {' '.join(argv or sys.argv[1:])}",
             f"conditions: simulated (virtual clock; figures do not depend on this machine's load); "
             f"load average at start {load} on 2 shared cores",
             f"multifidelity-sim: ASHA epochs 1..81 eta 3, TPE, 2 spaces (per-epoch factors {SPACE_FACTOR}), "
             f"{args.hours:g} virtual h, seeds 0..{args.seeds - 1}, commit {_commit()}",
             f"profile {args.profile!r} (ASSUMED, not measured): {prof}; runtime = overhead + epochs trained x s/epoch x "
             "space factor, log-normal noise 0.1",
             "on = heuristics on (hardware-aware rungs), off = use_complexity=use_uncertainty=False; "
             "top = 81-epoch completions",
             f"{'seed':>4} {'top/h on':>9} {'top/h off':>9} {'ratio':>6} {'best on':>8} {'best off':>8} "
             f"{'off/on':>7} {'runs on':>8} {'runs off':>8} {'ratio@h/4':>8} {'2nd half':>8}  on: top by class, mean budget by class"]
    ratios, best_ratios, early_ratios, late_ratios = [], [], [], []
    workdir = tempfile.mkdtemp(prefix="shadho-mf-sim-")
    jobs = [(seed, args.hours, workdir, args.profile) for seed in range(args.seeds)]
    try:
        if args.jobs > 1:  # seeds in parallel processes (each runs its on and off searches)
            import multiprocessing as mp

            with mp.get_context("fork").Pool(args.jobs) as pool:
                pairs = pool.map(_seed_pair, jobs, chunksize=1)
        else:
            pairs = [_seed_pair(j) for j in jobs]
        for seed, on, off in pairs:
            r = on["top_per_h"] / off["top_per_h"] if off["top_per_h"] > 0 else math.inf
            early = on["early_top_per_h"] / off["early_top_per_h"] if off["early_top_per_h"] > 0 else math.inf
            early_ratios.append(early)
            late = on["late_top_per_h"] / off["late_top_per_h"] if off["late_top_per_h"] > 0 else math.inf
            late_ratios.append(late)
            br = off["best"] / on["best"] if on["best"] > 0 else math.inf
            ratios.append(r)
            best_ratios.append(br)
            lines.append(f"{seed:>4} {on['top_per_h']:>9.1f} {off['top_per_h']:>9.1f} {r:>6.2f} {on['best']:>8.4f} "
                         f"{off['best']:>8.4f} {br:>7.3f} {on['runs']:>8} {off['runs']:>8} {early:>8.2f} {late:>8.2f}  "
                         f"{on['top_by_class']} {({k: round(v, 1) for k, v in on['mean_budget'].items()})} "
                         f"(off: {off['top_by_class']} {({k: round(v, 1) for k, v in off['mean_budget'].items()})}); "
                         f"wall {on['wall']:.0f}+{off['wall']:.0f} s")
            print(lines[-1], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines.append(f"max-budget completions per hour, on/off: geometric mean {_gmean(ratios):.2f}x, "
                 f"min {min(ratios):.2f}x (target >= 1.3x); best 81-epoch loss off/on: geometric mean "
                 f"{_gmean(best_ratios):.3f}, min {min(best_ratios):.3f} (>= 1: on as good or better); "
                 f"in the first quarter of the window, completions on/off: geometric mean {_gmean(early_ratios):.2f}x; in its second half (the rate once "
                 f"ASHA's early promotions are through), on/off: geometric mean {_gmean(late_ratios):.2f}x")
    print(lines[-1])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
