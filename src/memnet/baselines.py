"""Baselines the Memory Network is compared with: two backprop nets and two memory-based learners.

- ``"mlp"``: a PyTorch multilayer perceptron, d -> 1000 -> K with ReLU, trained with Adam.
- ``"cnn"``: a small PyTorch CNN (two 3x3 conv layers with 32 and 64 channels, ReLU, 2x2 max-pool,
  then one linear layer), trained with Adam.
- ``"knn"``: k-nearest neighbours on raw pixels (exact search with faiss), L2 or L1.
- ``"ncm"``: nearest class mean, one prototype per class, L2.

Build one with :func:`make_baseline`. Every baseline has ``fit(X, y)``, ``predict(X)`` and
``score(X, y)``; ``X`` is float32 ``(n, C, H, W)`` (the nets' image shape is taken from the
data) or, except for the CNN, ``(n, d)``; ``y`` holds integer labels.

Determinism across thread counts. The pipeline promises identical results on any number of
cores. PyTorch CPU training is *not* bitwise identical between 1 and 2 intra-op threads: weight
gradients are sums over the batch, and MKL (linear layers) and oneDNN (convolutions) split those
sums differently per thread count. Measured with torch 2.13 after one epoch on 3,000-5,000 random
MNIST-shaped images: weights differ by up to 3e-5 (MLP) and 6e-3 (CNN), and
``torch.use_deterministic_algorithms(True)`` does not change that; runs with the *same* thread
count are reproducible. So the nets always train and predict on one intra-op thread, which stays
within any job's budget (the pipeline gets its parallelism from running jobs side by side), and
``n_threads`` is accepted but unused by them. MKL's strict reproducibility mode
(``MKL_CBWR=AUTO,STRICT`` with oneDNN switched off) also gave identical weights on 2 threads, but
it must be in the environment before MKL loads, which a library cannot ensure. Exact faiss search
(k-NN) gives identical neighbours and distances for 1 and 2 threads (checked on all of MNIST), and
the nearest-class-mean code is single-threaded numpy.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import numpy as np

# Each baseline's parameters and their defaults; make_baseline accepts exactly these.
DEFAULT_PARAMS: dict[str, dict[str, object]] = {
    "mlp": {"epochs": 1, "batch_size": 64, "lr": 1e-3},
    "cnn": {"epochs": 1, "batch_size": 64, "lr": 1e-3},
    "knn": {"k": 1, "metric": "l2"},
    "ncm": {},
}
KNN_METRICS = ("l2", "l1")
HIDDEN_UNITS = 1000
CONV_CHANNELS = (32, 64)
_PREDICT_BATCH = 256
_NCM_CHUNK = 4096


def make_baseline(name: str, *, random_state: int, n_threads: int = 1, **params) -> Baseline:
    """Return an unfitted baseline ``name`` ("mlp", "cnn", "knn" or "ncm").

    ``random_state`` seeds everything random (the nets' initial weights and batch order);
    ``n_threads`` is the job's thread budget. ``params`` override the defaults in
    ``DEFAULT_PARAMS[name]``.
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(_CLASSES)}")
    unknown = sorted(set(params) - set(DEFAULT_PARAMS[name]))
    if unknown:
        allowed = sorted(DEFAULT_PARAMS[name]) or "none"
        raise ValueError(
            f"unknown parameter(s) {unknown} for baseline {name!r}; allowed parameters: {allowed}"
        )
    _check_int("random_state", random_state, minimum=0)
    _check_int("n_threads", n_threads, minimum=1)
    return _CLASSES[name](
        random_state=random_state, n_threads=n_threads, **{**DEFAULT_PARAMS[name], **params}
    )


