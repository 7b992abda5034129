"""A rich progress bar on stderr while ``Shadho.run()`` searches in a terminal.

The bar counts finished trials against ``max_tasks`` or, without a budget, elapsed
seconds against the timeout; with neither it pulses. Beside it: failed trials, best
loss so far, running tasks and connected workers. The bar stays on screen when the
search ends (``transient=False``); log lines printed meanwhile go above it.

:func:`shadho.progress.make_progress` picks this class when stderr is a terminal and
rich is installed (import fails cleanly otherwise).

Example:
    >>> import io
    >>> from rich.console import Console
    >>> p = RichProgress(total=4, console=Console(file=io.StringIO(), width=100))
    >>> p.update(done=2, failed=1, running=1, workers=2, best=0.25)
    >>> p.close()
"""
from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from shadho.formatting import MISSING, number
from shadho.progress import Progress as PlainProgress
from shadho.progress import _in_flight


class RichProgress(PlainProgress):
    """Live bar: ``update(done=, failed=, running=, workers=, best=)`` then ``close()``.

    Args:
        total: the trial budget (``max_tasks``), or None.
        timeout: seconds of searching, or None.
        console: where to draw (default: a console on stderr).
    """

    def __init__(self, total: int | None = None, timeout: float | None = None,
                 console: Console | None = None) -> None:
        super().__init__(quiet=False, total=total, timeout=timeout)
        self.console = console or Console(stderr=True)
        self._by_time = not total and bool(timeout)
        if self._by_time:
            count: Any = TextColumn("{task.completed:.0f}/{task.total:.0f} s")
            bar_total: float | None = float(timeout)  # type: ignore[arg-type]
        else:
            count = MofNCompleteColumn() if total else TextColumn("{task.completed:.0f} trials")
            bar_total = float(total) if total else None
        self._bar = Progress(
            SpinnerColumn(), TextColumn("[bold]shadho"), BarColumn(), count,
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console, transient=False, redirect_stdout=True, redirect_stderr=True,
            refresh_per_second=4)
        self._task = self._bar.add_task("search", total=bar_total, info=self._info({}))
        self._closed = False
        self._bar.start()

    @staticmethod
    def _info(s: dict[str, Any]) -> str:
        best = s.get("best")
        best_txt = number(float(best), 6) if isinstance(best, (int, float)) else MISSING
        failed = s.get("failed", 0)
        return (f"best [green]{best_txt}[/]"
                + (f"  [red]{failed} failed[/]" if failed else "")
                + f"  {_in_flight(s)}  {s.get('workers', 0)} workers")

    def update(self, **state: Any) -> None:
        self._state = state
        if self._closed:
            return
        done = state.get("done", 0) + state.get("failed", 0)
        completed = time.time() - self._t0 if self._by_time else done
        if self._by_time and self.timeout:
            completed = min(completed, self.timeout)
        self._bar.update(self._task, completed=completed, info=self._info(state))

    def close(self) -> None:
        if self._closed:
            return
        if self._state:
            self.update(**self._state)
        self._closed = True
        self._bar.stop()
