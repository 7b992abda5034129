"""A search space: one disjoint sub-space of a spec, with fixed structure (see :mod:`shadho.spaces`)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from shadho.compound import restore
from shadho.domains import Domain, Encoding

__all__ = ["SearchSpace"]


@dataclass(frozen=True)
class SearchSpace:
    """One disjoint sub-space of a spec: fixed structure, independent domains.

    Attributes:
        id: stable id (same spec -> same id across runs; used to resume).
        name: readable name built from the decisions taken, e.g. ``'svm/rbf'``.
        paths: the path of each dimension in the nested params.
        domains: the domain of each dimension (same order as ``paths``).
        template: nested dict of constants into which sampled values are placed.

    Example:
        >>> import numpy as np
        >>> from shadho.spaces import split, uniform
        >>> (s,) = split({'x': uniform(0, 1), 'k': 'rbf'})
        >>> p = s.params(s.sample(np.random.default_rng(0)))
        >>> sorted(p), 0 <= p['x'] <= 1
        (['k', 'x'], True)
    """

    id: str
    name: str
    paths: tuple[tuple[str, ...], ...]
    domains: tuple[Domain, ...]
    template: dict[str, Any] = field(repr=False)

    @property
    def dim(self) -> int:
        return len(self.domains)

    @property
    def encodings(self) -> tuple[Encoding, ...]:
        """What samplers may know of each dimension (:class:`~shadho.domains.Encoding`)."""
        return tuple(d.encoding for d in self.domains)

    @property
    def labels(self) -> list[str]:
        """Dotted path of each dimension (``'svm.rbf.C'``)."""
        return [".".join(p) for p in self.paths]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A working vector drawn from the priors."""
        return np.array([d.sample(rng) for d in self.domains], dtype=float)

    def params(self, x: Sequence[float]) -> dict[str, Any]:
        """The nested params (plain Python values) for working vector ``x``."""
        out = copy.deepcopy(self.template)
        for path, dom, w in zip(self.paths, self.domains, x):
            node = out
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = dom.value(w)
        return restore(out)  # compound domains (shadho.compound) back to lists / derived values

    def flat(self, x: Sequence[float]) -> dict[str, Any]:
        """Dotted path -> value for the sampled dimensions only."""
        return {lab: d.value(w) for lab, d, w in zip(self.labels, self.domains, x)}

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The working vector of nested ``params`` (inverse of :meth:`params`)."""
        out = []
        for path, dom in zip(self.paths, self.domains):
            node: Any = params
            for key in path:
                node = node[key]
            out.append(dom.encode(node))
        return np.array(out, dtype=float)

    def describe(self) -> dict[str, Any]:
        """JSON-able description stored with the results."""
        return {
            "id": self.id,
            "name": self.name,
            "dims": {lab: d.describe() for lab, d in zip(self.labels, self.domains)},
            "template": self.template,
        }
