"""The figures of ``shadho report`` about hyperparameters: loss against each
hyperparameter of a search space, and how much each hyperparameter matters.

Importance is the permutation importance (scikit-learn's
``sklearn.inspection.permutation_importance``) of a random forest
(``RandomForestRegressor``) fitted to the completed trials of one space: how much the
forest's fit of the loss worsens when one hyperparameter's values are shuffled.
Categorical values (``None`` included) are coded as integers first.
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

from shadho.formatting import flatten, short_labels
from shadho.report_data import ReportData
from shadho.report_plots import colorbar, empty, entry, figure, positive_log
from shadho.trial import TrialState, best_of, completed

_CATEGORICAL = ("choice", "exhaustive")
_LOG = ("log", "ln_", "log10", "log2")
#: Completed trials a space needs before its importance is estimated.
MIN_TRIALS_FOR_IMPORTANCE = 8
#: The most recent completed trials the forest is fitted to (keeps a live page quick).
MAX_TRIALS_FOR_IMPORTANCE = 1000
IMPORTANCE_METHOD = ("permutation importance of a random forest fitted to the completed "
                     "trials' losses (scikit-learn RandomForestRegressor, 100 trees, "
                     "permutation_importance with 10 repeats, scored by R² on those trials; "
                     f"the latest {MAX_TRIALS_FOR_IMPORTANCE} trials of a space at most)")


def label(value: Any) -> str:
    """How a categorical value is written on an axis: ``None`` as ``None``, not ``null``.

    Example:
        >>> [label(v) for v in (None, True, 'rbf', [1, 2])]
        ['None', 'True', 'rbf', '[1, 2]']
    """
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def is_categorical(dim: dict[str, Any], values: Sequence[Any]) -> bool:
    if dim.get("type") in _CATEGORICAL:
        return True
    return any(isinstance(v, (str, bool, list, dict)) or v is None for v in values)


def _categories(dim: dict[str, Any], values: Sequence[Any]) -> list[str]:
    cats = [label(v) for v in dim.get("values", [])]
    for v in values:
        if label(v) not in cats:
            cats.append(label(v))
    return cats


def _positions(dim: dict[str, Any], values: Sequence[Any]) -> tuple[list[float], list[str] | None]:
    """x positions of ``values`` and, for a categorical dimension, the category names."""
    if not is_categorical(dim, values):
        return [float(v) for v in values], None
    cats = _categories(dim, values)
    pos = {c: i for i, c in enumerate(cats)}
    # A small deterministic spread so equal values stay visible.
    return [pos[label(v)] + ((k * 0.618) % 1 - 0.5) * 0.3 for k, v in enumerate(values)], cats


def _param_panel(ax: Any, norm: Any, dim: dict[str, Any], key: str, done: list[Any],
                 failed: list[Any], log_y: bool) -> None:
    flat_done = [flatten(t.params).get(key) for t in done]
    flat_fail = [flatten(t.params).get(key) for t in failed]
    xs, cats = _positions(dim, flat_done + flat_fail)
    xd, xf = xs[:len(done)], xs[len(done):]
    if cats is not None:
        ax.set_xticks(range(len(cats)), cats, fontsize="small", rotation=30 if len(cats) > 4 else 0)
        ax.set_xlim(-0.6, len(cats) - 0.4)
    elif str(dim.get("type", "")).startswith(_LOG) and xs and min(xs) > 0:
        ax.set_xscale("log")
    if done:
        ax.scatter(xd, [t.loss for t in done], c=[t.id for t in done], cmap="viridis", norm=norm,
                   s=16, alpha=0.9)
        b = done.index(best_of(done))
        ax.scatter([xd[b]], [done[b].loss], marker="*", s=200, color="gold", edgecolors="k", zorder=4,
                   label="best")
        if log_y:
            ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no completed trials yet", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
        ax.set_yticks([])
    if failed:
        ax.scatter(xf, [0.97] * len(xf), marker="x", color="C3", s=20,
                   transform=ax.get_xaxis_transform(), label=f"failed ({len(failed)})")
        # Markers drawn in axes coordinates do not widen the x range by themselves.
        ax.update_datalim([(x, 1.0) for x in xf], updatey=False)
        ax.autoscale_view()
    if done or failed:
        ax.legend(loc="best", fontsize="x-small")
    ax.margins(y=0.12)
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)


def plot_params(data: ReportData, space: dict[str, Any], file: str) -> dict[str, Any]:
    """Loss vs each hyperparameter of ``space``: one panel per hyperparameter."""
    dims: dict[str, dict[str, Any]] = space.get("dims", {})
    keys = list(dims)
    names = short_labels(keys)
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig = figure(4.6 * ncols + 0.5, 3.4 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for extra in axes[len(keys):]:
        fig.delaxes(extra)
    mine = [t for t in data.trials if t.space_id == space["id"]]
    done = completed(mine)
    failed = [t for t in mine if t.state == TrialState.FAILED]
    log_y = positive_log([t.loss for t in done])
    titles = []
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    ids = [t.id for t in done] or [0, 1]
    norm = Normalize(vmin=min(ids), vmax=max(max(ids), min(ids) + 1))
    for ax, key in zip(axes, keys):
        titles.append(names[key])
        ax.set_title(names[key])
        if not done and not failed:
            empty(ax, "no finished trials yet")
            continue
        _param_panel(ax, norm, dims[key], key, done, failed, log_y)
    if done:
        colorbar(fig, ScalarMappable(norm, "viridis"), list(axes[:len(keys)]), "trial number")
    fig.suptitle(f"loss vs hyperparameters: {space['name']}")
    caption = (f"Search space {space['name']}: the loss of each completed trial against each "
               "hyperparameter, coloured by trial number (dark: early, yellow: late) so you can "
               "see where the sampler moved; the gold star is this space's best trial; red "
               "crosses at the top are failed trials. Categorical values (None included) are "
               "labelled on the axis.")
    out = entry(fig, file, "params", titles, caption)
    out.update(space=space["name"], space_id=space["id"])
    return out


# ---------------------------------------------------------------- importance

def importance(space: dict[str, Any], trials: Sequence[Any]) -> list[tuple[str, float, float]] | None:
    """(hyperparameter, mean importance, std) per dimension of ``space``, most important first;
    None with fewer than :data:`MIN_TRIALS_FOR_IMPORTANCE` completed trials."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    dims: dict[str, dict[str, Any]] = space.get("dims", {})
    done = completed([t for t in trials if t.space_id == space["id"]])
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE or not dims:
        return None
    done = done[-MAX_TRIALS_FOR_IMPORTANCE:]
    columns = []
    for key, dim in dims.items():
        values = [flatten(t.params).get(key) for t in done]
        xs, cats = _positions(dim, values)
        if cats is not None:
            codes = {c: i for i, c in enumerate(cats)}
            xs = [float(codes[label(v)]) for v in values]
        elif str(dim.get("type", "")).startswith(_LOG) and min(xs) > 0:
            xs = [math.log10(x) for x in xs]
        columns.append(xs)
    X = [list(row) for row in zip(*columns)]
    y = [t.loss for t in done]
    forest = RandomForestRegressor(n_estimators=100, random_state=0, min_samples_leaf=2)
    forest.fit(X, y)
    result = permutation_importance(forest, X, y, n_repeats=10, random_state=0)
    names = short_labels(list(dims))
    rows = [(names[k], float(m), float(s))
            for k, m, s in zip(dims, result.importances_mean, result.importances_std)]
    return sorted(rows, key=lambda r: -r[1])


