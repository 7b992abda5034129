"""The budget of a multi-fidelity search: one fidelity (e.g. epochs), its rungs and brackets.

A trial of a multi-fidelity search runs its configuration up to a budget (epochs, boosting
rounds, a data fraction). Budgets come in rungs, ``min * eta**k`` up to ``max``; successive
halving promotes the best ``1/eta`` of a rung to the next (see :mod:`shadho.asha`).
Hyperband runs several brackets of successive halving that start at higher rungs, so a
search that cannot tell configurations apart at the lowest budget still finishes some
trials at a higher one.

Example:
    >>> f = Fidelity("epochs", 1, 81, eta=3)
    >>> f.budgets
    (1, 3, 9, 27, 81)
    >>> f.rung_of(9), f.budget(4)
    (2, 81)
    >>> Fidelity("epochs", 1, 81, eta=3, brackets=3).bracket_rungs
    (0, 1, 2)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from shadho.errors import SpecError

__all__ = ["Fidelity"]


def _number(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpecError(f"fidelity {name} must be a finite number, got {v!r}")
    return v


@dataclass(frozen=True)
class Fidelity:
    """One budget dimension, declared once on ``Shadho(..., fidelity=...)``.

    Args:
        name: what the budget counts (``'epochs'``); the objective receives it under this
            name (a keyword argument for callables, a field of ``hyperparameters.json``).
        min, max: the lowest and highest budget (``0 < min < max``).
        eta: the reduction factor (>= 2): each rung is ``eta`` times the one below and
            keeps the best ``1/eta`` of its configurations.
        brackets: Hyperband brackets (1: plain asynchronous successive halving). Bracket
            ``b`` starts its configurations at rung ``b``.
        integer: budgets are whole numbers (rounded), as epochs are.
    """

    name: str
    min: float
    max: float
    eta: int = 3
    brackets: int = 1
    integer: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise SpecError(f"fidelity name must be an identifier such as 'epochs', got {self.name!r}")
        lo, hi = _number("min", self.min), _number("max", self.max)
        if not 0 < lo < hi:
            raise SpecError(f"fidelity needs 0 < min < max, got min={lo!r}, max={hi!r}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise SpecError(f"fidelity eta must be an int >= 2, got {self.eta!r}")
        n = self.n_rungs
        if isinstance(self.brackets, bool) or not isinstance(self.brackets, int) or not 1 <= self.brackets <= n:
            raise SpecError(f"fidelity brackets must be an int from 1 to {n} (the rungs between min and max), "
                            f"got {self.brackets!r}")

    @classmethod
    def of(cls, value: Any) -> "Fidelity | None":
        """A :class:`Fidelity` from what users pass: None, a Fidelity, a mapping of its
        fields, or a tuple ``(name, min, max[, eta])``."""
        if value is None or isinstance(value, Fidelity):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"name", "min", "max", "eta", "brackets", "integer"}
            if unknown:
                raise SpecError(f"unknown fidelity key(s) {sorted(unknown)}; valid: name, min, max, eta, "
                                "brackets, integer")
            return cls(**value)
        if isinstance(value, (tuple, list)) and 3 <= len(value) <= 4:
            return cls(*value)
        raise SpecError(f"fidelity must be a mapping such as {{'name': 'epochs', 'min': 1, 'max': 81, "
                        f"'eta': 3}} or a tuple ('epochs', 1, 81, 3), got {value!r}")

    @property
    def n_rungs(self) -> int:
        """Rungs from ``min`` to ``max`` (the top rung is ``max`` itself)."""
        return int(math.floor(math.log(self.max / self.min, self.eta) + 1e-9)) + 1

    def budget(self, rung: int) -> float:
        """The budget of ``rung`` (the top rung is always ``max``)."""
        if not 0 <= rung < self.n_rungs:
            raise ValueError(f"rung must be 0..{self.n_rungs - 1}, got {rung}")
        b = self.max if rung == self.n_rungs - 1 else self.min * self.eta ** rung
        return int(round(b)) if self.integer else float(b)

    @property
    def budgets(self) -> tuple[float, ...]:
        return tuple(self.budget(k) for k in range(self.n_rungs))

    def rung_of(self, budget: float) -> int:
        """The rung whose budget is ``budget`` (ValueError for a budget between rungs)."""
        for k, b in enumerate(self.budgets):
            if math.isclose(b, budget, rel_tol=1e-9):
                return k
        raise ValueError(f"{budget!r} is not a rung budget of {self.name} ({self.budgets})")

    @property
    def bracket_rungs(self) -> tuple[int, ...]:
        """The rung each bracket starts its configurations at."""
        return tuple(range(self.brackets))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "min": self.min, "max": self.max, "eta": self.eta,
                "brackets": self.brackets, "integer": self.integer}
