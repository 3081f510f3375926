"""The Memory Network (Ruiz & Gupta, 2024, arXiv:2409.17282), as reconstructed for this project.

The paper's full text is public on arXiv (PDF and HTML), but this reconstruction was built from
its abstract and published summaries only, not from the full text. It fits every fact known
from those (docs/model.md lists them, and every choice the reconstruction had to make): a
tensor of memory neurons, learnt in one pass with local updates only (birth of a new neuron for
a novel input, else Hebbian plasticity of the winner), an adaptive novelty threshold that
spends a neuron budget, and voting at inference. If you compare it with the paper's full text
and find a difference, please report it.

Speed with exact sequential semantics: a block of samples gets its distances to the memories as
they stood before the block from one BLAS product per memory bank (one bank per class under
``competition="label"``, so a sample is only compared with its candidates). A neuron born or
changed inside the block keeps a bound from those products (or from the block's own Gram
product), widened by how far it has moved since, and is computed exactly when it might win.
The BLAS values only filter: every decision uses exact float64 distances (memnet._kernels), so
the result does not depend on BLAS, block size or thread count, and equals the plain
one-sample-at-a-time implementation in memnet.reference. memnet._engine drives the kernels.

Threads: ``n_threads`` worker threads (default numba.get_num_threads(), which
``numba.set_num_threads`` or NUMBA_NUM_THREADS set) run independent BLAS products and query
chunks; BLAS itself runs single-threaded inside them.
"""

from __future__ import annotations

import numpy as np

from memnet.models.memory import _engine as E
from memnet.models.memory import _kernels as K
from memnet.models.memory._engine import rows_float32
from memnet.models.memory.base import MemoryModel, corrupt_file
from memnet.models.preprocess import make_preprocessor, parse_steps
from memnet.validation import (
    check_bool,
    check_choice,
    check_images,
    check_int,
    check_labels,
    check_random_state,
    check_real,
)

DISTANCES = {"l2": K.L2, "l1": K.L1, "cosine": K.COSINE}
THRESHOLDS = {"adaptive": K.ADAPTIVE, "fixed": K.FIXED, "none": K.NO_THRESHOLD}
BIRTH_SCHEDULES = ("uniform", "open")
PLASTICITIES = {"mean": K.MEAN, "constant": K.CONSTANT, "none": K.NO_PLASTICITY}
COMPETITIONS = ("label", "all")
VOTINGS = ("channel", "joint")

# The default initial tau is this fraction of the mean distance between two samples of the data.
TAU_FRACTION = 0.25
L1_TAU_SUBSAMPLE = 2048  # l1 has no closed form: its mean pair distance uses an even subsample


