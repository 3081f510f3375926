"""An extreme learning machine with random local receptive fields (McDonnell, Tissera, Vladusich,
van Schaik & Tapson, "Fast, simple and accurate handwritten digit classification by training
shallow neural network classifiers with the 'extreme learning machine' algorithm", PLoS ONE 2015).

A fixed hidden layer in which each unit sees one randomly sized and placed square patch of the
image (all channels; its weights are zero outside), then one regularised least-squares solve for
the linear readout: no gradients, one pass over the data. The paper's abstract names the receptive
fields as its main innovation, among "several enhancements"; we built, from the abstract and the
ELM literature (a reconstruction, not their code):

- weights ``"difference"`` (default): inside its field, a unit's weights are the difference of two
  training images of different classes (constrained weights, as in the same authors' RF-C-ELM),
  drawn from the first samples seen; ``"random"``: Gaussian;
- images optionally preprocessed (``preprocess``, e.g. deskewing, a departure: the paper's
  abstract does not name it), then centred and scaled to unit length each; each unit's weights
  scaled to unit length;
- a rectifier ``max(0, w'x + b)``, and a constant unit for the readout's intercept;
- the readout is ridge regression onto one-hot targets.

The readout's statistics ``H'H`` and ``H'T`` are sums over the samples, accumulated chunk by chunk;
the solve happens when the model predicts, so ``partial_fit`` is the online sequential ELM: after any
stream the readout equals the batch solve on the same samples through the same hidden layer, up to
float rounding. (The layer itself is drawn from the first samples seen, so a stream that starts
with two classes has other "difference" weights than a fit on all of them.)
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import ssyrk as _ssyrk

from memnet.models.baselines import Baseline
from memnet.models.preprocess import make_preprocessor, parse_steps
from memnet.validation import check_choice, check_int, check_real

WEIGHTS = ("difference", "random")
CHUNK = 2048  # samples whose hidden activations are held at a time
# H'H is summed in this many float32 groups of chunks (chunk i in group i % GROUPS), one thread
# each: the same sums on any number of threads (a thread holds CHUNK x n_hidden activations)
GROUPS = 2


class RandomFieldELM(Baseline):
    """Extreme learning machine with random local receptive fields; a ridge-regression readout.

    Parameters
    ----------
    n_hidden : int, default 4000
        Hidden units (random receptive fields).
    weights : {"difference", "random"}, default "difference"
        Inside each field: the difference of two training images of different classes, or
        Gaussian.
    min_field : int, default 5
        Smallest side of a receptive field, in pixels; sides are drawn uniformly from
        ``min_field`` to the image's smaller side.
    border : int, default 0
        Pixels at each edge that no field covers (MNIST's digits leave a blank border: the paper
        config sets 3 there).
    bias_scale : float, default 0.0
        Standard deviation of each unit's bias (its weights and inputs have unit length).
    ridge : float, default 1e-3
        The readout's regulariser, relative to the mean diagonal of ``H'H``.
    preprocess : str, list of str or None, default None
        Steps of memnet.models.preprocess applied to the images first (e.g. "deskew"); steps
        with statistics take them from the first samples seen.
    random_state : int, default 0
        Seeds the fields, weights and biases.
    n_threads : int, default 1
        Threads (the job's budget), each taking chunks of samples on one BLAS thread: the sums
        are the same on any number of threads.

    Attributes
    ----------
    weights_ : ndarray of shape (d, n_hidden), float32
        The hidden layer (zero outside each unit's field).
    biases_ : ndarray of shape (n_hidden,), float32
    readout_ : ndarray of shape (n_hidden + 1, K), float64
        Solved when the model first predicts after an update.
    """

    name = "rf_elm"

    def __init__(
        self,
        n_hidden=4000,
        weights="difference",
        min_field=5,
        border=0,
        bias_scale=0.0,
        ridge=1e-3,
        preprocess=None,
        random_state=0,
        n_threads=1,
    ):
        self.n_hidden = n_hidden
        self.weights = weights
        self.min_field = min_field
        self.border = border
        self.bias_scale = bias_scale
        self.ridge = ridge
        self.preprocess = preprocess
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self):
        super()._check_params()
        check_int("n_hidden", self.n_hidden, minimum=1)
        check_int("min_field", self.min_field, minimum=1)
        check_int("border", self.border, minimum=0)
        check_real("bias_scale", self.bias_scale, low=0)
        check_real("ridge", self.ridge, low=0, low_open=True)
        check_choice("weights", self.weights, WEIGHTS)
        parse_steps(self.preprocess)

    def check_input_shape(self, image_shape) -> None:
        """A field of ``min_field`` pixels fits inside the border of images of ``image_shape``."""
        self._check_params()
        _, h, w = make_preprocessor(self.preprocess).output_shape(image_shape)
        room = min(h, w) - 2 * self.border
        if room < self.min_field:
            raise ValueError(
                f"min_field {self.min_field} with border {self.border} does not fit images of "
                f"{h} x {w} pixels; choose min_field + 2 x border <= {min(h, w)}"
            )

    # ---- the hidden layer ----------------------------------------------------------------

    def _draw_layer(self, X, y) -> None:
        """Each unit's field (a random square), weights and bias; ``X``, ``y``: the first samples
        seen, whose differences give the "difference" weights."""
        self.check_input_shape(X.shape[1:])
        c, h, w = self._preprocessor.output_shape(X.shape[1:])  # grayscale: one channel
        if self._preprocessor.stateful:
            self._preprocessor.fit(X)  # statistics of the first samples seen
        rng = np.random.default_rng(self.random_state)
        room = min(h, w) - 2 * self.border
        sides = rng.integers(self.min_field, room + 1, size=self.n_hidden)
        rows = self.border + rng.integers(0, h - 2 * self.border - sides + 1)
        cols = self.border + rng.integers(0, w - 2 * self.border - sides + 1)
        self.fields_ = np.stack([rows, cols, sides], axis=1)
        if self.weights == "difference":
            first, second = _pairs_of_other_classes(y, self.n_hidden, rng)
            flat = self._inputs(X[np.concatenate([first, second])])
            source = (flat[: self.n_hidden] - flat[self.n_hidden :]).reshape(-1, c, h, w)
        else:
            source = rng.standard_normal((self.n_hidden, c, h, w)).astype(np.float32)
        weights = np.zeros((self.n_hidden, c, h, w), np.float32)
        for unit, (r, q, side) in enumerate(self.fields_):
            field = source[unit, :, r : r + side, q : q + side]
            weights[unit, :, r : r + side, q : q + side] = field / max(np.linalg.norm(field), 1e-12)
        self.weights_ = np.ascontiguousarray(weights.reshape(self.n_hidden, -1).T)
        self.biases_ = (self.bias_scale * rng.standard_normal(self.n_hidden)).astype(np.float32)

    def _inputs(self, X) -> np.ndarray:
        """(n, d) float32: the images after ``preprocess``, each centred and of unit length."""
        X = self._preprocessor.transform(X) if self._preprocessor.steps else X
        flat = X.reshape(len(X), -1).astype(np.float32)
        flat = flat - flat.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(flat, axis=1, keepdims=True)
        return flat / np.where(norms > 0, norms, 1)

    def hidden(self, X) -> np.ndarray:
        """(n, n_hidden + 1) float32: the units' activations, then the constant unit."""
        flat = self._inputs(X)
        out = np.empty((len(flat), self.n_hidden + 1), np.float32)
        np.matmul(flat, self.weights_, out=out[:, :-1])
        out[:, :-1] += self.biases_
        np.maximum(out[:, :-1], 0, out=out[:, :-1])
        out[:, -1] = 1.0
        return out

    # ---- learning: sums over the samples, solved on demand --------------------------------

    def _fit(self, X, y):
        self._start(X.shape[1:], len(self.classes_))
        self._learn_more(X, y)
        self._solve()  # part of training (partial_fit solves when the model next predicts)

    def _start(self, input_shape, n_classes):
        self._preprocessor = make_preprocessor(self.preprocess)
        self.weights_ = None  # drawn from the first samples (_learn_more)
        m = self.n_hidden + 1
        # H'H in GROUPS float32 sums (upper triangles), H'T and the class counts
        self._grams = [np.zeros((m, m), np.float32, order="F") for _ in range(GROUPS)]
        self._cross = np.zeros((m, n_classes))
        self._counts = np.zeros(n_classes, np.int64)
        self.readout_ = None

    def _learn_more(self, X, y):
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        if self.weights_ is None:
            self._draw_layer(X, y)
        self._counts += np.bincount(y, minlength=len(self._counts))
        starts = range(0, len(X), CHUNK)

        def group_sums(g):  # chunk i goes to the sums of group i % GROUPS, on any thread count
            cross = np.zeros_like(self._cross)
            for start in starts[g::GROUPS]:
                H = self.hidden(X[start : start + CHUNK])
                labels = y[start : start + CHUNK]
                targets = np.zeros((len(labels), len(self._counts)), np.float32)
                targets[np.arange(len(labels)), labels] = 1.0
                # the upper triangle of H'H: half the multiply-adds of the product
                _ssyrk(1.0, H, beta=1.0, c=self._grams[g], trans=1, lower=0, overwrite_c=1)
                cross += H.T @ targets
            return cross

        threads = min(self.n_threads, GROUPS)
        with threadpool_limits(1), ThreadPoolExecutor(threads) as pool:
            for cross in pool.map(group_sums, range(GROUPS)):
                self._cross += cross
        self.readout_ = None

    def _in_chunks(self, work, n):
        """``work(start)`` for each chunk of CHUNK samples, on ``n_threads`` threads with one BLAS
        thread each, results in chunk order (predictions)."""
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        starts = range(0, n, CHUNK)
        with threadpool_limits(1), ThreadPoolExecutor(self.n_threads) as pool:
            for first in range(0, len(starts), self.n_threads):  # a chunk per thread in flight
                yield from pool.map(work, starts[first : first + self.n_threads])

    def _solve(self) -> np.ndarray:
        """The readout: (H'H + ridge x mean diag I)^-1 H'T, solved once after each update."""
        if self.readout_ is None:
            from scipy.linalg import cho_factor, cho_solve
            from threadpoolctl import threadpool_limits

            gram = self._grams[0].astype(np.float64)  # the upper triangles, summed in float64
            for more in self._grams[1:]:
                gram += more
            gram[np.diag_indices_from(gram)] += self.ridge * max(np.mean(np.diag(gram)), 1e-12)
            with threadpool_limits(1):  # LAPACK's sums depend on its thread count
                try:
                    factor = cho_factor(gram, lower=False, overwrite_a=True, check_finite=False)
                except np.linalg.LinAlgError:
                    raise ValueError(
                        f"ridge {self.ridge} is too small for {self.n_hidden} hidden units: the "
                        "regularised H'H is not positive definite in float arithmetic; raise ridge"
                    ) from None
                self.readout_ = cho_solve(factor, self._cross, check_finite=False)
        return self.readout_

    def _predict_index(self, X):
        readout = self._solve().astype(np.float32)

        def chunk_predictions(start):
            scores = self.hidden(X[start : start + CHUNK]) @ readout
            scores[:, self._counts == 0] = -np.inf  # a class not seen yet (a stream)
            return scores.argmax(axis=1)

        return np.concatenate(list(self._in_chunks(chunk_predictions, len(X))))

    def for_warm_up(self) -> RandomFieldELM:
        """A small copy (64 units) for the pipeline's untimed warm-up fit: the same code, without
        the solve of the real layer's size."""
        return type(self)(**{**self.get_params(), "n_hidden": min(self.n_hidden, 64)})

    @property
    def model_bytes(self) -> int:
        self._check_fitted()
        return self.weights_.nbytes + self.biases_.nbytes + self._solve().nbytes


def _pairs_of_other_classes(y, n, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs of samples (indices into ``y``) whose classes differ (any pair, where
    ``y`` holds one class only)."""
    first, second = rng.integers(0, len(y), n), rng.integers(0, len(y), n)
    if len(np.unique(y)) < 2:  # one class: any two different samples (a unit of one is all zero)
        if len(y) > 1:
            same = first == second
            second[same] = (first[same] + rng.integers(1, len(y), int(same.sum()))) % len(y)
        return first, second
    same = y[first] == y[second]
    while same.any():
        second[same] = rng.integers(0, len(y), int(same.sum()))
        same = y[first] == y[second]
    return first, second
