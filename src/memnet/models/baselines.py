"""Baselines the Memory Network is compared with: two backprop nets and two memory-based learners.

- ``"mlp"``: a PyTorch multilayer perceptron, d -> 1000 -> K with ReLU, trained with Adam.
- ``"cnn"``: a small PyTorch CNN (two 3x3 conv layers with 32 and 64 channels, ReLU, 2x2 max-pool,
  then one linear layer), trained with Adam.
- ``"knn"``: k-nearest neighbours on raw pixels (exact search: faiss, or for L1 on 8-bit images
  memnet._l1_kernels), L2 or L1.
- ``"ncm"``: nearest class mean, one prototype per class, L2.

Build one with :func:`make_baseline` (or its class). Every baseline is a
:class:`memnet.estimator.Estimator`: ``fit(X, y)``, ``predict(X)``, ``score(X, y)``, the facts
``uses_backprop``, ``uses_weight_sharing``, ``n_passes`` and ``model_bytes``; none can be saved
(``can_save`` is False). ``X`` is ``(n, C, H, W)`` (the nets' image shape is taken from the
data) or, except for the CNN, ``(n, d)``, converted to float32; ``y`` holds integer labels.

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
import inspect
from collections.abc import Iterator

import numpy as np

from memnet.models.estimator import Estimator
from memnet.validation import (
    check_choice,
    check_images,
    check_int,
    check_labels,
    check_random_state,
    check_real,
)

KNN_METRICS = ("l2", "l1")
HIDDEN_UNITS = 1000
CONV_CHANNELS = (32, 64)
_PREDICT_BATCH = 256
_NCM_CHUNK = 4096


def make_baseline(name: str, *, random_state: int, n_threads: int = 1, **params) -> Baseline:
    """Return an unfitted, checked baseline ``name`` ("mlp", "cnn", "knn" or "ncm").

    ``random_state`` seeds everything random (the nets' initial weights and batch order);
    ``n_threads`` is the job's thread budget. ``params`` override the defaults in
    ``DEFAULT_PARAMS[name]``; an unknown or bad one is a ValueError that names it.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name].from_params(params, random_state=random_state, n_threads=n_threads)


