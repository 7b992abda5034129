"""Does the hardware-aware scheduler pay off on heterogeneous workers? (GitHub issue 4)

Three parts, each comparing heuristics ON (the scheduler's defaults: complexity x
uncertainty x performance score, learned per-(space, class) speeds, comparative-
advantage assignment) with OFF (``use_complexity=False, use_uncertainty=False``: the
hardware-oblivious baseline, every space on every class, uniform choice), on the same
worker pool, the same seeds, the same sampler and the same budget:

1. ``sim150``: the paper's scale. The real master (driver, TPE sampler, scheduler,
   SQLite store) runs on :mod:`shadho.sim`'s virtual clock with 150 workers in 4
   classes (``POOL150``). The search space is SVC on scikit-learn's digits with an
   exclusive kernel (linear, rbf, sigmoid, poly with degree). Losses and 1-core
   runtimes come from real fits measured once on this machine, 80 random
   configurations per kernel (``bench/results/heterogeneity.models.json``, regenerate
   with ``--measure``). Assumptions: a trial's loss is the inverse-distance-weighted
   mean (power 2) of the ``IDW_K`` = 4 nearest measured losses in the working space
   scaled to [0, 1] (a continuous surface through the measurements, so reaching the
   best measured losses needs sampling near them); its 1-core runtime is the nearest
   measured one, times log-normal noise (sigma 0.2). The classes are cpu1, cpu4, cpu16
   (declared cores) and gpu (declared 4 cores + 1 GPU); how much each kernel gains on
   each class is an assumed profile (``SPEED`` below: liblinear gains nothing and
   loses on a GPU, rbf gains 30x on a GPU, poly 8x on 16 cores...). The scheduler is
   told only the declared resources and learns the rest. TPE sampler with a budget of
   ``--tasks`` trials (default 4000, ~27 waves of 150; TPE's ask cost grows with the
   history, which caps the budget).
2. ``sim10k``: 10,000 workers, 100 synthetic spaces (4 families with the same speed
   profiles; loss = a per-space level in [0, 0.2] plus a quadratic bowl), random
   sampler, ``--tasks10k`` trials: the scheduler's decision time per task.
3. ``real``: local Work Queue workers on this machine (2 cores), one pool per
   ``--real-profiles`` entry:

   * ``paper`` (default): the sim150 classes in miniature, ``REAL_POOL`` = 2 cpu1,
     2 cpu4, 1 cpu16 and 1 gpu worker, each started with its class's declared cores
     (and ``--gpus 1`` for gpu; there is no GPU here, the count only labels the
     worker) and a ``cls`` feature; the same ``SPEED`` profile as sim150; emulated
     runtime ``REAL_SCALE * t1 / s``.
   * ``two``: two classes, ``cpu`` (2 workers with 1 core) and ``accel`` (2 workers
     with 2 cores), ``TWO_SPEED``, emulated runtime ``TWO_SCALE * t1 * s_max / s``
     (every kernel takes ``TWO_SCALE * t1`` on its best class). A harder case: the
     accelerator is the better class for three kernels out of four, so there is
     little work the hardware-oblivious search misplaces.

   * ``flat``, ``one``, ``failing``: pools where the heuristics have nothing to gain
     (every class equally fast on every kernel; one class; the flat pool where ``cpu``
     fails every rbf trial), and ``measured``: 1- and 2-core workers with the speeds
     ``bench/measure_speeds.py`` measured here (see bench/heterogeneity_profiles.py).
     Each row says whether its speeds are assumed or measured.

   No live fit (6 workers sharing 2 cores made fit times noise): the objective takes
   the loss from the same IDW surface as the sim and the emulated runtime from the
   measured table (``t1`` the nearest measured configuration's 1-core runtime, ``s``
   the kernel's speed on the worker's class, found from the ``CORES`` and ``GPUS``
   Work Queue sets, ``s_max`` the kernel's best class), and sleeps until that time
   has passed. ``hyperparameters_per_task=REAL_HPT`` trials per task amortise the
   per-task Python start-up. TPE sampler, a wall-clock budget of ``--real-seconds``
   (default 90) per run, ``--real-seeds`` (default 10) seeds.
4. ``simreal``: each real pool, seeds and wall budget on the simulator, with Work
   Queue's per-class queues and priorities and ``REAL_OVERHEAD`` seconds per task
   (:class:`shadho.sim.SimulatedManager`'s queue model): how far the simulation's
   figures are from the real ones.

Common random numbers (sims): each seed's ON and OFF runs draw every proposal from
(seed, space, its index in the space) (:meth:`shadho.study.Study.proposal_rng`, as for
every search) and each trial's runtime noise from (seed, space, configuration)
(``simulate(common_noise=True)``), so the two modes start from the same configurations
in every space and a configuration costs the same noise wherever it runs: they differ
in where and when trials run. The sampler still reacts to the results it has when it
is asked, so once the modes' histories differ (after the first few trials per space)
so do their proposals. ``peer`` rows run OFF against OFF with the same seed and other
picks (``pick_seed``): what routing luck alone does to the per-seed ratios.

Metrics, per seed, on the virtual clock (sim) or wall clock (real):
* throughput: successful trials per hour finished by ``T``, the earlier of the two
  runs' last trial start (until then both runs kept every worker busy; after it a
  run only drains, and a run whose budget ends sooner would be penalised for the
  stragglers that set its makespan);
* same time budget: the sims run by trial count; each seed's two runs are then cut
  at ``T`` (only trials finished by then count), so both modes get the same
  (virtual) time, as the real runs get the same wall budget;
* time to target: first time a loss <= target was seen. The target is derived from
  the OFF runs only: the median over seeds of the best loss OFF reached by half of
  its own run (half of ``T``, or half the wall budget), so OFF reaches it at
  about half its run by construction and the ratio says how much sooner ON does;
  a seed where ON never reaches it counts as ratio 0;
* best loss at T/2.
Ratios are ON/OFF for throughput and OFF/ON for time (so > 1 means ON is better);
the table shows medians over the seeds. Plot: best loss vs time, both modes.

Usage:
    python bench/heterogeneity.py            # everything (10 seeds)
    python bench/heterogeneity.py --quick    # fewer seeds and tasks
    python bench/heterogeneity.py --measure  # re-measure the SVC models first
    python bench/heterogeneity.py --parts sim150,sim10k
    python bench/heterogeneity.py --parts real --real-profiles paper,two
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

from heterogeneity_profiles import (CLASSES, KERNELS, POOL150, PROFILES, REAL_POOL,  # noqa: E402,F401
                                    REAL_SCALE, SPEED, TWO_SCALE, TWO_SPEED, real_profile)

#: Neighbours of the simulated loss surface (see :meth:`Table.loss`).
IDW_K = 4
#: Real runs. Each Work Queue task runs REAL_HPT trials of one space (amortising
#: Python start-up); pools and speed profiles: bench/heterogeneity_profiles.py.
REAL_HPT = 2
#: Seconds a real task spends outside its trials (worker start-up, transfers), as the
#: simulated real runs model it, and their trial cap (above what the wall budget allows).
REAL_OVERHEAD = 0.25
SIMREAL_TASKS = 2500
#: Scheduler attributes the sims set before each run (``--surplus-share``); empty: the defaults.
SCHEDULER_SETTINGS: dict[str, Any] = {}
#: Sampler keywords of every simulated run, both modes (``--sampler-options``); empty: the defaults.
SAMPLER_OPTIONS: dict[str, Any] = {}


def tune_scheduler(scheduler: Any) -> None:
    """Apply :data:`SCHEDULER_SETTINGS` (a heuristics-on run's scheduler only)."""
    if not scheduler.baseline:
        for k, v in SCHEDULER_SETTINGS.items():
            setattr(scheduler, k, v)


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
        self.data = data
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
        """Inverse-distance-weighted mean (power 2) of the ``IDW_K`` nearest measured losses:
        a continuous surface equal to the measured loss at each measured configuration, so
        a loss close to the best measured one needs a configuration close to it."""
        name, _ = kernel_of(params)
        lo, hi, X, y, _ = self.k[name]
        z = (self.spaces[name].encode(params) - lo) / (hi - lo)
        d2 = ((X - z) ** 2).sum(axis=1)
        idx = np.argpartition(d2, IDW_K)[:IDW_K]
        if d2[idx].min() <= 1e-18:
            return float(y[idx[np.argmin(d2[idx])]])
        w = 1.0 / d2[idx]
        return float((w * y[idx]).sum() / w.sum())

    def base_runtime(self, params: dict[str, Any]) -> float:
        name, i = self.nearest(params)
        return float(self.k[name][4][i])


def load_models(remeasure: bool) -> Table:
    if remeasure or not os.path.exists(MODELS):
        return Table(measure())
    with open(MODELS) as fh:
        return Table(json.load(fh))


# ------------------------------------------------------------------ metrics


def busy_window(a: Any, b: Any) -> float:
    """The earlier of the two runs' last trial start (both kept every worker busy until then)."""
    def last_start(r: Any) -> float:
        return max((t.start_time for t in r.trials if t.start_time is not None), default=r.makespan)
    return min(last_start(a), last_start(b))


def same_time_budget(out: dict[str, list]) -> dict[str, list]:
    """Cut each seed's two simulated runs at their busy window: both get the same
    (virtual) time, as the real runs get the same wall budget. The sims run by trial
    count, and ON spends the same count in far less time; left uncut, its time to
    target would count as never whenever the count ran out before OFF's clock."""
    cut: dict[str, list] = {"on": [], "off": []}
    for a, b in zip(out["on"], out["off"]):
        T = busy_window(a, b)
        cut["on"].append(a.window(T))
        cut["off"].append(b.window(T))
    return cut


def off_target(off: list) -> float:
    """The median over seeds of the best loss OFF reached by half of its run."""
    return float(statistics.median(r.best_at(r.makespan / 2) for r in off))


def compare(on: list, off: list, target: float) -> dict[str, Any]:
    """Per-seed metrics over a common window, and their medians."""
    rows = []
    for a, b in zip(on, off):
        T = busy_window(a, b)
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
    med["ttt_ratios"] = ttt
    med["lose_share"] = sum(r < 1.0 for r in ttt) / len(ttt) if ttt else float("nan")
    med["below_08"] = sum(r < 0.8 for r in ttt)
    med["reached_on"] = sum(math.isfinite(r["ttt_on"]) for r in rows)
    med["reached_off"] = sum(math.isfinite(r["ttt_off"]) for r in rows)
    med["n"] = len(rows)
    return med


def fmt_row(name: str, m: dict[str, Any], unit: str = "s") -> str:
    return (f"{name:<13} {m['n']:>5} {m['thr_off']:>12.0f} {m['thr_on']:>12.0f} {m['thr_ratio']:>6.2f}x "
            f"{m['ttt_off']:>10.4f}{unit} {m['ttt_on']:>9.4f}{unit} {m['ttt_ratio']:>6.2f}x "
            f"{m['reached_off']:>3}/{m['reached_on']:<3} {m['best_off']:>8.4f} {m['best_on']:>8.4f} "
            f"{m['ms_off']:>7.3f} {m['ms_on']:>7.3f}")


HEADER = (f"{'part':<13} {'seeds':>5} {'trials/h off':>12} {'trials/h on':>12} {'ratio':>7} "
          f"{'TTT off':>11} {'TTT on':>10} {'ratio':>7} {'hit':>7} {'best off':>8} {'best on':>8} "
          f"{'ms/task':>7} {'ms/task':>7}\n"
          f"{'':<13} {'':>5} {'':>12} {'':>12} {'on/off':>7} {'':>11} {'':>10} {'off/on':>7} "
          f"{'off/on':>7} {'@T/2':>8} {'@T/2':>8} {'off':>7} {'on':>7}")


# ------------------------------------------------------------------ simulations


def run_sim150(table: Table, seeds: int, tasks: int, method: str) -> tuple[dict[str, Any], dict]:
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
                         noise=0.2, common_noise=True, prepare_scheduler=tune_scheduler,
                         sampler_options=dict(SAMPLER_OPTIONS) or None)
            out[mode].append(r)
        print(f"  sim150 seed {seed}: makespan on {out['on'][-1].makespan:.2f}s "
              f"off {out['off'][-1].makespan:.2f}s, wall on {out['on'][-1].wall_seconds:.0f}s "
              f"off {out['off'][-1].wall_seconds:.0f}s", flush=True)
    out = same_time_budget(out)
    target = off_target(out["off"])
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
    out = same_time_budget(out)
    target = off_target(out["off"])
    m = compare(out["on"], out["off"], target)
    m["target"] = target
    return m


