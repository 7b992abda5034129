"""The exceptions shadho raises: one root, a few meaningful children.

Bad arguments raise :class:`SpecError` (a ``ValueError``) or plain ``TypeError``
naming the valid choices; everything else derives from :class:`ShadhoError`.
"""
from __future__ import annotations


class ShadhoError(Exception):
    """Root of every error raised by shadho itself."""


class SpecError(ShadhoError, ValueError):
    """A malformed search-space spec or argument; the message names the path."""


class StoreError(ShadhoError):
    """The results file is missing, not a shadho store, or from a newer schema."""


class StoreLockedError(StoreError):
    """Another live master already owns this experiment in this results file."""


class BackendUnavailableError(ShadhoError, ImportError):
    """An optional engine (Work Queue, SLURM, HTCondor bindings) is not installed."""


class WorkerError(ShadhoError):
    """Workers could not be started or reached."""


class StoreDamagedError(StoreError):
    """The results file was truncated, replaced, lost its WAL or holds damaged pages."""


class StoreFullError(StoreError):
    """The results file could not be written: its disk is full (finished results are safe)."""


class CliError(ShadhoError):
    """A command-line problem, said as one sentence on stderr (exit status 1)."""
