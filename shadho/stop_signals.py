"""Stopping a running search on SIGINT/SIGTERM: the handler the driver's loop runs under.

Example:
    >>> with signals_stop() as sig:
    ...     sig.got is None
    True
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

__all__ = ["Signals", "Stop", "signals_stop"]


class Stop(Exception):
    """Raised from the SIGTERM handler to stop the loop cleanly."""


class Signals:
    """SIGINT and SIGTERM during :meth:`Shadho.run`: raised at once (KeyboardInterrupt,
    :class:`Stop`) and remembered, so that the loop stops at its next turn even when
    the exception was swallowed (raised inside a finalizer or a logging lock release,
    Python prints it and goes on: seen once in the Ctrl-C test)."""

    def __init__(self) -> None:
        self.got: int | None = None

    def handle(self, signum: int, frame: Any) -> None:
        self.got = signum
        self.check()

    def check(self) -> None:
        if self.got == signal.SIGINT:
            raise KeyboardInterrupt
        if self.got is not None:
            raise Stop()


@contextlib.contextmanager
def signals_stop() -> Iterator[Signals]:
    """SIGINT/SIGTERM stop the search inside the block (main thread only: signals go there)."""
    sig = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield sig
        return
    old = {s: signal.signal(s, sig.handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield sig
    finally:
        for s, h in old.items():
            signal.signal(s, h)
