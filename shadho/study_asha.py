"""A study's multi-fidelity steps: ask ASHA for the next rung runs, take their results.

:func:`new_items` turns :func:`shadho.asha.next_job` into trials: a promotion runs the
same parameters at the next budget, continuing from the configuration's checkpoint; a
new configuration comes from the sampler, fitted on the highest rung of its space that
has enough results (BOHB-style, :meth:`RungBook.sampling_history`). :func:`budgets`
gives a task's trials their :class:`~shadho.rung_task.Budget`, :func:`take_results`
files finished rung runs and their checkpoints. Each rung run is one trial, so
``max_tasks`` counts rung runs.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from shadho.rung_task import Budget
from shadho_checkpoint import NOT_KEPT
from shadho.spaces import SearchSpace
from shadho.store import TrialUpdate
from shadho.trial import TrialState

if TYPE_CHECKING:
    from shadho.study import Study

__all__ = ["new_items", "budgets", "take_results", "end_of_run", "check_same_fidelity"]

log = logging.getLogger("shadho")

Item = tuple[int, dict[str, Any], tuple[float, ...]]


def _startup(sampler: Any, space: SearchSpace) -> int:
    """The sampler's start-up count for ``space`` (10 for samplers without one)."""
    fn = getattr(sampler, "startup", None)
    return int(fn(space)) if callable(fn) else 10


def new_items(study: "Study", class_key: str | None, n: int) -> tuple[SearchSpace, list[Item]]:
    """Up to ``n`` rung runs of one search space for a free slot of ``class_key``: the
    promotions ASHA allows first, then new configurations (at least one run)."""
    book, fidelity = study.rungs, study.settings.fidelity
    assert book is not None and fidelity is not None
    pending = set(study.live_ids()) | {r[0] for r in study.requeued}
    space: SearchSpace | None = None
    items: list[Item] = []
    for _ in range(n):
        job = book.next_job(pending | {t[0] for t in items})
        if job.config is None:
            if space is None:
                space = study.space_by_id[study.scheduler.pick(class_key, study._rng)]
            hist = book.sampling_history(space.id, _startup(study.sampler, space))
            x = np.asarray(study.sampler.suggest(space, hist, study.proposal_rng(space)), dtype=float)
            params, xt = space.params(x), tuple(float(v) for v in x)
        else:
            sid, params, xt = book.configs[job.config]
            if space is not None and sid != space.id:
                break  # one task holds one space; this promotion goes to the next slot
            space = study.space_by_id[sid]
        tid = study.store.add_rung_trial(study.exp, space.id, params, xt, class_key, rung=job.rung,
                                         budget=fidelity.budget(job.rung), config=job.config,
                                         bracket=job.bracket)
        book.add(tid, tid if job.config is None else job.config, job.rung, job.bracket, space.id, params, xt)
        study.histories[space.id].add_pending(tid, xt)
        study.created += 1
        study._attempts[tid] = 0
        items.append((tid, params, xt))
    assert space is not None
    return space, items


def budgets(study: "Study", trial_ids: Sequence[int]) -> tuple[Budget, ...]:
    """Each trial's budget, the checkpoint it continues from and where its own goes."""
    book, fidelity, ck = study.rungs, study.settings.fidelity, study.checkpoints
    assert book is not None and fidelity is not None and ck is not None
    out = []
    for tid in trial_ids:
        at = book.of_trial[tid]
        previous = fidelity.budget(at.rung - 1) if at.rung > at.bracket else 0
        out.append(Budget(fidelity.name, fidelity.budget(at.rung), ck.archive_for(at.config), ck.incoming(tid),
                          ck.limit_bytes, previous))
    return tuple(out)


def take_results(study: "Study", updates: Sequence[TrialUpdate]) -> None:
    """File finished rung runs (after the store has them): the rung result for ASHA and
    the samplers, and the checkpoint the run left (kept unless it was the top rung)."""
    book, ck = study.rungs, study.checkpoints
    assert book is not None and ck is not None
    top = book.fidelity.n_rungs - 1
    for u in updates:
        if not u.state.finished:
            continue
        at = book.finish(u.trial_id, u.loss if u.state == TrialState.COMPLETE else None)
        if at is None:
            continue
        incoming = ck.incoming(u.trial_id)
        if isinstance(u.results, dict) and u.results.get(NOT_KEPT):
            ck.refused.append((at.config, str(u.results[NOT_KEPT])))  # refused on the worker
        if u.state == TrialState.COMPLETE and at.rung < top and os.path.isfile(incoming) \
                and os.path.getsize(incoming) > 0:  # empty: the run left no checkpoint
            ck.accept(at.config, incoming)  # refused (damaged, too big): the older one (or none) serves
            ck.enforce_total(book.rank())
        else:
            if at.rung >= top and u.state == TrialState.COMPLETE:
                ck.discard(at.config)  # finished: nothing will continue it
            if os.path.exists(incoming):
                os.unlink(incoming)


def end_of_run(study: "Study", quiet: bool = True) -> None:
    """A run ends: say the budget spent; when the search is over (no budget left, nothing
    waiting) remove its checkpoints (a search stopped by its timeout keeps them for resume)."""
    if study.rungs is None or study.checkpoints is None:
        return
    if not quiet:
        log.warning("shadho: %g %s spent in all over %d rung runs; checkpoints hold %d bytes",
                    study.rungs.budget_spent(), study.rungs.fidelity.name, len(study.rungs.results),
                    study.checkpoints.total_bytes())
    if study.checkpoints.report():  # said even when quiet: a search that restarts rungs should know why
        log.warning("shadho: %s", study.checkpoints.report())
    if study.done():
        study.checkpoints.clear()


def check_same_fidelity(store: Any, exp_key: str, fidelity: Any) -> None:
    """ConfigError when ``exp_key`` was searched with another fidelity (its rung records
    would mean other budgets); a fidelity added to a plain search is allowed (ASHA leaves
    the earlier trials out)."""
    from shadho.errors import ConfigError
    from shadho.fidelity import Fidelity

    exp = store.experiment_id(exp_key)
    before = store.settings(exp).get("fidelity") if exp is not None else None
    if before is None:
        return
    old = Fidelity.of(before)
    if fidelity is None or (old.name, old.budgets) != (fidelity.name, fidelity.budgets):
        now = "none" if fidelity is None else f"{fidelity.name} {fidelity.budgets}"
        raise ConfigError(f"experiment {exp_key!r} was searched with fidelity {old.name} {old.budgets}, "
                          f"now {now}: its rung records would mean other budgets; resume with "
                          f"fidelity={before!r} or use a new exp_key")
