"""Resuming an experiment (:func:`open_store` opens or resumes it in its results file),
also when its spec changed, and reading results by the current spec.

A search space's id is a hash of its definition, so a changed spec gives new ids. On
resume the master says what changed (:func:`report_spec_changes`): spaces added, removed
(their trials stay in the file, readable, but no longer sampled) and changed (same name,
new definition: the old trials stay under the old definition). ``best`` and ``shadho
status`` follow the spaces of the current spec; ``best_of(all_spaces=True)`` and
``collect(..., all_spaces=True)`` see every trial.

Example:
    >>> from shadho import spaces
    >>> old = [{'id': 'a1', 'name': 'm/svm'}, {'id': 'b1', 'name': 'knn'}]
    >>> new = spaces.split({'m': spaces.scope(exclusive=True, svm={'C': spaces.uniform(0, 2)},
    ...                                        tree={'d': spaces.randint(1, 9)})})
    >>> spec_changes(old, new)
    {'added': ['m/tree'], 'changed': ['m/svm'], 'removed': ['knn']}
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Collection, Sequence

if TYPE_CHECKING:
    from shadho.compute import ComputeClass
    from shadho.settings import SearchSettings
    from shadho.spaces import SearchSpace
    from shadho.store import ResultsStore

log = logging.getLogger("shadho")


def spec_changes(old: Sequence[dict[str, Any]], new: Sequence[Any]) -> dict[str, list[str]]:
    """Names of the spaces ``added``, ``removed`` and ``changed`` (same name, new id) between
    the stored spaces ``old`` (dicts with ``id``, ``name``) and the current ``new`` ones."""
    old_ids, new_ids = {s["id"] for s in old}, {s.id for s in new}
    gone = {s["name"] for s in old if s["id"] not in new_ids}
    fresh = {s.name for s in new if s.id not in old_ids}
    return {"added": sorted(fresh - gone), "changed": sorted(gone & fresh),
            "removed": sorted(gone - fresh - {s.name for s in new})}


def previous_space_ids(store: Any, exp_key: str) -> set[str] | None:
    """The space ids the last master of ``exp_key`` ran with (read before reopening it)."""
    exp = store.experiment_id(exp_key)
    return None if exp is None else current_space_ids(store, exp)


def report_spec_changes(store: Any, exp: int, exp_key: str, new: Sequence[Any],
                        previous: set[str] | None = None) -> dict[str, list[str]]:
    """Log (warning) what changed in the spec of ``exp`` since the last run (``previous``: its
    space ids; None: since the spaces were first registered)."""
    old = [s for s in store.spaces(exp) if previous is None or s["id"] in previous]
    if not old:
        return {"added": [], "changed": [], "removed": []}
    changes = spec_changes(old, new)
    parts = []
    if changes["added"]:
        parts.append(f"added {', '.join(changes['added'])}")
    if changes["removed"]:
        parts.append(f"removed {', '.join(changes['removed'])} (their trials stay in the file, not sampled)")
    if changes["changed"]:
        parts.append(f"changed {', '.join(changes['changed'])} (old trials kept under the old definition)")
    if parts:
        log.warning("shadho: resuming %r with a changed spec: %s. `best` and `shadho status` follow the "
                    "current spec (best_of(all_spaces=True) sees every trial).", exp_key, "; ".join(parts))
    return changes


def log_stop_error(exc: Exception) -> None:
    """Report a failure while a run stops: one line for a store error (the run's own error
    says the rest), a traceback for anything else (a bug)."""
    from shadho.errors import StoreError

    if isinstance(exc, StoreError):
        log.warning("shadho: collecting the last results failed: %s", str(exc).split(". ")[0])
    else:
        log.error("shadho: collecting the last results failed", exc_info=exc)


def record_run_end(store: Any, exp: int | None, progress: Any, best: float | None) -> None:
    """At the end of a run: trials left running go back to WAITING, the progress row says the
    master finished. A store that fails now (a full or damaged file) is reported in one line:
    the run's own error, already on its way, says the rest."""
    from shadho.errors import StoreError

    try:
        if store is not None:
            store.requeue_running(exp)
            store.set_progress(exp, {"workers": 0, "in_flight": 0, "finished": True})
            store.flush()
            counts = store.counts(exp)
            progress.update(done=counts["COMPLETE"], failed=counts["FAILED"], running=0, workers=0, best=best)
    except StoreError as exc:
        log.warning("shadho: could not record the end of the run: %s", str(exc).split(". ")[0])
    finally:
        progress.close()


def current_space_ids(store: Any, exp: int) -> set[str] | None:
    """Ids of the spaces of the spec the last master ran with (None: not recorded, old file)."""
    ids = store.settings(exp).get("space_ids")
    return set(ids) if isinstance(ids, list) else None


def best_trial(store: Any, exp: int, space_ids: Collection[str] | None = None) -> dict[str, Any] | None:
    """The lowest-loss COMPLETE trial (of ``space_ids`` only, when given) as a dict, or None."""
    t = store.best_trial(exp, space_ids)
    if t is None:
        return None
    return {"loss": t.loss, "params": t.params, "results": t.results, "searchspace": t.searchspace,
            "space_id": t.space_id, "id": t.id, "compute_class": t.compute_class, "worker": t.worker}


def label_spaces(spaces: list[dict[str, Any]], current: set[str] | None) -> list[dict[str, Any]]:
    """Stored space rows, those not in ``current`` renamed ``'name (not in the current spec)'``
    so that no two rows of a status table share a name."""
    if current is None:
        return spaces
    return [s if s["id"] in current else {**s, "name": f"{s['name']} (not in the current spec)"} for s in spaces]


def open_store(settings: SearchSettings, spaces: Sequence[SearchSpace], classes: Sequence[ComputeClass],
               method: Any) -> tuple[ResultsStore, int]:
    """Open (or resume) the experiment in its results file; say what changed in its spec."""
    from shadho.store import ResultsStore
    from shadho.study_asha import check_same_fidelity

    if settings.backend.endswith(".json"):
        from shadho.store_json import JsonMirroredStore
        store: ResultsStore = JsonMirroredStore(settings.backend)
    else:
        store = ResultsStore(settings.backend)
    recorded = {"method": method if isinstance(method, str) else repr(method),
                "max_tasks": settings.max_tasks, "timeout": settings.timeout, "seed": settings.seed,
                "compute_classes": [c.name for c in classes], "use_complexity": settings.use_complexity,
                # Each class's declared allocation: the scheduler's prior on its speed, which
                # ``shadho plan`` gives the simulated classes too.
                "class_resources": {c.name: c.resources for c in classes},
                "use_uncertainty": settings.use_uncertainty,
                "spaces": [s.name for s in spaces], "space_ids": [s.id for s in spaces],
                "fidelity": settings.fidelity.to_dict() if settings.fidelity is not None else None}
    try:
        check_same_fidelity(store, settings.exp_key, settings.fidelity)
        previous = previous_space_ids(store, settings.exp_key)
        exp = store.open_experiment(settings.exp_key, recorded)
        report_spec_changes(store, exp, settings.exp_key, spaces, previous)
        store.register_spaces(exp, spaces)
    except BaseException:
        store.abandon()
        raise
    return store, exp
