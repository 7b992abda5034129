"""Which compute classes run which search spaces, and how often: the *assignment*.

A pure function of three things the scheduler measures: a score per space (higher
means the space needs more work: it ranks first), the log speed of every (space,
class) pair (trials per second of one slot), and the capacity of each class.

Formulas (S spaces, C classes; ``L[s, c]`` = log speed):

* rank: spaces sorted by score, highest first, ties by order; rank 1 is the top.
* class strength: ``g_c = mean_s L[s, c]``; the strongest class has the highest.
* comparative advantage: ``A = L`` double-centred (minus row means, minus column
  means, plus the grand mean). ``A[s, c] > 0``: class c is faster at s *relative
  to the other classes and the other spaces*; scalings shared by all spaces or by
  all classes cancel.
* budget of space s: ``w_s`` (given, or ``0.5/S + 0.5 * score_s / sum(score)``),
  its share of the search's compute, not of its trials.
* allocation: the equilibrium of a Fisher market. Each space spends its budget
  ``w_s`` on class time; class c's time (its capacity) is sold at a price ``p_c``;
  a pair's value is its speed ``V[s, c] = exp(L[s, c] + align * r_s * q_c)``, where
  ``r_s`` is +1 for the top-ranked space down to -1 for the last and ``q_c`` is +1
  for the strongest class down to -1 for the weakest (``align = 0.1``: a tie-break
  that puts the highest-ranked spaces on the strongest classes while speeds are
  unknown). At equilibrium every class's time is sold, every space spends its
  budget, and a space buys only from the classes with the most trials per unit of
  price, ``V[s, c] / p_c``. This is the allocation that maximises
  ``sum_s w_s log(n_s)`` (Eisenberg-Gale), ``n_s`` the trials per second of space s:
  each class's time goes where its comparative advantage lies (a 1-core worker
  takes the kernel it runs as fast as anyone, the accelerator the kernels it runs
  8x faster), and a space cheap on a class nobody else wants gets many trials
  there instead of that class's time being spent on kernels it runs slowly. It is
  found by proportional response: each space re-splits its budget over the
  classes in proportion to the trials each bought it in the last round (at most
  ``iters`` rounds, O(S C) each, warm-started from the previous solution).
  Why budgets and not trial shares: on the benchmark's two-class pool (simulated,
  ``bench/heterogeneity.py``), fixed trial shares forced the 1-core class to run
  kernels 4-8x slower there to keep each space's share, for 1.2x the
  hardware-oblivious throughput, against about 1.6-1.8x with budgets.
* assigned pairs: (1) the spaces in rank order are cut into C consecutive blocks
  given to the classes in strength order (the top-ranked space always lands on the
  strongest class); (2) each space also gets its classes of highest comparative
  advantage until it has ``min(min_classes, C)``; (3) a class left without a space
  takes the space where its advantage is largest; (4) any pair that, in the
  equilibrium carries at least ``min_pair_share`` of the space's trials or of the
  class's time. The allocation is the equilibrium on these pairs: the small pairs
  left out give their time to the class's other spaces pro rata.
* pick weights of class c: the trials of each assigned space in column c,
  normalised, where each space gets at least ``floor / n_c`` of the class's *time*
  (not of its picks: a space the class runs 100x slower would take most of it).

Example:
    >>> import numpy as np
    >>> a = assign(np.array([3.0, 2.0, 1.0, 0.5]), np.log([[1, 8], [1, 4], [1, 2], [1, 1.0]]))
    >>> bool(a.mask.sum(axis=1).min() >= 2), a.rank.tolist()
    (True, [1, 2, 3, 4])
    >>> bool(a.weights[0, 1] > a.weights[0, 0])   # top space weighs more on the fast class
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Assignment", "assign", "baseline_trials", "guarantee_baseline", "shares_from_scores",
           "comparative_advantage"]


@dataclass(frozen=True)
class Assignment:
    """The result of :func:`assign`.

    Attributes:
        rank: 1-based rank of each space (1 = highest score).
        class_order: class indices, strongest first.
        mask: ``S x C`` bool, True where class c runs space s.
        weights: ``S x C``; column c is class c's pick distribution over spaces.
        trials: ``S x C`` expected trials per second of each pair (capacity units).
        time: ``S x C`` share of each class's capacity spent on each space.
        bids: ``S x C`` the market's bids (pass as ``warm`` to the next call).
    """

    rank: np.ndarray
    class_order: np.ndarray
    mask: np.ndarray
    weights: np.ndarray
    trials: np.ndarray
    time: np.ndarray
    bids: np.ndarray


def shares_from_scores(score: np.ndarray, floor: float = 0.5) -> np.ndarray:
    """``floor / S + (1 - floor) * score / sum(score)`` (uniform when all scores are 0)."""
    score = np.clip(np.nan_to_num(np.asarray(score, dtype=float)), 0.0, None)
    n = len(score)
    total = score.sum()
    if total <= 0:
        return np.full(n, 1.0 / n)
    return floor / n + (1.0 - floor) * score / total


def comparative_advantage(log_speed: np.ndarray) -> np.ndarray:
    """``L`` double-centred: row means and column means removed."""
    L = np.asarray(log_speed, dtype=float)
    return L - L.mean(axis=1, keepdims=True) - L.mean(axis=0, keepdims=True) + L.mean()


def baseline_trials(log_speed: np.ndarray, capacity: np.ndarray | None = None,
                    log_success: np.ndarray | None = None) -> np.ndarray:
    """Trials per second of each space under the hardware-oblivious baseline, in the
    units of :attr:`Assignment.trials` summed over classes.

    The baseline's class c draws every space with probability ``1/S``, so its trials
    take ``mean_s r[s, c]`` seconds on average (``r`` a trial's runtime, failed or not)
    and space s gets ``cap_c * p[s, c] / (S * mean_s r[s, c])`` successful ones per
    second, ``p`` the share that succeed. ``log_speed`` is ``log(p / r)`` (successful
    trials per second) and ``log_success`` is ``log p`` (default: every trial succeeds).

    Why the two apart: a class that fails every trial of one space still spends the
    runtime of those trials, not ``r / p`` (which is near infinite), so it still gives the
    other spaces a quarter of its picks each; counting ``r / p`` let the failing pair's
    near-infinite time dominate the class's mean, so the baseline of the spaces that
    class runs well came out several times too small (``bench/heterogeneity.py``'s
    failing profile) and the failing space's own included a share of a class that
    gives it nothing.

    Example:
        >>> import numpy as np
        >>> baseline_trials(np.log([[1.0], [1.0]])).tolist()   # one class, equal speeds
        [0.5, 0.5]
        >>> p = np.array([[0.5, 1.0], [1.0, 1.0]])             # class 0 fails half of space 0
        >>> baseline_trials(np.log(p), log_success=np.log(p)).tolist()
        [0.375, 0.5]
    """
    L = np.nan_to_num(np.asarray(log_speed, dtype=float))
    S, C = L.shape
    cap = np.ones(C) if capacity is None else np.clip(np.asarray(capacity, dtype=float).reshape(C), 0, None)
    cap = cap / cap.sum() if cap.sum() > 0 else np.full(C, 1.0 / C)
    ls = np.zeros_like(L) if log_success is None else np.nan_to_num(np.asarray(log_success, dtype=float))
    ls = np.minimum(ls, 0.0)
    speed = np.exp(L - L.max())                       # successful trials per second
    runtime = np.exp(ls) / speed                      # seconds per trial, failed or not
    per_pick = cap / (S * runtime.mean(axis=0))       # picks of each space per second, per class
    return (per_pick[None, :] * np.exp(ls)).sum(axis=1)


def guarantee_baseline(score: np.ndarray, log_speed: np.ndarray, capacity: np.ndarray | None = None,
                       **kwargs: object) -> Assignment:
    """:func:`assign` with ``minimum`` = :func:`baseline_trials`: every space's budget
    is raised until it gets at least the trials per second the hardware-oblivious
    baseline would give it.

    Why: the budgets follow the scores, and early on every signal (complexity,
    uncertainty, the first best losses) can point away from the space that holds the
    optimum; a budget below the baseline's rate then makes the heuristics reach the
    target later than no heuristics at all (measured on ``bench/heterogeneity.py``'s
    two-class pool: rbf, the only space with the target, got 24 trials in 90 s against
    the baseline's 40, and time to target was 0.83x). The baseline's own allocation
    is feasible, so the equilibrium can always give every space its baseline rate; the
    comparative-advantage surplus on top goes by score.

    Example:
        >>> import numpy as np
        >>> L = np.log([[1.0, 8.0], [1.0, 1.0]])     # space 0 gains 8x on class 1
        >>> a = guarantee_baseline(np.array([0.01, 1.0]), L)
        >>> bool((a.trials.sum(axis=1) >= 0.99 * baseline_trials(L)).all())
        True
    """
    return assign(score, log_speed, capacity, minimum=baseline_trials(log_speed, capacity),
                  **kwargs)  # type: ignore[arg-type]


def _market(V: np.ndarray, budget: np.ndarray, cap: np.ndarray, iters: int,
            warm: np.ndarray | None = None, tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """``(time, bids)`` at the equilibrium of the Fisher market (see the module
    docstring), by proportional response: every space splits its budget over the
    classes in proportion to the trials each bought it last round; a class's price is
    the sum of its bids and its time goes to the bidders pro rata. Starts from
    ``warm`` (the last solution's bids, mixed with a little of the even split so no
    pair is stuck at 0), stops after ``iters`` rounds or when no bid moves by more
    than ``tol`` of the largest budget."""
    even = cap[None, :] * budget[:, None]
    if warm is not None and warm.shape == V.shape and np.isfinite(warm).all():
        bids = 0.9 * warm / np.maximum(warm.sum(axis=1, keepdims=True), 1e-300) * budget[:, None] + 0.1 * even
    else:
        bids = even
    eps = tol * float(budget.max())
    for _ in range(iters):
        x = bids * (cap / np.maximum(bids.sum(axis=0), 1e-300))
        x *= V
        new = x * (budget / np.maximum(x.sum(axis=1), 1e-300))[:, None]
        done = float(np.abs(new - bids).max()) < eps
        bids = new
        if done:
            break
    return bids * (cap / np.maximum(bids.sum(axis=0), 1e-300)), bids


def _raise_to_minimum(V: np.ndarray, w: np.ndarray, cap: np.ndarray, speed: np.ndarray,
                      need: np.ndarray, iters: int, rounds: int, free: np.ndarray,
                      bids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multiply the budget of each space below ``need`` trials by its shortfall and
    re-solve the market (warm), at most ``rounds`` times; ``w`` is updated in place."""
    for _ in range(rounds):
        short = need / np.maximum((free * speed).sum(axis=1), 1e-300)
        if short.max() <= 1.0 + 1e-3:
            break
        w *= np.maximum(short, 1.0)
        w /= w.sum()
        # Warm from the last bids, a few rounds move the equilibrium to the new budgets.
        free, bids = _market(V, w, cap, max(5, iters // 4), bids)
    return free, bids


def _inputs(score: np.ndarray, log_speed: np.ndarray, capacity: np.ndarray | None,
            share: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``assign``'s arguments checked and normalised: scores, log speeds, capacity and
    budget shares (both summing to 1)."""
    score = np.nan_to_num(np.asarray(score, dtype=float).reshape(-1))
    L = np.nan_to_num(np.asarray(log_speed, dtype=float))
    S = len(score)
    if S == 0:
        raise ValueError("assign needs at least one search space")
    if L.ndim != 2 or L.shape[0] != S or L.shape[1] == 0:
        raise ValueError(f"log_speed must be {S} x C with C >= 1, got shape {L.shape}")
    C = L.shape[1]
    cap = np.ones(C) if capacity is None else np.asarray(capacity, dtype=float).reshape(C)
    cap = np.where(cap > 0, cap, 0.0)
    cap = cap / cap.sum() if cap.sum() > 0 else np.full(C, 1.0 / C)
    w = shares_from_scores(score) if share is None else np.asarray(share, dtype=float).reshape(S)
    w = np.clip(np.nan_to_num(w), 1e-9, None)
    return score, L, cap, w / w.sum()


def _first_mask(L: np.ndarray, order: np.ndarray, class_order: np.ndarray, min_classes: int) -> np.ndarray:
    """Steps (1)-(3) of the module doc: rank blocks in strength order, the classes of
    each space's comparative advantage, and no class left idle."""
    S, C = L.shape
    A = comparative_advantage(L)
    mask = np.zeros((S, C), dtype=bool)
    for i, s in enumerate(order):                       # (1) rank blocks -> strength order
        mask[s, class_order[i * C // S]] = True
    need = min(min_classes, C)
    by_adv = np.argsort(-A, axis=1, kind="stable")
    for s in range(S):                                  # (2) comparative advantage
        for c in by_adv[s]:
            if mask[s].sum() >= need:
                break
            mask[s, c] = True
    for c in np.flatnonzero(~mask.any(axis=0)):         # (3) no idle class
        mask[int(np.argmax(A[:, c])), c] = True
    return mask


def _class_weights(trials: np.ndarray, speed: np.ndarray, mask: np.ndarray, floor: float) -> np.ndarray:
    """Each class's pick weights over its assigned spaces, with a floor on its *time*: a
    pick of a space the class runs 100x slower costs 100x the time, so a floor on picks
    would spend most of the class's time there."""
    weights = np.zeros_like(trials)
    for c in range(trials.shape[1]):
        m = mask[:, c]
        col = trials[m, c] / speed[m, c]
        tot = col.sum()
        t = col / tot if tot > 0 else np.full(m.sum(), 1.0 / m.sum())
        p = np.maximum(t, floor / m.sum()) * speed[m, c]
        weights[m, c] = p / p.sum()
    return weights


def assign(score: np.ndarray, log_speed: np.ndarray, capacity: np.ndarray | None = None, *,
           share: np.ndarray | None = None, min_classes: int = 2,
           align: float = 0.1, min_pair_share: float = 0.1, floor: float = 0.05,
           iters: int = 100, warm: np.ndarray | None = None,
           minimum: np.ndarray | None = None, minimum_rounds: int = 20) -> Assignment:
    """Rank spaces, pick their classes and each class's pick weights (see the module doc).

    Args:
        score: S scores, higher first.
        log_speed: S x C log trials per second per slot (any common offset).
        capacity: C relative capacities (slots or busy time); default equal.
        share: S budgets (shares of the compute); default :func:`shares_from_scores`.
        iters: proportional-response rounds at most.
        warm: a previous result's ``bids`` to start from (the scheduler re-solves
            every few results; warm, a few rounds suffice).
        minimum: S trials per second (in the units of ``Assignment.trials``) each
            space must get: budgets below it are multiplied by their shortfall and the
            market re-solved (warm), at most ``minimum_rounds`` times.
    """
    score, L, cap, w = _inputs(score, log_speed, capacity, share)
    S, C = L.shape
    order = np.argsort(-score, kind="stable")
    rank = np.empty(S, dtype=int)
    rank[order] = np.arange(1, S + 1)
    class_order = np.argsort(-L.mean(axis=0), kind="stable")
    speed = np.exp(L - L.max())
    if C == 1:
        mask = np.ones((S, 1), dtype=bool)
        trials = (w * cap[0])[:, None]
        return Assignment(rank, class_order, mask, w[:, None].copy(), trials, w[:, None].copy(),
                          w[:, None].copy())

    r = 1.0 - 2.0 * (rank - 1) / max(1, S - 1)          # +1 top ... -1 last
    q = np.empty(C)
    q[class_order] = 1.0 - 2.0 * np.arange(C) / (C - 1)  # +1 strongest ... -1 weakest
    V = speed * np.exp(align * np.outer(r, q))
    mask = _first_mask(L, order, class_order, min_classes)
    free, bids = _market(V, w, cap, iters, warm)         # (4) big pairs of the equilibrium
    low = None if minimum is None else np.asarray(minimum, dtype=float).reshape(S)
    if low is not None:
        free, bids = _raise_to_minimum(V, w, cap, speed, low, iters, minimum_rounds, free, bids)
    full = free * speed
    mask |= full >= min_pair_share * full.sum(axis=1, keepdims=True)
    mask |= free >= min_pair_share * free.sum(axis=0, keepdims=True)
    if low is not None:  # the same on the assigned pairs only, which the allocation uses
        Vm = np.where(mask, V, 0.0)
        free, bids = _raise_to_minimum(Vm, w, cap, speed, low, iters, minimum_rounds,
                                       *_market(Vm, w, cap, iters, bids))

    # The equilibrium on the assigned pairs: pairs left out carry little (step 4), so
    # their time goes to the class's other spaces pro rata.
    time = free * mask
    time *= cap / np.maximum(time.sum(axis=0), 1e-300)
    trials = time * speed
    weights = _class_weights(trials, speed, mask, floor)
    share_of_class = time / np.where(cap > 0, cap, 1.0)[None, :]
    return Assignment(rank, class_order, mask, weights, trials, share_of_class, bids)
