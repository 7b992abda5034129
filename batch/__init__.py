"""Batch systems for shadho workers: SLURM, HTCondor and local processes.

Each system is a job-script template plus a thin class (:mod:`shadho.batch.base`);
:class:`~shadho.batch.pool.WorkerPool` keeps N workers alive through one; ``shadho workers``
(:mod:`shadho.batch.cli`) runs a pool from the command line. Nothing here runs a command at
import.

Example:
    >>> from shadho.batch import get_system
    >>> get_system("slurm").name
    'slurm'
"""
from __future__ import annotations

import importlib

from shadho.batch.base import BatchSystem, JobState, WorkerSpec, parse_time

__all__ = ["BatchSystem", "JobState", "WorkerSpec", "parse_time", "SYSTEMS", "get_system"]

#: Command-line name -> "module:Class".
SYSTEMS = {
    "slurm": "shadho.batch.slurm:SlurmSystem",
    "condor": "shadho.batch.htcondor:HTCondorSystem",
    "local": "shadho.batch.local:LocalSystem",
}


def get_system(name: str, **kwargs: object) -> BatchSystem:
    """A batch system by name (``slurm``, ``condor`` or ``local``).

    Raises:
        ValueError: an unknown name; the message lists the valid ones.
    """
    aliases = {"htcondor": "condor"}
    key = aliases.get(name, name)
    if key not in SYSTEMS:
        raise ValueError(f"unknown batch system {name!r}; valid: {', '.join(SYSTEMS)}")
    module, cls = SYSTEMS[key].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
