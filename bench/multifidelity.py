"""Multi-fidelity benchmark: shadho ASHA with checkpoints vs full-budget TPE (vs Optuna Hyperband).

Run:  nice -n 10 .venv/bin/python bench/multifidelity.py [--seconds 60] [--seeds 5]
      [--methods asha,full,optuna,hyperband] [--out bench/results/multifidelity.txt]

The task (:mod:`mf_task`): scikit-learn's MLPClassifier on digits, epochs 1..81 (eta 3)
as the budget, over learning rate, width, alpha and batch size; loss = validation error;
the checkpoint is the pickled model, so a promotion trains on instead of again.

Every method gets the same wall budget (``--seconds``) and 2 processes on this machine:

* ``asha``: shadho, ``fidelity={'name': 'epochs', 'min': 1, 'max': 81, 'eta': 3}``,
  TPE fitted on the highest rung with enough results, checkpoints, 2 local workers;
* ``hyperband``: the same with 3 Hyperband brackets (starting at 1, 3 and 9 epochs);
* ``full``: shadho, TPE, every trial trained 81 epochs, 2 local workers (the baseline);
* ``optuna``: Optuna's TPE + HyperbandPruner (1..81, eta 3), two processes on one
  JournalStorage file, validation error reported at the same rung epochs.

The figure is the time to the target loss, the baseline's best at half its time (per
seed), as a ratio ``t(full) / t(method)`` (higher: the method is faster; a method that
never reaches the target in the budget counts as ratio 0). Every recorded model counts:
a rung result (or an Optuna report at a rung epoch) is the validation error of a model
that exists at that moment, with its timestamp. The data and scikit-learn's modules are
loaded once before the runs (shadho's local workers fork from the master, Optuna's two
processes live through the run), so no method pays imports per trial.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mf_task  # noqa: E402

FIDELITY = {"name": "epochs", "min": mf_task.EPOCHS[0], "max": mf_task.EPOCHS[1], "eta": mf_task.ETA}
RUNG_EPOCHS = (1, 3, 9, 27, 81)
Trace = list[tuple[float, float]]  # (seconds since start, loss), in time order


def full_budget(p: dict[str, Any]) -> float:
    return mf_task.train(p, mf_task.EPOCHS[1])


def run_shadho(kind: str, seed: int, seconds: float, workdir: str) -> tuple[Trace, dict[str, Any]]:
    from shadho import Shadho
    from shadho.trial import TrialState

    db = os.path.join(workdir, f"{kind}-{seed}.db")
    kw: dict[str, Any] = dict(method="tpe", backend=db, timeout=seconds, seed=seed, local_workers=2, quiet=True)
    if kind in ("asha", "hyperband"):
        brackets = 3 if kind == "hyperband" else 1
        opt = Shadho(kind, mf_task.train, mf_task.spec(), fidelity={**FIDELITY, "brackets": brackets}, **kw)
    else:
        opt = Shadho("full", full_budget, mf_task.spec(), **kw)
    t0 = time.time()
    opt.run()
    done = [t for t in opt.trials if t.state == TrialState.COMPLETE and t.finish_time]
    trace = sorted((t.finish_time - t0, float(t.loss)) for t in done)
    extra = {"runs": len(done)}
    if kind != "full":
        rungs = opt.store.rungs(opt.exp_id)
        extra.update(top=sum(r.rung == len(RUNG_EPOCHS) - 1 for r in rungs), epochs=opt.budget_spent)
    else:
        extra.update(top=len(done), epochs=len(done) * mf_task.EPOCHS[1])
    opt.close()
    return trace, extra


def _optuna_process(path: str, name: str, seed: int, deadline: float) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y, Xv, yv = mf_task.data()
    study = optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(path)),
                              sampler=optuna.samplers.TPESampler(seed=seed),
                              pruner=optuna.pruners.HyperbandPruner(1, mf_task.EPOCHS[1], mf_task.ETA))

    def objective(trial: Any) -> float:
        p = {"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True), "width": trial.suggest_int("width", 16, 256),
             "alpha": trial.suggest_float("alpha", 1e-6, 1e-1, log=True),
             "batch": trial.suggest_int("batch", 16, 256)}
        model, err = mf_task._model(p), 1.0
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in range(1, mf_task.EPOCHS[1] + 1):
                model.partial_fit(X, y, classes=np.arange(10))
                if epoch in RUNG_EPOCHS:  # scored where ASHA scores, so both pay the same
                    err = float(1.0 - model.score(Xv, yv))
                    trial.report(err, epoch)
                    trial.set_user_attr(f"t{epoch}", time.time())
                    if trial.should_prune():
                        raise optuna.TrialPruned()
        return err
    study.optimize(objective, timeout=max(0.0, deadline - time.time()))


def run_optuna(seed: int, seconds: float, workdir: str) -> tuple[Trace, dict[str, Any]]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = os.path.join(workdir, f"optuna-{seed}.log")
    optuna.create_study(study_name="mf", storage=JournalStorage(JournalFileBackend(path)), direction="minimize")
    t0 = time.time()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_optuna_process, args=(path, "mf", 2 * seed + i, t0 + seconds)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    study = optuna.load_study(study_name="mf", storage=JournalStorage(JournalFileBackend(path)))
    trace = []
    for t in study.trials:
        for e, v in t.intermediate_values.items():
            if f"t{e}" in t.user_attrs:
                trace.append((t.user_attrs[f"t{e}"] - t0, float(v)))
    trace.sort()
    epochs = sum(max(t.intermediate_values, default=0) for t in study.trials)
    top = sum(mf_task.EPOCHS[1] in t.intermediate_values for t in study.trials)
    return trace, {"runs": len(study.trials), "top": top, "epochs": epochs}


def time_to(trace: Trace, target: float) -> float:
    return next((t for t, v in trace if v <= target), math.inf)


def best_by(trace: Trace, until: float) -> float:
    return min((v for t, v in trace if t <= until), default=math.inf)


def _gmean(xs: list[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return float(np.exp(np.mean(np.log(xs)))) if xs else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--methods", default="asha,full,optuna")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "multifidelity.txt"))
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    if "full" not in methods:
        ap.error("--methods must include full (the baseline the target comes from)")
    # Data and scikit-learn's modules loaded once, here: shadho's forked workers inherit them,
    # as Optuna's long-lived processes keep theirs (else each shadho rung run pays the imports).
    mf_task.train({"lr": 1e-2, "width": 16, "alpha": 1e-4, "batch": 64}, 1)
    workdir = tempfile.mkdtemp(prefix="shadho-mf-bench-")
    lines = [f"multifidelity: MLP on digits, epochs 1..81 eta 3, {args.seconds:g} s per method, 2 processes, "
             f"{args.seeds} seeds; ratio = t(full) / t(method) to the target (full's best at half its time)",
             f"{'seed':>4} {'method':>7} {'target':>7} {'t_to':>7} {'ratio':>6} {'best':>7} {'runs':>5} "
             f"{'top':>4} {'epochs':>7}"]
    ratios: dict[str, list[float]] = {m: [] for m in methods}
    try:
        for seed in range(args.seeds):
            res = {}
            for m in methods:
                res[m] = run_optuna(seed, args.seconds, workdir) if m == "optuna" else \
                    run_shadho(m, seed, args.seconds, workdir)
            target = best_by(res["full"][0], args.seconds / 2)
            t_full = time_to(res["full"][0], target)
            for m in methods:
                trace, extra = res[m]
                t = time_to(trace, target)
                ratio = t_full / t if math.isfinite(t) and t > 0 else 0.0
                ratios[m].append(ratio)
                lines.append(f"{seed:>4} {m:>7} {target:>7.4f} {t:>7.1f} {ratio:>6.2f} "
                             f"{best_by(trace, args.seconds * 2):>7.4f} {extra['runs']:>5} {extra['top']:>4} "
                             f"{extra['epochs']:>7g}")
                print(lines[-1], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    first_summary = len(lines)
    lines.append("geometric mean of t(full)/t(method) over seeds that reached the target "
                 "(median over all seeds, 0 = never reached):")
    for m in methods:
        lines.append(f"  {m:>7}: {_gmean(ratios[m]):.2f}x (median {float(np.median(ratios[m])):.2f}x, "
                     f"{sum(r > 0 for r in ratios[m])}/{len(ratios[m])} reached)")
    if "asha" in methods and "optuna" in methods:
        pair = [a / o for a, o in zip(ratios["asha"], ratios["optuna"]) if a > 0 and o > 0]
        lines.append(f"  asha vs optuna (t(optuna)/t(asha), seeds both reached): {_gmean(pair):.2f}x")
    text = "\n".join(lines) + "\n"
    print("\n".join(lines[first_summary:]))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
