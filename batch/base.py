"""What every batch system shares: job states and the abstract base.

A batch system is a text template (``batch/templates/``, ``string.Template`` with ``${names}``)
plus a thin subclass that says how to submit, query and cancel, and a table from the scheduler's
own state names to :class:`JobState`. Nothing here runs a command at import or construction:
commands run only inside :meth:`BatchSystem.submit`, :meth:`BatchSystem.status` and
:meth:`BatchSystem.cancel`. The worker job spec is in :mod:`shadho.batch.worker_spec`
(imported here too, as before).

Adding PBS or LSF is one small file: subclass :class:`BatchSystem`, set ``name``,
``template_name`` and ``states``, and fill the six ``_hooks``.

Example:
    >>> JobState("TIMEOUT").failed
    False
"""
from __future__ import annotations

import abc
import enum
import os
import shutil
import string
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import ClassVar, Iterable, Mapping, Sequence

from shadho.batch.worker_spec import (WorkerSpec, default_launcher, format_hms, parse_address, parse_feature,
                                      parse_time)
from shadho.errors import BackendUnavailableError, WorkerError

__all__ = ["JobState", "BatchSystem", "WorkerSpec", "parse_time", "format_hms", "parse_feature",
           "parse_address", "default_launcher"]


class JobState(str, enum.Enum):
    """Where a batch job stands, the same for every scheduler.

    ``TIMEOUT`` (the job reached its walltime) is the normal end of a pilot worker, not a
    failure.

    Example:
        >>> JobState.PENDING.active, JobState.TIMEOUT.active, JobState.TIMEOUT.failed
        (True, False, False)
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    #: The scheduler no longer knows the job (it ended long ago) or reports an unmapped state.
    UNKNOWN = "UNKNOWN"

    @property
    def active(self) -> bool:
        """True while the job waits in the queue or runs."""
        return self in (JobState.PENDING, JobState.RUNNING)

    @property
    def failed(self) -> bool:
        """True only for a real failure (a walltime end is not one)."""
        return self is JobState.FAILED

    def __str__(self) -> str:
        return self.value



class BatchSystem(abc.ABC):
    """Submit, query and cancel shadho worker jobs on one scheduler.

    Subclasses set ``name``, ``template_name`` and ``states`` and fill the hooks. The public
    methods are the same for all: :meth:`render`, :meth:`submit`, :meth:`status`,
    :meth:`cancel`. Construction does nothing but store settings.

    Args:
        script_dir: where rendered job scripts are written (default: a folder under $TMPDIR).
    """

    #: Short name used on the command line (``shadho workers <name>``).
    name: ClassVar[str]
    #: File name of the template in ``batch/templates/``.
    template_name: ClassVar[str]
    #: Scheduler state name -> JobState; anything else is UNKNOWN.
    states: ClassVar[Mapping[str, JobState]]

    def __init__(self, script_dir: str | os.PathLike[str] | None = None) -> None:
        self.script_dir = Path(script_dir) if script_dir is not None else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(script_dir={str(self.script_dir) if self.script_dir else None!r})"

    # -- public API --------------------------------------------------------------------------

    def template(self) -> string.Template:
        """The job-script template of this system."""
        text = resources.files("shadho.batch").joinpath("templates", self.template_name).read_text()
        return string.Template(text)

    def render(self, spec: WorkerSpec) -> str:
        """The job script / submit description for one worker job.

        Example:
            >>> from shadho.batch.slurm import SlurmSystem
            >>> text = SlurmSystem().render(WorkerSpec(manager="h:9123", cores=2, python="/py",
            ...                                        launcher="/l.py", log_dir="/logs"))
            >>> "#SBATCH --cpus-per-task=2" in text
            True
        """
        spec = spec.validate()
        return self.template().substitute(self._fields(spec))

    def submit(self, spec: WorkerSpec) -> str:
        """Submit one worker job; return its job id.

        Raises:
            BackendUnavailableError: the scheduler's commands are not installed.
            WorkerError: the scheduler refused the job.
        """
        text = self.render(spec)
        os.makedirs(spec.log_dir, exist_ok=True)
        folder = self.script_dir or Path(tempfile.gettempdir()) / "shadho-batch"
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"{self.name}-", suffix=Path(self.template_name).suffix,
                                    dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(path, 0o755)
        out = self._run(self._submit_command(path, spec), what="submit a worker job")
        return self._parse_job_id(out)

    def status(self, job_ids: Iterable[str]) -> dict[str, JobState]:
        """The state of each job; jobs the scheduler has forgotten are UNKNOWN.

        Raises:
            BackendUnavailableError, WorkerError: the query itself failed.
        """
        ids = [str(j) for j in job_ids]
        if not ids:
            return {}
        raw = self._query(ids)
        return {j: self.states.get(raw[j], JobState.UNKNOWN) if j in raw else JobState.UNKNOWN
                for j in ids}

    def cancel(self, job_ids: Iterable[str]) -> None:
        """Remove the jobs (finished ones are ignored)."""
        ids = [str(j) for j in job_ids]
        if ids:
            self._run(self._cancel_command(ids), what="cancel worker jobs", check=False)

    # -- hooks ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def _fields(self, spec: WorkerSpec) -> dict[str, str]:
        """Values for the template's ``${names}``."""

    @abc.abstractmethod
    def _submit_command(self, script: str, spec: WorkerSpec) -> list[str]:
        """The command that submits ``script``."""

    @abc.abstractmethod
    def _parse_job_id(self, output: str) -> str:
        """The job id in the submit command's output."""

    @abc.abstractmethod
    def _query(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Job id -> the scheduler's state name, for the jobs it still knows."""

    @abc.abstractmethod
    def _cancel_command(self, job_ids: Sequence[str]) -> list[str]:
        """The command that removes the jobs."""

    # -- helpers -------------------------------------------------------------------------------

    def _call(self, cmd: Sequence[str], *, what: str,
              input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a scheduler command; a missing command or a hang becomes a shadho error."""
        if shutil.which(cmd[0]) is None:
            raise BackendUnavailableError(
                f"cannot {what}: {cmd[0]!r} is not on PATH (is {self.name} installed here?)")
        try:
            return subprocess.run(list(cmd), input=input, capture_output=True, text=True,
                                  timeout=120)
        except subprocess.TimeoutExpired:
            raise WorkerError(f"cannot {what}: {cmd[0]} did not answer within 120 s") from None

    def _run(self, cmd: Sequence[str], *, what: str, check: bool = True,
             input: str | None = None) -> str:
        """Run a scheduler command and return its output; failures become one sentence."""
        proc = self._call(cmd, what=what, input=input)
        if check and proc.returncode != 0:
            msg = " ".join((proc.stderr or proc.stdout).split())[:500]
            raise WorkerError(f"cannot {what}: {cmd[0]} exited {proc.returncode}: {msg}")
        return proc.stdout


def _directive_lines(prefix: str, options: Sequence[str]) -> str:
    """``#SBATCH --x`` style lines (empty string when there are none)."""
    return "".join(f"{prefix} {opt}\n" for opt in options)
