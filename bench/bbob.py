"""The 24 noiseless BBOB functions (COCO's ``bbob`` suite, via the ``cocoex`` module).

Each function is a box ``[-5, 5]^d`` problem; regret is ``f(x) - f_opt`` with ``f_opt``
read from COCO itself (the function's value at its known optimum). Instance 1 of each
function is used for every seed, so seeds vary only the samplers' randomness.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from sampler_runners import Param, Problem, flat_problem

#: BBOB function groups (Hansen et al., "Real-parameter black-box optimization
#: benchmarking 2009: noiseless functions definitions").
GROUPS = {"separable": range(1, 6), "moderate": range(6, 10), "ill-conditioned": range(10, 15),
          "multi-modal": range(15, 20), "weak-structure": range(20, 25)}

_CACHE: dict[tuple[int, int, int], tuple[Any, float]] = {}


def _coco(fn: int, dim: int, instance: int) -> tuple[Any, float]:
    """The COCO problem and its optimal value (cached per process; not picklable)."""
    key = (fn, dim, instance)
    if key not in _CACHE:
        import cocoex
        suite = cocoex.Suite("bbob", "", f"dimensions:{dim} instance_indices:{instance}")
        prob = suite.get_problem_by_function_dimension_instance(fn, dim, instance)
        # COCO writes the optimum's location to a file in the working directory.
        here = os.getcwd()
        with tempfile.TemporaryDirectory() as tmp:
            os.chdir(tmp)
            try:
                prob._best_parameter("print")
                xopt = np.loadtxt("._bbob_problem_best_parameter.txt").reshape(-1)
            finally:
                os.chdir(here)
        _CACHE[key] = (prob, float(prob(xopt)))
    return _CACHE[key]


def problem(fn: int, dim: int, budget: int, instance: int = 1) -> Problem:
    """BBOB function ``fn`` (1-24) in ``dim`` dimensions as a benchmark problem."""
    if not 1 <= fn <= 24:
        raise ValueError(f"BBOB functions are 1..24, got {fn}")
    keys = [f"x{i}" for i in range(dim)]
    fopt = _coco(fn, dim, instance)[1]

    def f(p: dict[str, Any]) -> float:
        return float(_coco(fn, dim, instance)[0](np.array([p[k] for k in keys], dtype=float)))

    return flat_problem(f"f{fn}-d{dim}", [Param(k, "float", -5.0, 5.0) for k in keys], f,
                        fopt, budget, tags=("bbob", f"d{dim}"))


def problems(functions: list[int], dims: list[int], budget: int) -> list[Problem]:
    return [problem(fn, d, budget) for d in dims for fn in functions]
