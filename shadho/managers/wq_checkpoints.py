"""Work Queue tasks of a multi-fidelity search: budgets and checkpoint archives as task files.

A rung run's checkpoint travels as files of its task: the master's archive of the
configuration (if any) goes in as ``checkpoint-in-<trial>.tar``, and the worker's
``checkpoint-<trial>.tar`` comes back to the path the study named (an empty file when the
run left no checkpoint: Work Queue expects every output file). The worker unpacks and
packs them (:mod:`shadho_checkpoint`), callables through ``params.json``'s ``budgets``,
shell commands through ``.shadho-checkpoint.json`` and the ``"epochs"``/``"checkpoint"``
fields of their ``hyperparameters.json``.

Example:
    >>> from shadho.rung_task import Budget
    >>> budget_doc(Budget('epochs', 9, None, '/m/7.tar'), 7)['checkpoint_out']
    'checkpoint-7.tar'
"""
from __future__ import annotations

import os
from typing import Any

from shadho.managers.base import TaskSpec

__all__ = ["budget_doc", "specify_checkpoints", "command_fields"]


def budget_doc(budget: Any, trial_id: int) -> dict[str, Any]:
    """What the worker reads of one trial's :class:`~shadho.rung_task.Budget` (sandbox names)."""
    return {"name": budget.name, "value": budget.value, "folder": f"checkpoint-{trial_id}",
            "limit_bytes": budget.limit_bytes,
            "checkpoint_in": f"checkpoint-in-{trial_id}.tar" if budget.checkpoint_in else None,
            "checkpoint_out": f"checkpoint-{trial_id}.tar" if budget.checkpoint_out else None}


def specify_checkpoints(t: Any, spec: TaskSpec, trials: tuple[tuple[int, dict[str, Any]], ...]
                        ) -> list[dict[str, Any]]:
    """Declare the checkpoint files of ``trials`` (of ``spec``) on Work Queue task ``t``;
    returns their budget documents, in order."""
    by_id = dict(zip((tid for tid, _ in spec.trials), spec.budgets))
    docs = []
    for tid, _ in trials:
        b = by_id[tid]
        doc = budget_doc(b, tid)
        if b.checkpoint_in and os.path.isfile(b.checkpoint_in):
            t.specify_input_file(b.checkpoint_in, doc["checkpoint_in"], cache=False)
        else:
            doc["checkpoint_in"] = None  # gone since (evicted): the run starts from scratch
        if b.checkpoint_out:
            os.makedirs(os.path.dirname(b.checkpoint_out), exist_ok=True)
            t.specify_output_file(b.checkpoint_out, doc["checkpoint_out"], cache=False)
        docs.append(doc)
    return docs


def command_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The fields a shell command finds in ``hyperparameters.json`` besides its parameters."""
    return {doc["name"]: doc["value"], "checkpoint": doc["folder"]}