class MemoryNetwork(MemoryModel):
    """A single-pass, backprop-free memory network (a reconstruction of Ruiz & Gupta, 2024).

    Built from the paper's abstract and published summaries, not its full text: every choice
    below is a reconstruction, named as a parameter so that ablations can vary it; the defaults
    form the ``paper`` configuration.

    Training presents each sample once, in the order
    ``np.random.default_rng(random_state).permutation(n)`` (``shuffle=False``: as given). The
    candidates are the born neurons of the sample's class (``competition="label"``) or all of
    them (``"all"``); the winner is the nearest (ties: the earliest born). A neuron is born with
    the sample as its memory when there is no candidate or the winner's distance exceeds tau, and
    fewer than ``n_neurons`` are born; otherwise the winner absorbs the sample: ``hits += 1`` and
    ``memory += eta * (x - memory)``, with ``eta = 1 / hits`` for ``plasticity="mean"`` (the
    memory is then the running mean of every sample it absorbed, its birth sample included). A
    sample of a class without neurons once the budget is spent leaves no trace.

    Inference: ``voting="channel"``: each channel's k nearest neurons (by that channel's
    distance) vote for their labels, votes summed over channels; ``"joint"``: the k nearest by
    the summed distance vote. Ties go to the class with the smallest summed distance of its
    votes, then to the lowest class.

    Inputs: X of shape (n, C, H, W) or (n, d) (one channel), uint8 (scaled by 1/255) or
    floating point; y integer classes 0..K-1.

    Parameters
    ----------
    n_neurons : int, default 20000
        The neuron budget: at most this many are born.
    distance : {"l2", "l1", "cosine"}, default "l2"
        Squared Euclidean, l1, or 1 - cosine similarity (taken as 1 for an all-zero vector),
        each summed over channels.
    threshold : {"adaptive", "fixed", "none"}, default "adaptive"
        ``"adaptive"``: after each sample, tau *= 1 + beta if births so far / samples seen >
        n_neurons / T, else tau *= 1 - beta (T = ``expected_samples``, or len(X) in fit);
        ``"fixed"`` keeps tau; ``"none"`` makes every sample novel (with n_neurons >= T:
        exactly 1-nearest-neighbour).
    plasticity : {"mean", "constant", "none"}, default "mean"
        The winner's update rate: 1 / hits, ``eta``, or no update (hits still count).
    competition : {"label", "all"}, default "label"
        Which neurons compete for a sample: those of its class, or all of them (a neuron's
        class is then the one it won most often).
    voting : {"channel", "joint"}, default "channel"
        How the nearest neurons vote at inference (see above).
    k : int, default 1
        Neurons that vote per query (per channel under ``"channel"``).
    tau : float or None, default None
        The initial novelty threshold; None: ``default_tau(X, distance)`` of the data given to
        fit (or of the first batch given to partial_fit).
    beta : float, default 0.01
        The adaptive threshold's step, in (0, 1).
    eta : float, default 0.1
        The rate of ``plasticity="constant"``, in (0, 1].
    expected_samples : int or None, default None
        T, the samples of the whole pass (needed by partial_fit with an adaptive threshold and
        ``birth_schedule="uniform"``).
    preprocess : str, list of str or None, default None
        Preprocessing applied to every image before it reaches the neurons (ours, beyond the
        paper; memnet.preprocess): "deskew" for digits; "grayscale", "opponent", "standardise"
        or "zca" for colour images, or a chain such as "opponent+zca". Statistics (standardise,
        zca) are gathered from the data given to fit (or the first batch of partial_fit).
        None: the raw pixels, as the paper's model sees them.
    birth_schedule : {"uniform", "open"}, default "uniform"
        The births the adaptive threshold aims at after t samples: ``"uniform"`` spreads the
        budget evenly over the pass, n_neurons * t / T (the paper's setting, as we read it);
        ``"open"`` needs no T, for a stream of unknown length (ours): n_neurons * (1 - exp(-t /
        n_neurons)), which spends the budget ever more slowly and never exhausts it.
    shuffle : bool, default True
        Whether fit presents the samples in a seeded random order.
    random_state : int or None, default None
        The seed of that order.
    n_threads : int or None, default None
        Worker threads for fit/predict (None: numba.get_num_threads()); results are identical
        for any thread count.

    Attributes
    ----------
    n_born_ : int
        Neurons born.
    memories_ : ndarray of shape (n_born_, C, H*W), float32
        Their memories, in order of birth.
    labels_ : ndarray of shape (n_born_,), int64
        The class each neuron serves.
    hits_ : ndarray of shape (n_born_,), int64
        Samples each neuron was born from or absorbed.
    assoc_ : ndarray of shape (n_born_, K), int64
        Per neuron and class, how often it won or was born (``competition="all"`` only).
    births_per_class_ : ndarray of shape (K,), int64
        Neurons born from each class.
    tau_ : float
        The novelty threshold as training left it.
    n_seen_ : int
        Samples presented so far.
    image_shape_ : tuple of int
        (C, H, W) of the training samples; ``n_features_in_`` = C * H * W.
    classes_ : ndarray
        0..K-1.
    memory_bytes_ : int
        Bytes of the learnt state (also ``model_bytes``).
    work_ : dict
        Distance work of the last fit/partial_fit and predict.
    """

    name = "memnet"
    FORMAT_NAME = "memnet.MemoryNetwork"
    FORMAT_VERSION = 1
    can_save = True

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
        birth_schedule="uniform",
        preprocess=None,
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
        self.birth_schedule = birth_schedule
        self.preprocess = preprocess
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_threads = n_threads

    @classmethod
    def _owner(cls):
        return "MemoryNetwork (memnet)"

    def check_input_shape(self, image_shape) -> None:
        """The preprocessing steps fit images of ``image_shape``."""
        self._check_params()
        make_preprocessor(self.preprocess).output_shape(image_shape)

    def _check_params(self):
        check_int("n_neurons", self.n_neurons, minimum=1)
        check_choice("distance", self.distance, DISTANCES)
        check_choice("threshold", self.threshold, THRESHOLDS)
        check_choice("plasticity", self.plasticity, PLASTICITIES)
        check_choice("competition", self.competition, COMPETITIONS)
        check_choice("voting", self.voting, VOTINGS)
        check_int("k", self.k, minimum=1)
        positive = self.threshold == "adaptive"  # it multiplies tau: 0 would stay 0
        check_real("tau", self.tau, low=0.0, low_open=positive, allow_none=True)
        check_real("beta", self.beta, low=0.0, high=1.0, low_open=True, high_open=True)
        check_real("eta", self.eta, low=0.0, high=1.0, low_open=True)
        check_int("expected_samples", self.expected_samples, minimum=1, allow_none=True)
        check_choice("birth_schedule", self.birth_schedule, BIRTH_SCHEDULES)
        parse_steps(self.preprocess)
        check_bool("shuffle", self.shuffle)
        check_random_state(self.random_state)
        check_int("n_threads", self.n_threads, minimum=1, allow_none=True)

    # ---- training ---------------------------------------------------------------------------

    def fit(self, X, y):
        """Forget everything, then learn from one pass over (X, y) in the seeded order."""
        self._check_params()
        X = check_images(X)
        y = check_labels(y, len(X), zero_based=True)
        X = self._preprocessed(X, start=True)
        self._reset(image_shape=X.shape[1:], n_classes=int(y.max()) + 1)
        self._n_expected = self._horizon(len(X))
        self._tau = self._initial_tau(X)
        if self.shuffle:
            order = np.random.default_rng(self.random_state).permutation(len(X))
        else:
            order = np.arange(len(X))
        self._learn(X, y, order, plan_whole_pass=True)
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
        if not self._is_fitted():
            uniform = self.birth_schedule == "uniform"
            if self.threshold == "adaptive" and uniform and self.expected_samples is None:
                raise ValueError(
                    "partial_fit with threshold='adaptive' needs expected_samples (T, the number "
                    "of samples of the whole pass) to set the target birth rate n_neurons / T; "
                    "for a stream of unknown length, use birth_schedule='open'"
                )
            y, n_classes = self._first_labels(y, len(X), classes)
            X = self._preprocessed(X, start=True)
            self._reset(image_shape=X.shape[1:], n_classes=n_classes)
            self._n_expected = self._horizon(len(X))
            self._tau = self._initial_tau(X)
        else:
            X = self._preprocessed(X, start=False)
            self._check_same_shape(X)
            y = self._later_labels(y, len(X), classes)
        self._learn(X, y, np.arange(len(X)), plan_whole_pass=False)
        return self

    def _preprocessed(self, X, start):
        """X after ``preprocess`` (unchanged without it); ``start``: first gather its statistics
        from X."""
        if start:
            self._preprocessor = make_preprocessor(self.preprocess)
            if self._preprocessor.stateful:
                self._preprocessor.fit(X)
        return self._preprocessor.transform_in_chunks(X) if self._preprocessor.steps else X

    def _horizon(self, n_samples) -> int:
        """T for the kernels: the pass's length, or 0 for the open schedule (which needs none)."""
        if self.birth_schedule == "open":
            return 0
        return self.expected_samples or n_samples

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
        self._memory = E.Memory(n_banks, c, h * w, n_classes, self.competition == "all")
        self._n_seen = 0
        self._stats = np.zeros(2, np.int64)  # exact distances in training: dirty, filtered
        self._approx_pairs = 0  # (sample, neuron) pairs approximated in training

    def _learn(self, X, y, order, plan_whole_pass):
        rule = K.Rule(
            threshold=THRESHOLDS[self.threshold],
            plasticity=PLASTICITIES[self.plasticity],
            eta=np.float32(self.eta),
            beta=float(self.beta),
            n_max=int(self.n_neurons),
            n_expected=int(self._n_expected),
        )
        counters = np.array([self._memory.n_born, self._n_seen], dtype=np.int64)
        progress = K.Progress(np.array([self._tau]), counters, self._stats)
        with E.Workers(self.n_threads) as workers:
            self._approx_pairs += E.learn(
                self._memory,
                X,
                y,
                order,
                distance=DISTANCES[self.distance],
                rule=rule,
                progress=progress,
                workers=workers,
                plan_whole_pass=plan_whole_pass,
            )
        self._n_seen = int(progress.counters[1])
        self._tau = float(progress.tau[0])

    # ---- inference --------------------------------------------------------------------------

    def predict(self, X):
        """The class voted by the nearest neurons of each sample (see the class docstring)."""
        self._check_fitted()
        X = self._preprocessed(check_images(X), start=False)
        self._check_same_shape(X)
        pred, self._predict_work = E.predict(
            self._memory,
            X,
            self.labels_,
            self._n_classes,
            distance=DISTANCES[self.distance],
            k=min(int(self.k), self._memory.n_born),
            by_channel=self.voting == "channel",
            n_threads=self.n_threads,
        )
        return pred

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

    @property
    def model_bytes(self) -> int:
        """Bytes of the learnt state (memory_bytes_), as every estimator reports it."""
        return self.memory_bytes_

    @property
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

    def run_facts(self, n_classes: int) -> dict:
        """As Estimator.run_facts, with n_born and births_per_class: the neurons per class of
        0..n_classes-1 (by labels_, the class each neuron serves)."""
        facts = super().run_facts(n_classes)
        facts["n_born"] = int(self.n_born_)
        facts["births_per_class"] = np.bincount(self.labels_, minlength=n_classes).tolist()
        return facts

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
            "memories": self.memories_,
            "birth_labels": mem.birth_label[: mem.n_born],
            "hits": self.hits_,
            "assoc": mem.assoc[: mem.n_born],
            **{f"pre_{k}": v for k, v in self._preprocessor.state().items()},
        }
        self._write(path, state, arrays)

    @classmethod
    def load(cls, path) -> MemoryNetwork:
        """Read a model written by save(); a wrong, corrupt or other-version file: ValueError."""
        data, config, state = cls._read(path)
        with corrupt_file(path):
            model = cls.from_params(config)
            memories = np.asarray(data["memories"], dtype=np.float32)
            model._reset(state["image_shape"], int(state["n_classes"]))
            model._memory.restore(memories, data["birth_labels"], data["hits"], data["assoc"])
            model._tau = float(state["tau"])
            model._n_seen = int(state["n_seen"])
            model._n_expected = int(state["n_expected"])
            model._preprocessor = make_preprocessor(model.preprocess)
            if model._preprocessor.stateful:
                model._preprocessor.set_state(
                    {k[4:]: v for k, v in data.items() if k.startswith("pre_")}
                )
        return model

    # ---- checks -----------------------------------------------------------------------------

    def _is_fitted(self):
        return hasattr(self, "_memory")


def default_tau(X, distance="l2") -> float:
    """The default initial tau: TAU_FRACTION x the mean distance between two samples of X.

    Computed exactly for l2 (twice the total variance) and cosine (per channel, 1 - |mean of the
    unit vectors|^2); for l1 over an evenly spaced subsample of at most 2048 samples.
    """
    check_choice("distance", distance, DISTANCES)
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


FORMAT_VERSION = MemoryNetwork.FORMAT_VERSION

__all__ = ["FORMAT_VERSION", "MemoryNetwork", "default_tau"]
