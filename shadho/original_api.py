"""The original SHADHO's methods of ``Shadho``: input/output files, compute classes, and the
per-search-space DataFrames. A base class, so ``driver.py`` holds only the search itself.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

from shadho.compute import ALLOCATED, RESOURCE_FIELDS, ComputeClass
from shadho.config import did_you_mean
from shadho.managers.base import FileSpec


class OriginalApi:
    """``add_input_file``, ``add_output_file``, ``add_compute_class``, ``to_dataframes``."""

    input_files: list[FileSpec]
    output_files: list[FileSpec]
    compute_classes: list[ComputeClass]
    spaces: list[Any]
    trials: list[Any]

    def add_input_file(self, localpath: str, remotepath: str | None = None, cache: bool = True) -> None:
        """Ship ``localpath`` into every task's sandbox (as ``remotepath``)."""
        if not os.path.exists(localpath):
            raise ValueError(f"add_input_file: {localpath!r} does not exist")
        self.input_files.append(FileSpec(localpath, remotepath or os.path.basename(localpath), cache))

    def add_output_file(self, localpath: str, remotepath: str | None = None, cache: bool = False) -> None:
        """Fetch ``remotepath`` from every task's sandbox back to ``localpath``."""
        self.output_files.append(FileSpec(localpath, remotepath or os.path.basename(localpath), cache))

    def add_compute_class(self, name: str, resource: str, value: Any, max_queued_tasks: int = 100,
                          **resources: Any) -> ComputeClass:
        """Add a group of workers: ``resource`` in cores/memory/disk/gpus sizes its category,
        ``'feature'`` requires the worker feature named ``value`` (``work_queue_worker --feature
        value``), any other resource is a worker feature ``resource=value``; ``cores=``,
        ``memory_mb=``, ``disk_mb=``, ``gpus=`` give the full allocation (``memory=``, ``disk=``
        still work, deprecated). ``max_tasks=`` (the original's name) means ``max_queued_tasks=``."""
        if "max_tasks" in resources:
            warnings.warn("add_compute_class(max_tasks=) is deprecated: use max_queued_tasks=",
                          DeprecationWarning, stacklevel=2)
            max_queued_tasks = resources.pop("max_tasks")
        bad = sorted(set(resources) - set(ALLOCATED) - set(RESOURCE_FIELDS.values()))
        if bad:
            valid = ("max_queued_tasks",) + tuple(RESOURCE_FIELDS.values())
            raise TypeError(f"add_compute_class got unknown argument(s) {', '.join(bad)}"
                            f"{did_you_mean(bad[0], valid)}; valid: {', '.join(valid)}")
        if any(c.name == name for c in self.compute_classes):
            raise ValueError(f"compute class {name!r} already exists")
        cc = ComputeClass(name, resource, value, max_queued_tasks, **resources)
        self.compute_classes.append(cc)
        return cc

    def to_dataframes(self) -> list[Any]:
        """One pandas DataFrame per search space (spec order), as the original SHADHO returned."""
        from shadho.summary import to_dataframes

        return to_dataframes(self.trials, [s.name for s in self.spaces])
