"""Hardware-aware heuristics: complexity and uncertainty of search spaces, the speed
of each compute class on each space, and the assignment of spaces to classes (and, in a
multi-fidelity search, of each space's rungs: :mod:`.rung_costs`).

The driver builds its scheduler through :func:`make_scheduler`.
"""
from shadho.heuristics.assignment import Assignment, assign
from shadho.heuristics.complexity import complexity
from shadho.heuristics.scheduler import Scheduler, make_scheduler
from shadho.heuristics.strength import RuntimeModel
from shadho.heuristics.uncertainty import uncertainty

__all__ = ["Assignment", "RuntimeModel", "Scheduler", "assign", "complexity", "make_scheduler",
           "uncertainty"]
