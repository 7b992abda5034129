"""``shadho plan``: the command line of :func:`shadho.plan` (:mod:`shadho.planner`).

Example:
    >>> main(['/no/such.db', '--pool', 'cpu=2', '--hours', '1'])  # stderr: shadho: error: ...
    1
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, Sequence

from shadho.cli_args import positive_hours, whole_number

__all__ = ["add_arguments", "run", "main", "render"]

USAGE_TEXT = """examples:
  shadho plan results.db --pool cpu=40,gpu=8 --hours 24
  shadho plan results.db --pool cpu=40,gpu=8x4 --trials 5000 --cost cpu=0.05,gpu=2.5
  shadho plan results.db --pool cpu=16,h100=4 --assume h100=8x:gpu --hours 6 --heuristics both
  shadho plan results.db --pool cpu=10,gpu=2 --trials 20000 --hours 12 --cost cpu=0.05,gpu=2.5

Figures are medians over the simulations with (lowest-highest); a * marks a figure that rests
on an assumption (listed under notes). The results file is only read."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``shadho plan`` (a row of :data:`shadho.cli.COMMANDS`)."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = USAGE_TEXT
    p.description = ("Predict what a pool of workers does for a search, from its results: "
                     "trials per hour per search space and per compute class, the time to finish the "
                     "remaining budget (or the trials reached in H hours), each class's utilisation and "
                     "the cost. Runs the real master on a simulator of the learned runtimes.")
    p.add_argument("results", metavar="RESULTS.db", help="the results file (opened read-only)")
    p.add_argument("--exp", metavar="KEY", help="experiment (needed when the file holds several)")
    p.add_argument("--pool", required=True, metavar="CLASS=COUNT[xSLOTS],...",
                   help="workers per compute class (xSLOTS: trials each worker runs at once)")
    p.add_argument("--hours", type=positive_hours, metavar="H", help="predict H hours of searching")
    p.add_argument("--trials", type=whole_number(1), metavar="N",
                   help="predict the time N more trials take (default: the remaining budget); with "
                   "--hours and --cost: find the cheapest pool that runs N trials within H hours")
    p.add_argument("--cost", metavar="CLASS=PRICE,...", help="price per worker-hour of each class")
    p.add_argument("--assume", metavar="NEW=SPEEDx:SEEN,...|FILE",
                   help="classes the results never saw, e.g. gpu=8x:cpu16, or a .json/.toml file")
    p.add_argument("--heuristics", choices=("on", "off", "both"), default="on",
                   help="the scheduler's hardware-aware heuristics (default on)")
    p.add_argument("--samples", type=whole_number(1), default=5, metavar="K",
                   help="simulations per prediction (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulations")
    p.add_argument("--json", action="store_true", help="print the plan as one JSON object")


def _line(label: str, value: Any, extra: str = "") -> str:
    return f"  {label:<22} {value}{extra}"


def _prediction(pred: Any, n_trials: int | None) -> list[str]:
    out = [f"heuristics {pred.heuristics}: pool {_pool(pred.pool)}"]
    out.append(_line("successful trials", pred.trials, f" in {pred.hours} h"))
    out.append(_line("trials per hour", pred.throughput))
    if pred.time_to_finish is not None:
        out.append(_line(f"hours for {n_trials} trials", pred.time_to_finish))
    if pred.cost is not None:
        out.append(_line("cost", pred.cost))
    out.append("  per class              trials/h                  utilisation")
    for c, r in pred.per_class.items():
        out.append(f"    {c:<20} {str(r):<25} {pred.utilisation[c]}")
    out.append("  per search space       trials/h")
    for s, r in pred.per_space.items():
        out.append(f"    {s:<20} {r}")
    verdict = ("the master is the bottleneck" if pred.master_bound else "not the bottleneck")
    out.append(_line("master", f"{pred.master_ms_per_trial} ms per trial (scheduler "
                     f"{pred.scheduler_ms_per_trial.mid:.3g} ms), load {pred.master_load}: {verdict}"))
    out.extend(f"  * {n}" for n in pred.notes)
    return out


def _pool(pool: dict[str, tuple[int, int]]) -> str:
    from shadho.plan_inputs import format_pool

    return format_pool(pool)


def render(plan: Any, n_trials: int | None = None) -> str:
    """The plan as text (one block per heuristics mode, then the cheapest pool)."""
    seen = ",".join(f"{c}={n}" for c, n in plan.observed_pool.items())
    lines = [f"shadho plan: experiment {plan.experiment}; the search ran on {seen} (peak trials at once)",
             "figures: median (lowest-highest) over the simulations; * rests on assumptions (notes)"]
    for pred in plan.predictions.values():
        lines.append("")
        lines.extend(_prediction(pred, n_trials))
    ch = plan.cheapest
    if ch is not None:
        lines.append("")
        if ch.feasible:
            p = ch.prediction
            unit = " worker-hours (no --cost given)" if ch.unit == "worker-hours" else ""
            lines.append(f"cheapest pool for {n_trials} trials: {_pool(ch.pool)}: {p.time_to_finish} h, "
                         f"cost {p.cost}{unit}")
        else:
            lines.append(f"no pool found for {n_trials} trials in time: {ch.reason}")
        lines.append("  pools tried: " + "; ".join(f"{p} {t:.3g} h {c:.3g}" for p, t, c in ch.tried))
    return "\n".join(lines) + "\n"


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    """Run ``shadho plan`` on parsed arguments (errors propagate to :func:`shadho.cli.main`)."""
    from shadho.planner import plan

    result = plan(args.results, pool=args.pool, exp=args.exp, hours=args.hours, trials=args.trials,
                  cost=args.cost, assume=args.assume, heuristics=args.heuristics,
                  samples=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(_jsonable(result), default=str))
    else:
        sys.stdout.write(render(result, result.trials_planned))
    return 0


def main(argv: Sequence[str]) -> int:
    """``shadho plan ARGS``; returns the exit status (1: an error, said on stderr)."""
    from shadho.cli import main as shadho_main

    return shadho_main(["plan", *argv])
