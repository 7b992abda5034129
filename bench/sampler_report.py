"""Tables of the sampler benchmark: median regret, significance, ranks, category shares.

A result row is ``(problem, sampler, seed, regret, on_best_category, seconds)``;
``on_best_category`` is None for problems without a category of the optimum.

* wins/ties/losses: per problem, the reference sampler against each other one, by a
  two-sided Mann-Whitney U test on the final regrets of all seeds (p < 0.05 and the
  lower median wins; otherwise a tie);
* mean rank: samplers ranked by median regret on each problem (1 = best, ties share),
  averaged over the problems of a group;
* ratio: geometric mean over the problems of (median regret / the baseline's median
  regret), regrets floored at 1e-8 (below 1: better than the baseline of the same run).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np
from scipy.stats import mannwhitneyu, rankdata

Row = tuple[str, str, int, float, Any, float]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def _table(rows: Sequence[Row]) -> dict[str, dict[str, np.ndarray]]:
    by: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for prob, sampler, _seed, regret, _cat, _dt in rows:
        by[prob][sampler].append(regret)
    return {p: {s: np.asarray(v, float) for s, v in d.items()} for p, d in by.items()}


def compare(a: np.ndarray, b: np.ndarray, alpha: float = 0.05) -> str:
    """'win' / 'tie' / 'loss' of regrets ``a`` against ``b`` (lower is better)."""
    if len(a) < 2 or len(b) < 2 or np.allclose(np.median(a), np.median(b), rtol=1e-9, atol=1e-12):
        return "tie"
    if np.ptp(np.concatenate([a, b])) == 0:
        return "tie"
    p = mannwhitneyu(a, b, alternative="two-sided").pvalue
    if p >= alpha:
        return "tie"
    return "win" if np.median(a) < np.median(b) else "loss"


def group_summary(rows: Sequence[Row], problems: list[str], samplers: list[str], ref: str,
                  baseline: str) -> list[str]:
    """W/T/L of ``ref`` against each sampler, mean ranks, ratios to ``baseline``."""
    t = _table(rows)
    have = [s for s in samplers if all(s in t[p] for p in problems)]
    ranks = {s: [] for s in have}
    ratios: dict[str, list[float]] = {s: [] for s in have}
    for p in problems:
        med = np.array([np.median(t[p][s]) for s in have])
        for s, r in zip(have, rankdata(med)):
            ranks[s].append(float(r))
        if baseline in t[p]:
            base = max(float(np.median(t[p][baseline])), 1e-8)
            for s, m in zip(have, med):
                ratios[s].append(max(float(m), 1e-8) / base)
    out = [f"  {'sampler':<20}{'mean rank':>10}{'ratio to ' + baseline:>24}"
           f"{'  ' + ref + ' W/T/L (MWU p<0.05)':>34}{'median W/T/L':>16}"]
    for s in sorted(have, key=lambda s: np.mean(ranks[s])):
        wtl = {"win": 0, "tie": 0, "loss": 0}
        med_wtl = {"win": 0, "tie": 0, "loss": 0}
        if s != ref and ref in have:
            for p in problems:
                wtl[compare(t[p][ref], t[p][s])] += 1
                a, b = np.median(t[p][ref]), np.median(t[p][s])
                med_wtl["tie" if np.isclose(a, b, rtol=1e-9, atol=1e-12) else
                        "win" if a < b else "loss"] += 1
            cell = f"{wtl['win']}/{wtl['tie']}/{wtl['loss']}"
            mcell = f"{med_wtl['win']}/{med_wtl['tie']}/{med_wtl['loss']}"
        else:
            cell = mcell = "-"
        ratio = float(np.exp(np.mean(np.log(ratios[s])))) if ratios[s] else float("nan")
        out.append(f"  {s:<20}{np.mean(ranks[s]):>10.2f}{ratio:>24.3f}{cell:>34}{mcell:>16}")
    return out


def regret_table(rows: Sequence[Row], problems: list[str], samplers: list[str]) -> list[str]:
    t = _table(rows)
    cols = [s for s in samplers if any(s in t[p] for p in problems)]
    w = max(12, *(len(s) + 2 for s in cols))
    out = [f"{'problem':<22}" + "".join(f"{s:>{w}}" for s in cols)]
    for p in problems:
        cells = [(_fmt(float(np.median(t[p][s]))) if s in t[p] else "-") for s in cols]
        out.append(f"{p:<22}" + "".join(f"{c:>{w}}" for c in cells))
    return out


def category_table(rows: Sequence[Row], problems: list[str], samplers: list[str]) -> list[str]:
    """Share of seeds whose best trial is in the optimum's category."""
    hits: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for prob, sampler, _seed, _regret, cat, _dt in rows:
        if cat is not None:
            hits[(prob, sampler)].append(bool(cat))
    cols = [s for s in samplers if any((p, s) in hits for p in problems)]
    w = max(12, *(len(s) + 2 for s in cols))
    out = [f"{'problem':<22}" + "".join(f"{s:>{w}}" for s in cols)]
    tot: dict[str, list[bool]] = defaultdict(list)
    for p in problems:
        cells = []
        for s in cols:
            h = hits.get((p, s), [])
            tot[s] += h
            cells.append(f"{sum(h)}/{len(h)}" if h else "-")
        out.append(f"{p:<22}" + "".join(f"{c:>{w}}" for c in cells))
    out.append(f"{'all (share)':<22}" + "".join(
        f"{(100 * np.mean(tot[s]) if tot[s] else float('nan')):>{w - 1}.0f}%" for s in cols))
    return out


def seconds(rows: Sequence[Row]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for _p, s, _seed, _r, _c, dt in rows:
        out[s] += dt
    return dict(out)