def run_simreal(table: Table, seeds: int, seconds: float, profile_name: str,
                peer: bool = False, method: str = "tpe") -> tuple[dict[str, Any], dict]:
    """A real run's pool, seeds and wall budget on the simulator, with Work Queue's per-class
    queues and priorities and REAL_OVERHEAD seconds per task (what the real run adds).

    ``peer``: the "on" runs are OFF too, with the same seeds (the samplers' draws and the
    noise) and other picks (``pick_seed`` = seed + 1000): the spread of the per-seed ratios
    between two identical methods that differ only in where and when trials run."""
    profile = real_profile(profile_name)
    speeds, scale, relative = profile["speed"], profile["scale"], profile["relative"]

    def runtime(space_id: str, params: dict[str, Any], cls: str) -> float:
        name, _ = kernel_of(params)
        best = max(speeds[name].values()) if relative else 1.0
        return scale * table.base_runtime(params) * best / speeds[name][cls]

    names = {sp.id: sp.name for sp in spaces.split(svc_spec())}
    fail = profile.get("fail", frozenset())

    def failure_rate(space_id: str, cls: str) -> float:
        return 1.0 if (names.get(space_id), cls) in fail else 0.0

    out: dict[str, list] = {"on": [], "off": []}
    for seed in range(seeds):
        for mode in ("on", "off"):
            flag = mode == "on" and not peer
            r = simulate(svc_spec(), table.loss, profile["pool"], runtime, max_tasks=SIMREAL_TASKS,
                         method=method, compute_classes=profile["classes"], use_complexity=flag,
                         use_uncertainty=flag, seed=seed, common_noise=True,
                         pick_seed=seed + 1000 if peer and mode == "on" else None,
                         noise=0.2, queue_margin="auto",
                         task_overhead=REAL_OVERHEAD, hyperparameters_per_task=REAL_HPT,
                         failure_rate=failure_rate, prepare_scheduler=tune_scheduler,
                         sampler_options=dict(SAMPLER_OPTIONS) or None)
            out[mode].append(r.window(seconds))
    target = off_target(out["off"])
    m = compare(out["on"], out["off"], target)
    m["target"] = target
    m["provenance"] = profile["provenance"]
    return m, out


