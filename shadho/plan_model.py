"""What a results file has learned about a search, as a model the planner simulates.

:class:`LearnedModel` is built from a search's stored space descriptions and its
finished trials (nothing else: the objective is not needed):

* spaces: rebuilt from their stored descriptions (:func:`rebuild_spec`), so the
  simulated master samples and ranks the same domains;
* runtime of each (space, class) pair: the mean ``mu`` of the log runtimes of its
  successful trials, with standard error ``pooled sd / sqrt(n)``. A pair never
  observed takes the additive fit ``a_s + b_c`` of
  :class:`~shadho.heuristics.strength.RuntimeModel` and the fit's residual spread
  as its error (at least ``UNSEEN_SE``), and is flagged as an assumption. Within a
  pair, a trial's runtime is ``exp(mu + r)`` with ``r`` the residual (log runtime
  minus its pair's mean) of the nearest observed trial of the same space in the
  working space, so runtimes that depend on the parameters are replayed too. A pair never
  observed lies between two guesses (:func:`_unseen_guess`): the additive fit, and the
  mean of the classes that ran the space; the point estimate is their midpoint, each
  draw any point between them;
* failure rate of each pair: Jeffreys' posterior ``Beta(f + 1/2, n - f + 1/2)``;
  a space that failed ``CANNOT_RUN`` times or more on a class and never succeeded
  there cannot run on it;
* each class: its slots (the peak number of its trials running at once, i.e. the
  pool the search ran on) and its dead time per task: the mean time a task's slot
  stood free before it started (:func:`_task_gaps`), over the latest half of the
  class's active span, or with fewer than ``MIN_GAPS`` such waits
  ``(slots x span - busy) / tasks`` (the trials still running at its end counted
  with their expected, length-biased, age): worker start-up, dispatch and the master's own latency, as
  measured (shrunk toward the pooled figure of all classes with the weight of
  ``DEAD_PRIOR`` tasks; see :mod:`shadho.plan_timing`). A trial that starts within ``BATCH_GAP`` of a same-space trial's
  finish on its class ran in the same task (``hyperparameters_per_task`` > 1); the
  trials per task, so found, are simulated too;
* losses: a simulated trial's loss is that of the nearest observed COMPLETE trial
  of its space (a space with none gets the median loss: an assumption).

Classes never seen are declared with :class:`~shadho.plan_inputs.Assumption`
(``speed`` times as fast as a seen class, its failure rates and dead time).
:meth:`LearnedModel.draw` samples one plausible set of pair means and failure
rates; the planner runs one simulation per draw, which is where its ranges come
from.

Example:
    >>> from shadho.spaces import split, uniform
    >>> rows = [s.describe() for s in split({'x': uniform(0, 1)})]
    >>> sorted(rebuild_spec(rows)[0])
    ['default', 'exclusive']
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from shadho import spaces as _spaces
from shadho.errors import ShadhoError, StoreError
from shadho.heuristics.strength import RuntimeModel
from shadho.plan_inputs import Assumption
from shadho.plan_timing import class_timing
from shadho.trial import Trial, TrialState

__all__ = ["PlanError", "LearnedModel", "Draw", "rebuild_spec", "DEFAULT_CLASS"]

#: The class name of trials that ran without compute classes (as ``shadho status`` calls it).
DEFAULT_CLASS = "default"
#: Failures without a success after which a class counts as unable to run a space.
CANNOT_RUN = 3
#: Least log-runtime error of a pair never observed (a factor of about 1.35).
UNSEEN_SE = 0.3
#: Log-runtime spread within a pair assumed when no pair has two trials.
DEFAULT_SD = 0.3
#: Trials' worth of weight of the equal-speed prior in the additive fit of unseen pairs.
CLASS_PRIOR = 0.5
#: Tasks' worth of weight of the pooled dead time in each class's estimate.
DEAD_PRIOR = 20.0

_DOMAINS = {name: getattr(_spaces, name) for name in (
    "uniform", "ln_uniform", "log10_uniform", "log2_uniform", "normal", "ln_normal", "log10_normal",
    "log2_normal", "randint", "ln_randint", "log10_randint", "log2_randint", "choice")}


class PlanError(ShadhoError, ValueError):
    """A plan that cannot be made from these results and this pool; the message says why."""


def _domain(desc: Mapping[str, Any], where: str) -> Any:
    kind = desc.get("type")
    if kind not in _DOMAINS:
        raise StoreError(f"{where}: unknown domain type {kind!r} (not a results file of this shadho)")
    args = {k: v for k, v in desc.items() if k != "type"}
    try:
        return _DOMAINS[kind](**args)
    except TypeError as exc:
        raise StoreError(f"{where}: malformed {kind} domain {dict(desc)!r} ({exc})") from None


def _place(node: Any, path: Sequence[str], value: Any) -> bool:
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    if not isinstance(node, dict) or path[-1] not in node:
        return False
    node[path[-1]] = value
    return True


def rebuild_spec(rows: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """An exclusive spec with one child per stored space (named as the space, holding its
    template with its domains put back) and the stored ids in the same order."""
    import copy

    spec: dict[str, Any] = {"exclusive": True}
    ids = []
    for row in rows:
        name = str(row.get("name") or row.get("id"))
        if name in spec:
            raise StoreError(f"two stored search spaces are both named {name!r}")
        sub = copy.deepcopy(row.get("template") or {})
        for label, desc in (row.get("dims") or {}).items():
            if not _place(sub, label.split("."), _domain(desc, f"space {name!r}, {label}")):
                raise StoreError(f"space {name!r}: dimension {label!r} is not in its template")
        spec[name] = sub
        ids.append(str(row["id"]))
    return spec, ids


def _pair_means(trials: Sequence[Trial], sidx: Mapping[str, int], cidx: Mapping[str, int]
                ) -> tuple[np.ndarray, ...]:
    S, C = len(sidx), len(cidx)
    n_ok, n_fail, sum_log, sum_sq = (np.zeros((S, C)) for _ in range(4))
    for t in trials:
        s, c = sidx.get(t.space_id), cidx.get(t.compute_class or DEFAULT_CLASS)
        if s is None or c is None:
            continue
        if t.state == TrialState.FAILED:
            n_fail[s, c] += 1
        elif t.runtime is not None and t.runtime > 0:
            n_ok[s, c] += 1
            sum_log[s, c] += math.log(t.runtime)
            sum_sq[s, c] += math.log(t.runtime) ** 2
    return n_ok, n_fail, sum_log, sum_sq


def _unseen_guess(mean: np.ndarray, has: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log runtimes with each unseen pair set between two guesses, and their difference.

    ``mean`` holds the observed pairs' means and, elsewhere, the additive fit ``a_s + b_c``
    (the class's average speed relative to the others carried over to the space). A class
    is often much better or worse at one space than at the rest (a 1-core node as fast as
    an accelerator at a linear model): the other guess is that the class runs the space as
    fast as the classes that did run it (their mean). The point estimate is the midpoint
    (in logs); the planner's draws take any point between the two.
    """
    obs = np.where(has, mean, np.nan)
    counts = has.sum(axis=1, keepdims=True)
    flat = np.where(counts > 0, np.nansum(np.nan_to_num(obs, nan=0.0), axis=1, keepdims=True)
                    / np.maximum(counts, 1), mean)
    unseen = ~has & (counts > 0)
    delta = np.where(unseen, mean - flat, 0.0)
    return np.where(unseen, mean - delta / 2, mean), delta


