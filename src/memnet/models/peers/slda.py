"""Streaming linear discriminant analysis (Hayes & Kanan, "Lifelong machine learning with deep
streaming linear discriminant analysis", CVPR workshops 2020), on pixels.

The model keeps a running mean per class and one shared covariance, updated as the samples arrive,
each once; it predicts the class of the largest linear discriminant

    g_k(x) = mu_k' L x - mu_k' L mu_k / 2,   L = ((1 - eps) S + eps I)^-1,

with ``S`` the pooled within-class covariance (biased: the scatter over the samples seen) and
``eps`` the shrinkage. Where ours departs from the published update: Hayes & Kanan scale each
sample's outer product by the count of *all* samples seen so far, an approximation; we merge the
within-class scatter exactly (per class, Chan, Golub & LeVeque's update), so that after any stream
the model equals batch LDA with the same shrinkage on the same samples, up to float rounding
(tests/test_peers.py). A chunk of samples is merged at once, which equals merging its samples one
by one.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from memnet.models.baselines import Baseline
from memnet.validation import check_real

CHUNK = 4096  # samples merged at a time (memory: CHUNK x d float64)


class StreamingLDA(Baseline):
    """Streaming LDA: running class means and one shared covariance, one pass, no gradients.

    Parameters
    ----------
    shrinkage : float, default 1e-4
        ``eps``: the covariance is ``(1 - eps) S + eps I`` (Hayes & Kanan's default).
    random_state : int, default 0
        Unused (nothing is random); accepted as by every baseline.
    n_threads : int, default 1
        Unused: the model runs on one BLAS thread (its sums would differ with the thread count).

    Attributes
    ----------
    means_ : ndarray of shape (K, d), float64
        The class means (zero for a class not seen yet).
    covariance_ : ndarray of shape (d, d), float64
        The pooled within-class covariance ``S``, before shrinkage.
    """

    name = "slda"

    def __init__(self, shrinkage=1e-4, random_state=0, n_threads=1):
        self.shrinkage = shrinkage
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self):
        super()._check_params()
        check_real("shrinkage", self.shrinkage, low=0, high=1, low_open=True)

    def _fit(self, X, y):
        self._start(X.shape[1:], len(self.classes_))
        self._learn_more(X, y)

    def _start(self, input_shape, n_classes):
        d = int(np.prod(input_shape))
        self._counts = np.zeros(n_classes, np.int64)
        self.means_ = np.zeros((n_classes, d))
        self._scatter = np.zeros((d, d))
        self._discriminant = None

    def _learn_more(self, X, y):
        with threadpool_limits(1):  # BLAS's sums depend on its thread count
            self._merge(X.reshape(len(X), -1), y)
        self._discriminant = None

    def _merge(self, flat, y):
        for start in range(0, len(flat), CHUNK):
            xs, ys = flat[start : start + CHUNK].astype(np.float64), y[start : start + CHUNK]
            for k in np.unique(ys):
                batch = xs[ys == k]
                n, c = len(batch), self._counts[k]
                mean = batch.mean(axis=0)
                centred = batch - mean
                delta = mean - self.means_[k]
                self._scatter += centred.T @ centred
                self._scatter += (c * n / (c + n)) * np.outer(delta, delta)
                self.means_[k] += delta * (n / (c + n))
                self._counts[k] += n

    @property
    def covariance_(self) -> np.ndarray:
        return self._scatter / max(int(self._counts.sum()), 1)

    def discriminant(self) -> tuple[np.ndarray, np.ndarray]:
        """(W (d, K), b (K,)): g(x) = x W + b; computed once after each update."""
        if self._discriminant is None:
            eps = float(self.shrinkage)
            shrunk = (1 - eps) * self.covariance_ + eps * np.eye(len(self._scatter))
            with threadpool_limits(1):
                W = np.linalg.solve(shrunk, self.means_.T)
            b = -0.5 * np.einsum("kd,dk->k", self.means_, W)
            self._discriminant = W, b
        return self._discriminant

    def discriminant_scores(self, X) -> np.ndarray:
        """(n, K) g_k(x), float64, on one BLAS thread; -inf for a class not seen yet (a stream)."""
        W, b = self.discriminant()
        with threadpool_limits(1):  # BLAS's sums depend on its thread count
            scores = X.reshape(len(X), -1).astype(np.float64) @ W + b
        scores[:, self._counts == 0] = -np.inf
        return scores

    def _predict_index(self, X):
        predicted = np.empty(len(X), np.int64)
        for start in range(0, len(X), CHUNK):
            predicted[start : start + CHUNK] = self.discriminant_scores(
                X[start : start + CHUNK]
            ).argmax(axis=1)
        return predicted

    @property
    def model_bytes(self) -> int:
        self._check_fitted()
        return self.means_.nbytes + self._scatter.nbytes
