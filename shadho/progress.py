"""Progress reporting while a search runs: a live bar on a terminal, log lines otherwise."""
from __future__ import annotations

import logging
import sys
import time
from typing import Any

from shadho.formatting import MISSING, number

log = logging.getLogger("shadho")


class Progress:
    """Plain progress: one log line at most every ``every`` seconds (and at the end).

    Example:
        >>> p = Progress(quiet=True)
        >>> p.update(done=1, failed=0, running=2, workers=2, best=0.5)
        >>> p.close()
    """

    def __init__(self, quiet: bool = False, total: int | None = None, timeout: float | None = None,
                 every: float = 10.0) -> None:
        self.quiet, self.total, self.timeout, self.every = quiet, total, timeout, every
        self._t0 = time.time()
        self._last = 0.0
        self._state: dict[str, Any] = {}

    def update(self, **state: Any) -> None:
        self._state = state
        if self.quiet:
            return
        now = time.time()
        if now - self._last >= self.every:
            self._last = now
            self._emit()

    def _emit(self) -> None:
        s = self._state
        if not s:
            return
        budget = f"/{self.total}" if self.total else ""
        best = s.get("best")
        best_txt = number(float(best), 6) if isinstance(best, (int, float)) else MISSING
        _info(f"shadho: {s.get('done', 0)}{budget} trials done, {s.get('failed', 0)} failed, "
              f"{_in_flight(s)}, {s.get('workers', 0)} workers, best loss {best_txt}, "
              f"{time.time() - self._t0:.0f}s elapsed")

    def close(self) -> None:
        if not self.quiet:
            self._emit()


def _in_flight(s: dict[str, Any]) -> str:
    """Tasks executing on workers, and those dispatched but still waiting in worker queues.

    Example:
        >>> _in_flight({'running': 2, 'dispatched': 5}), _in_flight({'running': 3})
        ('2 executing, 3 queued on workers', '3 executing')
    """
    running = int(s.get("running", 0) or 0)
    if "dispatched" not in s:
        return f"{running} executing"
    return f"{running} executing, {max(0, int(s['dispatched']) - running)} queued on workers"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (survives redirection and test capture)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(verbose: bool = False) -> None:
    """Send the 'shadho' logger's messages to stderr (once; a no-op if it has handlers)."""
    if log.handlers:
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def _info(msg: str) -> None:
    if log.hasHandlers():
        log.info(msg)
    else:
        print(msg, file=sys.stderr, flush=True)


def make_progress(quiet: bool, total: int | None, timeout: float | None) -> Progress:
    """A rich live bar when stderr is a terminal and rich is installed, else log lines."""
    if not quiet and sys.stderr.isatty():
        try:
            from shadho.progress_rich import RichProgress
        except ImportError:
            pass
        else:
            return RichProgress(total=total, timeout=timeout)
    return Progress(quiet=quiet, total=total, timeout=timeout)
