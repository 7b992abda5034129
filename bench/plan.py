"""Does ``shadho plan`` predict what a pool does? (GitHub issue 17)

Per seed:

1. a real search on local Work Queue workers of two classes (``--pool``, default
   ``cpu=2,accel=1``: heterogeneity's ``two`` profile in small: 2 workers with 1 core
   and 1 with 2 cores, the ``--profile`` speeds (``SPEEDS``) emulated by sleeping ``--scale`` (default 4)
   x the measured 1-core runtime x the kernel's best speed / its speed on the class,
   so both classes finish many trials in each half; TPE, heuristics on, ``--seconds``
   of wall clock, 2 trials per task);
2. its results cut at half its time into a copy of the file (trials finished by
   then; :func:`cut_copy`);
3. ``shadho.plan`` of the second half on the same pool, from the cut copy (whose
   bytes must be unchanged after planning);
4. the ratio predicted / real completions of the second half, overall and per class
   (the real second half is the baseline, measured in the same run); the issue's
   bounds are 15% overall and 25% per class;
5. the plans for the pool twice as large (throughput ratio 2x / 1x, expected about
   2 where the master is not the bottleneck) and for 10,000 workers in the same
   proportions (expected: master-bound, with the master's estimated time per trial).

CPU note: this machine has 2 cores shared with other work; the real runs only sleep,
but a loaded master dispatches later, which shows up as dead time per trial. The
plan learns the dead time from the first half; if the load changes between the
halves, so does the ratio.

Usage:
    python bench/plan.py                  # 3 seeds x 80 s on cpu=2,accel=1
    python bench/plan.py --seeds 1 --seconds 40
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import heterogeneity as H  # noqa: E402

from shadho.plan_inputs import parse_pool  # noqa: E402


#: Speed-ups of each kernel on each class, per ``--profile``: heterogeneity's ``two``
#: (the 1-core class is the better one for linear: a comparative advantage the scheduler
#: must discover, and which the plan cannot know before some linear trial ran there), and
#: ``mild`` (the accelerator is faster at every kernel, by different amounts).
SPEEDS = {"two": H.TWO_SPEED,
          "mild": {"linear": {"cpu": 1.0, "accel": 1.5}, "rbf": {"cpu": 1.0, "accel": 8.0},
                   "sigmoid": {"cpu": 1.0, "accel": 4.0}, "poly": {"cpu": 1.0, "accel": 4.0}}}


def workers_for(pool: dict[str, tuple[int, int]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Local worker specs and compute classes of a ``cpu``/``accel`` pool (the two profile)."""
    prof = H.real_profile("two")
    cores = {c["name"]: c["cores"] for c in prof["classes"]}
    unknown = set(pool) - set(cores)
    if unknown:
        raise ValueError(f"bench pools use the classes {sorted(cores)}, got {sorted(unknown)}")
    workers = [{"cores": cores[c], "features": {"cls": c}} for c, (n, _) in pool.items() for _ in range(n)]
    return workers, [c for c in prof["classes"] if c["name"] in pool]


def real_search(db: str, seed: int, seconds: float, pool: dict[str, tuple[int, int]],
                table_data: dict[str, Any], scale: float = 4.0, profile: str = "two") -> float:
    """Run the search into ``db``; returns its start (wall clock)."""
    from shadho import Shadho

    workers, classes = workers_for(pool)
    objective = H.make_real_objective(table_data, {**H.real_profile("two"), "scale": scale,
                                                   "speed": SPEEDS[profile]})
    opt = Shadho(f"plan-{seed}", objective, H.svc_spec(), method="tpe", backend=db, timeout=seconds,
                 seed=seed, manager="workqueue", local_workers=workers, quiet=True,
                 hyperparameters_per_task=H.REAL_HPT)
    for c in classes:
        opt.add_compute_class(**c)
    t0 = time.time()
    try:
        opt.run()
    finally:
        opt.close()
    return t0