class Baseline(Estimator):
    """What all baselines share: input checks, label encoding, ``predict`` and ``score``.

    Baselines cannot be saved (``can_save`` is False). ``X`` is ``(n, C, H, W)`` or, except for
    the CNN, ``(n, d)`` (one 1 x d channel), of any real dtype (converted to float32, not
    rescaled); ``y`` holds any integer labels (encoded as 0..K-1 in sorted order).

    Attributes
    ----------
    classes_ : ndarray
        The sorted labels seen in fit.
    input_shape_ : tuple of int
        (C, H, W) of the training samples.
    """

    accepts_flat_input = True

    @classmethod
    def _owner(cls):
        return f"baseline {cls.name!r}"

    def _check_params(self):
        check_random_state(self.random_state, allow_none=False)
        check_int("n_threads", self.n_threads, minimum=1)

    def fit(self, X, y) -> Baseline:
        """Learn from (X, y); returns self."""
        self._check_params()
        X = self._check_X(X)
        y = check_labels(y, len(X))
        self.input_shape_ = X.shape[1:]
        self.classes_, y_index = np.unique(y, return_inverse=True)
        self._fit(X, y_index.astype(np.int64))
        return self

    def partial_fit(self, X, y, classes=None) -> Baseline:
        """Continue learning with (X, y), for a class-incremental stream; returns self.

        The first call fixes the classes (``classes``, else those of ``y``). Each call then
        learns the batch from the current state: the nets train ``epochs`` epochs on it from
        their current weights and optimiser (plain fine-tuning), kNN adds it to its memory, and
        nearest class mean updates its running class means.
        """
        self._check_params()
        X = self._check_X(X)
        y = check_labels(y, len(X))
        if not self._is_fitted():
            self.input_shape_ = X.shape[1:]
            self.classes_ = np.unique(np.asarray(classes) if classes is not None else y)
            self._start(X.shape[1:], len(self.classes_))
        elif X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {X.shape[1:]}, but the {self.name} baseline started on "
                f"samples of shape {self.input_shape_}; pass samples of that shape"
            )
        index = np.searchsorted(self.classes_, y)
        unknown = (index >= len(self.classes_)) | (
            self.classes_[np.minimum(index, len(self.classes_) - 1)] != y
        )
        if unknown.any():
            raise ValueError(
                f"y has label {y[unknown][0]}, not among the classes {self.classes_.tolist()} fixed "
                "by the first partial_fit call; pass every class there (classes=...)"
            )
        self._learn_more(X, index.astype(np.int64))
        return self

    def _start(self, input_shape, n_classes) -> None:
        raise NotImplementedError

    def _learn_more(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        """The predicted label of each sample of X."""
        self._check_fitted()
        X = self._check_X(X)
        if X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {X.shape[1:]}, but the {self.name} baseline was fitted "
                f"on samples of shape {self.input_shape_}; pass samples of the training shape"
            )
        return self.classes_[self._predict_index(X)].astype(np.int64)

    def _is_fitted(self):
        return hasattr(self, "classes_")

    def _check_X(self, X) -> np.ndarray:
        return check_images(
            X,
            owner=f"the {self.name} baseline",
            flat=self.accepts_flat_input,
            integers="any",
            dtype=np.float32,
        )

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_index(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class NearestClassMean(Baseline):
    """One prototype per class, the mean of its training samples; predict the nearest (L2).

    Distances are exact float64 sums of squared differences, so a tie can only be a true tie;
    it goes to the first class in sorted label order.

    Parameters
    ----------
    random_state : int, default 0
        Unused (nothing is random); accepted as by every baseline.
    n_threads : int, default 1
        Unused (single-threaded numpy).

    Attributes
    ----------
    means_ : ndarray of shape (K, C*H*W), float32
        The class means, in sorted label order.
    model_bytes : int
        Bytes of the means.
    """

    name = "ncm"

    def __init__(self, random_state=0, n_threads=1):
        self.random_state = random_state
        self.n_threads = n_threads

    def _fit(self, X, y):
        flat = X.reshape(len(X), -1)
        self.means_ = np.stack(
            [flat[y == k].mean(axis=0, dtype=np.float64) for k in range(len(self.classes_))]
        ).astype(np.float32)

    @property
    def model_bytes(self) -> int:
        self._check_fitted()
        return self.means_.nbytes

    def _start(self, input_shape, n_classes):
        self._sums = np.zeros((n_classes, int(np.prod(input_shape))), dtype=np.float64)
        self._counts = np.zeros(n_classes, dtype=np.int64)

    def _learn_more(self, X, y):
        np.add.at(self._sums, y, X.reshape(len(X), -1).astype(np.float64))
        self._counts += np.bincount(y, minlength=len(self._counts))
        seen = np.maximum(self._counts, 1)[:, None]
        self.means_ = (self._sums / seen).astype(np.float32)

    def _predict_index(self, X):
        flat = X.reshape(len(X), -1)
        means = self.means_.astype(np.float64)
        predicted = np.empty(len(flat), dtype=np.int64)
        for start in range(0, len(flat), _NCM_CHUNK):
            chunk = flat[start : start + _NCM_CHUNK].astype(np.float64)
            distances = np.stack([((chunk - mean) ** 2).sum(axis=1) for mean in means], axis=1)
            if hasattr(self, "_counts"):  # a stream: a class not seen yet has no mean
                distances[:, self._counts == 0] = np.inf
            predicted[start : start + _NCM_CHUNK] = distances.argmin(axis=1)
        return predicted


class KNearestNeighbours(Baseline):
    """k-nearest neighbours on raw pixels, exact search (L2 or L1).

    L2 searches with faiss. L1 on 8-bit images (values k/255, as every prepared dataset has) keeps
    the pixel bytes and sums absolute differences as exact integers (memnet._l1_kernels, several
    times faster than faiss's float L1 on CIFAR-sized inputs, and the same for any thread count);
    on other inputs it searches with faiss.

    Voting: the class with most of the k neighbours wins. A tie between classes goes to the tied
    class whose nearest member is closest, i.e. the tied class that appears first in the
    neighbour list (sorted by ascending distance; equal distances by training order in the byte
    kernel).

    Parameters
    ----------
    k : int, default 1
        Neighbours that vote; at most the number of training samples.
    metric : {"l2", "l1"}, default "l2"
        The distance.
    random_state : int, default 0
        Unused (exact search); accepted as by every baseline.
    n_threads : int, default 1
        Search threads, faiss's or the byte kernel's (neighbours are identical for any count).

    Attributes
    ----------
    index_ : faiss.Index or None
        The training samples; None while they are kept as bytes (L1 on 8-bit images).
    bytes_ : ndarray of shape (n, d), uint8
        The training samples' pixel values, for L1 on 8-bit images (else empty).
    labels_ : ndarray of shape (n,), int64
        Their encoded labels.
    model_bytes : int
        Bytes of the stored samples (float32) and labels.
    """

    name = "knn"

    def __init__(self, k=1, metric="l2", random_state=0, n_threads=1):
        self.k = k
        self.metric = metric
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self):
        super()._check_params()
        check_int("k", self.k, minimum=1)
        check_choice("metric", self.metric, KNN_METRICS)

    def _fit(self, X, y):
        if self.k > len(X):
            raise ValueError(
                f"k={self.k} exceeds the number of training samples ({len(X)}); lower k"
            )
        self._start(X.shape[1:], len(self.classes_))
        self._learn_more(X, y)

    def _start(self, input_shape, n_classes):
        self.index_ = None  # faiss index of the samples, or (l1 on 8-bit images) None
        self.bytes_ = np.zeros((0, int(np.prod(input_shape))), np.uint8)
        self.labels_ = np.zeros(0, dtype=np.int64)

    def _new_index(self):
        import faiss

        from memnet.datasets import to_unit_float

        d = self.bytes_.shape[1]
        index = faiss.IndexFlatL2(d) if self.metric == "l2" else faiss.IndexFlat(d, faiss.METRIC_L1)
        if len(self.bytes_):  # samples learnt as bytes so far
            with _faiss_threads(self.n_threads):
                index.add(to_unit_float(self.bytes_))
        return index

    def _learn_more(self, X, y):
        from memnet.models import _l1_kernels as _l1

        X = np.ascontiguousarray(X.reshape(len(X), -1))
        codes = _l1.as_bytes(X) if self.metric == "l1" and self.index_ is None else None
        self._float_index = None  # the float copy of samples kept as bytes is stale now
        if codes is not None:
            self.bytes_ = np.concatenate([self.bytes_, codes])
        else:
            if self.index_ is None:
                self.index_ = self._new_index()
                self.bytes_ = self.bytes_[:0]
            with _faiss_threads(self.n_threads):
                self.index_.add(X)
        self.labels_ = np.concatenate([self.labels_, y])

    @property
    def model_bytes(self) -> int:
        """The samples as float32 (whatever their storage) and their labels."""
        self._check_fitted()
        return 4 * len(self.labels_) * self.bytes_.shape[1] + self.labels_.nbytes

    def _predict_index(self, X):
        if self.k > len(self.labels_):
            raise ValueError(f"k={self.k} exceeds the {len(self.labels_)} samples learnt; lower k")
        from memnet.models import _l1_kernels as _l1

        queries = np.ascontiguousarray(X.reshape(len(X), -1))
        codes = _l1.as_bytes(queries) if self.index_ is None else None
        if codes is not None:
            neighbours = _l1.nearest(self.bytes_, codes, self.k, self.n_threads)
        else:  # queries that are not 8-bit against samples kept as bytes: a float index, once
            index = self.index_
            if index is None:
                if getattr(self, "_float_index", None) is None:
                    self._float_index = self._new_index()
                index = self._float_index
            with _faiss_threads(self.n_threads):
                _, neighbours = index.search(queries, self.k)
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
    """A PyTorch net trained with Adam on cross-entropy, minibatches in a seeded random order.

    Parameters
    ----------
    epochs : int, default 1
        Passes over the training data.
    batch_size : int, default 64
        Samples per minibatch.
    lr : float, default 1e-3
        Adam's learning rate.
    random_state : int, default 0
        Seeds the initial weights and the batch order.
    n_threads : int, default 1
        Accepted but unused: the nets run on one intra-op thread (see the module docstring).

    Attributes
    ----------
    net_ : torch.nn.Module
        The trained net.
    model_bytes : int
        Bytes of its parameters.
    """

    uses_backprop = True

    def __init__(self, epochs=1, batch_size=64, lr=1e-3, random_state=0, n_threads=1):
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self):
        super()._check_params()
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_real("lr", self.lr, low=0.0, low_open=True)

    @property
    def n_passes(self) -> int:
        return int(self.epochs)

    @property
    def model_bytes(self) -> int:
        self._check_fitted()
        return sum(p.numel() * p.element_size() for p in self.net_.parameters())

    def _build(self, input_shape: tuple[int, ...], n_classes: int):
        raise NotImplementedError

    def _fit(self, X, y):
        self._start(X.shape[1:], len(self.classes_))
        self._learn_more(X, y)

    def _start(self, input_shape, n_classes):
        import torch

        init_seed, order_seed = np.random.SeedSequence(self.random_state).generate_state(2)
        with _torch_single_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seed))
            self.net_ = self._build(input_shape, n_classes)
        self._order_rng = torch.Generator().manual_seed(int(order_seed))
        self._optimiser = torch.optim.Adam(self.net_.parameters(), lr=float(self.lr))

    def _learn_more(self, X, y):
        import torch

        with _torch_single_thread():
            self.net_.train()
            for _ in range(self.epochs):
                order = torch.randperm(len(X), generator=self._order_rng).numpy()
                for start in range(0, len(X), self.batch_size):
                    batch = order[start : start + self.batch_size]
                    self._optimiser.zero_grad()
                    logits = self.net_(torch.from_numpy(X[batch]))
                    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y[batch]))
                    loss.backward()
                    self._optimiser.step()

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


BASELINES: dict[str, type[Baseline]] = {
    "mlp": MLP,
    "cnn": CNN,
    "knn": KNearestNeighbours,
    "ncm": NearestClassMean,
}
# Each baseline's parameters and their defaults (its constructor's, less random_state and
# n_threads, which the run sets); make_baseline accepts exactly these.
DEFAULT_PARAMS: dict[str, dict[str, object]] = {
    name: {
        p: v.default
        for p, v in inspect.signature(cls).parameters.items()
        if p not in ("random_state", "n_threads")
    }
    for name, cls in BASELINES.items()
}


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