class Baseline:
    """What all baselines share: input validation, label encoding and ``score``."""

    name = ""
    uses_backprop = False
    uses_weight_sharing = False
    accepts_flat_input = True

    def __init__(self, *, random_state: int, n_threads: int):
        self.random_state = random_state
        self.n_threads = n_threads
        self.n_passes = 1
        self.params: dict[str, object] = {}

    def fit(self, X, y) -> Baseline:
        X = self._check_X(X)
        y = _check_y(y, len(X))
        self.input_shape_ = X.shape[1:]
        self.classes_, y_index = np.unique(y, return_inverse=True)
        self._fit(X, y_index.astype(np.int64))
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "classes_"):
            raise RuntimeError(f"this {self.name} baseline is not fitted yet; call fit(X, y) first")
        X = self._check_X(X)
        if X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {X.shape[1:]}, but the {self.name} baseline was fitted "
                f"on samples of shape {self.input_shape_}"
            )
        return self.classes_[self._predict_index(X)].astype(np.int64)

    def score(self, X, y) -> float:
        """Accuracy of ``predict(X)`` against ``y``."""
        predicted = self.predict(X)
        return float(np.mean(predicted == _check_y(y, len(predicted))))

    def _check_X(self, X) -> np.ndarray:
        X = np.asarray(X)
        shapes = "(n, C, H, W)" if not self.accepts_flat_input else "(n, C, H, W) or (n, d)"
        if X.ndim not in ((2, 4) if self.accepts_flat_input else (4,)):
            raise ValueError(
                f"X must have shape {shapes} for the {self.name} baseline; got {X.shape}"
            )
        if X.size == 0:
            raise ValueError(f"X is empty (shape {X.shape}); pass at least one non-empty sample")
        if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise ValueError(f"X must hold real numbers; got dtype {X.dtype}")
        X = np.asarray(X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinite values; clean or impute them first")
        return X

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_index(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class NearestClassMean(Baseline):
    """One prototype per class, the mean of its training samples; predict the nearest (L2).

    Distances are exact float64 sums of squared differences, so a tie can only be a true tie;
    it goes to the first class in sorted label order.
    """

    name = "ncm"

    def _fit(self, X, y):
        flat = X.reshape(len(X), -1)
        self.means_ = np.stack(
            [flat[y == k].mean(axis=0, dtype=np.float64) for k in range(len(self.classes_))]
        ).astype(np.float32)
        self.model_bytes = self.means_.nbytes

    def _predict_index(self, X):
        flat = X.reshape(len(X), -1)
        means = self.means_.astype(np.float64)
        predicted = np.empty(len(flat), dtype=np.int64)
        for start in range(0, len(flat), _NCM_CHUNK):
            chunk = flat[start : start + _NCM_CHUNK].astype(np.float64)
            distances = np.stack([((chunk - mean) ** 2).sum(axis=1) for mean in means], axis=1)
            predicted[start : start + _NCM_CHUNK] = distances.argmin(axis=1)
        return predicted


class KNearestNeighbours(Baseline):
    """k-nearest neighbours on raw pixels with exact faiss search (L2 or L1).

    Voting: the class with most of the k neighbours wins. A tie between classes goes to the tied
    class whose nearest member is closest, i.e. the tied class that appears first in faiss's
    neighbour list (sorted by ascending distance).
    """

    name = "knn"

    def __init__(self, *, random_state, n_threads, k, metric):
        super().__init__(random_state=random_state, n_threads=n_threads)
        _check_int("k", k, minimum=1)
        if metric not in KNN_METRICS:
            raise ValueError(f"unknown metric {metric!r} for knn; choose one of {KNN_METRICS}")
        self.k, self.metric = k, metric
        self.params = {"k": k, "metric": metric}

    def _fit(self, X, y):
        import faiss

        if self.k > len(X):
            raise ValueError(f"k={self.k} exceeds the number of training samples ({len(X)})")
        flat = np.ascontiguousarray(X.reshape(len(X), -1))
        d = flat.shape[1]
        self.index_ = (
            faiss.IndexFlatL2(d) if self.metric == "l2" else faiss.IndexFlat(d, faiss.METRIC_L1)
        )
        with _faiss_threads(self.n_threads):
            self.index_.add(flat)
        self.labels_ = y
        self.model_bytes = flat.nbytes + y.nbytes

    def _predict_index(self, X):
        queries = np.ascontiguousarray(X.reshape(len(X), -1))
        with _faiss_threads(self.n_threads):
            _, neighbours = self.index_.search(queries, self.k)
        return vote(self.labels_[neighbours], len(self.classes_))


def vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority class of each row of ``neighbour_labels`` (n, k), sorted nearest first.

    A tie goes to the tied class that appears first in the row (its nearest member is closest).
    """
    n, _ = neighbour_labels.shape
    counts = np.zeros((n, n_classes), dtype=np.int64)
    np.add.at(counts, (np.arange(n)[:, None], neighbour_labels), 1)
    is_top = counts == counts.max(axis=1, keepdims=True)
    first_top = np.take_along_axis(is_top, neighbour_labels, axis=1).argmax(axis=1)
    return neighbour_labels[np.arange(n), first_top]


class _TorchNet(Baseline):
    """A PyTorch net trained with Adam on cross-entropy, minibatches in a seeded random order."""

    uses_backprop = True

    def __init__(self, *, random_state, n_threads, epochs, batch_size, lr):
        super().__init__(random_state=random_state, n_threads=n_threads)
        _check_int("epochs", epochs, minimum=1)
        _check_int("batch_size", batch_size, minimum=1)
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < np.inf:
            raise ValueError(f"lr must be a positive number; got {lr!r}")
        self.epochs, self.batch_size, self.lr = epochs, batch_size, float(lr)
        self.n_passes = epochs
        self.params = {"epochs": epochs, "batch_size": batch_size, "lr": self.lr}

    def _build(self, input_shape: tuple[int, ...], n_classes: int):
        raise NotImplementedError

    def _fit(self, X, y):
        import torch

        init_seed, order_seed = np.random.SeedSequence(self.random_state).generate_state(2)
        # fork_rng: seeding the initial weights leaves the caller's global torch RNG untouched.
        with _torch_single_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seed))
            net = self._build(X.shape[1:], len(self.classes_))
            order_rng = torch.Generator().manual_seed(int(order_seed))
            optimiser = torch.optim.Adam(net.parameters(), lr=self.lr)
            net.train()
            for _ in range(self.epochs):
                order = torch.randperm(len(X), generator=order_rng).numpy()
                for start in range(0, len(X), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    optimiser.zero_grad()
                    logits = net(torch.from_numpy(X[batch]))
                    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y[batch]))
                    loss.backward()
                    optimiser.step()
        self.net_ = net
        self.model_bytes = sum(p.numel() * p.element_size() for p in net.parameters())

    def _predict_index(self, X):
        import torch

        self.net_.eval()
        predicted = []
        with _torch_single_thread(), torch.inference_mode():
            for start in range(0, len(X), _PREDICT_BATCH):
                logits = self.net_(torch.from_numpy(X[start : start + _PREDICT_BATCH].copy()))
                predicted.append(logits.argmax(dim=1).numpy())
        return np.concatenate(predicted).astype(np.int64)


class MLP(_TorchNet):
    """Multilayer perceptron d -> 1000 -> K with ReLU."""

    name = "mlp"

    def _build(self, input_shape, n_classes):
        from torch import nn

        d = int(np.prod(input_shape))
        return nn.Sequential(
            nn.Flatten(), nn.Linear(d, HIDDEN_UNITS), nn.ReLU(), nn.Linear(HIDDEN_UNITS, n_classes)
        )


class CNN(_TorchNet):
    """Two 3x3 conv layers (32, 64 channels; ReLU; 2x2 max-pool) and a linear classifier."""

    name = "cnn"
    uses_weight_sharing = True
    accepts_flat_input = False

    def _build(self, input_shape, n_classes):
        from torch import nn

        channels, height, width = input_shape
        if height < 4 or width < 4:
            raise ValueError(f"the cnn needs images of at least 4x4 pixels; got {height}x{width}")
        first, second = CONV_CHANNELS
        return nn.Sequential(
            nn.Conv2d(channels, first, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(second * (height // 4) * (width // 4), n_classes),
        )


_CLASSES: dict[str, type[Baseline]] = {
    "mlp": MLP,
    "cnn": CNN,
    "knn": KNearestNeighbours,
    "ncm": NearestClassMean,
}


def _check_int(name: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def _check_y(y, n_samples: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_samples:
        raise ValueError(f"y must have shape ({n_samples},), one label per sample; got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class labels; got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


@contextlib.contextmanager
def _torch_single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread (see the module docstring), then restore the setting."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _faiss_threads(n_threads: int) -> Iterator[None]:
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n_threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)
