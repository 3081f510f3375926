"""The Memory Network (Ruiz & Gupta, 2024, arXiv:2409.17282), as reconstructed for this project.

The paper's full text is not public. This model is a reconstruction that fits every known fact
(shared/spec/memory-network.md, section 2): a tensor of memory neurons, learnt in one pass with
local updates only (birth of a new neuron for a novel input, else Hebbian plasticity of the
winner), an adaptive novelty threshold that spends a neuron budget, and voting at inference.

Speed with exact sequential semantics: a block of samples gets its distances to the memories as
they stood before the block from one BLAS product per memory bank (one bank per class under
``competition="label"``, so a sample is only compared with its candidates). A neuron born or
changed inside the block keeps a bound from those products (or from the block's own Gram
product), widened by how far it has moved since, and is computed exactly when it might win.
The BLAS values only filter: every decision uses exact float64 distances (memnet._kernels), so
the result does not depend on BLAS, block size or thread count, and equals the plain
one-sample-at-a-time implementation in memnet.reference.

Threads: ``n_threads`` worker threads (default numba.get_num_threads(), which
``numba.set_num_threads`` or NUMBA_NUM_THREADS set) run independent BLAS products and query
chunks; BLAS itself runs single-threaded inside them.
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import queue
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from memnet import _kernels as K
from memnet.datasets import to_unit_float
from memnet.io import atomic_path

FORMAT_NAME = "memnet.MemoryNetwork"
FORMAT_VERSION = 1

DISTANCES = {"l2": K.L2, "l1": K.L1, "cosine": K.COSINE}
THRESHOLDS = {"adaptive": K.ADAPTIVE, "fixed": K.FIXED, "none": K.NO_THRESHOLD}
PLASTICITIES = {"mean": K.MEAN, "constant": K.CONSTANT, "none": K.NO_PLASTICITY}
COMPETITIONS = ("label", "all")
VOTINGS = ("channel", "joint")

# The default initial tau is this fraction of the mean distance between two samples of the data.
TAU_FRACTION = 0.25
L1_TAU_SUBSAMPLE = 2048  # l1 has no closed form: its mean pair distance uses an even subsample
QUERY_CHUNK = 1024  # queries per inference task
NEURON_BLOCK = 1024  # neurons per BLAS product at inference (the product stays in cache)
CANDIDATES = 60  # candidate list of a query at inference (overflow: exhaustive search)
SPARSE_SHARE = 0.9  # l2 products drop unused features when at most this share of them is left


class MemoryNetwork:
    """A single-pass, backprop-free memory network (a reconstruction of Ruiz & Gupta, 2024).

    The paper's text is not public: every choice below is a reconstruction, named as a
    parameter so that ablations can vary it; the defaults form the ``paper`` configuration.

    Training presents each sample once, in the order
    ``np.random.default_rng(random_state).permutation(n)`` (``shuffle=False``: as given). The
    candidates are the born neurons of the sample's class (``competition="label"``) or all of
    them (``"all"``); the winner is the nearest (ties: the earliest born). A neuron is born with
    the sample as its memory when there is no candidate or the winner's distance exceeds tau, and
    fewer than ``n_neurons`` are born; otherwise the winner absorbs the sample: ``hits += 1`` and
    ``memory += eta * (x - memory)``, with ``eta = 1 / hits`` for ``plasticity="mean"`` (the
    memory is then the running mean of every sample it absorbed, its birth sample included). A
    sample of a class without neurons once the budget is spent leaves no trace.

    ``threshold="adaptive"``: after each sample, tau *= 1 + beta if births so far / samples
    seen > n_neurons / T, else tau *= 1 - beta (T = ``expected_samples``, or len(X) in fit).
    ``"fixed"`` keeps tau; ``"none"`` makes every sample novel (with n_neurons >= T: exactly
    1-nearest-neighbour). ``tau=None`` means ``default_tau(X, distance)`` of the data given to
    fit (or of the first batch given to partial_fit).

    Inference: ``voting="channel"``: each channel's k nearest neurons (by that channel's
    distance) vote for their labels, votes summed over channels; ``"joint"``: the k nearest by
    the summed distance vote. Ties go to the class with the smallest summed distance of its
    votes, then to the lowest class. Distances: ``l2`` squared Euclidean, ``l1``, ``cosine``
    (1 - cosine similarity, taken as 1 for an all-zero vector), summed over channels.

    Inputs: X of shape (n, C, H, W) or (n, d) (one channel), uint8 (scaled by 1/255) or
    floating point; y integer classes 0..K-1. ``n_threads``: worker threads for fit/predict
    (None: numba.get_num_threads()); results are identical for any thread count.
    """

    def __init__(
        self,
        n_neurons=20000,
        distance="l2",
        threshold="adaptive",
        plasticity="mean",
        competition="label",
        voting="channel",
        k=1,
        tau=None,
        beta=0.01,
        eta=0.1,
        expected_samples=None,
        shuffle=True,
        random_state=None,
        n_threads=None,
    ):
        self.n_neurons = n_neurons
        self.distance = distance
        self.threshold = threshold
        self.plasticity = plasticity
        self.competition = competition
        self.voting = voting
        self.k = k
        self.tau = tau
        self.beta = beta
        self.eta = eta
        self.expected_samples = expected_samples
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_threads = n_threads

    # ---- estimator protocol (scikit-learn style, without importing it) -----------------------

    @classmethod
    def _param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        """The constructor parameters, as scikit-learn's get_params (so clone() works)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in self._param_names():
                raise ValueError(f"unknown parameter {name!r}; expected {self._param_names()}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {n: p.default for n, p in inspect.signature(type(self)).parameters.items()}
        changed = [f"{n}={v!r}" for n, v in self.get_params().items() if v != defaults[n]]
        return f"{type(self).__name__}({', '.join(changed)})"

    def score(self, X, y):
        """Accuracy of predict(X) against y."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    # ---- training ---------------------------------------------------------------------------

    def fit(self, X, y):
        """Forget everything, then learn from one pass over (X, y) in the seeded order."""
        self._check_params()
        X = check_images(X)
        y = check_labels(y, len(X))
        self._reset(image_shape=X.shape[1:], n_classes=int(y.max()) + 1)
        self._n_expected = self.expected_samples or len(X)
        self._tau = self._initial_tau(X)
        if self.shuffle:
            order = np.random.default_rng(self.random_state).permutation(len(X))
        else:
            order = np.arange(len(X))
        with _Workers(self.n_threads) as workers:
            self._learn(X, y, order, workers, plan_whole_pass=True)
        return self

    def partial_fit(self, X, y, classes=None):
        """Continue the single pass with (X, y), in the order given (no shuffling).

        The first call fixes the classes (``classes``, else 0..max(y)) and T: with
        ``threshold="adaptive"`` it needs ``expected_samples``. fit(X, y) equals partial_fit on
        X[order[:m]] then X[order[m:]] (same expected_samples and an explicit tau; a default tau
        comes from the first batch).
        """
        self._check_params()
        X = check_images(X)
        if not hasattr(self, "_memory"):
            if self.threshold == "adaptive" and self.expected_samples is None:
                raise ValueError(
                    "partial_fit with threshold='adaptive' needs expected_samples (T, the number "
                    "of samples of the whole pass) to set the target birth rate n_neurons / T"
                )
            n_classes = None if classes is None else _n_classes_from(classes)
            y = check_labels(y, len(X), n_classes)
            self._reset(image_shape=X.shape[1:], n_classes=n_classes or int(y.max()) + 1)
            self._n_expected = self.expected_samples or len(X)
            self._tau = self._initial_tau(X)
        else:
            self._check_same_shape(X)
            if classes is not None and _n_classes_from(classes) != self._n_classes:
                raise ValueError(
                    f"classes has {len(classes)} entries but the model was started with "
                    f"{self._n_classes}; pass the same classes (or none) after the first call"
                )
            y = check_labels(y, len(X), self._n_classes)
        with _Workers(self.n_threads) as workers:
            self._learn(X, y, np.arange(len(X)), workers, plan_whole_pass=False)
        return self

    def _initial_tau(self, X):
        if self.tau is not None:
            return float(self.tau)
        return default_tau(X, self.distance) if self.threshold != "none" else 0.0  # unused

    def _reset(self, image_shape, n_classes):
        c, h, w = (int(s) for s in image_shape)
        self.image_shape_ = (c, h, w)
        self.n_features_in_ = c * h * w
        self._n_classes = n_classes
        self.classes_ = np.arange(n_classes)
        n_banks = n_classes if self.competition == "label" else 1
        self._memory = _Memory(n_banks, c, h * w, n_classes, self.competition == "all")
        self._n_seen = 0
        self._stats = np.zeros(2, np.int64)  # exact distances in training: dirty, filtered
        self._approx_pairs = 0  # (sample, neuron) pairs approximated in training

    def _learn(self, X, y, order, workers, plan_whole_pass):
        mem = self._memory
        c, p = mem.n_channels, mem.n_pixels
        dist = DISTANCES[self.distance]
        kappa, delta = K.error_bounds(p if dist == K.COSINE else c * p)
        bank_of = y if self.competition == "label" else np.zeros_like(y)
        left = np.bincount(bank_of, minlength=mem.n_banks)  # samples of each bank still to come
        seen = np.zeros_like(left)
        if plan_whole_pass:  # one pool for the whole pass: the banks move inside it, never grow
            rows = min(self.n_neurons, len(order)) + SPARE_ROWS
            mem.reserve_rows(np.zeros_like(left), left, rows)
        tau_state = np.array([self._tau])
        counters = np.array([mem.n_born, self._n_seen], dtype=np.int64)
        start = 0
        while start < len(order):
            size = _block_size(mem, dist)
            if plan_whole_pass:  # the block's births fit in the pool: it never grows
                size = min(size, len(mem.pool) - mem.n_born)
            idx = order[start : start + size]
            start += len(idx)
            xb = rows_float32(X, idx)
            yb = np.ascontiguousarray(y[idx], dtype=np.int64)
            bank = np.ascontiguousarray(bank_of[idx], dtype=np.int64)
            in_block = np.bincount(bank, minlength=mem.n_banks)
            left -= in_block
            seen += in_block
            # a bank gains at most one neuron per sample, and none past the budget
            needed = mem.count + np.minimum(in_block, max(self.n_neurons - mem.n_born, 0))
            if np.any(needed > mem.cap):
                if plan_whole_pass:  # spare rows go where births are still expected
                    rows, weights = len(mem.pool), left * (mem.count + 1) / (seen + 1)
                else:
                    grown = max(math.ceil(1.5 * len(mem.pool)), int(needed.sum()) + BLOCK_MIN)
                    rows = max(len(mem.pool), min(grown, self.n_neurons + SPARE_ROWS))
                    weights = mem.count + 1
                mem.reserve_rows(needed, weights, rows)
            mem.reserve_neurons(mem.n_born + len(idx))
            xnorm = _sq_norms(xb, c, p)
            dots, row_off, row_len, gram, gram_off, gram_n, local = self._block_dots(
                xb, bank, in_block, dist, workers
            )
            K.train_block(
                xb, yb, bank, dots, row_off, row_len, xnorm, gram, gram_off, gram_n, local,
                mem.pool, mem.norm, _filter_terms(mem.norm, dist, 0, c), mem.gidx, mem.start,
                mem.count,
                mem.hits, mem.birth_label, mem.assoc, mem.row_of, mem.dirty,
                dist, THRESHOLDS[self.threshold], PLASTICITIES[self.plasticity],
                np.float32(self.eta), float(self.beta), int(self.n_neurons),
                int(self._n_expected), c, p, kappa, delta, tau_state, counters, self._stats,
            )  # fmt: skip
            mem.n_born = int(counters[0])
        self._n_seen = int(counters[1])
        self._tau = float(tau_state[0])
        mem.scratch = _Buffers()

    def _block_dots(self, xb, bank, in_block, dist, workers):
        """The approximations train_block needs for a block, from BLAS products (l1: its loop).

        dots: each sample against its bank's memories before the block (at row_off, row_len
        long); gram (not for cosine): the samples of each bank against each other (bank b's
        s_b x s_b block at gram_off[b]; local: a sample's place among its bank's samples), for
        the neurons that samples give birth to inside the block.
        """
        mem = self._memory
        n_block, n_banks = len(xb), mem.n_banks
        row_off = np.zeros(n_block, np.int64)
        row_len = np.zeros(n_block, np.int64)
        local = np.zeros(n_block, np.int64)
        gram_off = np.zeros(n_banks, np.int64)
        gram_n = np.zeros(n_banks, np.int64)
        n_buf = mem.n_channels if dist == K.COSINE else 1
        empty = np.zeros((n_buf, 0), np.float32)
        if self.threshold == "none" and mem.n_born + n_block <= self.n_neurons:
            return empty, row_off, row_len, np.zeros(0, np.float32), gram_off, gram_n, local
        banks = np.flatnonzero(in_block)
        members = {b: np.flatnonzero(bank == b) for b in banks}
        total = sum(int(in_block[b] * mem.count[b]) for b in banks)
        dots = mem.scratch.get("dots", (n_buf, total))
        with_gram = dist != K.COSINE
        gram = mem.scratch.get("gram", (int((in_block**2).sum()) if with_gram else 0,))
        channels = (0, mem.n_channels)
        tasks = []
        off = goff = 0
        for b in banks:
            sel = members[b]
            xs = xb[sel]
            local[sel] = np.arange(len(sel))
            n_rows = int(mem.count[b])
            start = int(mem.start[b])
            if n_rows > 0:
                span = len(sel) * n_rows
                out = dots[:, off : off + span]
                tasks.append(lambda xs=xs, s=start, n=n_rows, o=out: _approx(
                    mem.pool, xs, s, n, dist, o, channels, mem.n_pixels))  # fmt: skip
                row_off[sel] = off + np.arange(len(sel)) * n_rows
                row_len[sel] = n_rows
                off += span
            if with_gram and len(sel) > 1:
                out = gram[goff : goff + len(sel) ** 2][None]
                tasks.append(lambda xs=xs, o=out: _approx(
                    xs, xs, 0, len(xs), dist, o, channels, mem.n_pixels))  # fmt: skip
                gram_off[b], gram_n[b] = goff, len(sel)
                goff += len(sel) ** 2
        workers.run(tasks)
        self._approx_pairs += total + goff
        return dots, row_off, row_len, gram, gram_off, gram_n, local

    # ---- inference --------------------------------------------------------------------------

    def predict(self, X):
        """The class voted by the nearest neurons of each sample (see the class docstring)."""
        self._check_fitted()
        X = check_images(X)
        self._check_same_shape(X)
        pred = np.empty(len(X), np.int64)
        labels = self.labels_
        order = _by_extent(X) if self.distance == "l2" else np.arange(len(X))
        chunks = [order[s : s + QUERY_CHUNK] for s in range(0, len(X), QUERY_CHUNK)]
        used = self._used_columns()
        with _Workers(self.n_threads) as workers:
            # one set of buffers per worker, reused chunk after chunk; allocated here, where
            # memory that training freed can serve them, rather than in fresh thread arenas
            q, d = min(QUERY_CHUNK, len(X)), self.n_features_in_
            n_buf = self.image_shape_[0] if self.distance == "cosine" else 1
            buffers = queue.SimpleQueue()
            for _ in range(workers.n):
                buffers.put(_Buffers(xq=q * d, xs=q * d, dots=n_buf * q * NEURON_BLOCK,
                                     memories=NEURON_BLOCK * d))  # fmt: skip

            def task(rows):
                buf = buffers.get()
                try:
                    return self._predict_chunk(X, rows, labels, pred, used, buf)
                finally:
                    buffers.put(buf)

            work = workers.run([lambda rows=rows: task(rows) for rows in chunks])
        self._predict_work = {
            "approx_pairs": sum(w[0] for w in work),
            "exact_pairs": sum(w[1] for w in work),
        }
        return pred

    def _used_columns(self):
        """Per feature: whether any born memory is non-zero there."""
        mem = self._memory
        used = np.zeros(mem.pool.shape[1], bool)
        for b in range(mem.n_banks):
            for s in range(mem.start[b], mem.start[b] + mem.count[b], NEURON_BLOCK):
                end = min(s + NEURON_BLOCK, mem.start[b] + mem.count[b])
                used |= (mem.pool[s:end] != 0).any(axis=0)
        return used

    def _predict_chunk(self, X, rows, labels, pred, used, buf):
        """Predict X[rows] into pred[rows]; returns (approximate, exact) distance pairs.

        The neurons go by in blocks of NEURON_BLOCK: one BLAS product each (sized for the
        cache), folded at once into each query's running bounds and candidates (K.scan_block).
        For l2 the products skip the features that are zero in every query of the chunk or in
        every memory (``used``): they add nothing to a dot product, and fewer terms only
        tighten its float32 error, so the filter's bounds still hold.
        """
        mem = self._memory
        c, p = mem.n_channels, mem.n_pixels
        dist = DISTANCES[self.distance]
        k = min(int(self.k), mem.n_born)
        channel_sets = [(0, c)]
        if self.voting == "channel" and c > 1:
            channel_sets = [(ch, ch + 1) for ch in range(c)]
        banks = np.flatnonzero(mem.count > 0)
        bank_start = mem.start[banks].astype(np.int64)
        bank_n = mem.count[banks].astype(np.int64)
        blocks = [(int(s + r0), int(min(NEURON_BLOCK, n - r0)))
                  for s, n in zip(bank_start, bank_n, strict=True)
                  for r0 in range(0, n, NEURON_BLOCK)]  # fmt: skip
        q = len(rows)
        xq = rows_float32(X, rows, out=buf.get("xq", (q, c * p)))
        qnorm = _sq_norms(xq, c, p)
        votes = np.zeros((q, self._n_classes), np.int64)
        dsum = np.zeros((q, self._n_classes), np.float64)
        n_exact = np.zeros(q, np.int64)
        cap = CANDIDATES + 4 * k
        for c0, c1 in channel_sets:
            n_buf = c1 - c0 if dist == K.COSINE else 1
            kappa, delta = K.error_bounds((1 if dist == K.COSINE else c1 - c0) * p)
            pool_sum = _filter_terms(mem.norm, dist, c0, c1)
            half_sum = (0.5 * pool_sum).astype(np.float32)
            cols = None
            if dist == K.L2:
                span = slice(c0 * p, c1 * p)
                keep = np.flatnonzero((xq[:, span] != 0).any(axis=0) & used[span]) + c0 * p
                if len(keep) < SPARSE_SHARE * (c1 - c0) * p:
                    cols = keep
                    xs = np.take(xq, cols, axis=1, out=buf.get("xs", (q, len(cols))), mode="clip")
            upper = np.full((q, k), K.BIG)
            cand_row = np.empty((q, cap), np.int64)
            cand_low = np.empty((q, cap), np.float64)
            cand_n = np.zeros(q, np.int64)
            found_row = np.empty(NEURON_BLOCK, np.int64)
            found_low = np.empty(NEURON_BLOCK, np.float64)
            dots = buf.get("dots", (n_buf, q * NEURON_BLOCK))
            for start, n_rows in blocks:
                out = dots[:, : q * n_rows]
                if cols is None:
                    _approx(mem.pool, xq, start, n_rows, dist, out, (c0, c1), p)
                else:
                    memories = np.take(mem.pool[start : start + n_rows], cols, axis=1,
                                       out=buf.get("memories", (n_rows, len(cols))),
                                       mode="clip")  # fmt: skip
                    np.matmul(xs, memories.T, out=out[0].reshape(q, n_rows))
                K.scan_block(
                    out, qnorm, mem.norm, pool_sum, start, n_rows, dist, c0, c1, kappa, delta,
                    upper, cand_row, cand_low, cand_n, found_row, found_low, half_sum,
                )  # fmt: skip
            gidx = np.empty((q, k), np.int64)
            dist_k = np.empty((q, k), np.float64)
            K.refine_topk(
                xq, mem.pool, mem.gidx, bank_start, bank_n, c0, c1, p, dist,
                upper, cand_row, cand_low, cand_n, gidx, dist_k, n_exact,
            )  # fmt: skip
            voter = np.repeat(np.arange(q), k)
            np.add.at(votes, (voter, labels[gidx.ravel()]), 1)
            np.add.at(dsum, (voter, labels[gidx.ravel()]), dist_k.ravel())
        top = votes == votes.max(axis=1, keepdims=True)
        pred[rows] = np.argmin(np.where(top, dsum, np.inf), axis=1)
        return q * int(bank_n.sum()) * len(channel_sets), int(n_exact.sum())

    # ---- fitted state -----------------------------------------------------------------------

    @property
    def n_born_(self) -> int:
        self._check_fitted()
        return self._memory.n_born

    @property
    def memories_(self) -> np.ndarray:
        """(n_born, C, P) float32, in order of birth (a copy)."""
        self._check_fitted()
        mem = self._memory
        rows = mem.row_of[: mem.n_born]
        return mem.pool[rows].reshape(mem.n_born, mem.n_channels, mem.n_pixels)

    @property
    def labels_(self) -> np.ndarray:
        """The class each neuron serves: its birth class, or the argmax of assoc_ for "all"."""
        self._check_fitted()
        if self.competition == "all":
            return np.argmax(self.assoc_, axis=1).astype(np.int64)
        return self._memory.birth_label[: self.n_born_].copy()

    @property
    def hits_(self) -> np.ndarray:
        self._check_fitted()
        return self._memory.hits[: self.n_born_].copy()

    @property
    def assoc_(self) -> np.ndarray:
        """(n_born, K) int64: how often each neuron won (or was born) for each class ("all")."""
        self._check_fitted()
        if self.competition != "all":
            raise AttributeError("assoc_ exists only for competition='all'")
        return self._memory.assoc[: self.n_born_].copy()

    @property
    def births_per_class_(self) -> np.ndarray:
        self._check_fitted()
        born = self._memory.birth_label[: self.n_born_]
        return np.bincount(born, minlength=self._n_classes).astype(np.int64)

    @property
    def memory_bytes_(self) -> int:
        """Bytes of the learnt state: memories (float32), labels and hits (int64), assoc."""
        n = self.n_born_
        per_neuron = 4 * self.n_features_in_ + 16
        if self.competition == "all":
            per_neuron += 8 * self._n_classes
        return n * per_neuron

    def work_(self) -> dict:
        """Distance work of the last fit/partial_fit and predict, in (sample, neuron) pairs.

        ``approx``: pairs filtered through a BLAS product (or the l1 loop); ``exact``: pairs
        whose exact float64 distance was taken. Multiply by C*H*W for multiply-adds.
        """
        self._check_fitted()
        predict = getattr(self, "_predict_work", {"approx_pairs": 0, "exact_pairs": 0})
        return {
            "train_approx_pairs": int(self._approx_pairs),
            "train_exact_pairs": int(self._stats.sum()),
            "predict_approx_pairs": predict["approx_pairs"],
            "predict_exact_pairs": predict["exact_pairs"],
        }

    @property
    def tau_(self) -> float:
        """The novelty threshold tau as training left it."""
        self._check_fitted()
        return self._tau

    @property
    def n_seen_(self) -> int:
        self._check_fitted()
        return self._n_seen

    # ---- persistence ------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the model to ``path`` (.npz: arrays, JSON config and state, format version)."""
        self._check_fitted()
        mem = self._memory
        state = {
            "n_classes": self._n_classes,
            "image_shape": list(self.image_shape_),
            "tau": self._tau,
            "n_seen": self._n_seen,
            "n_expected": self._n_expected,
        }
        arrays = {
            "format": np.array(FORMAT_NAME),
            "format_version": np.array(FORMAT_VERSION),
            "config": np.array(json.dumps(_plain(self.get_params()))),
            "state": np.array(json.dumps(state)),
            "memories": self.memories_,
            "birth_labels": mem.birth_label[: mem.n_born],
            "hits": self.hits_,
            "assoc": mem.assoc[: mem.n_born],
        }
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path) -> MemoryNetwork:
        """Read a model written by save(); a wrong, corrupt or other-version file: ValueError."""
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {name: f[name] for name in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: not a readable memnet model file ({err})") from err
        if str(data.get("format", "")) != FORMAT_NAME:
            raise ValueError(f"{path}: not a memnet model file (no '{FORMAT_NAME}' marker)")
        version = int(data["format_version"]) if "format_version" in data else None
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{path}: model file format version {version}; this memnet reads version "
                f"{FORMAT_VERSION} (re-train and save the model with this version)"
            )
        try:
            model = cls(**json.loads(str(data["config"])))
            model._check_params()
            state = json.loads(str(data["state"]))
            memories = np.asarray(data["memories"], dtype=np.float32)
            model._reset(state["image_shape"], int(state["n_classes"]))
            model._memory.restore(memories, data["birth_labels"], data["hits"], data["assoc"])
            model._tau = float(state["tau"])
            model._n_seen = int(state["n_seen"])
            model._n_expected = int(state["n_expected"])
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ValueError(f"{path}: corrupt memnet model file ({err})") from err
        return model

    # ---- checks -----------------------------------------------------------------------------

    def _check_fitted(self):
        if not hasattr(self, "_memory"):
            raise ValueError("this MemoryNetwork is not fitted yet; call fit or partial_fit first")

    def _check_same_shape(self, X):
        if tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])} (as (C, H, W)) but the model was "
                f"trained on {self.image_shape_}"
            )

    def _check_params(self):
        _check_int("n_neurons", self.n_neurons, 1)
        _check_choice("distance", self.distance, DISTANCES)
        _check_choice("threshold", self.threshold, THRESHOLDS)
        _check_choice("plasticity", self.plasticity, PLASTICITIES)
        _check_choice("competition", self.competition, COMPETITIONS)
        _check_choice("voting", self.voting, VOTINGS)
        _check_int("k", self.k, 1)
        if self.tau is not None:
            lowest = 0.0 if self.threshold != "adaptive" else np.nextafter(0, 1)
            _check_real("tau", self.tau, lowest, np.inf, "a finite number > 0 (or None)")
        _check_real("beta", self.beta, np.nextafter(0, 1), np.nextafter(1, 0), "in (0, 1)")
        _check_real("eta", self.eta, np.nextafter(0, 1), 1.0, "in (0, 1]")
        if self.expected_samples is not None:
            _check_int("expected_samples", self.expected_samples, 1)
        if not isinstance(self.shuffle, bool | np.bool_):
            raise ValueError(f"shuffle must be True or False, got {self.shuffle!r}")
        rs = self.random_state
        if rs is not None and not (isinstance(rs, numbers.Integral) and rs >= 0):
            raise ValueError(f"random_state must be None or an int >= 0, got {rs!r}")
        if self.n_threads is not None:
            _check_int("n_threads", self.n_threads, 1)


