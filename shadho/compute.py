"""Compute classes: groups of workers with the same hardware."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shadho.deprecation import renamed_fields
from shadho.errors import ConfigError

#: Resources Work Queue allocates; any other resource name is a worker feature.
ALLOCATED = ("cores", "memory", "disk", "gpus")
#: The field holding each allocated resource's size (memory and disk in MB).
RESOURCE_FIELDS = {"cores": "cores", "memory": "memory_mb", "disk": "disk_mb", "gpus": "gpus"}


@renamed_fields(memory="memory_mb", disk="disk_mb")
@dataclass(frozen=True)
class ComputeClass:
    """A group of workers that share hardware, and the Work Queue category of its tasks.

    ``resource='cores'|'memory'|'disk'|'gpus'`` sets that resource of the class's
    category; ``resource='feature'`` (as in the original SHADHO) requires the worker
    feature named by ``value`` itself (``work_queue_worker --feature titanx``); any other
    resource (``'gpu_name'``, ``'cluster'``...) is a worker feature ``resource=value``:
    tasks of the class only run on workers started with ``--feature resource=value``.
    ``cores=``, ``memory_mb=``, ``disk_mb=`` and ``gpus=`` give the category's full
    allocation (``memory=`` and ``disk=`` still work, deprecated). Bad values raise
    :class:`~shadho.errors.ConfigError` (a ``ValueError``).

    Example:
        >>> c = ComputeClass('gpu', 'gpu_name', 'NVIDIA-H100', gpus=1)
        >>> c.feature, c.resources
        ('gpu_name=NVIDIA-H100', {'gpus': 1})
        >>> ComputeClass('titan', 'feature', 'titanx').feature
        'titanx'
        >>> ComputeClass('big', 'cores', 16).resources
        {'cores': 16}
        >>> ComputeClass('fat', 'cores', 8, memory_mb=64000).resources
        {'cores': 8, 'memory': 64000}
    """

    name: str
    resource: str
    value: Any
    max_queued_tasks: int = 100
    cores: float | None = None
    memory_mb: int | None = None
    disk_mb: int | None = None
    gpus: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"compute class name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.resource, str) or not self.resource:
            raise ConfigError(f"compute class {self.name!r}: resource must be a string such as "
                             f"{', '.join(ALLOCATED)} or a worker feature name, got {self.resource!r}")
        if not isinstance(self.max_queued_tasks, int) or self.max_queued_tasks < 1:
            raise ConfigError(f"compute class {self.name!r}: max_queued_tasks must be an int >= 1, "
                             f"got {self.max_queued_tasks!r}")
        if self.resource in ALLOCATED:
            v = self.value
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"compute class {self.name!r}: {self.resource} must be a positive "
                                 f"number, got {v!r}")
        for key in RESOURCE_FIELDS.values():
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ConfigError(f"compute class {self.name!r}: {key}= must be a non-negative number, got {v!r}")

    @property
    def feature(self) -> str | None:
        """The worker feature tasks of this class require, or None."""
        if self.resource in ALLOCATED:
            return None
        if self.resource == "feature":
            return str(self.value)
        return f"{self.resource}={self.value}"

    @property
    def resources(self) -> dict[str, float]:
        """The category's allocation: explicit sizes, plus ``resource`` when it is allocated."""
        out: dict[str, float] = {}
        if self.resource in ALLOCATED:
            out[self.resource] = self.value
        for key, attr in RESOURCE_FIELDS.items():
            v = getattr(self, attr)
            if v is not None:
                out[key] = v
        return out

    @property
    def declared_speed(self) -> float:
        """A prior guess of relative speed from declared resources (cores, gpus), >= 1."""
        r = self.resources
        return max(1.0, float(r.get("cores", 1))) * (1.0 + 4.0 * float(r.get("gpus", 0) > 0))