# ------------------------------------------------------------------ real run


def class_by_resources(classes: list[dict[str, Any]]) -> dict[tuple[float, float], str]:
    """``(cores, gpus) -> class name``: how a task finds its worker's class from the
    ``CORES``/``GPUS`` Work Queue sets (every class of a profile declares a distinct pair)."""
    return {(float(c.get("cores", 1)), float(c.get("gpus", 0))): c["name"] for c in classes}


def make_real_objective(data: dict[str, Any], profile: dict[str, Any], k: int = IDW_K) -> Any:
    """The objective the Work Queue workers run (a closure: cloudpickle ships the table).

    No live fit: the loss is the sim's IDW surface through the measured losses and the
    emulated runtime is ``scale * t1 / s`` (profile ``paper``) or ``scale * t1 * s_max / s``
    (profile ``two``), with ``t1`` the measured 1-core runtime of the nearest measured
    configuration, ``s`` the kernel's speed on this worker's class (from the ``CORES`` and
    ``GPUS`` Work Queue sets) and ``s_max`` its best class. The task sleeps until that
    much time has passed since the trial started, so workers sharing 2 cores do not
    disturb each other's runtimes."""
    tables = {}
    for name, d in data["kernels"].items():
        lo, hi = np.array(d["low"]), np.array(d["high"])
        tables[name] = (lo, hi, (np.array([r["x"] for r in d["rows"]]) - lo) / (hi - lo),
                        np.array([r["loss"] for r in d["rows"]]), np.array([r["seconds"] for r in d["rows"]]))
    encoders = {sp.name: sp.encode for sp in spaces.split(svc_spec())}
    speeds, scale, relative = profile["speed"], profile["scale"], profile["relative"]
    fail = frozenset(profile.get("fail", frozenset()))
    # A plain dict, not a call into this module: cloudpickle ships the closure by value
    # only for what it captures, and workers cannot import this script.
    by_resources = class_by_resources(profile["classes"])

    def real_objective(params: dict[str, Any]) -> dict[str, Any]:
        import os
        import time

        t0 = time.perf_counter()
        (kernel, _), = params.items()
        key = (float(os.environ.get("CORES", "1")), float(os.environ.get("GPUS", "0") or 0))
        if key not in by_resources:
            raise RuntimeError(f"no compute class with {key[0]:g} cores and {key[1]:g} GPUs")
        cls = by_resources[key]
        lo, hi, X, y, secs = tables[kernel]
        z = (encoders[kernel](params) - lo) / (hi - lo)
        d2 = ((X - z) ** 2).sum(axis=1)
        idx = np.argpartition(d2, k)[:k]
        if d2[idx].min() <= 1e-18:
            loss = float(y[idx[np.argmin(d2[idx])]])
        else:
            w = 1.0 / d2[idx]
            loss = float((w * y[idx]).sum() / w.sum())
        t1 = float(secs[int(np.argmin(d2))])
        best = max(speeds[kernel].values()) if relative else 1.0
        emulated = scale * t1 * best / speeds[kernel][cls]
        time.sleep(max(0.0, emulated - (time.perf_counter() - t0)))
        if (kernel, cls) in fail:
            raise RuntimeError(f"{kernel} always fails on {cls} (profile 'failing')")
        return {"loss": loss, "base_seconds": t1, "emulated_seconds": emulated, "class": cls}

    return real_objective