# ---- memory state ---------------------------------------------------------------------------


class _Memory:
    """The neuron tensor. Each bank's memories are contiguous rows of one pool, earliest first."""

    def __init__(self, n_banks, n_channels, n_pixels, n_classes, with_assoc):
        self.n_banks = n_banks
        self.n_channels = n_channels
        self.n_pixels = n_pixels
        self.n_classes = n_classes
        self.with_assoc = with_assoc
        d = n_channels * n_pixels
        self.pool = np.empty((0, d), np.float32)  # memories
        self.norm = np.empty((0, n_channels), np.float64)  # squared norm of each channel
        self.gidx = np.empty(0, np.int64)  # pool row -> neuron (birth order)
        self.dirty = np.zeros(0, np.int64)  # per pool row: its place in the block's dirty list
        self.start = np.zeros(n_banks, np.int64)
        self.cap = np.zeros(n_banks, np.int64)
        self.count = np.zeros(n_banks, np.int64)
        self.n_born = 0
        self.hits = np.empty(0, np.int64)  # per neuron, in birth order
        self.birth_label = np.empty(0, np.int64)
        self.row_of = np.empty(0, np.int64)
        self.assoc = np.zeros((0, n_classes), np.int64)
        self.scratch = _Buffers()  # training's per-block products

    def reserve_neurons(self, n):
        if len(self.hits) >= n:
            return
        size = max(n, int(1.5 * len(self.hits)), 64)
        self.hits = _grown(self.hits, size)
        self.birth_label = _grown(self.birth_label, size)
        self.row_of = _grown(self.row_of, size)
        if self.with_assoc:
            self.assoc = _grown(self.assoc, size)

    def reserve_rows(self, needed, weights, rows):
        """Room for needed[b] rows in each bank b, in a pool of max(rows, sum(needed)) rows whose
        spare rows go to the banks in proportion to ``weights``. When the pool keeps its size,
        the banks move inside it: no second copy of the memories, ever, during a fit."""
        rows = max(int(rows), int(needed.sum()))
        weights = np.asarray(weights, np.float64)
        if weights.sum() <= 0:
            weights = np.ones(self.n_banks)
        spare = np.floor((rows - needed.sum()) * weights / weights.sum()).astype(np.int64)
        cap = needed.astype(np.int64) + spare
        if rows == len(self.pool):
            self._move_banks(cap)
        else:
            self._repack(cap, rows)

    def _move_banks(self, cap):
        """Lay the banks out anew for ``cap`` inside the same pool. Banks moving towards the
        start go first, in order, and those moving towards the end after, in reverse order:
        then no bank lands on another one's memories before they have moved."""
        start = _offsets(cap)
        down = [b for b in range(self.n_banks) if start[b] < self.start[b]]
        up = [b for b in range(self.n_banks) if start[b] > self.start[b]]
        for b in down + up[::-1]:
            old = slice(self.start[b], self.start[b] + self.count[b])
            new = slice(start[b], start[b] + self.count[b])
            self.pool[new] = self.pool[old]  # numpy copes with the overlap of old and new
            self.norm[new] = self.norm[old]
            self.gidx[new] = self.gidx[old]
            self.row_of[self.gidx[new]] = np.arange(new.start, new.stop)
        self.start, self.cap = start, cap

    def _repack(self, cap, rows):
        start = _offsets(cap)
        pool = np.empty((rows, self.pool.shape[1]), np.float32)
        norm = np.zeros((rows, self.n_channels), np.float64)
        gidx = np.full(rows, -1, np.int64)
        for b in range(self.n_banks):
            old = slice(self.start[b], self.start[b] + self.count[b])
            new = slice(start[b], start[b] + self.count[b])
            pool[new] = self.pool[old]
            norm[new] = self.norm[old]
            gidx[new] = self.gidx[old]
            self.row_of[gidx[new]] = np.arange(new.start, new.stop)
        self.pool, self.norm, self.gidx = pool, norm, gidx
        self.dirty = np.zeros(rows, np.int64)
        self.start, self.cap = start, cap

    def restore(self, memories, birth_label, hits, assoc):
        n = len(memories)
        if not (len(birth_label) == len(hits) == n) or memories.shape[1:] != (
            self.n_channels,
            self.n_pixels,
        ):
            raise ValueError("memories, labels and hits do not agree in shape")
        bank = birth_label if self.n_banks > 1 else np.zeros(n, np.int64)
        if n and (bank.min() < 0 or bank.max() >= self.n_banks):
            raise ValueError("a neuron label is out of range")
        self.reserve_neurons(n)
        self.n_born = n
        self.hits[:n] = hits
        self.birth_label[:n] = birth_label
        if self.with_assoc:
            self.assoc[:n] = assoc
        counts = np.bincount(bank, minlength=self.n_banks).astype(np.int64)
        self._repack(counts, n)
        order = np.argsort(bank, kind="stable")  # by bank, then birth order
        self.pool[:] = memories.reshape(n, -1)[order]
        self.gidx[:] = order
        self.row_of[order] = np.arange(n)
        self.count = counts
        self.norm = _sq_norms(self.pool, self.n_channels, self.n_pixels)


