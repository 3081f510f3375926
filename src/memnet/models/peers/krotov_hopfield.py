"""Krotov & Hopfield's competing hidden units (Krotov & Hopfield, "Unsupervised learning by competing
hidden units", PNAS 116(16), 2019), then their supervised top layer.

The hidden layer is learnt without labels by a local rule with competition between the units. For
each minibatch of inputs ``v`` (each image scaled to a largest pixel of 1), each unit's current is
``I = <W, v> = sum_i sign(W_i) |W_i|^(p-1) v_i`` (the Lebesgue-``p`` inner product); for each
sample the unit of the largest current gets ``g = 1`` (Hebbian), the unit ranked ``k``-th gets
``g = -delta`` (anti-Hebbian) and the others ``g = 0``; the update, summed over the minibatch, is

    dW = g(I) (v - I W),     W += lr_t dW / max|dW|,     lr_t = lr (1 - epoch / hidden_epochs),

the "precision" scaling of the authors' code (the largest change of a step is ``lr_t``). Only the
units that some sample ranks first or ``k``-th change, so we update just their rows, and each
sample adds its ``v`` to two rows only (``g`` has two non-zeros a sample): the dense update's
values, whose other terms are zero, in float64 sums.

The top layer sees ``h = relu(W v)^n`` (the plain product; the authors' exponent ``n`` 4.5), each
sample's ``h`` divided by its largest (a departure: the scale of ``h`` then does not depend on ``n``
or on the sample), and a linear readout ``S h + b`` trained by Adam on minibatches, with the authors'
power loss ``sum_a |tanh(beta (S h + b)_a) - t_a|^m``, targets +-1 (``loss="power"``, the default)
or cross-entropy (``loss="cross_entropy"``).

Facts. The hidden layer uses no gradient and no labels; the top layer is trained by gradient
descent on its own loss, a single linear layer (no error is propagated to the hidden layer). We
declare ``uses_backprop = True``: the model is trained by gradient descent, if not end to end.
``n_passes`` is ``hidden_epochs + top_epochs``; the top layer's features are computed once, in a
pass over the training data before its first epoch. A class-incremental stream (``partial_fit``)
fine-tunes both parts on each task as the backprop nets do: ``hidden_epochs`` of the rule (its
learning rate decaying again) then ``top_epochs`` of Adam, on that task's samples only.

Threads: the currents are computed in GROUPS blocks of hidden units, and the top layer's features
and predictions in chunks of samples, each on one BLAS thread; ``n_threads`` threads take blocks or
chunks, so the sums are the same on any number of threads. The rest (the updates, the top layer's
Adam steps) runs on one thread. docs/model.md, section 5.4, says where ours departs from the
publication.
"""

from __future__ import annotations

import numpy as np

from memnet.models.baselines import Baseline
from memnet.models.peers._krotov_kernels import first_and_kth, rule_update, set_powered, top_units
from memnet.validation import check_choice, check_int, check_real

LOSSES = ("power", "cross_entropy")
GROUPS = 2  # blocks of hidden units whose currents are computed apart (threads take blocks)
CHUNK = 2048  # samples whose hidden activations are computed at a time (features, predictions)
PRECISION = 1e-30  # the smallest max|dW| an update is divided by (the authors' `prec`)
_ADAM = (0.9, 0.999, 1e-8)


