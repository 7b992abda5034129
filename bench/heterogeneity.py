"""Does the hardware-aware scheduler pay off on heterogeneous workers? (GitHub issue 4)

Three parts, each comparing heuristics ON (the defaults: complexity + uncertainty,
learned per-(space, class) speeds, comparative-advantage assignment) with OFF
(``use_complexity=False, use_uncertainty=False``: every space on every class,
uniform choice), on the same worker pool and the same seeds:

1. ``sim150``: the paper's scale. The real master (driver, TPE sampler, scheduler,
   SQLite store) runs on :mod:`shadho.sim`'s virtual clock with 150 workers in 4
   classes of 1, 2, 4 and 8 cores. The search space is SVC on scikit-learn's
   digits with an exclusive kernel (linear, rbf, sigmoid, poly with degree). Losses
   and 1-core runtimes come from real fits measured once on this machine
   (``bench/results/heterogeneity.models.json``, regenerate with ``--measure``): a
   trial's loss and base runtime are those of the nearest measured configuration
   (working space scaled to [0, 1]). The classes are cpu1, cpu4, cpu16 (declared
   cores) and gpu (declared 4 cores + 1 GPU); how much each kernel gains on each
   class is an assumed profile (``SPEED`` below: liblinear gains nothing and loses
   on a GPU, rbf gains 30x on a GPU, poly 8x on 16 cores...). The scheduler is told
   only the declared resources and must learn the rest. Random-search sampler
   (TPE's cost per ask grows with the 20,000-trial histories).
2. ``sim10k``: 10,000 workers, 100 synthetic spaces (4 families with the same
   profiles, random-search sampler): the scheduler's decision time per task.
3. ``real``: local Work Queue workers on this machine running the real SVC fits,
   two classes: ``cpu`` (workers with 1 core) and ``accel`` (workers with 2 cores;
   this machine has 2 cores, the count only labels the class). Heterogeneity is
   emulated: the objective reads the ``CORES`` variable Work Queue sets for its
   task, measures its own fit time t, and sleeps ``t * (s_max / s - 1)`` where s is
   ``REAL_SPEED[kernel][class]`` and s_max the kernel's best class, so a trial on a
   class of speed s takes ``t * s_max / s`` (the fastest class of a kernel: no sleep).
   Wall-clock budget per run instead of a task count.

Metrics, per seed, on the virtual clock (sim) or wall clock (real):
* throughput: successful trials per hour finished by ``T = 0.9 * min(makespan_on,
  makespan_off)`` (both modes counted over the same window, no drain tail);
* time to target: first time a loss <= target was seen (target: the loss of the
  10th best measured configuration);
* best loss at T/2.
Ratios are ON/OFF for throughput and OFF/ON for time (so > 1 means ON is better);
the table shows medians over the seeds. Plot: best loss vs time, both modes.

Usage:
    python bench/heterogeneity.py            # everything (10 seeds)
    python bench/heterogeneity.py --quick    # fewer seeds and tasks
    python bench/heterogeneity.py --measure  # re-measure the SVC models first
    python bench/heterogeneity.py --parts sim150,sim10k
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
MODELS = os.path.join(RESULTS, "heterogeneity.models.json")
sys.path.insert(0, os.path.dirname(HERE))

from shadho import spaces  # noqa: E402
from shadho.sim import simulate  # noqa: E402

KERNELS = ("linear", "rbf", "sigmoid", "poly")
#: Compute classes as add_compute_class keywords (what the scheduler is told).
CLASSES = {"cpu1": {"resource": "cores", "value": 1},
           "cpu4": {"resource": "cores", "value": 4},
           "cpu16": {"resource": "cores", "value": 16},
           "gpu": {"resource": "gpu_name", "value": "A100", "cores": 4, "gpus": 1}}
#: The assumed speed-up of each kernel on each class over one core (never told to
#: the scheduler). liblinear does not parallelise and loses to transfers on a GPU;
#: kernel SVMs parallelise over kernel rows on many cores and vectorise on a GPU.
SPEED = {"linear": {"cpu1": 1.0, "cpu4": 1.0, "cpu16": 1.0, "gpu": 0.5},
         "rbf": {"cpu1": 1.0, "cpu4": 2.0, "cpu16": 3.0, "gpu": 30.0},
         "sigmoid": {"cpu1": 1.0, "cpu4": 1.5, "cpu16": 3.0, "gpu": 20.0},
         "poly": {"cpu1": 1.0, "cpu4": 4.0, "cpu16": 8.0, "gpu": 10.0}}
POOL150 = {"cpu1": 60, "cpu4": 40, "cpu16": 30, "gpu": 20}
REAL_SPEED = {"linear": {"cpu": 1.0, "accel": 0.5}, "rbf": {"cpu": 1.0, "accel": 8.0},
              "sigmoid": {"cpu": 1.0, "accel": 4.0}, "poly": {"cpu": 1.0, "accel": 4.0}}


def svc_spec() -> dict[str, Any]:
    C = spaces.log10_uniform(-3, 3)
    gamma = spaces.log10_uniform(-5, 0)
    return {"exclusive": True,
            "linear": {"kernel": "linear", "C": C},
            "rbf": {"kernel": "rbf", "C": C, "gamma": gamma},
            "sigmoid": {"kernel": "sigmoid", "C": C, "gamma": gamma, "coef0": spaces.uniform(-1, 1)},
            "poly": {"kernel": "poly", "C": C, "gamma": gamma, "coef0": spaces.uniform(-1, 1),
                     "degree": spaces.randint(2, 6)}}


def kernel_of(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (name, sub), = params.items()
    return name, sub


def speed(kernel: str, cls: str) -> float:
    return SPEED[kernel][cls]


def class_kwargs() -> list[dict[str, Any]]:
    return [{"name": k, **v} for k, v in CLASSES.items()]


# ------------------------------------------------------------------ real fits


def svc_trial(params: dict[str, Any]) -> tuple[float, float]:
    """Fit SVC on 2/3 of digits, score on the rest: (1 - accuracy, seconds)."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, te = idx[:1200], idx[1200:]
    _, p = kernel_of(params)
    kw = {k: v for k, v in p.items()}
    t0 = time.perf_counter()
    model = SVC(max_iter=200_000, **kw).fit(X[tr], y[tr])
    acc = model.score(X[te], y[te])
    return 1.0 - float(acc), time.perf_counter() - t0