def cut_copy(src: str, dst: str, when: float) -> None:
    """Copy results file ``src`` to ``dst`` as the live file was at time ``when``: trials
    finished by then; trials submitted by then and not finished RUNNING with their submit
    time and, when their task had started by then, its start (``task_start_time``: what
    the master had written; a trial's own start comes with its result); later ones
    removed; the stats rows written by then. A task start reaches the live file up to
    about 1.5 s after it happened (see shadho.managers.wq_starts); the copy keeps every
    start up to ``when``."""
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    con = sqlite3.connect(dst)
    with con:
        con.execute("UPDATE trials SET state='RUNNING', start_time=NULL, finish_time=NULL, loss=NULL, "
                    "results='{}', error=NULL, worker=NULL, task_start_time=CASE WHEN task_start_time <= ? "
                    "THEN task_start_time END WHERE submit_time IS NOT NULL AND submit_time <= ? "
                    "AND (finish_time IS NULL OR finish_time > ?)", (when, when, when))
        con.execute("DELETE FROM trials WHERE state != 'RUNNING' AND (finish_time IS NULL OR finish_time > ? "
                    "OR state NOT IN ('COMPLETE', 'FAILED'))", (when,))
        con.execute("DELETE FROM space_stats WHERE time > ?", (when,))
        con.execute("UPDATE experiments SET owner_host=NULL, owner_pid=NULL")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()


def completions(db: str, lo: float, hi: float) -> dict[str, int]:
    """COMPLETE trials finished in (lo, hi], in total and per class."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT compute_class, COUNT(*) FROM trials WHERE state='COMPLETE' AND "
                           "finish_time > ? AND finish_time <= ? GROUP BY compute_class", (lo, hi)).fetchall()
    finally:
        con.close()
    out = {str(c): int(n) for c, n in rows}
    out["total"] = sum(out.values())
    return out


def unseen_pairs(db: str, classes: list[str]) -> list[str]:
    """The (space, class) pairs of the pool that the cut results never ran: their runtimes
    are the planner's additive guess (flagged as assumptions)."""
    from shadho.plan_model import LearnedModel
    from shadho.store import ResultsStore

    with ResultsStore(db, readonly=True) as st:
        exp = st.experiment_id(st.experiments()[0])
        model = LearnedModel(st.spaces(exp), st.trials(exp))
    return [f"{model.names[s]}@{c}" for c in classes for s in range(len(model.names))
            if not model.observed[s, model.cidx[c]]]


def dead_times(db: str, cut: str, t0: float, half: float, end: float,
               classes: list[str]) -> dict[str, tuple[float, float, float]]:
    """Per class, its dead time per task (s): what the plan learned from the cut, and the
    real one of each half (:func:`shadho.plan_timing.class_timing` on the trials that ran
    in it, with those in flight at its end). The plan carries the first into the second:
    when the machine's load changes between the halves, so does the real figure."""
    from dataclasses import replace

    from shadho.plan_model import LearnedModel
    from shadho.plan_timing import class_timing
    from shadho.store import ResultsStore
    from shadho.trial import TrialState

    with ResultsStore(cut, readonly=True) as st:
        exp = st.experiment_id(st.experiments()[0])
        learned = LearnedModel(st.spaces(exp), st.trials(exp)).dead
    with ResultsStore(db, readonly=True) as st:
        ts = st.trials(st.experiment_id(st.experiments()[0]))
    out = {}
    for c in classes:
        mine = [t for t in ts if t.compute_class == c and t.submit_time is not None]
        halves = []
        for lo, hi in ((t0, half), (half, end)):
            done = [t for t in mine if t.start_time is not None and t.finish_time is not None
                    and lo <= t.start_time and t.finish_time <= hi]
            live = [replace(t, state=TrialState.RUNNING, task_start_time=t.task_start_time
                            if t.task_start_time is not None and t.task_start_time <= hi else None)
                    for t in mine if t.submit_time <= hi and (t.finish_time is None or t.finish_time > hi)]
            halves.append(class_timing(done, live)["dead"] if done else float("nan"))
        out[c] = (learned.get(c, float("nan")), halves[0], halves[1])
    return out


def pair_counts(db: str, lo: float, hi: float) -> dict[str, int]:
    """COMPLETE trials finished in (lo, hi] per (space, class) pair, keyed ``'space@class'``."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT s.name, t.compute_class, COUNT(*) FROM trials t JOIN spaces s "
                           "ON s.space_id = t.space_id AND s.experiment_id = t.experiment_id WHERE t.state='COMPLETE' "
                           "AND t.finish_time > ? AND t.finish_time <= ? GROUP BY s.name, t.compute_class",
                           (lo, hi)).fetchall()
    finally:
        con.close()
    return {f"{n}@{c}": int(k) for n, c, k in rows}


def pair_table(rows: list[dict[str, Any]]) -> list[str]:
    """Per seed and (space, class) pair: COMPLETE trials of the real first half, of the real
    second half and the plan's (median, low-high) for the second half (``--pairs``)."""
    out = ["per (space, class) pair, COMPLETE trials: real first half / real second half / planned second half"
           " (median, low-high of the simulations)"]
    for r in rows:
        keys = sorted(set(r["pairs_first"]) | set(r["pairs_second"]) | set(r["pairs_plan"]))
        cells = []
        for k in keys:
            p = r["pairs_plan"].get(k)
            plan = f"{p.mid:.0f} ({p.low:.0f}-{p.high:.0f})" if p is not None else "-"
            cells.append(f"{k} {r['pairs_first'].get(k, 0)}/{r['pairs_second'].get(k, 0)}/{plan}")
        out.append(f"  seed {r['seed']}: " + "; ".join(cells))
    return out


def sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def one_seed(seed: int, seconds: float, pool_text: str, samples: int, table_data: dict[str, Any],
             scale: float, profile: str, reuse: str | None = None) -> dict[str, Any]:
    """One real search (or the kept one in folder ``reuse``), cut at half time, and its plans."""
    import shadho

    pool = parse_pool(pool_text)
    if reuse is None:
        tmp = tempfile.mkdtemp(prefix="shadho-bench-plan-")
        db = os.path.join(tmp, "r.db")
        t0 = real_search(db, seed, seconds, pool, table_data, scale, profile)
        with open(os.path.join(tmp, "meta.json"), "w") as fh:
            json.dump({"seed": seed, "t0": t0, "seconds": seconds, "pool": pool_text, "scale": scale,
                       "profile": profile}, fh)
    else:  # plan again from a kept real run (diagnostics: a planner change on the same real data)
        tmp, db = reuse, os.path.join(reuse, "r.db")
        with open(os.path.join(tmp, "meta.json")) as fh:
            meta = json.load(fh)
        t0, seed, seconds, pool_text = meta["t0"], meta["seed"], meta["seconds"], meta["pool"]
        pool = parse_pool(pool_text)
    cut = os.path.join(tmp, "cut.db")
    half, end = t0 + seconds / 2, t0 + seconds
    if os.path.exists(cut):
        os.remove(cut)
    cut_copy(db, cut, half)
    real = completions(db, half, end)
    before = sha256(cut)
    t1 = time.perf_counter()
    p1 = shadho.plan(cut, pool=pool_text, hours=seconds / 2 / 3600, samples=samples, seed=seed)
    plan_s = time.perf_counter() - t1
    double = ",".join(f"{c}={2 * n}" + (f"x{s}" if s != 1 else "") for c, (n, s) in pool.items())
    p2 = shadho.plan(cut, pool=double, hours=seconds / 2 / 3600, samples=samples, seed=seed)
    total = sum(n for n, _ in pool.values())
    big = ",".join(f"{c}={round(10_000 * n / total)}" for c, (n, _) in pool.items())
    p3 = shadho.plan(cut, pool=big, hours=1.0, samples=2, seed=seed)
    assert sha256(cut) == before, "planning changed the results file"
    unseen = unseen_pairs(cut, list(pool))
    a, b, c = p1.prediction, p2.prediction, p3.prediction
    row = {"seed": seed, "real": real, "pred": a.trials, "per_class": {}, "plan_s": plan_s,
           "double": b.throughput.mid / a.throughput.mid, "double_bound": b.master_bound,
           "big_bound": c.master_bound, "big_ms": c.master_ms_per_trial.mid, "big_load": c.master_load.mid,
           "observed_pool": p1.observed_pool, "unseen": unseen,
           "dead": dead_times(db, cut, t0, half, end, list(pool)), "dir": tmp,
           "pairs_first": pair_counts(db, t0, half), "pairs_second": pair_counts(db, half, end),
           "pairs_plan": {k: v.scaled(seconds / 2 / 3600) for k, v in a.per_pair.items()}}
    for cls in pool:
        pred = a.per_class[cls].scaled(seconds / 2 / 3600)
        row["per_class"][cls] = (real.get(cls, 0), pred)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds FIRST_SEED .. FIRST_SEED + SEEDS - 1")
    ap.add_argument("--seconds", type=float, default=80.0, help="wall budget of each real search")
    ap.add_argument("--pool", default="cpu=2,accel=1", help="cpu/accel workers of the real search")
    ap.add_argument("--scale", type=float, default=4.0,
                    help="emulated runtime = SCALE x measured 1-core runtime x best speed / speed")
    ap.add_argument("--samples", type=int, default=5, help="simulations per plan")
    ap.add_argument("--profile", choices=sorted(SPEEDS), default="two", help="kernel speeds per class")
    ap.add_argument("--out", default=os.path.join(RESULTS, "plan.txt"))
    ap.add_argument("--pairs", action="store_true",
                    help="also print COMPLETE trials per (space, class) pair: real halves and plan")
    ap.add_argument("--reuse", nargs="+", metavar="DIR",
                    help="plan again from kept real runs (the folders the rows name) instead of running")
    args = ap.parse_args(argv)
    table = H.load_models(False)
    rows = []
    lines = [f"plan benchmark: real search on local Work Queue workers ({args.pool}, speeds {args.profile} = "
             f"{SPEEDS[args.profile]}, runtime scale {args.scale:g}, TPE, {args.seconds:g} s, "
             f"{H.REAL_HPT} trials/task), results cut at half time, "
             f"shadho.plan of the second half on the same pool ({args.samples} simulations); baseline = "
             "the real second half's completions",
             f"{'seed':>4} {'real':>5} {'pred (low-high)':>18} {'ratio':>6}  per class real/pred ratio"
             f"{'':>18} 2x/1x  10k: bound ms/trial load  plan s  pairs never run by the cut"]
    runs = ([(None, d) for d in args.reuse] if args.reuse
            else [(s, None) for s in range(args.first_seed, args.first_seed + args.seeds)])
    for seed, reuse in runs:
        r = one_seed(seed if seed is not None else -1, args.seconds, args.pool, args.samples, table.data,
                     args.scale, args.profile, reuse)
        seed = r["seed"]
        rows.append(r)
        ratio = r["pred"].mid / max(1, r["real"]["total"])
        per = "  ".join(f"{c} {n}/{p.mid:.0f} {p.mid / max(1, n):.2f}" for c, (n, p) in r["per_class"].items())
        lines.append(f"{seed:>4} {r['real']['total']:>5} {r['pred'].mid:>7.0f} ({r['pred'].low:.0f}-{r['pred'].high:.0f})"
                     f"{'':>3} {ratio:>5.2f}  {per:<40} {r['double']:>5.2f}  {str(r['big_bound']):>5} "
                     f"{r['big_ms']:>8.1f} {r['big_load']:>6.0f}  {r['plan_s']:>5.0f}  "
                     f"{' '.join(r['unseen']) or '-'}")
        print(lines[-1], flush=True)
    ratios = [r["pred"].mid / max(1, r["real"]["total"]) for r in rows]
    lines.append(f"median ratio predicted/real completions: {statistics.median(ratios):.2f} "
                 f"(per seed {' '.join(f'{x:.2f}' for x in ratios)}); within 15%: "
                 f"{sum(abs(x - 1) <= 0.15 for x in ratios)}/{len(ratios)}")
    seen = [x for x, r in zip(ratios, rows) if not r["unseen"]]
    if seen:
        lines.append(f"  seeds whose first half ran every (space, class) pair: median ratio "
                     f"{statistics.median(seen):.2f} over {len(seen)} (the others rest on guessed runtimes)")
    for cls in rows[0]["per_class"]:
        cr = [r["per_class"][cls][1].mid / max(1, r["per_class"][cls][0]) for r in rows]
        lines.append(f"  class {cls}: median ratio {statistics.median(cr):.2f} (per seed "
                     f"{' '.join(f'{x:.2f}' for x in cr)}); within 25%: {sum(abs(x - 1) <= 0.25 for x in cr)}/{len(cr)}")
    lines.append(f"  2x pool / 1x pool predicted throughput: median {statistics.median(r['double'] for r in rows):.2f}; "
                 f"10,000 workers master-bound in {sum(r['big_bound'] for r in rows)}/{len(rows)} seeds")
    lines.append("  dead time per task (s), class: learned from the cut / real first half / real second half: "
                 + "; ".join(f"seed {r['seed']} " + " ".join(f"{c} {a:.2f}/{b:.2f}/{d:.2f}"
                                                           for c, (a, b, d) in r["dead"].items()) for r in rows))
    seeds = f" --first-seed {args.first_seed}" if args.first_seed else ""
    if args.reuse:
        lines.append("  command: python bench/plan.py " + " ".join(sys.argv[1:] if argv is None else argv)
                     + "  (planned again from kept real runs: no new real search)")
    else:
        lines.append(f"  command: python bench/plan.py --seeds {args.seeds}{seeds} --seconds {args.seconds:g} "
                     f"--pool {args.pool} --scale {args.scale:g} --samples {args.samples} --profile {args.profile}"
                     + (" --pairs" if args.pairs else ""))
    lines.append("  real runs kept in: " + " ".join(r["dir"] for r in rows))
    if args.pairs:
        lines += pair_table(rows)
    print("\n".join(lines[len(rows) + 2:]))
    os.makedirs(RESULTS, exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