class KrotovHopfield(Baseline):
    """Competing hidden units learnt by a local rule, then a linear readout trained by Adam.

    Parameters
    ----------
    n_hidden : int, default 2000
        Hidden units.
    p : float, default 3.0
        The Lebesgue exponent of the currents ``sum_i sign(W_i) |W_i|^(p-1) v_i`` (>= 2).
    k : int, default 7
        The rank of the unit that gets the anti-Hebbian update (2 <= k <= n_hidden).
    delta : float, default 0.4
        The anti-Hebbian strength: the ``k``-th ranked unit gets ``g = -delta``.
    hidden_epochs : int, default 50
        Epochs of the hidden rule.
    batch_size : int, default 100
        Samples per update of the hidden rule.
    lr : float, default 0.1
        The hidden rule's initial learning rate (the largest change of a weight in one update),
        decaying linearly to 0 over ``hidden_epochs``. The authors' code has 0.02, with many more
        updates of each unit than 50 epochs give 2,000 units; at 0.1, 50 epochs bring about 97%
        of the units to unit ``p``-norm, where the rule converges (docs/model.md, section 5.4).
    activation_power : float, default 4.5
        ``n``: the top layer sees ``relu(W v)^n``.
    top_epochs : int, default 30
        Epochs of the top layer.
    top_batch_size : int, default 100
        Samples per Adam step of the top layer.
    top_lr : float, default 0.01
        Adam's learning rate, decaying linearly to 0 over ``top_epochs``.
    loss : {"power", "cross_entropy"}, default "power"
        The top layer's loss: the authors' ``sum_a |tanh(beta (S h + b)_a) - t_a|^m`` with
        targets +-1, or softmax cross-entropy.
    m : float, default 6.0
        The power loss's exponent (``loss="power"`` only).
    beta : float, default 1.0
        The power loss's inverse temperature (``loss="power"`` only; it acts on the scaled ``h``).
    random_state : int, default 0
        Seeds the initial weights (normal, mean 0, sd 1), the readout's and the sample orders.
    n_threads : int, default 1
        Threads for the currents (blocks of hidden units, one BLAS thread each): the same sums on
        any number of threads.

    Attributes
    ----------
    weights_ : ndarray of shape (n_hidden, d), float32
        The hidden layer.
    readout_ : ndarray of shape (n_hidden, K), float32
    intercept_ : ndarray of shape (K,), float32
    hidden_epochs, top_epochs : int
        The epochs of each part (run_facts records them).
    update_multiply_adds_ : int
        Multiply-adds of the hidden rule's updates so far, as done: each change is formed once,
        ``g v`` (``2 d`` a sample) and ``I W`` (``d`` a unit some sample ranked first or
        ``k``-th), then applied (``d`` a unit): ``(2 B + 2 n_hit) d`` an update; the currents'
        products are ``n_hidden x d`` a sample each epoch.
    """

    name = "krotov_hopfield"
    uses_backprop = True  # the top layer: gradient descent on one linear layer (not end to end)
    uses_weight_sharing = False

    def __init__(
        self,
        n_hidden=2000,
        p=3.0,
        k=7,
        delta=0.4,
        hidden_epochs=50,
        batch_size=100,
        lr=0.1,
        activation_power=4.5,
        top_epochs=30,
        top_batch_size=100,
        top_lr=0.01,
        loss="power",
        m=6.0,
        beta=1.0,
        random_state=0,
        n_threads=1,
    ):
        self.n_hidden = n_hidden
        self.p = p
        self.k = k
        self.delta = delta
        self.hidden_epochs = hidden_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.activation_power = activation_power
        self.top_epochs = top_epochs
        self.top_batch_size = top_batch_size
        self.top_lr = top_lr
        self.loss = loss
        self.m = m
        self.beta = beta
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self):
        super()._check_params()
        check_int("n_hidden", self.n_hidden, minimum=2)
        check_real("p", self.p, low=2)
        check_int("k", self.k, minimum=2)
        if self.k > self.n_hidden:
            raise ValueError(f"k must be <= n_hidden ({self.n_hidden}); got {self.k!r}")
        check_real("delta", self.delta, low=0)
        check_int("hidden_epochs", self.hidden_epochs, minimum=0)
        check_int("batch_size", self.batch_size, minimum=1)
        check_real("lr", self.lr, low=0, low_open=True)
        check_real("activation_power", self.activation_power, low=1)
        check_int("top_epochs", self.top_epochs, minimum=1)
        check_int("top_batch_size", self.top_batch_size, minimum=1)
        check_real("top_lr", self.top_lr, low=0, low_open=True)
        check_choice("loss", self.loss, LOSSES)
        check_real("m", self.m, low=1)
        check_real("beta", self.beta, low=0, low_open=True)

    @property
    def n_passes(self) -> int:
        return int(self.hidden_epochs + self.top_epochs)

    # ---- inputs and the hidden layer -------------------------------------------------------

    @staticmethod
    def _inputs(X) -> np.ndarray:
        """(n, d) float32: each image divided by its largest pixel (an all-zero image stays 0)."""
        flat = X.reshape(len(X), -1).astype(np.float32)
        top = flat.max(axis=1, keepdims=True)
        return flat / np.where(top > 0, top, 1)

    def _powered(self, W) -> np.ndarray:
        """sign(W) |W|^(p-1): the rows the currents multiply the inputs with."""
        if self.p == 2:
            return W.copy()
        if self.p == 3:
            return W * np.abs(W)
        return np.sign(W) * np.abs(W) ** np.float32(self.p - 1)

    def _ranked(self, V, pool):
        """(currents (B, n_hidden), first, kth): each sample's currents <W, v> and the units that
        rank first and ``k``-th (a tie: the smaller unit first). Each of GROUPS blocks of units is
        computed apart and gives its own ``k`` first; the ranks come from those candidates. The
        calling thread computes the first block and the pool (None: no other thread) the others."""
        currents = self._currents[: len(V)]

        def block(g):
            lo, hi = self._blocks[g]
            self._refresh(g)
            np.matmul(V, self._columns[g], out=currents[:, lo:hi])
            ids = np.empty((len(V), min(self.k, hi - lo)), np.int64)
            top_units(currents, lo, hi, ids.shape[1], ids)
            return ids

        if pool is None:
            candidates = np.concatenate([block(g) for g in range(GROUPS)], axis=1)
        else:
            others = [pool.submit(block, g) for g in range(1, GROUPS)]
            candidates = np.concatenate([block(0)] + [f.result() for f in others], axis=1)
        first, kth = np.empty(len(V), np.int64), np.empty(len(V), np.int64)
        first_and_kth(currents, candidates, self.k, first, kth)
        return currents, first, kth

    def _hidden_step(self, V, rate, pool) -> None:
        """One update of the rule on the minibatch V (B, d): only the rows of the units hit."""
        currents, first, kth = self._ranked(V, pool)
        hit, row, change = self._scratch
        n = rule_update(self.weights_, V, currents, first, kth, float(self.delta), float(rate),
                        PRECISION, hit, row, change)  # fmt: skip
        # each unit's change is formed once (2 terms a sample, and I W) and then applied
        self.update_multiply_adds_ += (2 * len(V) + 2 * n) * V.shape[1]
        self._stale = [hit[:n]] * GROUPS

    def _refresh(self, g) -> None:
        """Bring block g's columns in step with the weights the last update changed (each
        block's thread does its own, before its next product)."""
        lo, hi = self._blocks[g]
        set_powered(self.weights_, self._stale[g], lo, hi, float(self.p), self._columns[g])
        self._stale[g] = self._stale[g][:0]

    def _start_rule(self, n_samples) -> None:
        """The rule's working copy of the weights: sign(W) |W|^(p-1), transposed, one
        contiguous (d, units) array per block of units (the product's fastest layout)."""
        edges = np.linspace(0, self.n_hidden, GROUPS + 1).astype(int).tolist()
        self._blocks = list(zip(edges, edges[1:], strict=False))
        powered = self._powered(self.weights_)
        self._columns = [np.ascontiguousarray(powered[lo:hi].T) for lo, hi in self._blocks]
        self._stale = [np.empty(0, np.int64)] * GROUPS  # units changed since, per block
        b, d = min(self.batch_size, n_samples), self.weights_.shape[1]
        self._currents = np.empty((b, self.n_hidden), np.float32)  # buffers used by every step
        self._scratch = (np.empty(2 * b, np.int64), np.empty(self.n_hidden, np.int64),
                         np.empty((2 * b, d)))  # fmt: skip

    def _train_hidden(self, V) -> None:
        from concurrent.futures import ThreadPoolExecutor
        from contextlib import nullcontext

        from threadpoolctl import threadpool_limits

        self._start_rule(len(V))
        workers = min(self.n_threads, GROUPS) - 1  # besides this thread
        with (
            threadpool_limits(1),
            ThreadPoolExecutor(workers) if workers else nullcontext() as pool,
        ):
            for epoch in range(self.hidden_epochs):
                rate = self.lr * (1 - epoch / self.hidden_epochs)
                order = self._rng.permutation(len(V))
                for start in range(0, len(V), self.batch_size):
                    self._hidden_step(V[order[start : start + self.batch_size]], rate, pool)
        del self._columns, self._blocks, self._stale, self._currents, self._scratch

    def hidden(self, X) -> np.ndarray:
        """(n, n_hidden) float32: relu(W v)^n, each sample divided by its largest (the top layer's
        inputs)."""
        return self._features(self._inputs(X))

    def _features(self, V) -> np.ndarray:
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        out = np.empty((len(V), self.n_hidden), np.float32)
        weights_t = self.weights_.T
        power = np.float32(self.activation_power)

        def chunk(start):
            part = out[start : start + CHUNK]
            np.matmul(V[start : start + CHUNK], weights_t, out=part)
            np.maximum(part, 0, out=part)
            np.power(part, power, out=part)
            top = part.max(axis=1, keepdims=True)
            part /= np.where(top > 0, top, 1)

        with threadpool_limits(1), ThreadPoolExecutor(self.n_threads) as pool:
            list(pool.map(chunk, range(0, len(V), CHUNK)))
        return out

    # ---- the top layer -------------------------------------------------------------------

    def _loss_gradient(self, H, y):
        """The loss's gradient with respect to the scores (B, K), summed over the batch / B."""
        scores = H @ self.readout_ + self.intercept_
        if self.loss == "cross_entropy":
            scores -= scores.max(axis=1, keepdims=True)
            prob = np.exp(scores)
            prob /= prob.sum(axis=1, keepdims=True)
            prob[np.arange(len(y)), y] -= 1
            return prob / len(y)
        c = np.tanh(np.float32(self.beta) * scores)
        t = -np.ones_like(c)
        t[np.arange(len(y)), y] = 1
        diff = c - t
        grad = self.m * np.abs(diff) ** (self.m - 1) * np.sign(diff) * (1 - c * c) * self.beta
        return grad.astype(np.float32) / len(y)

    def top_loss(self, X, y) -> float:
        """The top layer's mean loss on (X, y) (y: class indices 0..K-1)."""
        H = self.hidden(X)
        scores = H @ self.readout_ + self.intercept_
        if self.loss == "cross_entropy":
            scores = scores - scores.max(axis=1, keepdims=True)
            log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
            return float(-log_p[np.arange(len(y)), y].mean())
        c = np.tanh(self.beta * scores)
        t = -np.ones_like(c)
        t[np.arange(len(y)), y] = 1
        return float((np.abs(c - t) ** self.m).sum(axis=1).mean())

    def _train_top(self, H, y) -> None:
        from threadpoolctl import threadpool_limits

        b1, b2, eps = _ADAM
        params = (self.readout_, self.intercept_)
        with threadpool_limits(1):
            for epoch in range(self.top_epochs):
                rate = self.top_lr * (1 - epoch / self.top_epochs)
                order = self._rng.permutation(len(H))
                for start in range(0, len(H), self.top_batch_size):
                    batch = order[start : start + self.top_batch_size]
                    Hb = H[batch]
                    grad_scores = self._loss_gradient(Hb, y[batch])
                    grads = (Hb.T @ grad_scores, grad_scores.sum(axis=0))
                    self._adam_t += 1
                    t = self._adam_t
                    step = rate * np.sqrt(1 - b2**t) / (1 - b1**t)
                    for param, grad, m1, m2 in zip(params, grads, *self._adam, strict=True):
                        m1 *= b1
                        m1 += (1 - b1) * grad
                        m2 *= b2
                        m2 += (1 - b2) * grad * grad
                        param -= np.float32(step) * m1 / (np.sqrt(m2) + eps)

    # ---- learning ------------------------------------------------------------------------

    def _fit(self, X, y):
        self._start(X.shape[1:], len(self.classes_))
        self._learn_more(X, y)

    def _start(self, input_shape, n_classes):
        d = int(np.prod(input_shape))
        hidden_seed, top_seed, order_seed = np.random.SeedSequence(
            self.random_state
        ).generate_state(3)
        rng = np.random.default_rng(hidden_seed)
        self.weights_ = rng.standard_normal((self.n_hidden, d)).astype(np.float32)
        top = np.random.default_rng(top_seed)
        self.readout_ = (
            top.standard_normal((self.n_hidden, n_classes)) / np.sqrt(self.n_hidden)
        ).astype(np.float32)
        self.intercept_ = np.zeros(n_classes, np.float32)
        self._adam = tuple(
            (np.zeros_like(a), np.zeros_like(a)) for a in (self.readout_, self.intercept_)
        )
        self._adam = tuple(zip(*self._adam, strict=True))  # (first moments), (second moments)
        self._adam_t = 0
        self._rng = np.random.default_rng(order_seed)
        self.update_multiply_adds_ = 0

    def _learn_more(self, X, y):
        V = self._inputs(X)
        self._train_hidden(V)
        H = self._features(V)
        del V
        self._train_top(H, y)

    def _predict_index(self, X):
        indices = []
        for start in range(0, len(X), 8 * CHUNK):
            H = self.hidden(X[start : start + 8 * CHUNK])
            indices.append((H @ self.readout_ + self.intercept_).argmax(axis=1))
        return np.concatenate(indices)

    def run_facts(self, n_classes: int) -> dict:
        """As Estimator.run_facts, with the epochs of each part (n_passes is their sum)."""
        facts = super().run_facts(n_classes)
        facts.update(hidden_epochs=int(self.hidden_epochs), top_epochs=int(self.top_epochs))
        return facts

    def for_warm_up(self) -> KrotovHopfield:
        """A small copy (64 units, one epoch each) for the pipeline's untimed warm-up fit."""
        small = min(self.n_hidden, 64)
        return type(self)(
            **{**self.get_params(), "n_hidden": small, "k": min(self.k, small),
               "hidden_epochs": min(self.hidden_epochs, 1), "top_epochs": 1}
        )  # fmt: skip

    @property
    def model_bytes(self) -> int:
        self._check_fitted()
        return self.weights_.nbytes + self.readout_.nbytes + self.intercept_.nbytes