def measure(n: int = 80, seed: int = 0) -> dict[str, Any]:
    """Time and score ``n`` random configurations per kernel; save the table."""
    out: dict[str, Any] = {"n_per_kernel": n, "seed": seed, "kernels": {}}
    rng = np.random.default_rng(seed)
    for sp in spaces.split(svc_spec()):
        rows = []
        for _ in range(n):
            x = sp.sample(rng)
            loss, secs = svc_trial(sp.params(x))
            rows.append({"x": [float(v) for v in x], "loss": loss, "seconds": secs})
        out["kernels"][sp.name] = {"low": [d.low for d in sp.domains], "high": [d.high for d in sp.domains],
                                   "rows": rows}
        print(f"measured {sp.name}: median {statistics.median(r['seconds'] for r in rows) * 1e3:.1f} ms, "
              f"best loss {min(r['loss'] for r in rows):.4f}", flush=True)
    os.makedirs(RESULTS, exist_ok=True)
    with open(MODELS, "w") as fh:
        json.dump(out, fh)
    return out


class Table:
    """Nearest measured configuration of each kernel (the sim's loss and runtime model)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.spaces = {s.name: s for s in spaces.split(svc_spec())}
        self.k: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, d in data["kernels"].items():
            lo, hi = np.array(d["low"]), np.array(d["high"])
            X = (np.array([r["x"] for r in d["rows"]]) - lo) / (hi - lo)
            self.k[name] = (lo, hi, X, np.array([r["loss"] for r in d["rows"]]),
                            np.array([r["seconds"] for r in d["rows"]]))
        self.losses = np.sort(np.concatenate([v[3] for v in self.k.values()]))

    def nearest(self, params: dict[str, Any]) -> tuple[str, int]:
        name, _ = kernel_of(params)
        lo, hi, X, _, _ = self.k[name]
        z = (self.spaces[name].encode(params) - lo) / (hi - lo)
        return name, int(np.argmin(((X - z) ** 2).sum(axis=1)))

    def loss(self, params: dict[str, Any]) -> float:
        name, i = self.nearest(params)
        return float(self.k[name][3][i])

    def base_runtime(self, params: dict[str, Any]) -> float:
        name, i = self.nearest(params)
        return float(self.k[name][4][i])


def load_models(remeasure: bool) -> Table:
    if remeasure or not os.path.exists(MODELS):
        return Table(measure())
    with open(MODELS) as fh:
        return Table(json.load(fh))


# ------------------------------------------------------------------ metrics


def compare(on: list, off: list, target: float) -> dict[str, Any]:
    """Per-seed metrics over a common window, and their medians."""
    rows = []
    for a, b in zip(on, off):
        T = 0.9 * min(a.makespan, b.makespan)
        rows.append({
            "thr_on": a.throughput(T), "thr_off": b.throughput(T),
            "ttt_on": a.time_to(target), "ttt_off": b.time_to(target),
            "best_on": a.best_at(T / 2), "best_off": b.best_at(T / 2),
            "ms_on": a.decision_ms_per_task, "ms_off": b.decision_ms_per_task,
        })
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    thr_ratio = statistics.median(r["thr_on"] / r["thr_off"] for r in rows)
    ttt = [r["ttt_off"] / r["ttt_on"] if math.isfinite(r["ttt_on"]) else 0.0 for r in rows
           if math.isfinite(r["ttt_off"]) or math.isfinite(r["ttt_on"])]
    med["thr_ratio"] = thr_ratio
    med["ttt_ratio"] = statistics.median(ttt) if ttt else float("nan")
    med["reached_on"] = sum(math.isfinite(r["ttt_on"]) for r in rows)
    med["reached_off"] = sum(math.isfinite(r["ttt_off"]) for r in rows)
    med["n"] = len(rows)
    return med


def fmt_row(name: str, m: dict[str, Any], unit: str = "s") -> str:
    return (f"{name:<8} {m['n']:>5} {m['thr_off']:>12.0f} {m['thr_on']:>12.0f} {m['thr_ratio']:>6.2f}x "
            f"{m['ttt_off']:>10.4f}{unit} {m['ttt_on']:>9.4f}{unit} {m['ttt_ratio']:>6.2f}x "
            f"{m['reached_off']:>3}/{m['reached_on']:<3} {m['best_off']:>8.4f} {m['best_on']:>8.4f} "
            f"{m['ms_off']:>7.3f} {m['ms_on']:>7.3f}")


HEADER = (f"{'part':<8} {'seeds':>5} {'trials/h off':>12} {'trials/h on':>12} {'ratio':>7} "
          f"{'TTT off':>11} {'TTT on':>10} {'ratio':>7} {'hit':>7} {'best off':>8} {'best on':>8} "
          f"{'ms/task':>7} {'ms/task':>7}\n"
          f"{'':<8} {'':>5} {'':>12} {'':>12} {'on/off':>7} {'':>11} {'':>10} {'off/on':>7} "
          f"{'off/on':>7} {'@T/2':>8} {'@T/2':>8} {'off':>7} {'on':>7}")


# ------------------------------------------------------------------ simulations


def run_sim150(table: Table, seeds: int, tasks: int, method: str) -> tuple[dict[str, Any], dict]:
    target = float(table.losses[min(9, len(table.losses) - 1)])
    classes = class_kwargs()

    def runtime(space_id: str, params: dict[str, Any], cls: str) -> float:
        name, _ = kernel_of(params)
        return table.base_runtime(params) / speed(name, cls)

    out: dict[str, list] = {"on": [], "off": []}
    for seed in range(seeds):
        for mode in ("on", "off"):
            flag = mode == "on"
            r = simulate(svc_spec(), table.loss, POOL150, runtime, max_tasks=tasks, method=method,
                         compute_classes=classes, use_complexity=flag, use_uncertainty=flag, seed=seed,
                         noise=0.2)
            out[mode].append(r)
        print(f"  sim150 seed {seed}: makespan on {out['on'][-1].makespan:.1f}s "
              f"off {out['off'][-1].makespan:.1f}s", flush=True)
    m = compare(out["on"], out["off"], target)
    m["target"] = target
    return m, out


def synth_spec(n_spaces: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"exclusive": True}
    for i in range(n_spaces):
        fam = KERNELS[i % 4]
        dims = {"C": spaces.log10_uniform(-3, 3)}
        if fam != "linear":
            dims["gamma"] = spaces.log10_uniform(-5, 0)
        if fam in ("sigmoid", "poly"):
            dims["coef0"] = spaces.uniform(-1, 1)
        if fam == "poly":
            dims["degree"] = spaces.randint(2, 6)
        spec[f"m{i:03d}"] = {"family": fam, **dims}
    return spec


def run_sim10k(table: Table, seeds: int, tasks: int, workers: int, n_spaces: int) -> dict[str, Any]:
    med = {k: float(np.median(v[4])) for k, v in table.k.items()}
    pool = {k: int(round(workers * POOL150[k] / 150)) for k in CLASSES}
    classes = class_kwargs()
    rng = np.random.default_rng(123)
    level = {f"m{i:03d}": float(rng.uniform(0.0, 0.2)) for i in range(n_spaces)}
    centre = {f"m{i:03d}": rng.uniform(0.2, 0.8, 4) for i in range(n_spaces)}

    def loss(params: dict[str, Any]) -> float:
        (name, p), = params.items()
        c = centre[name]
        z = [(math.log10(p["C"]) + 3) / 6, (math.log10(p.get("gamma", 1e-3)) + 5) / 5,
             (p.get("coef0", 0.0) + 1) / 2, (p.get("degree", 2) - 2) / 3]
        return level[name] + 0.3 * sum((a - b) ** 2 for a, b in zip(z, c))

    def runtime(space_id: str, params: dict[str, Any], cls: str) -> float:
        (name, p), = params.items()
        return med[p["family"]] / speed(p["family"], cls)

    target = 0.03
    out: dict[str, list] = {"on": [], "off": []}
    for seed in range(seeds):
        for mode in ("on", "off"):
            flag = mode == "on"
            r = simulate(synth_spec(n_spaces), loss, pool, runtime, max_tasks=tasks, method="random",
                         compute_classes=classes, use_complexity=flag, use_uncertainty=flag, seed=seed,
                         noise=0.2)
            out[mode].append(r)
            print(f"  sim10k seed {seed} {mode}: {r.decision_ms_per_task:.3f} ms/task scheduler, "
                  f"{r.wall_seconds:.0f} s wall for {len(r.trials)} trials", flush=True)
    m = compare(out["on"], out["off"], target)
    m["target"] = target
    return m


# ------------------------------------------------------------------ real run


def real_objective(params: dict[str, Any]) -> dict[str, Any]:
    """Runs on a Work Queue worker: real SVC fit, then the emulated slowdown."""
    import os
    import time

    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    speeds = {"linear": {"cpu": 1.0, "accel": 0.5}, "rbf": {"cpu": 1.0, "accel": 8.0},
              "sigmoid": {"cpu": 1.0, "accel": 4.0}, "poly": {"cpu": 1.0, "accel": 4.0}}
    (kernel, p), = params.items()
    cls = "accel" if float(os.environ.get("CORES", "1")) >= 2 else "cpu"
    X, y = load_digits(return_X_y=True)
    t0 = time.perf_counter()
    model = SVC(max_iter=200_000, **p).fit(X[:1200], y[:1200])
    loss = 1.0 - float(model.score(X[1200:], y[1200:]))
    t = time.perf_counter() - t0
    s = speeds[kernel][cls]
    time.sleep(t * (max(speeds[kernel].values()) / s - 1.0))
    return {"loss": loss, "fit_seconds": t, "class": cls}


def run_real(table: Table, seeds: int, seconds: float) -> tuple[dict[str, Any], dict]:
    import dataclasses
    import tempfile

    from shadho import Shadho
    from shadho.sim import SimResult

    target = float(table.losses[min(9, len(table.losses) - 1)])
    workers = [{"cores": 1, "features": {"speed": "cpu"}}] * 2 + [{"cores": 2, "features": {"speed": "accel"}}] * 2
    out: dict[str, list] = {"on": [], "off": []}
    for seed in range(seeds):
        for mode in ("on", "off"):
            flag = mode == "on"
            db = os.path.join(tempfile.mkdtemp(prefix="shadho-real-"), "r.db")
            opt = Shadho(f"real-{mode}-{seed}", real_objective, svc_spec(), method="random", backend=db,
                         timeout=seconds, seed=seed, use_complexity=flag, use_uncertainty=flag,
                         manager="workqueue", local_workers=workers, quiet=True)
            opt.add_compute_class("cpu", "speed", "cpu", cores=1)
            opt.add_compute_class("accel", "speed", "accel", cores=2)
            t0 = time.time()
            opt.run()
            trials = opt.trials
            opt.close()
            shifted = [dataclasses.replace(t, finish_time=t.finish_time - t0) if t.finish_time else t
                       for t in trials]
            span = max([t.finish_time for t in shifted if t.finish_time is not None] or [seconds])
            out[mode].append(SimResult(shifted, span, 0.0, seconds))
            print(f"  real seed {seed} {mode}: {sum(t.state.value == 'COMPLETE' for t in trials)} trials",
                  flush=True)
    m = compare(out["on"], out["off"], target)
    m["target"] = target
    return m, out


# ------------------------------------------------------------------ plot


def plot(results: dict[str, dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (name, runs) in zip(axes[0], results.items()):
        for mode, colour in (("off", "tab:grey"), ("on", "tab:red")):
            for i, r in enumerate(runs[mode]):
                t, y = r.best_curve()
                ax.step(t, y, where="post", color=colour, alpha=0.5, lw=1,
                        label=f"heuristics {mode}" if i == 0 else None)
        ax.set_xlabel("time (s, virtual)" if name.startswith("sim") else "time (s)")
        ax.set_ylabel("best loss (1 - accuracy)")
        ax.set_yscale("log")
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, fewer tasks, smaller 10k run")
    ap.add_argument("--measure", action="store_true", help="re-measure the SVC runtime/loss table")
    ap.add_argument("--parts", default="sim150,sim10k,real")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--real-seeds", type=int, default=None)
    ap.add_argument("--real-seconds", type=float, default=60.0, help="wall budget of one real run")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    seeds = args.seeds or (3 if args.quick else 10)
    table = load_models(args.measure)
    lines = ["heterogeneity benchmark: heuristics ON (defaults) vs OFF (hardware-oblivious), medians "
             f"over {seeds} seeds; throughput = successful trials/hour in the common window "
             "T = 0.9 * min(makespans); TTT = time to target loss; hit = seeds reaching the target",
             HEADER]
    curves: dict[str, dict] = {}
    os.makedirs(RESULTS, exist_ok=True)

    def save() -> None:  # after every part, so a crash later keeps what was measured
        with open(os.path.join(RESULTS, "heterogeneity.txt"), "w") as fh:
            fh.write("\n".join(lines) + "\n")
    if "sim150" in parts:
        m, runs = run_sim150(table, seeds, 6000 if args.quick else 20_000, "random")
        curves["sim150 (150 workers, SVC/digits)"] = runs
        lines.append(fmt_row("sim150", m) + f"   target {m['target']:.4f}")
        save()
    if "sim10k" in parts:
        m = run_sim10k(table, 1, 25_000 if args.quick else 40_000,
                       10_000, 100)
        lines.append(fmt_row("sim10k", m) + f"   target {m['target']:.4f}")
        save()
    if "real" in parts:
        m, runs = run_real(table, args.real_seeds or (2 if args.quick else 3), args.real_seconds)
        curves["real (local Work Queue)"] = runs
        lines.append(fmt_row("real", m) + f"   target {m['target']:.4f}")
    print("\n".join(lines))
    save()
    if curves:
        plot(curves, os.path.join(RESULTS, "heterogeneity.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
