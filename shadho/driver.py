"""The ``Shadho`` driver: store + samplers + heuristics + manager, in one loop.

The loop is ask -> submit -> wait -> tell. Asking is late: a trial's search space
and parameters are chosen at the moment a slot of a compute class needs work.
"""
from __future__ import annotations

import logging
import math
import os
import time
import warnings
from typing import Any, Callable, Mapping

from shadho import resume, study_asha
from shadho.compute import ComputeClass
from shadho.config import LegacyConfig, add_legacy_files, configure, did_you_mean, legacy_kwargs
from shadho.managers.base import ExecutionManager, FileSpec, RunSettings
from shadho.original_api import OriginalApi
from shadho.samplers import make_sampler
from shadho.settings import MANAGER_KEYS, SearchSettings, manager_choice, manager_settings
from shadho.spaces import SearchSpace, split
from shadho.stop_signals import Signals, Stop, signals_stop
from shadho.store import ResultsStore
from shadho.study import Study
from shadho.summary import exit_after_interrupt, say_end, say_resume
from shadho.tracebacks import SourceMap
from shadho.trial import Trial

log = logging.getLogger("shadho")


class _FromSettings:
    """A read-only attribute of ``Shadho`` that reads its :class:`SearchSettings`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj.settings, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"Shadho.{self.name} is fixed at construction (its settings are checked "
                             f"once): pass Shadho(..., {self.name}=...) instead")


class Shadho(OriginalApi):
    """A hyperparameter search over a nested-dict spec.

    Args:
        exp_key: the experiment's name in the results file (same key: resume).
        cmd: the objective: a callable ``fn(params) -> loss | {'loss': ..., ...}``
            or a shell command run on workers (see ``shadho_worker.run``).
        spec: the search-space spec (see :mod:`shadho.spaces`).
        method: sampler: ``'random'``, ``'tpe'``, ``'bayes'``/``'gp'``, a Sampler or a callable.
        backend: results file: ``.db``/``.sqlite`` (SQLite) or ``.json``.
        timeout: seconds of searching (None or negative: no limit).
        max_tasks: one global budget of trials for the whole experiment.
        max_queued_tasks: most tasks queued per compute class beyond free slots.
        await_pending: at timeout, wait for running trials instead of abandoning them.
        max_resubmissions: times a FAILED trial is run again with the same params.
        seed: makes a sequential run exactly reproducible.
        use_complexity, use_uncertainty: the hardware-aware heuristics (both off:
            hardware-oblivious baseline).
        manager: ``'local'``, ``'workqueue'`` or a configured ExecutionManager
            (e.g. ``WorkQueueManager(port=9123, name='svm')``; then give the manager's
            own settings to it, not here).
        local_workers: processes (local manager) or local Work Queue workers.
        quiet: no progress output.
        fidelity (option): ASHA/Hyperband, e.g. ``{'name': 'epochs', 'min': 1, 'max': 81, 'eta': 3}``:
            a callable is called as ``fn(params, epochs=9, checkpoint='/a/folder')`` (see
            :mod:`shadho.rung_task`), a shell command finds ``"epochs"`` and ``"checkpoint"``
            in ``hyperparameters.json``; ``max_tasks`` counts rung runs; ``checkpoint_limit_mb``.
        **options: further settings (``task_timeout``, ``hyperparameters_per_task``,
            ``password``, ``port``, ``name``, ``catalog``, ``worker_python``,
            ``reassign_every``, ``cost_aware``, ``memory_mb``), checked once by
            :mod:`shadho.settings` (``settings``, ``workqueue_settings``, ``local_settings``).

    Example:
        >>> import tempfile, os
        >>> from shadho import Shadho, spaces
        >>> db = os.path.join(tempfile.mkdtemp(), 'r.db')
        >>> opt = Shadho('doc', lambda p: (p['x'] - 1) ** 2, {'x': spaces.uniform(-5, 5)},
        ...              backend=db, max_tasks=8, seed=1, quiet=True, local_workers=2)
        >>> _ = opt.run()
        >>> len(opt.trials), opt.best['loss'] < 25
        (8, True)
    """


    _OPTIONS = {
        "task_timeout": None, "hyperparameters_per_task": 1, "password": None, "port": 0,
        "name": None, "catalog": None, "worker_python": None, "reassign_every": 10,
        "cost_aware": False, "memory_mb": None, "sampler_options": None, "worker_options": None,
        "retry_failed": False, "fidelity": None, "checkpoint_limit_mb": None,
    }

    exp_key = _FromSettings()
    backend = _FromSettings()
    timeout = _FromSettings()
    max_tasks = _FromSettings()
    max_queued_tasks = _FromSettings()
    await_pending = _FromSettings()
    max_resubmissions = _FromSettings()
    seed = _FromSettings()
    use_complexity = _FromSettings()
    use_uncertainty = _FromSettings()
    quiet = _FromSettings()

    def __init__(self, exp_key: str, cmd: Callable[..., Any] | str, spec: Mapping[str, Any],
                 method: Any = "random", backend: str | os.PathLike[str] = "results.db",
                 timeout: float | None = 600, max_tasks: int | None = None, max_queued_tasks: int = 100,
                 await_pending: bool = False, max_resubmissions: int = 0, seed: int | None = None,
                 use_complexity: bool = True, use_uncertainty: bool = True,
                 manager: str | ExecutionManager | None = None, local_workers: Any = None,
                 quiet: bool = False, **options: Any) -> None:
        options, legacy = legacy_kwargs(options)
        _check_known(options)
        if not (callable(cmd) or (isinstance(cmd, str) and cmd.strip())):
            raise TypeError(f"cmd must be a callable objective or a shell command string, got {cmd!r}")
        search = {k: options[k] for k in options if k not in MANAGER_KEYS}
        self.settings = SearchSettings(
            exp_key, backend, timeout=timeout, max_tasks=max_tasks, max_queued_tasks=max_queued_tasks,
            await_pending=await_pending, max_resubmissions=max_resubmissions, seed=seed,
            use_complexity=use_complexity, use_uncertainty=use_uncertainty, quiet=quiet, **search)
        if self.settings.fidelity is not None and callable(cmd):
            from shadho.rung_task import check_objective
            check_objective(cmd, self.settings.fidelity.name)  # before any file or worker exists
        self.manager_choice = manager_choice(manager, cmd)
        given = {k: options[k] for k in MANAGER_KEYS if k in options}
        if local_workers is not None:
            given["local_workers"] = local_workers
        self.workqueue_settings, self.local_settings = manager_settings(
            self.manager_choice, given, max_queued_tasks)
        self.cmd, self.spec, self.method = cmd, spec, method
        self.spaces: list[SearchSpace] = split(spec)
        self.sampler = make_sampler(method, **(self.settings.sampler_options or {}))
        self.compute_classes: list[ComputeClass] = []
        self.input_files: list[FileSpec] = []
        self.output_files: list[FileSpec] = []
        self._study: Study | None = None
        self._manager: ExecutionManager | None = None
        self._sources = SourceMap.of(cmd) if callable(cmd) else SourceMap({})
        wq = self.workqueue_settings
        self.config = LegacyConfig(self.manager_choice if isinstance(self.manager_choice, str) else None,
                                   wq.name, self.options["port"], wq.password)
        for key, why, value in legacy:
            warnings.warn(f"Shadho(): {why}", DeprecationWarning, stacklevel=2)
            if key == "files":
                add_legacy_files(self, value)

    @property
    def local_workers(self) -> Any:
        """The ``local_workers=`` given (None: the manager's default)."""
        return self.workqueue_settings.local_workers

    @property
    def options(self) -> dict[str, Any]:
        """The keyword options in effect, by name (a copy; the settings hold them)."""
        s, wq = self.settings, self.workqueue_settings
        extra = {k: v for k, v in wq.options.items() if k != "memory_mb"}
        return {**{k: getattr(s, k) for k in self._OPTIONS if hasattr(s, k)},
                "port": list(wq.port) if isinstance(wq.port, tuple) else wq.port, "password": wq.password,
                "name": wq.name, "catalog": wq.catalog, "worker_python": wq.worker_python,
                "memory_mb": wq.options.get("memory_mb"), "worker_options": extra or None}

    # ------------------------------------------------------------ store

    def open(self) -> Study:
        """Open the results file (resuming the experiment) and return the :class:`Study`;
        ``run()``, ``ask()`` and ``tell()`` do this themselves. Public hooks on it:
        ``study.scheduler`` (inject or wrap one) and ``study.clock`` (a virtual clock)."""
        if self._study is None:
            # say_resume: what resume found; retry_failed=True re-queues failures before the replay
            self._study = Study.open(self.settings, self.spaces, self.sampler, self.compute_classes,
                                     self.method, self._sources, on_open=lambda st, exp: say_resume(self, st, exp))
        return self._study

    @property
    def study(self) -> Study:
        """The open :class:`Study` (opens the results file on first use)."""
        return self.open()

    @property
    def exp_id(self) -> int:
        """This experiment's id in the results file."""
        return self.open().exp

    @property
    def store(self) -> ResultsStore:
        """The open results store."""
        return self.open().store

    def close(self) -> None:
        """Release the results file (a later run with the same exp_key resumes)."""
        if self._study is not None:
            self._study.store.close()
            self._study = None

    # ------------------------------------------------------------ ask / tell

    def ask(self, compute_class: str | None = None) -> Trial:
        """A new trial to evaluate yourself; report it with :meth:`tell`.

        Example:
            >>> import tempfile, os
            >>> from shadho import Shadho, spaces
            >>> opt = Shadho('ask', lambda p: 0, {'x': spaces.uniform(0, 1)}, quiet=True,
            ...              backend=os.path.join(tempfile.mkdtemp(), 'r.db'))
            >>> t = opt.ask(); _ = opt.tell(t, t.params['x'] ** 2); opt.best['loss'] >= 0
            True
        """
        return self.open().ask(compute_class)

    def tell(self, trial: Trial | int, result: Any) -> Trial:
        """Record ``result`` (a loss, a dict with ``'loss'``, or an Exception) for ``trial``."""
        return self.open().tell(trial, result)

    # ------------------------------------------------------------ the loop

    def run(self) -> list[Trial]:
        """Search until the budget or the timeout ends; returns the trial records.

        Afterwards ``best`` and ``trials`` hold the results. SIGTERM or Ctrl-C stop
        the search cleanly: workers are released and unfinished trials re-run on resume.
        """
        from shadho.progress import make_progress

        configure(self)  # opt.config (the original's way) changes options up to here
        study = self.open()
        manager = self._manager = self._make_manager()
        progress = make_progress(self.quiet, self.max_tasks, self.timeout)
        start, interrupted = time.time(), False
        with signals_stop() as sig:
            try:
                manager.start(self._run_settings())
                manager.set_priorities(study.reassign())
                self._loop(study, manager, progress, start, sig)
            except (KeyboardInterrupt, Stop) as exc:
                interrupted = isinstance(exc, KeyboardInterrupt)
                log.warning("shadho: stopping on request; unfinished trials will re-run on resume")
            finally:
                self._stop(study, manager, progress)
        say_end(self.exp_key, self.trials, time.time() - start, self.quiet)
        if interrupted:
            exit_after_interrupt()  # status 130 after the clean stop, as Ctrl-C should
        return self.trials

    def _loop(self, study: Study, manager: ExecutionManager, progress: Any, start: float,
              sig: Signals) -> None:
        """ask -> submit -> wait -> tell, until the budget is spent or the deadline passes."""
        deadline = math.inf if self.timeout is None else start + self.timeout
        last_beat = 0.0
        while True:
            sig.check()  # a stop request whose exception was swallowed
            now = time.time()
            timed_out = now >= deadline
            if not timed_out:
                for key, n in manager.capacity().items():
                    for _ in range(n):
                        task = study.next_task(key)  # ask
                        if task is None:
                            break
                        manager.submit(task)
            if manager.in_flight == 0 and (timed_out or study.done()):
                break
            if timed_out and not self.await_pending:
                break
            outcomes = manager.wait(min(1.0, max(0.0, deadline - now)) if not timed_out else 1.0)
            _tell(study, manager, outcomes)
            if now - last_beat >= 2.0:
                last_beat = now
                _beat(study, manager, progress)

    def _stop(self, study: Study, manager: ExecutionManager, progress: Any) -> None:
        """Collect what finished, cancel the rest (it re-runs on resume), release the manager."""
        try:
            _tell(study, manager, manager.wait(0))
        except Exception as exc:  # noqa: BLE001 - stopping must go on
            resume.log_stop_error(exc)
        study.drop_live(manager.cancel_all())
        manager.stop()
        self._manager = None
        study_asha.end_of_run(study, self.quiet)  # the budget spent; checkpoints of a finished search
        resume.record_run_end(study.store, study.exp, progress, study.best_loss)

    def _run_settings(self) -> RunSettings:
        s = self.settings
        return RunSettings(
            exp_key=s.exp_key, objective=self.cmd, compute_classes=tuple(self.compute_classes),
            inputs=tuple(self.input_files), outputs=tuple(self.output_files),
            task_timeout=s.task_timeout)

    def _make_manager(self) -> ExecutionManager:
        m = self.manager_choice
        if isinstance(m, ExecutionManager):
            return m
        if m == "local":
            from shadho.managers.local import LocalManager
            local = self.local_settings
            assert local is not None  # built by Shadho() or, after opt.config.manager, by configure()
            return LocalManager(workers=local.workers, memory_mb=local.memory_mb)
        from shadho.managers.workqueue import WorkQueueManager
        wq = self.workqueue_settings
        return WorkQueueManager(local_workers=wq.local_workers, port=wq.port, password=wq.password,
                                name=wq.name, catalog=wq.catalog, worker_python=wq.worker_python,
                                max_queued_tasks=wq.max_queued_tasks, **wq.options)

    # ------------------------------------------------------------ results

    @property
    def running_manager(self) -> ExecutionManager | None:
        """The execution manager while :meth:`run` works (None otherwise)."""
        return self._manager

    @property
    def port(self) -> int | None:
        """The Work Queue manager's port while :meth:`run` works (None otherwise)."""
        return getattr(self._manager, "port", None)

    @property
    def password_file(self) -> str | None:
        """The password file remote workers must be given while :meth:`run` works."""
        return getattr(self._manager, "password_file", None) or self.workqueue_settings.password

    @property
    def trials(self) -> list[Trial]:
        """Every trial of this experiment (fresh copies), oldest first."""
        return self.store.trials(self.exp_id)

    @property
    def best(self) -> dict[str, Any] | None:
        """``{'loss', 'params', 'results', 'searchspace', 'id', 'compute_class', 'worker'}``
        of the lowest-loss COMPLETE trial of the current spec's spaces, or None."""
        return self.best_of()

    def best_of(self, all_spaces: bool = False) -> dict[str, Any] | None:
        """Like :attr:`best`; ``all_spaces=True`` also sees spaces removed from the spec since."""
        return resume.best_trial(self.store, self.exp_id, None if all_spaces else [s.id for s in self.spaces])

    @property
    def budget_spent(self) -> float | None:
        """The budget (e.g. epochs) of every finished rung run, None without a fidelity."""
        return self.open().budget_spent()

    def __enter__(self) -> "Shadho":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _tell(study: Study, manager: ExecutionManager, outcomes: Any) -> None:
    """tell: store the tasks started and the outcomes (in this order: a finished trial never
    changes); a reassignment hands the manager its new priorities."""
    study.store.mark_started(manager.take_starts())
    if study.record(outcomes):
        manager.set_priorities(study.scheduler.priorities())


def _beat(study: Study, manager: ExecutionManager, progress: Any) -> None:
    """The live figures: into the store (``shadho status`` reads them) and onto the screen."""
    counts = study.store.counts(study.exp)
    st = manager.status()
    study.store.set_progress(study.exp, {**st, "in_flight": manager.in_flight})
    progress.update(done=counts["COMPLETE"], failed=counts["FAILED"],
                    running=min(st.get("running", 0), manager.in_flight),
                    dispatched=manager.in_flight, workers=st.get("workers", 0), best=study.best_loss)


def _check_known(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - set(Shadho._OPTIONS))
    if unknown:
        import inspect

        valid = sorted(list(inspect.signature(Shadho.__init__).parameters)[1:-1] + list(Shadho._OPTIONS))
        hint = "".join(did_you_mean(u, valid) for u in unknown[:1])
        raise TypeError(f"Shadho() got unknown argument(s) {', '.join(unknown)}{hint}; valid: {', '.join(valid)}")
