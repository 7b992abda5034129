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

from shadho.asha import Job
from shadho.heuristics.rung_costs import RungRouter
from shadho.rung_task import Budget
from shadho_checkpoint import NOT_KEPT
from shadho.spaces import SearchSpace
from shadho.store import TrialUpdate
from shadho.trial import TrialState

if TYPE_CHECKING:
    from shadho.study import Study

__all__ = ["new_items", "budgets", "take_results", "end_of_run", "check_same_fidelity", "router"]

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
    routes = router(study)
    for _ in range(n):
        if routes is None or routes.neutral:
            job = book.next_job(pending | {t[0] for t in items})
        else:
            job, space = _routed_job(study, routes, pending | {t[0] for t in items}, class_key, space)
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


def _routed_job(study: "Study", routes: RungRouter, busy: set[int], class_key: str | None,
                space: SearchSpace | None) -> tuple[Job, SearchSpace | None]:
    """The job a hardware-aware slot of ``class_key`` takes among those ASHA allows (of
    ``space`` only once the task has one), and the task's space when it is a new one."""
    book = study.rungs
    assert book is not None
    jobs = book.candidates(busy)
    if space is not None:
        jobs = [j for j in jobs if j.config is None or book.configs[j.config][0] == space.id]
    picked: list[SearchSpace] = [space] if space is not None else []

    def new_space() -> SearchSpace:  # picked only when asked: a pick counts toward the scheduler's parallelism
        if not picked:
            picked.append(study.space_by_id[study.scheduler.pick(class_key, study._rng)])
        return picked[0]

    job = routes.choose(jobs, class_key, lambda j: new_space().id if j.config is None else book.configs[j.config][0])
    return job, (new_space() if job.config is None else space)


def router(study: "Study") -> RungRouter | None:
    """The study's hardware-aware rung router, re-planned every ``reassign_every`` rung
    results (None with the heuristics off or one class: ASHA's own order). Built on first
    use from the finished rung runs in the store, so a resumed master plans as before."""
    scheduler, book = study.scheduler, study.rungs
    assert book is not None
    if scheduler.baseline or len(scheduler.keys) < 2:
        return None
    routes: RungRouter | None = study.rung_router
    if routes is None:
        routes = RungRouter(book.fidelity, [s.id for s in study.spaces], list(scheduler.keys))
        for t in study.store.iter_trials(study.exp):
            if t.state == TrialState.COMPLETE and t.id in book.of_trial:
                routes.observe(t.space_id, t.compute_class, book.units(t.id), t.runtime)
        study.rung_router = routes
        _plan(study, routes)
    elif routes.due(study.settings.reassign_every):
        _plan(study, routes)
    return routes


def _plan(study: "Study", routes: RungRouter) -> None:
    book = study.rungs
    assert book is not None
    ids = [s.id for s in study.spaces]
    pending = set(study.live_ids()) | {r[0] for r in study.requeued}
    routes.solve(book.space_shares(ids), book.rung_counts(ids, pending))


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
        if study.rung_router is not None and u.state == TrialState.COMPLETE and u.start_time and u.finish_time:
            study.rung_router.observe(book.configs[at.config][0], u.compute_class, book.units(u.trial_id),
                                      u.finish_time - u.start_time)
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
        if study.rung_router is not None:
            log.warning("shadho: %s", study.rung_router.describe())
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