def run_real(table_data: dict[str, Any], seeds: int, seconds: float,
             profile_name: str = "paper") -> tuple[dict[str, Any], dict]:
    import dataclasses
    import tempfile

    from shadho import Shadho
    from shadho.sim import SimResult

    profile = real_profile(profile_name)
    workers = profile["workers"]
    objective = make_real_objective(table_data, profile)
    out: dict[str, list] = {"on": [], "off": []}
    for seed in range(seeds):
        for mode in ("on", "off"):
            flag = mode == "on"
            db = os.path.join(tempfile.mkdtemp(prefix="shadho-real-"), "r.db")
            opt = Shadho(f"real-{mode}-{seed}", objective, svc_spec(), method="tpe", backend=db,
                         timeout=seconds, seed=seed, use_complexity=flag, use_uncertainty=flag,
                         manager="workqueue", local_workers=workers, quiet=True,
                         hyperparameters_per_task=REAL_HPT)
            for c in profile["classes"]:
                opt.add_compute_class(**c)
            t0 = time.time()
            opt.run()
            trials = opt.trials
            opt.close()
            shifted = [dataclasses.replace(t, finish_time=t.finish_time - t0,
                                           start_time=None if t.start_time is None else t.start_time - t0)
                       if t.finish_time else t for t in trials]
            # Both runs have work until the deadline: the busy window is the wall budget.
            span = float(seconds)
            out[mode].append(SimResult(shifted, span, 0.0, seconds))
            done = [t for t in trials if t.state.value == "COMPLETE"]
            print(f"  real-{profile_name} seed {seed} {mode}: {len(done)} trials, best "
                  f"{min((t.loss for t in done), default=float('nan')):.4f}", flush=True)
    target = off_target(out["off"])
    m = compare(out["on"], out["off"], target)
    m["target"] = target
    m["provenance"] = profile["provenance"]
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
    ap.add_argument("--quick", action="store_true", help="3 seeds, fewer tasks, shorter runs")
    ap.add_argument("--measure", action="store_true", help="re-measure the SVC runtime/loss table")
    ap.add_argument("--parts", default="sim150,sim10k,simreal,real",
                    help="comma separated: sim150, sim10k, simreal, peer (OFF vs OFF: noise floor), real")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--tasks", type=int, default=None, help="sim150 trial budget (default 4000)")
    ap.add_argument("--tasks10k", type=int, default=None, help="sim10k trial budget (default 60000)")
    ap.add_argument("--real-seeds", type=int, default=None, help="seeds of each real run (default 10)")
    ap.add_argument("--real-profiles", default="paper",
                    help=f"emulated real pools, comma separated: {', '.join(PROFILES)} (default paper)")
    ap.add_argument("--sampler", default="tpe",
                    help="sampler of the simreal and peer parts (tpe, random; default tpe)")
    ap.add_argument("--surplus-share", type=float, default=None,
                    help="the sims' Scheduler.surplus_share (default: the scheduler's own)")
    ap.add_argument("--sampler-options", default=None,
                    help="JSON keywords of the sims' sampler, both modes, e.g. "
                         "'{\"share_across_spaces\": false}' (rows get /opts)")
    ap.add_argument("--explore-results", type=int, default=None,
                    help="the sims' Scheduler.explore_results (default: the scheduler's own)")
    ap.add_argument("--probe-pairs", action="store_true",
                    help="the sims' Scheduler.probe_pairs (each class runs every space once; rows get /probe)")
    ap.add_argument("--out", default=os.path.join(RESULTS, "heterogeneity"),
                    help="output prefix (.txt table, .png plot)")
    ap.add_argument("--real-seconds", type=float, default=None,
                    help="wall budget of one real run (default 150 s)")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    suffix = "" if args.sampler == "tpe" else f"/{args.sampler}"
    if args.surplus_share is not None:
        SCHEDULER_SETTINGS["surplus_share"] = args.surplus_share
        suffix += f"/s{args.surplus_share:g}"
    if args.explore_results is not None:
        SCHEDULER_SETTINGS["explore_results"] = args.explore_results
        suffix += f"/e{args.explore_results}"
    if args.probe_pairs:
        SCHEDULER_SETTINGS["probe_pairs"] = True
        suffix += "/probe"
    if args.sampler_options:
        SAMPLER_OPTIONS.update(json.loads(args.sampler_options))
        suffix += "/" + ",".join(f"{k}={v}" for k, v in sorted(SAMPLER_OPTIONS.items()))
    seeds = args.seeds or (3 if args.quick else 10)
    tasks = args.tasks or (2000 if args.quick else 4000)
    tasks10k = args.tasks10k or (25_000 if args.quick else 60_000)
    real_seeds = args.real_seeds or (3 if args.quick else 10)
    real_seconds = args.real_seconds or (60.0 if args.quick else 90.0)
    profiles = [p for p in args.real_profiles.split(",") if p]
    table = load_models(args.measure)
    lines = ["heterogeneity benchmark: heuristics ON (defaults) vs OFF (use_complexity=False, "
             "use_uncertainty=False), same pool/seeds/sampler/budget; medians over seeds",
             f"  sim150: {seeds} seeds, 150 workers, TPE, {tasks} trials; sim10k: 1 seed, 10,000 workers, "
             f"100 spaces, random, {tasks10k} trials; real-*: {real_seeds} seeds, local Work Queue workers, "
             f"TPE, {real_seconds:.0f} s each, {REAL_HPT} trials/task; simreal-*: the same pool, budget and "
             f"seeds on the simulator with Work Queue's queues, priorities and {REAL_OVERHEAD:g} s per task",
             f"  real-paper: {sum(REAL_POOL.values())} workers {REAL_POOL} with sim150's SPEED, runtime = "
             f"{REAL_SCALE:g} x measured 1-core runtime / speed, slept; real-two: 2 cpu (1 core) + 2 accel "
             f"(2 cores), runtime = {TWO_SCALE:g} x measured 1-core runtime x best speed / speed, "
             f"TWO_SPEED = {TWO_SPEED}",
             "  loss everywhere = IDW surface through the measured losses (see the module docstring)",
             "  throughput = successful trials/hour by T = the earlier last trial start of the two runs "
             "(both busy until then; sims: both runs cut at T, the same time budget); TTT = time to the target loss = median over seeds of OFF's best "
             "loss at half its run; hit = seeds reaching it",
             HEADER]
    curves: dict[str, dict] = {}
    os.makedirs(RESULTS, exist_ok=True)

    def save() -> None:  # after every part, so a crash later keeps what was measured
        with open(args.out + ".txt", "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def row(name: str, m: dict[str, Any]) -> str:
        per_seed = " ".join(f"{r:.2f}" for r in m["ttt_ratios"])
        return (fmt_row(name, m) + f"   target {m['target']:.5f}  ON loses {m['lose_share']:.0%} of seeds"
                f" ({m['below_08']} below 0.8)"
                f"  [{m.get('provenance', 'assumed')}]  TTT ratio per seed: {per_seed}")
    if "sim150" in parts:
        m, runs = run_sim150(table, seeds, tasks, "tpe")
        curves["sim150 (150 workers, SVC/digits)"] = runs
        lines.append(row(f"sim150{suffix}", m))
        save()
    if "sim10k" in parts:
        m = run_sim10k(table, 1, tasks10k, 10_000, 100)
        lines.append(row("sim10k", m))
        save()
    if "simreal" in parts:
        for prof in profiles:
            m, _ = run_simreal(table, real_seeds, real_seconds, prof, method=args.sampler)
            lines.append(row(f"simreal-{prof}{suffix}", m))
            save()
    if "peer" in parts:  # OFF against OFF with other seeds: the noise floor of the per-seed ratios
        for prof in profiles:
            m, _ = run_simreal(table, real_seeds, real_seconds, prof, peer=True, method=args.sampler)
            m["provenance"] = "OFF vs OFF, same draws, other picks: routing luck alone"
            lines.append(row(f"peer-{prof}{suffix}", m))
            save()
    if "real" in parts:
        for prof in profiles:
            m, runs = run_real(table.data, real_seeds, real_seconds, prof)
            curves[f"real-{prof} (local Work Queue)"] = runs
            lines.append(row(f"real-{prof}", m))
            save()
    print("\n".join(lines))
    save()
    if curves:
        plot(curves, args.out + ".png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