def _plain(params):
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}


def _offsets(sizes):
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def _grown(a, size):
    out = np.zeros((size, *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    return out


def _approx(pool, xq, start, n_rows, dist, out, channels, n_pixels):
    """Approximate distances (dot products for l2/cosine) of rows xq to pool[start:start+n_rows],
    into out: one row per buffer (a channel for cosine, else one), each len(xq) * n_rows long."""
    c0, c1 = channels
    p = n_pixels
    memories = pool[start : start + n_rows]
    q = len(xq)
    if dist == K.L1:
        K.l1_approx(xq, pool, start, n_rows, c0, c1, p, out[0].reshape(q, n_rows))
    elif dist == K.L2:
        cols = slice(c0 * p, c1 * p)
        np.matmul(xq[:, cols], memories[:, cols].T, out=out[0].reshape(q, n_rows))
    else:
        for ch in range(c0, c1):
            cols = slice(ch * p, (ch + 1) * p)
            np.matmul(xq[:, cols], memories[:, cols].T, out=out[ch - c0].reshape(q, n_rows))


def _by_extent(X):
    """The samples in order of their leftmost, then rightmost non-zero column (any channel or
    row): a chunk of neighbours in this order shares few non-zero features, and the l2
    products skip the others."""
    n, w = len(X), X.shape[-1]
    left = np.empty(n, np.int64)
    right = np.empty(n, np.int64)
    for s in range(0, n, 4096):
        on = (X[s : s + 4096] != 0).any(axis=(1, 2))
        left[s : s + len(on)] = np.where(on.any(axis=1), on.argmax(axis=1), w)
        right[s : s + len(on)] = w - 1 - on[:, ::-1].argmax(axis=1)
    return np.lexsort((right, left))


def _filter_terms(norms, dist, c0, c1):
    """The per-row term of the filter's bounds (see memnet._kernels): the squared norm over
    channels c0..c1-1 for l2, else 0. A fresh array: training marks rows in it."""
    if dist == K.L2:
        return norms[:, c0:c1].sum(axis=1)
    return np.zeros(len(norms))


def _sq_norms(x, n_channels, n_pixels):
    out = np.empty((len(x), n_channels), np.float64)
    K.sq_norms(x, n_channels, n_pixels, out)
    return out


BLOCK_DIVISOR, BLOCK_MAX = 4, 4096
BLOCK_DIVISOR_COSINE, BLOCK_MAX_COSINE = 16, 1024  # its changed neurons cost a full distance
BLOCK_MIN = 64
SPARE_ROWS = 1024  # a fit's pool has this many rows beyond the budget (bounds its blocks)
# The block's approximations against the memories take at most an eighth of the pool's bytes
# (at least 8 MiB): bigger blocks pay only while the products are small next to the memories.
BLOCK_DOTS_SHARE, BLOCK_DOTS_MIN_BYTES = 8, 8 << 20


def _block_size(mem, dist):
    """Samples per training block: big enough for efficient BLAS products, small enough that
    the block's approximations stay small next to the memories (and, for cosine, that few
    neurons change inside it)."""
    if dist == K.COSINE:
        divisor, most, n_buf = BLOCK_DIVISOR_COSINE, BLOCK_MAX_COSINE, mem.n_channels
    else:
        divisor, most, n_buf = BLOCK_DIVISOR, BLOCK_MAX, 1
    size = min(most, max(BLOCK_MIN, mem.n_born // divisor))
    widest = max(1, int(mem.count.max())) * n_buf
    dots_bytes = max(BLOCK_DOTS_MIN_BYTES, mem.pool.nbytes // BLOCK_DOTS_SHARE)
    return int(max(BLOCK_MIN, min(size, dots_bytes // (4 * widest))))


class _Buffers:
    """Reusable float32 arrays by name, so that repeated tasks do not churn the allocator (freed
    and reallocated megabytes linger in glibc's per-thread arenas and raise the peak)."""

    def __init__(self, **sizes):
        self._flat = {name: np.empty(size, np.float32) for name, size in sizes.items()}

    def get(self, name, shape):
        """An array of ``shape`` (contents undefined); a buffer too small grows by at least 25%."""
        size = math.prod(shape)
        flat = self._flat.get(name)
        if flat is None or flat.size < size:
            grown = max(size, int(1.25 * flat.size) if flat is not None else 0)
            flat = self._flat[name] = np.empty(grown, np.float32)
        return flat[:size].reshape(shape)


class _Workers:
    """A pool of ``n_threads`` threads (default: numba.get_num_threads()) for independent tasks.

    BLAS runs single-threaded inside: on a small shared machine, a multi-threaded BLAS product
    of the size used here waits at every barrier for a descheduled thread (measured: 10x slower
    training under load), while independent tasks degrade gracefully. Each task writes its own
    slice of the output, so results do not depend on the number of threads.
    """

    def __init__(self, n_threads):
        self.n = int(n_threads) if n_threads is not None else numba.get_num_threads()

    def __enter__(self):
        self._blas = threadpool_limits(1, user_api="blas")
        self._pool = ThreadPoolExecutor(self.n) if self.n > 1 else None
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown()
        self._blas.restore_original_limits()

    def run(self, tasks):
        """Call each task; return their results in order."""
        if self._pool is None or len(tasks) < 2:
            return [task() for task in tasks]
        return list(self._pool.map(lambda task: task(), tasks))


# ---- inputs ---------------------------------------------------------------------------------


def check_images(X) -> np.ndarray:
    """X as an array of shape (n, C, H, W) (a view when possible), after checking it."""
    X = np.asarray(X)
    if X.dtype != np.uint8 and not np.issubdtype(X.dtype, np.floating):
        raise ValueError(
            f"X must be uint8 (0..255, scaled by 1/255) or floating point; got dtype {X.dtype}"
        )
    if X.ndim == 2:
        X = X.reshape(len(X), 1, 1, X.shape[1])
    elif X.ndim != 4:
        raise ValueError(
            f"X must have shape (n, C, H, W) or (n, d); got {X.ndim} dimensions {X.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError("X is empty: it has no samples")
    if X.size == 0:
        raise ValueError(f"X has no features: shape {X.shape}")
    if X.dtype != np.uint8:
        for s in range(0, len(X), 4096):
            if not np.isfinite(X[s : s + 4096]).all():
                raise ValueError("X contains NaN or infinite values; clean or impute them first")
    return X


def check_labels(y, n, n_classes=None) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"y must be a 1-D array with one label per sample ({n}); got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class indices 0..K-1; got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError(f"y has a negative label ({y.min()}); classes are 0..K-1")
    if n_classes is not None and y.max() >= n_classes:
        raise ValueError(
            f"y has label {y.max()} but the model has {n_classes} classes (0..{n_classes - 1}); "
            "pass all classes to the first partial_fit call"
        )
    return y.astype(np.int64, copy=False)


def _n_classes_from(classes) -> int:
    classes = np.asarray(classes)
    if classes.ndim != 1 or not np.array_equal(classes, np.arange(len(classes))):
        raise ValueError(f"classes must be 0..K-1 in order; got {classes.tolist()}")
    return len(classes)


def rows_float32(X, idx, out=None) -> np.ndarray:
    """X[idx] as contiguous float32 rows (n, C*H*W), into ``out`` if given; uint8 is scaled by
    1/255 (as datasets.to_unit_float does)."""
    rows = X[idx].reshape(len(idx), -1)
    if out is None:
        return (
            to_unit_float(rows)
            if rows.dtype == np.uint8
            else np.ascontiguousarray(rows, np.float32)
        )
    if rows.dtype == np.uint8:
        return np.multiply(rows, np.float32(1 / 255), out=out, dtype=np.float32)
    np.copyto(out, rows)
    return out


def default_tau(X, distance="l2") -> float:
    """The default initial tau: TAU_FRACTION x the mean distance between two samples of X.

    Computed exactly for l2 (twice the total variance) and cosine (per channel, 1 - |mean of the
    unit vectors|^2); for l1 over an evenly spaced subsample of at most 2048 samples.
    """
    _check_choice("distance", distance, DISTANCES)
    X = check_images(X)
    n, c = X.shape[:2]
    mean_pair = 0.0
    if distance == "l1":
        idx = np.linspace(0, n - 1, min(n, L1_TAU_SUBSAMPLE)).round().astype(np.int64)
        sub = np.sort(rows_float32(X, idx).astype(np.float64), axis=0)
        m = len(sub)
        weights = (2 * np.arange(1, m + 1) - m - 1) / m**2  # E|a - b| from order statistics
        mean_pair = float(2 * (weights @ sub).sum())
    else:
        sums = np.zeros(X[0].size, np.float64)
        total_sq = 0.0
        for s in range(0, n, 4096):
            rows = rows_float32(X, np.arange(s, min(s + 4096, n)))
            total_sq += K.add_moments(rows, c, rows.shape[1] // c, distance == "cosine", sums)
        mean = sums / n
        if distance == "cosine":
            mean_pair = float(c - (mean * mean).sum())
        else:
            mean_pair = 2.0 * (total_sq / n - float((mean * mean).sum()))
    tau = TAU_FRACTION * mean_pair
    return tau if tau > 0 else 1.0  # all samples identical: any positive scale will do


def _check_choice(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}; got {value!r}")


def _check_int(name, value, lowest):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lowest:
        raise ValueError(f"{name} must be an int >= {lowest}; got {value!r}")


def _check_real(name, value, lo, hi, what):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name} must be {what}; got {value!r}")


__all__ = ["FORMAT_VERSION", "MemoryNetwork", "default_tau"]
