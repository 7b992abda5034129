"""The exceptions shadho raises: one root, a few meaningful children.

Bad arguments raise :class:`SpecError` or :class:`ConfigError` (both ``ValueError``) or
plain ``TypeError`` naming the valid choices; everything else derives from
:class:`ShadhoError`. Children also derive from the built-in exception they refine, so
``except ValueError`` (or ``ImportError``, ``RuntimeError``) keeps working.

Example:
    >>> from shadho import ComputeClass
    >>> try:
    ...     ComputeClass('gpu', 'gpus', 0)
    ... except ShadhoError as exc:
    ...     print(type(exc).__name__, isinstance(exc, ValueError))
    ConfigError True
"""
from __future__ import annotations


class ShadhoError(Exception):
    """Root of every error raised by shadho itself."""


class SpecError(ShadhoError, ValueError):
    """A malformed search-space spec or argument; the message names the path."""


class ConfigError(ShadhoError, ValueError):
    """A bad setting outside a spec (a compute class, an option); the message names valid values."""


class StoreError(ShadhoError):
    """The results file is missing, not a shadho store, or from a newer schema."""


class StoreLockedError(StoreError):
    """Another live master already owns this experiment in this results file."""


class MissingDependencyError(ShadhoError, ImportError):
    """An optional package one feature needs (pandas, matplotlib, ...) is not installed.

    The message names the feature and how to install the package.
    """


class BackendUnavailableError(MissingDependencyError):
    """An optional engine (Work Queue, SLURM, HTCondor bindings) is not installed."""


class WorkerError(ShadhoError):
    """Workers could not be started or reached."""


class SimulationError(ShadhoError, RuntimeError):
    """The simulator was asked to run a task its simulated workers cannot take."""


class StoreDamagedError(StoreError):
    """The results file was truncated, replaced, lost its WAL or holds damaged pages."""


class StoreFullError(StoreError):
    """The results file could not be written: its disk is full (finished results are safe)."""


class CliError(ShadhoError):
    """A command-line problem, said as one sentence on stderr (exit status 1)."""
