"""Packaging a run's objective and trials for Work Queue workers.

A callable objective is cloudpickled once into ``objective.pkl`` (one JSON header line
of versions first, so a worker can name a mismatch), shipped with a copy of the worker
entry ``shadho_worker.py`` as cached inputs; each task then carries only its trials'
params as a small JSON buffer and runs ``<python> shadho_worker.py objective.pkl
params.json result.json``. A shell-command objective ships the command (with the task
tag as its last argument) and ``hyperparameters.json``, and reads back
``performance.json``. Both run inside :func:`shadho.managers.task_shell.wrap`.

Nothing here imports Work Queue: the adapter passes its module in.

Example:
    >>> import json
    >>> json.loads(callable_job([(7, {'x': 1})], timeout=None, memory_mb=500))
    {'trials': [[7, {'x': 1}]], 'timeout': None, 'memory_mb': 500}
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
from typing import Any, Callable, Sequence

from shadho.managers import task_shell, wq_checkpoints
from shadho.managers.base import RunSettings, TaskSpec, command_with_tag, task_tag

#: (local path, name in the sandbox, cache on the worker)
Shipped = tuple[str, str, bool]
Trials = Sequence[tuple[int, dict[str, Any]]]


def dump_objective(fn: Callable[..., Any]) -> bytes:
    """The objective file: a magic prefix, one JSON header line (versions), then cloudpickle bytes.

    A function from the user's own module (not installed in site-packages) is pickled
    by value, so workers need not have that module.
    """
    import cloudpickle
    import shadho_worker

    header = {"python": "%d.%d.%d" % sys.version_info[:3], "cloudpickle": cloudpickle.__version__}
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    by_value = False
    if module is not None and _users_own(module):
        try:
            cloudpickle.register_pickle_by_value(module)
            by_value = True
        except (ValueError, AttributeError):
            pass
    try:
        data = cloudpickle.dumps(fn)
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)
    return shadho_worker.OBJECTIVE_MAGIC + json.dumps(header).encode() + b"\n" + data


def _users_own(module: Any) -> bool:
    """Whether ``module`` is the user's own file (not __main__, shadho, or an installed package)."""
    mfile = getattr(module, "__file__", None) or ""
    return (module.__name__ != "__main__" and bool(mfile) and "site-packages" not in mfile
            and "dist-packages" not in mfile and not module.__name__.startswith("shadho"))


def stage_files(folder: str, settings: RunSettings) -> list[Shipped]:
    """Write what every task of the run ships into ``folder``; the input files of each task.

    The copies live under the run's private folder, so their cache names are unique to
    the run: a long-lived remote worker never reuses a stale copy from another experiment.
    """
    import shadho_worker

    worker_py = os.path.join(folder, "shadho_worker.py")
    shutil.copyfile(shadho_worker.__file__, worker_py)
    files = [(worker_py, "shadho_worker.py", True)]
    import shadho_checkpoint  # the worker side of multi-fidelity checkpoints (small; cached)
    ck_py = os.path.join(folder, "shadho_checkpoint.py")
    shutil.copyfile(shadho_checkpoint.__file__, ck_py)
    files.append((ck_py, "shadho_checkpoint.py", True))
    if callable(settings.objective):
        obj = os.path.join(folder, "objective.pkl")
        with open(obj, "wb") as fh:
            fh.write(dump_objective(settings.objective))
        files.append((obj, "objective.pkl", True))
    files += [(os.path.abspath(f.local), f.remote, f.cache) for f in settings.inputs]
    return files


def callable_job(trials: Trials, timeout: float | None, memory_mb: float | None,
                 budgets: list[dict[str, Any]] | None = None) -> str:
    """The ``params.json`` buffer of a callable objective's task (``budgets``: one per trial
    in a multi-fidelity search, see :mod:`shadho.managers.wq_checkpoints`)."""
    job = {"trials": [[tid, p] for tid, p in trials], "timeout": timeout, "memory_mb": memory_mb}
    return json.dumps({**job, "budgets": budgets} if budgets else job)


def make_task(wq: Any, settings: RunSettings, spec: TaskSpec, trials: Trials, result_path: str, *,
              python: str, memory_mb: float | None, monitored: bool) -> Any:
    """A Work Queue task running ``trials`` of ``spec``; its result comes back to ``result_path``.

    ``memory_mb`` is the trials' memory limit; ``monitored``: Work Queue's resource
    monitor enforces the class's memory, so a command gets no ``ulimit`` of its own.
    """
    timeout = settings.task_timeout
    if callable(settings.objective):
        t = wq.Task(task_shell.wrap(f"{python} shadho_worker.py objective.pkl params.json result.json"))
        budgets = wq_checkpoints.specify_checkpoints(t, spec, trials) if spec.budgets else None
        t.specify_buffer(callable_job(trials, timeout, memory_mb, budgets), "params.json", cache=False)
        t.specify_output_file(result_path, "result.json", cache=False)
        if timeout:  # the worker interrupts each trial itself; this is the backstop
            t.specify_running_time_max(int(math.ceil(timeout * len(trials) + 30)))
        return t
    # The first line of stdout names the batch job the worker runs in (wq_results.SLURM_MARK).
    t = wq.Task(task_shell.wrap(task_shell.command_line(python), None if monitored else memory_mb,
                                first_line='echo "@@shadho slurm=${SLURM_JOB_ID:-}"; '))
    # As the original did, the command gets the task tag as its last argument.
    tid, params = trials[0]
    t.specify_buffer(command_with_tag(settings.objective, task_tag(spec, tid)), task_shell.COMMAND_FILE,
                     cache=False)
    if spec.budgets:  # the budget and checkpoint folder as fields of hyperparameters.json
        doc, = wq_checkpoints.specify_checkpoints(t, spec, trials)
        params = {**params, **wq_checkpoints.command_fields(doc)}
        t.specify_buffer(json.dumps(doc), ".shadho-checkpoint.json", cache=False)
    t.specify_buffer(json.dumps(params), "hyperparameters.json", cache=False)
    t.specify_output_file(result_path, "performance.json", cache=False)
    for f in settings.outputs:
        t.specify_output_file(os.path.abspath(f.local), f.remote, cache=f.cache)
    if timeout:
        t.specify_running_time_max(int(math.ceil(timeout)))
    return t
