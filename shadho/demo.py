"""The README's main job: an SVM search on scikit-learn's digits, on two local
Work Queue workers of different sizes forming two compute classes.

Run it with ``shadho demo`` (``--quick`` for a shorter search).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

from shadho import spaces
from shadho.cli_args import positive_seconds, whole_number

#: The search space: one SVM per kernel (an exclusive choice), each with its own hyperparameters.
SPEC: dict[str, Any] = {
    "svm": spaces.scope(
        exclusive=True,
        linear={"kernel": "linear", "C": spaces.log10_uniform(-4, 2)},
        rbf={"kernel": "rbf", "C": spaces.log10_uniform(-2, 4), "gamma": spaces.log10_uniform(-5, -1)},
        sigmoid={"kernel": "sigmoid", "C": spaces.log10_uniform(-2, 4),
                 "gamma": spaces.log10_uniform(-5, -1), "coef0": spaces.uniform(-1, 1)},
        poly={"kernel": "poly", "C": spaces.log10_uniform(-2, 4), "gamma": spaces.log10_uniform(-5, -1),
              "degree": spaces.randint(2, 6), "coef0": spaces.uniform(0, 1)},
    )
}


def svm_objective(params: dict[str, Any]) -> dict[str, Any]:
    """3-fold cross-validated error of an SVC on the digits data (runs on a worker)."""
    import time

    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    (kernel_params,) = params["svm"].values()
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    start = time.time()
    acc = float(cross_val_score(SVC(**kernel_params), X, y, cv=3).mean())
    return {"loss": 1.0 - acc, "accuracy": acc, "fit_seconds": time.time() - start}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``shadho demo`` (a row of :data:`shadho.cli.COMMANDS`)."""
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("--quick", action="store_true", help="a short search (20 trials)")
    p.add_argument("--max-tasks", type=whole_number(1), default=None, help="trial budget (default 60, quick 20)")
    p.add_argument("--timeout", type=positive_seconds, default=600, help="seconds of searching (default 600)")
    p.add_argument("--backend", default="shadho-demo.db", help="results file (default shadho-demo.db)")
    p.add_argument("--method", default="tpe", help="sampler: random, tpe or bayes (default tpe)")
    p.add_argument("--manager", default="workqueue", choices=["workqueue", "local"],
                   help="where trials run (default: two local Work Queue workers)")


def run(args: argparse.Namespace) -> int:
    """Run the demo search and print the best result."""
    from shadho import Shadho

    budget = args.max_tasks or (20 if args.quick else 60)
    workers = [{"cores": 1, "features": {"size": "small"}}, {"cores": 2, "features": {"size": "big"}}]
    opt = Shadho("svm-digits", svm_objective, SPEC, method=args.method, backend=args.backend,
                 timeout=args.timeout, max_tasks=budget, manager=args.manager,
                 local_workers=workers if args.manager == "workqueue" else 2, seed=0)
    opt.add_compute_class("small", "size", "small", cores=1)
    opt.add_compute_class("big", "size", "big", cores=2)
    print(f"shadho demo: {budget} trials over {len(opt.spaces)} search spaces "
          f"({', '.join(s.name for s in opt.spaces)}) on 2 local workers; results in {args.backend}")
    opt.run()
    best = opt.best
    trials = opt.trials
    done = sum(t.state.value == "COMPLETE" for t in trials)
    print(f"\n{done} of {len(trials)} trials complete.")
    if best is None:
        print("No trial completed.")
        return 1
    print(f"Best: {best['searchspace']} loss={best['loss']:.4f} (accuracy {best['results'].get('accuracy', 0):.4f}) "
          f"on class {best['compute_class']}")
    print(f"Params: {best['params']}")
    rel = os.path.relpath(args.backend)
    print(f"See it all with: shadho status {rel}   (or a page: shadho report {rel} -o report/)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``shadho demo ARGS``; returns the exit status."""
    from shadho.cli import main as shadho_main

    return shadho_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