def plot_importance(data: ReportData, spaces: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One panel per search space with hyperparameters (one placeholder panel when none)."""
    n = max(1, len(spaces))
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = figure(4.6 * ncols + 0.5, 0.4 + 2.9 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for extra in axes[n:]:
        fig.delaxes(extra)
    titles = []
    if not spaces:
        empty(axes[0], "no search space has hyperparameters")
        titles.append("parameter importance")
    try:
        import sklearn  # noqa: F401
        missing = None
    except ImportError:
        missing = "needs scikit-learn:\npip install scikit-learn"
    for ax, space in zip(axes, spaces):
        titles.append(space["name"])
        ax.set_title(space["name"])
        rows = None if missing else importance(space, data.trials)
        if rows is None:
            empty(ax, missing or f"fewer than {MIN_TRIALS_FOR_IMPORTANCE} completed trials")
            continue
        ax.barh([r[0] for r in rows], [r[1] for r in rows], xerr=[r[2] for r in rows],
                color=f"C{data.space_index(space['id']) % 10}", alpha=0.8)
        ax.invert_yaxis()
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_xlabel("drop in R² of the forest's fit when shuffled")
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("parameter importance per search space")
    caption = ("Which hyperparameters matter, per search space. Method: " + IMPORTANCE_METHOD +
               ". A long bar means shuffling that hyperparameter makes the forest's fit of the "
               "loss much worse (a large drop in R²); bars near zero mean it barely changes the loss in this search. "
               "Error bars: spread over the repeats. Spaces with fewer than "
               f"{MIN_TRIALS_FOR_IMPORTANCE} completed trials are left out.")
    return entry(fig, "importance.png", "importance", titles, caption)
