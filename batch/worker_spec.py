"""The worker job spec: what one shadho worker job asks of a scheduler, and how times read.

:class:`WorkerSpec` holds where the worker's manager is, the resources its job asks for
(``memory_mb``, ``disk_mb``, ``time_min``: each name carries its unit) and what the
worker advertises; :func:`parse_time` reads walltimes as people write them.

Example:
    >>> parse_time("2h"), parse_time("90m"), parse_time("1:30:00"), parse_time(45)
    (120, 90, 90, 45)
    >>> spec = WorkerSpec(manager="login1:9123", cores=4, memory_mb=8000, time_min=120)
    >>> spec.worker_wall_time()
    7140
"""
from __future__ import annotations

import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from shadho.deprecation import renamed_fields, renamed_options

__all__ = ["WorkerSpec", "RENAMED", "parse_time", "format_hms", "parse_feature", "parse_address",
           "default_launcher"]


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


#: Old WorkerSpec names (still accepted, with a DeprecationWarning) -> the names with their unit.
RENAMED = {"memory": "memory_mb", "disk": "disk_mb", "time": "time_min", "worker_timeout": "worker_timeout_s"}


@renamed_fields(**RENAMED)
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
        cores, memory_mb, disk_mb, gpus: per job.
        features: ``key=value`` strings advertised by the worker (for compute classes).
        time_min: walltime in minutes (see :func:`parse_time`).
        password: password file shared with the manager (strongly recommended).
        partition, account: SLURM partition/account (ignored where they mean nothing).
        extra: extra scheduler options, one string (sbatch options for SLURM; submit-file
            commands separated by ``;`` or newlines for HTCondor).
        worker_timeout_s: seconds a worker waits for a manager or for work before exiting; this is
            how workers leave when the master is gone.
        python: interpreter that runs the launcher on the compute node.
        launcher: path of ``shadho_launch_worker.py``.
        job_name: scheduler job name.
        log_dir: where job output goes (must exist on the compute node).
        worker_bin: the ``work_queue_worker`` to run on the compute node.

    The names before units were added (``memory``, ``disk``, ``time``, ``worker_timeout``)
    still work as keywords and attributes, with a DeprecationWarning.
    """

    manager: str | None = None
    name: str | None = None
    catalog: str | None = None
    cores: int | None = None
    memory_mb: int | None = None
    disk_mb: int | None = None
    gpus: int | None = None
    features: tuple[str, ...] = ()
    time_min: int | None = None
    password: str | None = None
    partition: str | None = None
    account: str | None = None
    extra: str = ""
    worker_timeout_s: int = 300
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
            ValueError: unknown worker option 'cpus'; valid options: manager, name, catalog, cores, memory_mb, disk_mb, gpus, features, time_min, password, partition, account, extra, worker_timeout_s, python, launcher, job_name, log_dir, worker_bin
        """
        options = renamed_options(dict(options), RENAMED, cls.__name__)
        valid = cls.option_names()
        for key in options:
            if key not in valid:
                raise ValueError(f"unknown worker option {key!r}; valid options: {', '.join(valid)}")
        if options.get("time_min") is not None:
            options["time_min"] = parse_time(options["time_min"])  # type: ignore[arg-type]
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
        for key in ("cores", "memory_mb", "disk_mb", "time_min"):
            val = getattr(self, key)
            if val is not None and (not isinstance(val, int) or isinstance(val, bool) or val < 1):
                raise ValueError(f"{key} must be a positive whole number; got {val!r}")
        if self.gpus is not None and (not isinstance(self.gpus, int) or self.gpus < 0):
            raise ValueError(f"gpus must be a whole number >= 0; got {self.gpus!r}")
        if not isinstance(self.worker_timeout_s, int) or self.worker_timeout_s < 10:
            raise ValueError(f"worker_timeout_s must be at least 10 seconds; got {self.worker_timeout_s!r}")
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
        if self.time_min is None:
            return None
        seconds = self.time_min * 60
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
        for flag, val in (("cores", self.cores), ("memory", self.memory_mb), ("disk", self.disk_mb),
                          ("gpus", self.gpus)):
            if val is not None:
                args += [f"--{flag}", str(val)]
        for feat in self.features:
            args += ["--feature", feat]
        args += ["--timeout", str(self.worker_timeout_s)]
        wall = self.worker_wall_time()
        if wall is not None:
            args += ["--wall-time", str(wall)]
        if job_id is not None:
            args += ["--job-id", job_id]
        if self.worker_bin != "work_queue_worker":
            args += ["--worker-bin", self.worker_bin]
        return args
