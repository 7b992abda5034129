"""shadho: Scalable Hardware-Aware Distributed Hyperparameter Optimization.

Public names are imported lazily so ``import shadho`` does no work.

Example:
    >>> import shadho
    >>> from shadho import spaces
    >>> spaces.uniform(0, 1)
    uniform(lo=0, hi=1)
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["Shadho", "spaces", "ComputeClass", "TrialState", "Trial", "ResultsStore",
           "ShadhoError", "plan", "__version__"]

_LAZY = {
    "Shadho": "shadho.driver",
    "ComputeClass": "shadho.compute",
    "TrialState": "shadho.trial",
    "Trial": "shadho.trial",
    "ResultsStore": "shadho.store",
    "ShadhoError": "shadho.errors",
    "plan": "shadho.planner",
}


def __getattr__(name: str) -> Any:
    if name == "spaces":
        return importlib.import_module("shadho.spaces")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shadho' has no attribute {name!r}")
