"""What one run of :func:`shadho.sim.simulate` produced (virtual seconds), and the figures
read from it: completions, throughput, time to a target loss, the best-so-far curve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shadho.trial import Trial, TrialState

__all__ = ["SimResult"]


@dataclass
class SimResult:
    """What one simulated run produced (times are virtual seconds)."""

    trials: list[Trial]
    makespan: float
    decision_seconds: float  # wall-clock time spent inside the scheduler
    wall_seconds: float
    space_stats: list[dict[str, Any]] = field(default_factory=list)
    space_names: dict[str, str] = field(default_factory=dict)
    queued_starts: dict[int, float] = field(default_factory=dict)  # see SimulatedManager

    @property
    def decision_ms_per_task(self) -> float:
        return 1e3 * self.decision_seconds / max(1, len(self.trials))

    def completions(self) -> tuple[np.ndarray, np.ndarray]:
        """Finish times (sorted) and losses of the COMPLETE trials."""
        done = [(t.finish_time, t.loss) for t in self.trials
                if t.state == TrialState.COMPLETE and t.finish_time is not None]
        done.sort()
        return (np.array([d[0] for d in done], dtype=float), np.array([d[1] for d in done], dtype=float))

    def throughput(self, until: float) -> float:
        """Successful trials per hour finished by virtual time ``until``."""
        f, _ = self.completions()
        return 3600.0 * float((f <= until).sum()) / until

    def time_to(self, target: float) -> float:
        """First virtual time a loss <= ``target`` was seen (inf if never)."""
        f, y = self.completions()
        hit = np.flatnonzero(y <= target)
        return float(f[hit[0]]) if len(hit) else math.inf

    def best_at(self, t: float) -> float:
        f, y = self.completions()
        m = f <= t
        return float(y[m].min()) if m.any() else math.inf

    def window(self, until: float) -> "SimResult":
        """This run as if it had been stopped at virtual time ``until`` (a wall budget):
        only the trials finished by then, and the stats rows written by then.

        Raises:
            ValueError: the run ended before ``until`` (its trial budget was too small
                to fill the window).
        """
        if self.makespan < until:
            raise ValueError(f"the run ended at {self.makespan:.1f} s, before the window's "
                             f"{until:.1f} s: give it a larger trial budget")
        kept = [t for t in self.trials if t.finish_time is not None and t.finish_time <= until]
        stats = [r for r in self.space_stats if r.get("time") is None or r["time"] <= until]
        return SimResult(kept, float(until), self.decision_seconds, self.wall_seconds, stats,
                         dict(self.space_names))

    def best_curve(self) -> tuple[np.ndarray, np.ndarray]:
        f, y = self.completions()
        return f, np.minimum.accumulate(y) if len(y) else y
