"""What every batch system shares: job states, the worker job spec, and the abstract base.

A batch system is a text template (``batch/templates/``, ``string.Template`` with ``${names}``)
plus a thin subclass that says how to submit, query and cancel, and a table from the scheduler's
own state names to :class:`JobState`. Nothing here runs a command at import or construction:
commands run only inside :meth:`BatchSystem.submit`, :meth:`BatchSystem.status` and
:meth:`BatchSystem.cancel`.

Adding PBS or LSF is one small file: subclass :class:`BatchSystem`, set ``name``,
``template_name`` and ``states``, and fill the six ``_hooks``.

Example:
    >>> parse_time("2h"), parse_time("90m"), parse_time("1:30:00"), parse_time(45)
    (120, 90, 90, 45)
    >>> spec = WorkerSpec(manager="login1:9123", cores=4, memory=8000, time=120)
    >>> spec.worker_wall_time()
    7140
"""
from __future__ import annotations

import abc
import enum
import math
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import ClassVar, Iterable, Mapping, Sequence

from shadho.errors import BackendUnavailableError, WorkerError


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


_TIME_UNITS = {"d": 1440 * 60, "h": 3600, "m": 60, "s": 1}
_TIME_FORMATS = "minutes (90), units (90m, 2h, 1h30m, 1d), H:MM:SS (1:30:00) or D-H:MM:SS (1-00:00:00)"


def parse_time(value: str | int) -> int:
    """Parse a walltime into whole minutes (seconds round up).

    Accepts a number of minutes, units (``90m``, ``2h``, ``1h30m``, ``1d``, ``300s``),
    ``H:MM:SS`` or ``D-H:MM:SS``. ``MM:SS`` is refused because SLURM and humans read it
    differently.

    Raises:
        ValueError: an unreadable or non-positive time; the message lists the formats.

    Example:
        >>> [parse_time(t) for t in ("90", "90m", "2h", "1h30m", "1:30:00", "1-00:00:00", "61s")]
        [90, 90, 120, 90, 90, 1440, 2]
    """
    if isinstance(value, bool):
        raise ValueError(f"time must be {_TIME_FORMATS}; got {value!r}")
    if isinstance(value, int):
        seconds = value * 60
    else:
        text = str(value).strip().lower()
        seconds = _parse_time_text(text)
        if seconds is None:
            raise ValueError(f"time must be {_TIME_FORMATS}; got {value!r}")
    if seconds <= 0:
        raise ValueError(f"time must be positive; got {value!r}")
    return math.ceil(seconds / 60)


def _parse_time_text(text: str) -> int | None:
    if re.fullmatch(r"\d+", text):
        return int(text) * 60
    m = re.fullmatch(r"(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)", text)
    if m:
        days, hours, minutes, secs = (int(g or 0) for g in m.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + secs
    m = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?:in)?)?(?:(\d+)s)?", text)
    if m and any(m.groups()):
        return sum(int(g) * _TIME_UNITS[u] for g, u in zip(m.groups(), "dhms") if g)
    return None


def format_hms(minutes: int) -> str:
    """Minutes as ``H:MM:SS``, the form every scheduler reads.

    Example:
        >>> format_hms(90), format_hms(1500)
        ('1:30:00', '25:00:00')
    """
    return f"{minutes // 60}:{minutes % 60:02d}:00"


def parse_feature(text: str) -> str:
    """Check one ``key=value`` worker feature; spaces become ``-`` (Work Queue splits on them).

    Example:
        >>> parse_feature("gpu_name=NVIDIA A100")
        'gpu_name=NVIDIA-A100'
    """
    key, sep, val = text.partition("=")
    if not sep or not key.strip() or not val.strip():
        raise ValueError(f"a feature must be key=value (e.g. gpu_name=NVIDIA-A100); got {text!r}")
    return f"{key.strip()}={'-'.join(val.split())}"