@dataclass(frozen=True)
class Draw:
    """One plausible world: log-runtime offsets and failure rates of every pair."""

    offset: np.ndarray
    fail: np.ndarray


class LearnedModel:
    """Runtimes, failure rates, slots, dead times and losses learned from finished trials.

    Args:
        space_rows: the stored space descriptions (``ResultsStore.spaces``).
        trials: the experiment's trials (unfinished ones are ignored).
        assume: classes never seen, declared relative to seen ones.
    """

    def __init__(self, space_rows: Sequence[Mapping[str, Any]], trials: Iterable[Trial],
                 assume: Mapping[str, Assumption] | None = None) -> None:
        trials = list(trials)
        done = [t for t in trials if t.state.finished]
        if not space_rows:
            raise PlanError("the experiment has no search spaces recorded: nothing to plan")
        if not any(t.runtime is not None for t in done):
            raise PlanError("the experiment has no finished trials with runtimes yet: run the search "
                            "a while first, then plan from its results")
        self.spec, self.old_ids = rebuild_spec(space_rows)
        self.spaces = _spaces.split(self.spec)
        self.names = [s.name for s in self.spaces]
        self.new_id = dict(zip(self.old_ids, (s.id for s in self.spaces)))
        self.sidx = {s.id: i for i, s in enumerate(self.spaces)}
        self.trials = [t for t in done if t.space_id in self.new_id]
        self._in_flight = [t for t in trials if t.state == TrialState.RUNNING and t.space_id in self.new_id]
        self.seen = sorted({t.compute_class or DEFAULT_CLASS for t in self.trials})
        self.assume = dict(assume or {})
        for a in self.assume.values():
            if a.name in self.seen:
                raise ValueError(f"class {a.name!r} is in the results: it needs no assumption")
            if a.like not in self.seen:
                raise ValueError(f"assumed class {a.name!r} is declared like {a.like!r}, which the results "
                                 f"never saw; seen classes: {', '.join(self.seen)}")
        self.classes = self.seen + sorted(self.assume)
        self.cidx = {c: j for j, c in enumerate(self.classes)}
        self._fit_runtimes()
        self._fit_classes()
        self._fit_replay()

    # ------------------------------------------------------------ fitting

    def _fit_runtimes(self) -> None:
        old = {o: i for i, o in enumerate(self.old_ids)}
        seen_idx = {c: j for j, c in enumerate(self.seen)}
        n_ok, n_fail, sum_log, sum_sq = _pair_means(self.trials, old, seen_idx)
        # A weak prior (CLASS_PRIOR trials) on equal class speeds: the classes' relative speed
        # on a space one never ran comes from the spaces both ran.
        rm = RuntimeModel(len(self.spaces), [1.0] * len(self.seen), k_prior=CLASS_PRIOR)
        rm.sum_log, rm.count = sum_log, n_ok
        fit = rm.log_runtime()
        has = n_ok > 0
        mean = np.where(has, sum_log / np.where(has, n_ok, 1), fit)
        var = np.where(n_ok > 1, (sum_sq - n_ok * mean ** 2) / np.maximum(n_ok - 1, 1), np.nan)
        within = float(np.sqrt(np.nanmean(np.clip(var, 0, None)))) if np.isfinite(var).any() else DEFAULT_SD
        #: Spread of a trial's log runtime around its pair's mean (pooled over pairs).
        self.within_sd = within
        mean, delta = _unseen_guess(mean, has)
        se = np.where(has, within / np.sqrt(np.maximum(n_ok, 1)), UNSEEN_SE)
        S, C = len(self.spaces), len(self.classes)
        self.mu, self.se = np.zeros((S, C)), np.zeros((S, C))
        self.n_ok, self.n_fail = np.zeros((S, C)), np.zeros((S, C))
        self.observed = np.zeros((S, C), dtype=bool)
        k = len(self.seen)
        self.mu[:, :k], self.se[:, :k], self.n_ok[:, :k], self.n_fail[:, :k] = mean, se, n_ok, n_fail
        #: Unseen pairs: additive guess minus same-speed guess (0 elsewhere), see _unseen_guess.
        self.delta = np.zeros((S, C))
        self.delta[:, :k] = delta
        self.observed[:, :k] = has
        for name, a in self.assume.items():
            j, like = self.cidx[name], self.cidx[a.like]
            self.mu[:, j] = self.mu[:, like] - np.log([a.speed_on(n) for n in self.names])
            self.se[:, j], self.n_ok[:, j], self.n_fail[:, j] = self.se[:, like], n_ok[:, like], n_fail[:, like]
            self.delta[:, j] = self.delta[:, like]
        #: The column whose draw each class shares (an assumed class moves with its ``like``).
        self.draw_column = [self.cidx[self.assume[c].like] if c in self.assume else j
                            for j, c in enumerate(self.classes)]

    def _fit_classes(self) -> None:
        by_class: dict[str, list[Trial]] = {}
        for t in self.trials:
            by_class.setdefault(t.compute_class or DEFAULT_CLASS, []).append(t)
        running: dict[str, list[Trial]] = {}
        for t in self._in_flight:
            running.setdefault(t.compute_class or DEFAULT_CLASS, []).append(t)
        self.timing = {c: class_timing(ts, running.get(c, [])) for c, ts in by_class.items()}
        # Dead time is mostly the master's and Work Queue's, shared by the classes: each
        # class's own figure is shrunk toward the pooled one with the weight of DEAD_PRIOR
        # tasks (a class that ran a few long tasks measures its own poorly).
        known = {c: v for c, v in self.timing.items() if math.isfinite(v["dead"])}
        tasks = sum(v["tasks"] for v in known.values())
        pooled = sum(v["dead"] * v["tasks"] for v in known.values()) / tasks if tasks else 0.0
        self.dead = {c: ((known[c]["dead"] * known[c]["tasks"] + DEAD_PRIOR * pooled)
                         / (known[c]["tasks"] + DEAD_PRIOR) if c in known else pooled) for c in self.seen}
        for name, a in self.assume.items():
            self.dead[name] = self.dead[a.like]
        #: The pool the search ran on: each seen class's peak number of trials at once.
        self.observed_pool = {c: int(self.timing[c]["slots"]) for c in self.seen if c in self.timing}
        n = sum(v["n"] for v in self.timing.values())
        #: Trials per task the search ran (``hyperparameters_per_task``), as measured.
        self.trials_per_task = max(1, round(n / max(1, sum(v["tasks"] for v in self.timing.values()))))

    def _fit_replay(self) -> None:
        old = {o: i for i, o in enumerate(self.old_ids)}
        rows: list[list[tuple[Sequence[float], float, float]]] = [[] for _ in self.spaces]
        for t in self.trials:
            s, c = old[t.space_id], self.cidx[t.compute_class or DEFAULT_CLASS]
            loss = t.loss if t.state == TrialState.COMPLETE and t.loss is not None else math.nan
            r = (math.log(t.runtime) - self.mu[s, c]
                 if t.state == TrialState.COMPLETE and t.runtime and t.runtime > 0 else math.nan)
            if len(t.x) == self.spaces[s].dim:
                rows[s].append((t.x, loss, r))
        losses = [v for t in self.trials if t.state == TrialState.COMPLETE and t.loss is not None
                  for v in [t.loss] if math.isfinite(v)]
        self.median_loss = float(np.median(losses)) if losses else 0.0
        self.replay = []
        for sp, rs in zip(self.spaces, rows):
            lo = np.array([d.low for d in sp.domains])
            width = np.maximum(np.array([d.high for d in sp.domains]) - lo, 1e-12)
            Z = (np.array([r[0] for r in rs], dtype=float).reshape(len(rs), sp.dim) - lo) / width
            self.replay.append((lo, width, Z, np.array([r[1] for r in rs]), np.array([r[2] for r in rs])))
        #: Spaces whose losses are not replayed (no COMPLETE trial): they get the median loss.
        self.no_losses = [n for n, r in zip(self.names, self.replay) if not np.isfinite(r[3]).any()]

    # ------------------------------------------------------------ queries

    def can_run(self, s: int, cls: str) -> bool:
        """False when ``cls`` failed space ``s`` at least CANNOT_RUN times and never ran it."""
        c = self.cidx[cls]
        return not (self.n_ok[s, c] == 0 and self.n_fail[s, c] >= CANNOT_RUN)

    def check_pool(self, classes: Iterable[str]) -> None:
        """Raise for an unknown class or a space no class of the pool can run."""
        classes = list(classes)
        unknown = [c for c in classes if c not in self.cidx]
        if unknown:
            raise ValueError(f"unknown compute class(es) {', '.join(map(repr, unknown))}: the results saw "
                             f"{', '.join(self.seen)}; declare a new class relative to one of them with "
                             f"--assume NEW=SPEEDx:SEEN (e.g. {unknown[0]}=2x:{self.seen[0]})")
        for s, name in enumerate(self.names):
            if not any(self.can_run(s, c) for c in classes):
                ran = [c for c in self.classes if self.n_ok[s, self.cidx[c]] > 0]
                raise PlanError(f"no worker in the pool can run search space {name!r}: it failed on every "
                                f"try on {', '.join(classes)}; add a class that ran it "
                                f"({', '.join(ran) or 'none did'})")

    def assumed_pairs(self) -> np.ndarray:
        """``S x C`` True where a pair's runtime rests on an assumption (never observed)."""
        return ~self.observed

    def draw(self, rng: np.random.Generator | None) -> Draw:
        """Pair means and failure rates: point estimates (``rng`` None) or one posterior draw
        (an unseen pair anywhere between its two guesses, see :func:`_unseen_guess`)."""
        a, b = self.n_fail + 0.5, self.n_ok + 0.5
        if rng is None:
            return Draw(np.zeros_like(self.mu), self.n_fail / np.maximum(self.n_fail + self.n_ok, 1))
        lam = rng.uniform(0.0, 1.0, self.mu.shape)
        offset = rng.standard_normal(self.mu.shape) * self.se + (lam - 0.5) * self.delta
        fail = rng.beta(a, b)
        cols = self.draw_column
        return Draw(offset[:, cols], fail[:, cols])

    def residual_near(self, s: int, x: Sequence[float]) -> float:
        """The log-runtime residual (about its pair's mean) of the observed trial of space
        ``s`` nearest the encoded point ``x``: what a trial there replays (0 when the space
        has no observed trial, that one failed, or ``x`` is not of its dimension)."""
        lo, width, Z, _, resid = self.replay[s]
        if not len(Z) or len(x) != self.spaces[s].dim:
            return 0.0
        z = (np.asarray(x, dtype=float) - lo) / width
        r = float(resid[int(np.argmin(((Z - z) ** 2).sum(axis=1)))])
        return r if math.isfinite(r) else 0.0

    def runtime_fn(self, draw: Draw) -> Any:
        """``fn(space_id, params, class) -> seconds`` for :class:`~shadho.sim.SimulatedManager`."""
        def runtime(space_id: str, params: dict[str, Any], cls: str) -> float:
            s, c = self.sidx[space_id], self.cidx[cls]
            r = self.residual_near(s, self.spaces[s].encode(params))
            return math.exp(self.mu[s, c] + draw.offset[s, c] + r)
        return runtime

    def failure_fn(self, draw: Draw) -> Any:
        """``fn(space_id, class) -> probability`` (a class unable to run a space always fails)."""
        def failure(space_id: str, cls: str) -> float:
            s = self.sidx[space_id]
            return 1.0 if not self.can_run(s, cls) else float(draw.fail[s, self.cidx[cls]])
        return failure

    def objective(self, params: dict[str, Any]) -> float:
        """The loss of the nearest observed COMPLETE trial of the params' space."""
        (name, _), = params.items()
        s = self.names.index(name)
        return self.loss_near(s, self.spaces[s].encode(params))

    def loss_near(self, s: int, x: Sequence[float]) -> float:
        """The loss of the observed COMPLETE trial of space ``s`` nearest the encoded point
        ``x`` (the median loss when it has none, or ``x`` is not of its dimension)."""
        lo, width, Z, losses, _ = self.replay[s]
        ok = np.isfinite(losses)
        if not ok.any() or len(x) != self.spaces[s].dim:
            return self.median_loss
        z = (np.asarray(x, dtype=float) - lo) / width
        d2 = np.where(ok, ((Z - z) ** 2).sum(axis=1), np.inf)
        return float(losses[int(np.argmin(d2))])
