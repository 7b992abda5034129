"""What one rung run of a multi-fidelity search carries to a manager, and how it runs.

A task of a search with a fidelity (``Shadho(..., fidelity={'name': 'epochs', ...})``)
gives each of its trials a :class:`Budget`: the budget to train to, the checkpoint
archive to continue from (None: start from scratch) and where to leave the archive of
the state the objective writes. The objective sees:

- a callable: ``fn(params, epochs=9, checkpoint='/a/folder')`` (``checkpoint`` only when
  ``fn`` accepts it; the folder is empty when there is nothing to continue from);
- a shell command: ``"epochs"`` and ``"checkpoint"`` (a folder path) as fields of
  ``hyperparameters.json``, next to the parameters.

The folder is unpacked from the archive before the objective runs and packed after it
succeeds (:mod:`shadho_checkpoint`); a damaged or missing archive gives an empty folder,
never an error.

Example:
    >>> def fn(params, epochs): return params['x'] * epochs
    >>> check_objective(fn, 'epochs')
    False
    >>> check_objective(lambda p: 0, 'epochs')
    Traceback (most recent call last):
    ...
    TypeError: with fidelity 'epochs' the objective is called as fn(params, epochs=..., checkpoint=...): ...
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import shadho_checkpoint as ck
from shadho_checkpoint import accepts

__all__ = ["Budget", "check_objective", "accepts", "run_rung", "call_with_budget", "runtime_fields",
           "OverheadRuntime"]


@dataclass(frozen=True)
class Budget:
    """The budget of one trial of a task (see the module docstring).

    Attributes:
        name: the fidelity's name (``'epochs'``), the keyword / JSON field it arrives under.
        value: the budget to reach.
        checkpoint_in: the archive to continue from (None: start from scratch).
        checkpoint_out: where the archive of the objective's checkpoint folder goes after a
            successful run (None: checkpoints are not kept).
        limit_bytes: the most one checkpoint may hold.
        previous: the budget the configuration reached before (its rung below; 0 at its
            first rung): what its checkpoint holds when it has one.
    """

    name: str
    value: float
    checkpoint_in: str | None = None
    checkpoint_out: str | None = None
    limit_bytes: int = ck.DEFAULT_LIMIT_BYTES
    previous: float = 0


def check_objective(fn: Callable[..., Any], name: str) -> bool:
    """TypeError unless ``fn`` takes the budget keyword ``name``; returns whether it also
    takes ``checkpoint`` (a signature that cannot be read is given the benefit of the doubt)."""
    if accepts(fn, name) is False:
        raise TypeError(f"with fidelity {name!r} the objective is called as fn(params, {name}=..., "
                        f"checkpoint=...): {getattr(fn, '__name__', fn)!r} takes no {name!r} argument; "
                        f"write it as def fn(params, {name}, checkpoint=None) (checkpoint is optional)")
    return accepts(fn, "checkpoint") is not False


def call_with_budget(fn: Callable[..., Any], fields: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    """``fn`` with the budget fields it accepts bound as keywords."""
    return ck.bind_accepted(fn, fields)


def run_rung(budget: Budget, folder: str, run: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Unpack ``budget.checkpoint_in`` into ``folder``, ``run({name: value, 'checkpoint':
    folder})`` (a worker's result dict) and pack the folder into ``budget.checkpoint_out``
    when the run succeeded; the folder is removed afterwards."""
    return ck.run_with_checkpoint(budget.checkpoint_in, budget.checkpoint_out, folder,
                                  lambda f: run({budget.name: budget.value, "checkpoint": f}), budget.limit_bytes)


def runtime_fields(runtime: Callable[..., Any], budget: Budget | None) -> dict[str, Any]:
    """What a simulator's runtime model that takes them gets of a rung run: ``budget`` (to
    reach) and ``previous`` (reached by the rung it continues from: simulated checkpoints
    never fail)."""
    if budget is None:
        return {}
    fields = {"budget": budget.value, "previous": budget.previous}
    return {k: v for k, v in fields.items() if accepts(runtime, k) is not False}


@dataclass(frozen=True, eq=False)  # hashed by identity: its signature is read once (rung_task.accepts)
class OverheadRuntime:
    """A simulator's runtime model of rung runs: per class, a start-up overhead (seconds)
    plus seconds per budget unit trained (``budget - previous``), the latter times an
    optional factor ``scale(space_id, params)`` (a space or configuration that trains slower).

    Example (a small CPU node against a GPU node, 9 epochs continuing from 3):
        >>> m = OverheadRuntime({'cpu': (5.0, 10.0), 'gpu': (60.0, 1.0)})
        >>> m('s', {}, 'cpu', budget=9, previous=3), m('s', {}, 'gpu', budget=9, previous=3)
        (65.0, 66.0)
    """

    classes: Mapping[Any, tuple[float, float]]
    scale: Callable[[str, dict[str, Any]], float] | None = None

    def __call__(self, space_id: str, params: dict[str, Any], class_key: Any, budget: float = 1.0,
                 previous: float = 0.0) -> float:
        overhead, per_unit = self.classes[class_key]
        factor = 1.0 if self.scale is None else float(self.scale(space_id, params))
        return float(overhead + per_unit * factor * max(0.0, budget - previous))
