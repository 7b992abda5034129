"""How large a search space is: the *complexity* heuristic.

A pure function of the space's domains, measured in the working space samplers
model (see :mod:`shadho.spaces`), so it never changes during a search.

Formula. Each dimension ``d`` gets a size ``z_d``:

* continuous uniform domains: the width ``high - low`` of the working space; log
  domains are measured in their exponent (``log10_uniform(-3, 3)`` has width 6);
* normal domains: the width of mu -/+ 4 sigma, ``8 * sigma`` (the bounds samplers model);
* integer and categorical domains: the number of values ``n_values``.

The space's complexity is ``C = sum_d log(1 + z_d)``: additive over dimensions
like the log of a volume, but a dimension of size 0 adds nothing and every added
dimension adds something. A space with no sampled dimension has complexity 0.

Example:
    >>> import math
    >>> from shadho.spaces import split, uniform, choice
    >>> (s,) = split({'x': uniform(0, 1), 'k': choice(['a', 'b', 'c'])})
    >>> math.isclose(complexity(s), math.log(2) + math.log(4))
    True
"""
from __future__ import annotations

import math
from typing import Sequence

from shadho.spaces import Domain, SearchSpace

__all__ = ["domain_size", "complexity", "complexities"]


def domain_size(domain: Domain) -> float:
    """The size ``z`` of one dimension (see the module docstring)."""
    enc = domain.encoding
    if enc.n_values is not None:
        return float(enc.n_values)
    return max(0.0, enc.high - enc.low)


def complexity(space: SearchSpace) -> float:
    """``sum_d log(1 + z_d)`` over the space's dimensions."""
    return float(sum(math.log1p(domain_size(d)) for d in space.domains))


def complexities(spaces: Sequence[SearchSpace]) -> list[float]:
    """:func:`complexity` of each space, in order."""
    return [complexity(s) for s in spaces]