def parse_address(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` and check the port.

    Example:
        >>> parse_address("login1.example.org:9123")
        ('login1.example.org', 9123)
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"an address must be HOST:PORT with a port in 1-65535; got {text!r}")
    return host, int(port)


def default_launcher() -> str:
    """The path of ``shadho_launch_worker.py`` (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("shadho_launch_worker")
    if spec is not None and spec.origin:
        return spec.origin
    here = Path(__file__).resolve().parent.parent / "workers" / "shadho_launch_worker.py"
    return str(here)


@dataclass(frozen=True)
class WorkerSpec:
    """One worker job: where its manager is, what it asks the scheduler for, what it advertises.

    Resources left ``None`` are not requested (the scheduler's default applies) and the worker
    measures its allocation itself. Check a spec with :meth:`validate`; a batch system calls it
    before rendering.

    Attributes:
        manager: ``HOST:PORT`` of the Work Queue manager (the shadho master).
        name: the manager's project name, looked up through ``catalog`` (instead of ``manager``).
        catalog: ``HOST:PORT`` of the catalog server (with ``name``).
        cores, memory, disk, gpus: per job; memory and disk in MB.
        features: ``key=value`` strings advertised by the worker (for compute classes).
        time: walltime in minutes (see :func:`parse_time`).
        password: password file shared with the manager (strongly recommended).
        partition, account: SLURM partition/account (ignored where they mean nothing).
        extra: extra scheduler options, one string (sbatch options for SLURM; submit-file
            commands separated by ``;`` or newlines for HTCondor).
        worker_timeout: seconds a worker waits for a manager or for work before exiting; this is
            how workers leave when the master is gone.
        python: interpreter that runs the launcher on the compute node.
        launcher: path of ``shadho_launch_worker.py``.
        job_name: scheduler job name.
        log_dir: where job output goes (must exist on the compute node).
        worker_bin: the ``work_queue_worker`` to run on the compute node.
    """

    manager: str | None = None
    name: str | None = None
    catalog: str | None = None
    cores: int | None = None
    memory: int | None = None
    disk: int | None = None
    gpus: int | None = None
    features: tuple[str, ...] = ()
    time: int | None = None
    password: str | None = None
    partition: str | None = None
    account: str | None = None
    extra: str = ""
    worker_timeout: int = 300
    python: str = field(default_factory=lambda: sys.executable)
    launcher: str = field(default_factory=default_launcher)
    job_name: str = "shadho-worker"
    log_dir: str = field(default_factory=lambda: os.path.join(tempfile.gettempdir(), "shadho-workers"))
    worker_bin: str = "work_queue_worker"

    @classmethod
    def option_names(cls) -> list[str]:
        """The valid keyword arguments."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_options(cls, **options: object) -> "WorkerSpec":
        """Build a spec, refusing unknown keys with a message listing the valid ones.

        Example:
            >>> WorkerSpec.from_options(manager="h:1", cpus=2)
            Traceback (most recent call last):
            ...
            ValueError: unknown worker option 'cpus'; valid options: manager, name, catalog, cores, memory, disk, gpus, features, time, password, partition, account, extra, worker_timeout, python, launcher, job_name, log_dir, worker_bin
        """
        valid = cls.option_names()
        for key in options:
            if key not in valid:
                raise ValueError(f"unknown worker option {key!r}; valid options: {', '.join(valid)}")
        if "time" in options and options["time"] is not None:
            options["time"] = parse_time(options["time"])  # type: ignore[arg-type]
        if "features" in options:
            options["features"] = tuple(options["features"] or ())  # type: ignore[arg-type]
        return cls(**options).validate()  # type: ignore[arg-type]

    def validate(self) -> "WorkerSpec":
        """Check every field; return the spec with features normalized.

        Raises:
            ValueError: naming the bad option and what is valid.
        """
        if (self.manager is None) == (self.name is None):
            raise ValueError("give exactly one of manager (HOST:PORT) or name (a project name)")
        if self.manager is not None:
            parse_address(self.manager)
        if self.catalog is not None:
            parse_address(self.catalog)
        if self.name is not None and not re.fullmatch(r"[\w.\-]+", self.name):
            raise ValueError(f"name must be letters, digits, '.', '_' or '-'; got {self.name!r}")
        for key in ("cores", "memory", "disk", "time"):
            val = getattr(self, key)
            if val is not None and (not isinstance(val, int) or isinstance(val, bool) or val < 1):
                raise ValueError(f"{key} must be a positive whole number; got {val!r}")
        if self.gpus is not None and (not isinstance(self.gpus, int) or self.gpus < 0):
            raise ValueError(f"gpus must be a whole number >= 0; got {self.gpus!r}")
        if not isinstance(self.worker_timeout, int) or self.worker_timeout < 10:
            raise ValueError(f"worker_timeout must be at least 10 seconds; got {self.worker_timeout!r}")
        if not re.fullmatch(r"[\w.\-]+", self.job_name):
            raise ValueError(f"job_name must be letters, digits, '.', '_' or '-'; got {self.job_name!r}")
        for key in ("partition", "account"):
            val = getattr(self, key)
            if val is not None and not re.fullmatch(r"[\w.\-,]+", val):
                raise ValueError(f"{key} must be letters, digits, '.', '_', '-' or ','; got {val!r}")
        features = tuple(parse_feature(f) for f in self.features)
        return replace(self, features=features)

    def worker_wall_time(self) -> int | None:
        """Seconds the worker may live: the walltime less a margin, so it leaves cleanly first."""
        if self.time is None:
            return None
        seconds = self.time * 60
        return max(seconds - min(60, seconds // 10), 30)

    def launcher_args(self, password: str | None = None, job_id: str | None = None) -> list[str]:
        """Arguments of ``shadho_launch_worker.py`` for this spec.

        Args:
            password: the password path as the job sees it (default: :attr:`password`).
            job_id: a job id to pass explicitly (schedulers that set no environment variable).
        """
        args: list[str] = []
        if self.manager is not None:
            args += ["--manager", self.manager]
        else:
            args += ["--name", str(self.name)]
        if self.catalog is not None:
            args += ["--catalog", self.catalog]
        pw = password if password is not None else self.password
        if pw is not None:
            args += ["--password", pw]
        for key in ("cores", "memory", "disk", "gpus"):
            val = getattr(self, key)
            if val is not None:
                args += [f"--{key}", str(val)]
        for feat in self.features:
            args += ["--feature", feat]
        args += ["--timeout", str(self.worker_timeout)]
        wall = self.worker_wall_time()
        if wall is not None:
            args += ["--wall-time", str(wall)]
        if job_id is not None:
            args += ["--job-id", job_id]
        if self.worker_bin != "work_queue_worker":
            args += ["--worker-bin", self.worker_bin]
        return args


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
