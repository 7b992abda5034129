"""Re-running failed trials: ``Shadho(..., retry_failed=True)`` and ``shadho retry``.

A retry is a new WAITING trial with the failed trial's search space and parameters; the failed
record stays as it was (a finished trial never changes), and the next run evaluates the copies
first. The copies count toward ``max_tasks`` but run even when it is reached.

Example (command line)::

    shadho retry results.db svm      # then rerun the driver script: it resumes and re-runs them
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from shadho.errors import ShadhoError
from shadho.summary import retry_candidates

__all__ = ["requeue_failed", "add_arguments", "run", "main"]


def requeue_failed(store: object, exp: int) -> list[int]:
    """Add a WAITING copy of every failed, not yet retried trial of ``exp``; returns the new ids."""
    trials = store.trials(exp)  # type: ignore[attr-defined]
    return [store.add_trial(exp, t.space_id, t.params, t.x, t.compute_class)  # type: ignore[attr-defined]
            for t in retry_candidates(trials)]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``shadho retry`` (a row of :data:`shadho.cli.COMMANDS`)."""
    p.description = ("Queue the failed trials of an experiment again; the next run of its driver "
                     "script (same exp_key) re-runs them.")
    p.add_argument("results", help="the results file (.db)")
    p.add_argument("exp_key", help="the experiment's key")


def run(args: argparse.Namespace) -> int:
    """``shadho retry RESULTS EXP_KEY``: queue the failed trials of an experiment again."""
    from shadho.store import ResultsStore

    if not os.path.isfile(args.results):  # never create a results file here
        raise ShadhoError(f"{args.results}: no such results file")
    with ResultsStore(args.results) as store:
        if args.exp_key not in store.experiments():
            raise ShadhoError(f"{args.results} has no experiment {args.exp_key!r}; it has: "
                              f"{', '.join(store.experiments()) or 'none'}")
        exp = store.open_experiment(args.exp_key)  # refuses while a live master owns it
        try:
            ids = requeue_failed(store, exp)
        finally:
            store.release(exp)
    print(f"shadho retry: {len(ids)} failed trial(s) of {args.exp_key} queued again; rerun the driver "
          f"script to evaluate them")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``shadho retry ARGS``; returns the exit status."""
    from shadho.cli import main as shadho_main

    return shadho_main(["retry", *(sys.argv[1:] if argv is None else argv)])
