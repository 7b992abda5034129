"""Random search: every dimension drawn from its prior."""
from __future__ import annotations

import numpy as np

from shadho.history import History
from shadho.samplers.base import Sampler
from shadho.spaces import SearchSpace


class RandomSampler(Sampler):
    """Draws each dimension independently from its prior (uniform, normal, categorical)."""

    name = "random"

    def suggest(self, space: SearchSpace, history: History, rng: np.random.Generator) -> np.ndarray:
        return space.sample(rng)
