"""Samplers, one per search space, and the name -> class registry.

A sampler proposes working vectors from a space's :class:`~shadho.history.History`;
one that fits a model after random start-up trials subclasses :class:`ModelSampler`
and reads the space through ``space.encodings`` (:class:`~shadho.domains.Encoding`).
"""
from __future__ import annotations

import importlib
from typing import Any

from shadho.history import History
from shadho.samplers.base import FunctionSampler, ModelSampler, Sampler

__all__ = ["Sampler", "ModelSampler", "History", "make_sampler", "SAMPLERS"]

#: Registered sampler names -> "module:Class" (imported lazily).
SAMPLERS: dict[str, str] = {
    "random": "shadho.samplers.random:RandomSampler",
    "tpe": "shadho.samplers.tpe:TPESampler",
    "bayes": "shadho.samplers.gp:GPSampler",
    "gp": "shadho.samplers.gp:GPSampler",
}


def make_sampler(method: Any, **options: Any) -> Sampler:
    """A sampler from a registered name, a Sampler instance, or a callable.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
        TypeError: anything else.
    """
    if isinstance(method, Sampler):
        return method
    if isinstance(method, str):
        key = method.lower()
        if key not in SAMPLERS:
            raise ValueError(f"unknown method {method!r}; valid: {', '.join(sorted(SAMPLERS))}, "
                             "a Sampler instance or a callable")
        mod, cls = SAMPLERS[key].split(":")
        return getattr(importlib.import_module(mod), cls)(**options)
    if callable(method):
        return FunctionSampler(method)
    raise TypeError(f"method must be a name ({', '.join(sorted(SAMPLERS))}), a Sampler or a "
                    f"callable, got {type(method).__name__}")
