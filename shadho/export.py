"""Trials as flat rows: the CSV export and ``ResultsStore.to_dataframe``.

Columns come in groups, left to right:

1. ids and state: ``id, state, searchspace, space_id, compute_class, worker, attempts, error``;
2. parameters, search space by search space (in the order the spaces were registered),
   as dotted ``params.<path>`` columns;
3. metrics: ``loss`` and the objective's other results as ``results.<path>``;
4. times: each epoch-seconds column followed by its ISO 8601 (UTC) twin, then ``runtime_s``.

A parameter that does not apply to a trial's search space is an empty cell; a parameter
whose value is ``None`` is written ``None``, so the two never look alike. Other missing
values (the loss of a failed trial, the worker of a waiting one) are empty.

Example:
    >>> from shadho.trial import Trial, TrialState
    >>> t = Trial(id=1, searchspace='a', space_id='s1', state=TrialState.COMPLETE,
    ...           params={'x': None}, loss=0.5, finish_time=0.0)
    >>> rows, cols = trial_rows([t], ['s1'])
    >>> rows[0]['params.x'], rows[0]['finish_time_iso']
    ('None', '1970-01-01T00:00:00.000+00:00')
"""
from __future__ import annotations

import csv
import json
import os
from typing import Any, Iterable, Sequence

from shadho.formatting import flatten, iso_time
from shadho.trial import Trial

__all__ = ["trial_row", "trial_rows", "write_csv", "iso_time", "ID_COLUMNS", "TIME_COLUMNS", "NONE_TEXT"]

ID_COLUMNS = ("id", "state", "searchspace", "space_id", "compute_class", "worker", "attempts", "error")
TIME_COLUMNS = ("submit_time", "start_time", "finish_time")

#: What a parameter whose value is None is written as (an empty cell means "does not apply").
NONE_TEXT = "None"


def _cell(value: Any, none: str | None) -> Any:
    if value is None:
        return none
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _row(t: Trial, none_param: str | None) -> tuple[dict[str, Any], list[str], list[str]]:
    row: dict[str, Any] = {c: getattr(t, c) for c in ID_COLUMNS}
    row["state"] = t.state.value
    params = flatten(t.params, "params", keep_empty=True)
    results = flatten(t.results, "results", keep_empty=True)
    row.update({k: _cell(v, none_param) for k, v in params.items()})
    row["loss"] = t.loss
    row.update({k: _cell(v, None) for k, v in results.items()})
    for c in TIME_COLUMNS:
        row[c] = getattr(t, c)
        row[f"{c}_iso"] = iso_time(getattr(t, c))
    row["runtime_s"] = t.runtime
    return row, list(params), list(results)


def trial_row(t: Trial) -> dict[str, Any]:
    """One trial as a flat dict (``params.*``, ``loss``, ``results.*``, times), values as they are."""
    return _row(t, None)[0]


def trial_rows(trials: Iterable[Trial], space_order: Sequence[str],
               none_param: str | None = NONE_TEXT) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows (one per trial) and the grouped column order (see the module docstring).

    ``none_param`` is what a parameter whose value is None becomes (``'None'`` for CSV,
    None for a DataFrame).
    """
    rows, per_space, results = [], {}, []
    for t in trials:
        row, pcols, rcols = _row(t, none_param)
        rows.append(row)
        cols = per_space.setdefault(t.space_id, [])
        cols.extend(c for c in pcols if c not in cols)
        results.extend(c for c in rcols if c not in results)
    order = list(space_order) + sorted(set(per_space) - set(space_order))
    params: list[str] = []
    for sid in order:
        params.extend(c for c in per_space.get(sid, []) if c not in params)
    times = [c for base in TIME_COLUMNS for c in (base, f"{base}_iso")] + ["runtime_s"]
    return rows, [*ID_COLUMNS, *params, "loss", *results, *times]


def write_csv(path: str | os.PathLike[str], trials: Iterable[Trial], space_order: Sequence[str]) -> None:
    """Write the trials as CSV to ``path`` atomically (temporary file, then rename)."""
    rows, cols = trial_rows(trials, space_order)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, restval="")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
