"""``shadho.plan``: how many workers of which kind, for how long, predicted from a search.

From a results file (opened read-only, never changed) :func:`plan` learns a
:class:`~shadho.plan_model.LearnedModel` (runtimes per search space and compute
class with their uncertainty, failure rates, each class's dead time per task,
each space's losses) and runs the real master on it through :mod:`shadho.sim`, on
a virtual clock, for a pool that may differ from the one the search ran on:
``samples`` simulations, each on one posterior draw of the pair runtimes and
failure rates, so every figure is a :class:`Range` (lowest, median, highest).

* ``hours=H``: what the pool does in H hours (trials, per space, per class);
* ``trials=N``: how long the pool takes for N more trials;
* both, with ``cost``: the cheapest pool (scaled from the given pool's mix, or one
  class alone) that runs N trials within H hours (:mod:`shadho.plan_search`).

A figure that rests on an assumption (a class declared with ``assume``, a pair of
space and class never observed, a space without losses, a pool scaled down to
simulate, a count extrapolated past ``max_sim_trials``) has ``assumed=True`` and
the prediction's ``notes`` say which. The master's own time is not simulated: a
pool whose demand exceeds what the master can dispatch (see
:func:`shadho.plan_sim.master_seconds`) is capped at that rate and flagged
``master_bound`` (at 10,000 workers the master, not the workers, sets the pace).

Example:
    >>> import os, tempfile
    >>> from shadho import spaces
    >>> from shadho.sim import simulate
    >>> db = os.path.join(tempfile.mkdtemp(), 'r.db')
    >>> spec = {'exclusive': True, 'a': {'x': spaces.uniform(0, 1)}, 'b': {'y': spaces.uniform(0, 1)}}
    >>> _ = simulate(spec, lambda p: 0.5, {'cpu': 2}, lambda s, p, c: 10.0, max_tasks=40, backend=db)
    >>> p = plan(db, pool='cpu=4', hours=1, samples=2, seed=0)
    >>> 2 * 3600 / 10 < p.prediction.throughput.mid < 4 * 3600 / 10
    True
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from shadho.errors import StoreError
from shadho.plan_inputs import format_pool, parse_assume, parse_pool, parse_prices, pool_slots
from shadho.plan_model import DEFAULT_CLASS, LearnedModel, PlanError
from shadho.plan_inflight import Carried, InFlight, as_work, carry, find_in_flight, queue_up
from shadho.plan_sim import SimRun, class_busy, completions, master_seconds, run_once, seed_history
from shadho.trial import Trial

__all__ = ["Range", "Prediction", "Plan", "plan", "plan_trials", "PlanError"]

_MODES = ("on", "off", "both")


@dataclass(frozen=True)
class Range:
    """A predicted figure: lowest, median and highest over the simulations.

    Example:
        >>> str(Range.of([1.0, 2.0, 4.0], assumed=True))
        '2 (1-4)*'
    """

    low: float
    mid: float
    high: float
    assumed: bool = False

    @staticmethod
    def of(values: Sequence[float], assumed: bool = False) -> "Range":
        v = np.asarray(values, dtype=float)
        return Range(float(v.min()), float(np.median(v)), float(v.max()), bool(assumed))

    def scaled(self, k: float) -> "Range":
        return Range(self.low * k, self.mid * k, self.high * k, self.assumed)

    def __str__(self) -> str:
        star = "*" if self.assumed else ""
        return f"{_num(self.mid)} ({_num(self.low)}-{_num(self.high)}){star}"


def _num(x: float) -> str:
    """Three significant digits, with thousands separated (``17,700``, ``0.0562``)."""
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1000:
        return f"{float(f'{x:.3g}'):,.0f}"
    return f"{x:.3g}"


@dataclass(frozen=True)
class Prediction:
    """What one pool does, with the heuristics on or off (rates are per hour)."""

    heuristics: str
    pool: dict[str, tuple[int, int]]
    hours: Range                      # the window: H, or the time to finish N trials
    trials: Range                     # successful trials in the window
    throughput: Range                 # successful trials per hour
    per_space: dict[str, Range]
    per_class: dict[str, Range]
    utilisation: dict[str, Range]     # busy fraction of each class's slots
    time_to_finish: Range | None      # hours for ``trials=N``
    cost: Range | None
    master_ms_per_trial: Range
    scheduler_ms_per_trial: Range
    master_load: Range                # master time the pool's demand needs, per second
    master_bound: bool
    notes: tuple[str, ...] = ()
    #: Successful trials per hour of each (space, class) pair, keyed ``'space@class'``.
    per_pair: dict[str, Range] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """:func:`plan`'s answer: one :class:`Prediction` per heuristics mode, and the cheapest
    pool when both ``trials`` and ``hours`` were given."""

    experiment: str
    pool: dict[str, tuple[int, int]]
    observed_pool: dict[str, int]
    predictions: dict[str, Prediction]
    cheapest: Any = None
    trials_planned: int | None = None
    hours_planned: float | None = None

    @property
    def prediction(self) -> Prediction:
        """The first prediction (heuristics on unless only off was asked)."""
        return next(iter(self.predictions.values()))


def _notes(model: LearnedModel, slots: Mapping[str, int]) -> tuple[list[str], set[str], set[str]]:
    """Assumption notes, and the spaces and classes whose figures rest on them."""
    notes, spaces, classes = [], set(), set()
    for name in slots:
        a = model.assume.get(name)
        if a is not None:
            notes.append(f"class {name} is assumed {a.speed:g}x as fast as {a.like}"
                         + (f" ({len(a.spaces)} spaces overridden)" if a.spaces else ""))
            classes.add(name)
            spaces.update(model.names)
    unseen = model.assumed_pairs()
    for c in slots:
        j = model.cidx[c]
        missing = [s for s in range(len(model.names)) if unseen[s, j] and c not in model.assume]
        if missing:
            guesses = ", ".join(f"{model.names[s]} ({math.exp(model.mu[s, j]):.3g} s)" for s in missing[:5])
            notes.append(f"class {c} never ran {guesses}{' ...' if len(missing) > 5 else ''}: those runtimes "
                         "are guessed from the other spaces' (an additive fit); a class may be much faster "
                         "or slower at one space than at the others, so run a few trials there to know")
            classes.add(c)
            spaces.update(model.names[s] for s in missing)
    for name in model.no_losses:
        notes.append(f"space {name} has no completed trial: its losses are the median loss")
        spaces.add(name)
    return notes, spaces, classes


def _sim_pool(slots: Mapping[str, int], max_workers: int) -> tuple[dict[str, int], float]:
    """The pool to simulate (scaled down past ``max_workers`` slots) and the scale factor."""
    total = sum(slots.values())
    if total <= max_workers:
        return dict(slots), 1.0
    k = total / max_workers
    small = {c: max(1, int(round(n / k))) for c, n in slots.items()}
    return small, total / sum(small.values())


def _rate_bound(model: LearnedModel, slots: Mapping[str, int]) -> float:
    """Trials per second if every class ran its fastest space (an upper bound)."""
    return sum(n / (math.exp(float(model.mu[:, model.cidx[c]].min())) + model.dead[c])
               for c, n in slots.items())


def _predict(model: LearnedModel, settings: Mapping[str, Any], pool: dict[str, tuple[int, int]],
             heuristics: bool, hours: float | None, n_trials: int | None, prices: Mapping[str, float],
             samples: int, seed: int, opts: Mapping[str, int], history: tuple[str, int],
             running: Sequence[InFlight] = ()) -> Prediction:
    real = pool_slots(pool)
    sim_slots, scale = _sim_pool(real, opts["max_sim_workers"])
    notes, a_spaces, a_classes = _notes(model, real)
    if scale > 1:
        notes.append(f"simulated on a pool {scale:.3g}x smaller ({format_pool({c: (n, 1) for c, n in sim_slots.items()})})"
                     ", figures scaled up linearly")
    horizon = None if hours is None else hours * 3600.0
    want = (int(math.ceil(n_trials / scale)) if n_trials is not None
            else int(_rate_bound(model, sim_slots) * horizon * 1.2) + 2 * sum(sim_slots.values()))
    n_new = min(want, opts["max_sim_trials"])
    extrapolated = n_new < want
    if extrapolated:
        notes.append(f"simulated {n_new} trials per run of the {want} needed; the rest extrapolated "
                     "at the simulated rate")
    rng = np.random.default_rng(seed)
    runs: list[tuple[SimRun, float, list[Carried]]] = []
    for i in range(samples):
        draw = model.draw(rng)
        mu = model.mu + draw.offset
        carried = carry(running, mu, model.cidx, model.within_sd, draw.fail, sim_slots, scale, rng,
                        model.residual_near)
        ids = [s.id for s in model.spaces]
        waiting = queue_up(running, ids, mu, model.cidx, model.within_sd, draw.fail, sim_slots, scale, rng,
                           model.loss_near, model.residual_near)
        busy: dict[str, list[Any]] = {}
        for c in carried:  # its slot held; its trials' results learned by the scheduler at its end
            busy.setdefault(c.cls, []).append(as_work(c, ids[c.space], model.loss_near))
        queued: dict[str, list[Any]] = {}
        for w in waiting:
            queued.setdefault(str(w.work.compute_class), []).append(w.work)
        run = run_once(model, history[0], history[1], sim_slots, heuristics, n_new,
                       draw, seed + i, settings, busy, queued)
        carried += [c for w in waiting if (c := w.carried(run.queued_starts.get(w.work.ref))) is not None]
        window = run.makespan if (horizon is None or extrapolated) else horizon
        if horizon is not None and not extrapolated and run.makespan < horizon:
            window = run.makespan  # ran out early: measured up to its end, extrapolated below
        runs.append((run, window, carried))
    if scale > 1 or extrapolated:  # every figure rests on the scaling
        a_spaces, a_classes = set(model.names), set(real)
    return _assemble(model, pool, real, scale, heuristics, runs, horizon, n_trials, prices, notes,
                     a_spaces, a_classes)


def _assemble(model: LearnedModel, pool: dict[str, tuple[int, int]], real: Mapping[str, int], scale: float,
              heuristics: bool, runs: list[tuple[SimRun, float, list[Carried]]], horizon: float | None,
              n_trials: int | None, prices: Mapping[str, float], notes: list[str],
              a_spaces: set[str], a_classes: set[str]) -> Prediction:
    per_run: list[dict[str, Any]] = []
    total_slots = sum(real.values())
    for run, window, carried in runs:
        done = completions(run.finished_by(window))
        finished = run.finished_by(window)
        ends = [(c, ok) for c in carried for e, ok in zip(c.ends, c.oks) if e <= window]  # running tasks' trials
        rate = scale * (len(finished) + len(ends)) / max(window, 1e-9)  # trials/s the workers finish
        master_s, sched_s = master_seconds(run, total_slots)
        load = rate * master_s
        k = min(1.0, 1.0 / load) if load > 0 else 1.0               # the master caps the rate
        hours_win = (horizon if horizon is not None else window / k) / 3600.0
        per_h = 3600.0 * scale * k / max(window, 1e-9)
        busy = class_busy(run.trials, window)
        for c in carried:
            busy[c.cls] = busy.get(c.cls, 0.0) + c.busy_until(window)
        ok = [c for c, good in ends if good]
        n_ok = len(done) + len(ok)
        out = {"trials": n_ok * per_h * hours_win, "throughput": n_ok * per_h,
               "per_space": {n: 0.0 for n in model.names}, "per_class": {c: 0.0 for c in real},
               "per_pair": {(n, c): 0.0 for n in model.names for c in real},
               "util": {c: k * busy.get(c, 0.0) / (run.slots[c] * max(window, 1e-9)) for c in real},
               "master_ms": 1e3 * master_s, "sched_ms": 1e3 * sched_s, "load": load, "hours": hours_win}
        names = {s.id: s.name for s in model.spaces}
        for space, cls in [(names[t.space_id], t.compute_class or "default") for t in done] + [
                (model.names[c.space], c.cls) for c in ok]:
            out["per_space"][space] += per_h
            out["per_class"][cls] += per_h
            out["per_pair"][(space, cls)] += per_h
        if n_trials is not None:
            out["finish"] = n_trials / (rate * k) / 3600.0 if rate > 0 else math.inf
        out["cost"] = sum(pool[c][0] * prices.get(c, 0.0) for c in real) * hours_win if prices else None
        per_run.append(out)
    bound = any(r["load"] > 1.0 for r in per_run)
    if bound:
        notes.append("the master is the bottleneck: this pool asks for more trials per second than the "
                     "master can dispatch (see its estimated time per trial); more workers add nothing")
        a_spaces, a_classes = set(model.names), set(real)
    any_assumed = bool(notes)

    def rng_of(key: str, assumed: bool = any_assumed) -> Range:
        return Range.of([r[key] for r in per_run], assumed)

    return Prediction(
        heuristics="on" if heuristics else "off", pool=dict(pool), hours=rng_of("hours"),
        trials=rng_of("trials"), throughput=rng_of("throughput"),
        per_space={n: Range.of([r["per_space"][n] for r in per_run], n in a_spaces) for n in model.names},
        per_class={c: Range.of([r["per_class"][c] for r in per_run], c in a_classes) for c in real},
        utilisation={c: Range.of([r["util"][c] for r in per_run], c in a_classes) for c in real},
        time_to_finish=rng_of("finish") if n_trials is not None else None,
        cost=rng_of("cost") if prices else None,
        master_ms_per_trial=rng_of("master_ms", True), scheduler_ms_per_trial=rng_of("sched_ms", False),
        master_load=rng_of("load", True), master_bound=bound, notes=tuple(notes),
        per_pair={f"{n}@{c}": Range.of([r["per_pair"][(n, c)] for r in per_run], n in a_spaces or c in a_classes)
                  for n, c in per_run[0]["per_pair"]})


def plan_trials(space_rows: Sequence[Mapping[str, Any]], trials: Sequence[Trial], settings: Mapping[str, Any],
                *, pool: Any, hours: float | None = None, trials_left: int | None = None, cost: Any = None,
                assume: Any = None, heuristics: str = "on", samples: int = 5, seed: int = 0,
                experiment: str = "", max_sim_trials: int = 3000, max_sim_workers: int = 400,
                history: int = 3000) -> Plan:
    """:func:`plan` on records already read (``ResultsStore.spaces``/``trials``/``settings``)."""
    if heuristics not in _MODES:
        raise ValueError(f"heuristics must be one of {', '.join(_MODES)}, got {heuristics!r}")
    if hours is None and trials_left is None:
        budget = settings.get("max_tasks")
        left = budget - len(trials) if isinstance(budget, int) else 0
        if left <= 0:
            raise ValueError("give hours=H (what the pool does in H hours), trials=N (how long N more "
                             "trials take) or both (the cheapest pool for N trials within H hours); "
                             + ("the search's budget is used up" if isinstance(budget, int)
                                else "the search has no trial budget (max_tasks) to finish"))
        trials_left = left
    if hours is not None and not (isinstance(hours, (int, float)) and hours > 0 and math.isfinite(hours)):
        raise ValueError(f"hours must be a positive number, got {hours!r}")
    if trials_left is not None and (isinstance(trials_left, bool) or not isinstance(trials_left, int)
                                    or trials_left < 1):
        raise ValueError(f"trials must be a whole number >= 1, got {trials_left!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    pool_spec = parse_pool(pool)
    prices = parse_prices(cost)
    model = LearnedModel(space_rows, trials, parse_assume(assume))
    model.check_pool(pool_slots(pool_spec))
    unknown = sorted(set(prices) - set(model.classes))
    if unknown:
        raise ValueError(f"price for unknown class(es) {', '.join(unknown)}; classes: {', '.join(model.classes)}")
    missing = sorted(c for c in pool_slots(pool_spec) if prices and c not in prices)
    if missing:
        raise ValueError(f"no price for class(es) {', '.join(missing)}: give every pool class a price "
                         "in --cost CLASS=PRICE_PER_HOUR,...")
    opts = {"max_sim_trials": int(max_sim_trials), "max_sim_workers": int(max_sim_workers)}
    tmp = tempfile.mkdtemp(prefix="shadho-plan-history-")
    try:
        db = os.path.join(tmp, "history.db")
        hist = (db, seed_history(db, model, int(history)))
        running = find_in_flight(trials, {o: i for i, o in enumerate(model.old_ids)}, model.classes, DEFAULT_CLASS)
        modes = [heuristics] if heuristics != "both" else ["on", "off"]
        search_hours = hours if trials_left is not None else None
        preds = {m: _predict(model, settings, pool_spec, m == "on", None if search_hours else hours,
                             trials_left, prices, samples, seed, opts, hist, running) for m in modes}
        cheapest = None
        if hours is not None and trials_left is not None:
            from shadho.plan_search import cheapest_pool

            # Without prices every worker-hour costs 1: the smallest pool that finishes in time.
            unit = prices or {c: 1.0 for c in pool_spec}
            cheapest = cheapest_pool(lambda p, n: _predict(model, settings, p, modes[0] == "on", None,
                                                           trials_left, unit, n, seed, opts, hist, running),
                                     model, pool_spec, hours, unit, samples,
                                     "price" if prices else "worker-hours")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Plan(experiment, pool_spec, dict(model.observed_pool), preds, cheapest, trials_left, hours)


def plan(results: str | os.PathLike[str], *, pool: Any, exp: str | None = None, hours: float | None = None,
         trials: int | None = None, cost: Any = None, assume: Any = None, heuristics: str = "on",
         samples: int = 5, seed: int = 0, **options: Any) -> Plan:
    """Predict what ``pool`` does for the search in ``results`` (see the module docstring).

    Args:
        results: the SQLite results file (opened read-only).
        pool: ``'CLASS=COUNT[xSLOTS],...'`` or ``{class: count | (count, slots)}``.
        exp: the experiment (needed when the file holds several).
        hours, trials: the window (H hours) and/or N more trials; neither: the search's
            remaining budget (``max_tasks`` less the trials it holds).
        cost: ``'CLASS=PRICE_PER_HOUR,...'`` or a mapping (per worker).
        assume: unseen classes: ``'gpu=8x:cpu16'``, a JSON/TOML file or a mapping.
        heuristics: ``'on'``, ``'off'`` or ``'both'``.
        samples: simulations per prediction (the ranges' spread).
        **options: ``max_sim_trials``, ``max_sim_workers``, ``history``.

    Raises:
        StoreError: not a shadho results file. PlanError: nothing to learn from, or a
        pool that cannot run some space. ValueError: bad arguments, unknown classes.
    """
    from shadho.cli_read import open_store, select_experiment
    from shadho.errors import CliError

    try:
        store = open_store(os.fspath(results))
    except CliError as exc:  # a folder or a JSON mirror: not a results file
        raise StoreError(str(exc)) from None
    try:
        exp_id, key = select_experiment(store, exp)
        rows, ts, settings = store.spaces(exp_id), store.trials(exp_id), store.settings(exp_id)
    except CliError as exc:  # no such experiment, none at all, or several to choose from
        raise PlanError(str(exc)) from None
    finally:
        store.close()
    return plan_trials(rows, ts, settings, pool=pool, hours=hours, trials_left=trials, cost=cost,
                       assume=assume, heuristics=heuristics, samples=samples, seed=seed,
                       experiment=key, **options)
