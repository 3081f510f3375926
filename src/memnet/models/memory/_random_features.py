"""Fixed random features of layer 1's evidence, for the hierarchical Memory Network's layer 2
(``layer2_hidden``): ours.

Layer 2 reads relu(((f - m) / s) R + b) instead of the evidence f itself: R (d, h) and b (h,) are
drawn once from a seed and never learnt, as the hidden layer of an extreme learning machine, and m,
s are the mean and spread of the first block of evidence layer 2 learns (fixed from then on). So
layer 2 stays gradient-free and single-pass, and its linear readout becomes a non-linear function
of the evidence. Computed in float64 on one BLAS thread: BLAS's sums depend on its thread count.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

BIAS_SCALE = 0.5  # b ~ N(0, BIAS_SCALE^2); R ~ N(0, 1/d)


class RandomFeatures(NamedTuple):
    """The map's fixed parts: the standardisation (mean, scale) and the projection (R, b)."""

    mean: np.ndarray
    scale: np.ndarray
    projection: np.ndarray
    bias: np.ndarray

    @classmethod
    def start(cls, F: np.ndarray, n_hidden: int, seed: int) -> RandomFeatures:
        """The map for evidence rows like F (the first block layer 2 learns), with R and b from
        ``seed``."""
        F = np.asarray(F, np.float64)
        return cls.of(F.mean(axis=0), F.std(axis=0) + 1e-9, n_hidden, seed)

    @classmethod
    def of(cls, mean, scale, n_hidden: int, seed: int) -> RandomFeatures:
        """The map with this standardisation; R and b drawn from ``seed`` (as ``start`` draws)."""
        rng = np.random.default_rng(seed)
        d = len(mean)
        projection = rng.standard_normal((d, n_hidden)) / np.sqrt(d)
        bias = BIAS_SCALE * rng.standard_normal(n_hidden)
        return cls(np.asarray(mean, np.float64), np.asarray(scale, np.float64), projection, bias)

    def __call__(self, F: np.ndarray) -> np.ndarray:
        """(n, h) float64: relu(((F - mean) / scale) R + b)."""
        Z = (np.asarray(F, np.float64) - self.mean) / self.scale
        with threadpool_limits(1):
            H = Z @ self.projection
        H += self.bias
        return np.maximum(H, 0.0, out=H)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self)
