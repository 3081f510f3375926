"""A hierarchical Memory Network: ours, beyond the paper (its named next step, hierarchy).

Layer 1 is the locally connected Memory Network (memnet.models.memory.local), as it is. Layer 2
learns from layer 1's *evidence* for each sample: at every location, the distances from the
sample's patch to the nearest memories of each class bank there. Layer 1 weighs every location
the same; layer 2 learns which locations' distances to trust for which classes.

One pass for both layers (``schedule="prequential"``): the stream arrives in blocks of ``block``
samples; layer 2 learns each block's evidence computed *before* layer 1 stores the block, which
is the evidence layer 1 gives for images it has not seen, as test images are. Then layer 1 stores
the block. Each sample is presented once, to both layers. ``schedule="two-pass"``: layer 1 over
the whole stream, then layer 2 over the stream again with the final layer 1 (two passes).

Layer 2 learns without gradients: streaming linear discriminant analysis (``readout="slda"``: one
shared covariance, exact running statistics, memnet.models.peers.slda), nearest class mean
(``"ncm"``), or a Memory Network of the paper's rules on the evidence vectors (``"memory"``).

The answer weighs layer 2's class scores against layer 1's own (its summed distances, as
LocalMemoryNetwork answers), with a weight chosen in the same pass (``layer1_weight="auto"``):
in the second half of layer 2's part of the stream, before layer 2 learns a block, each weight of
WEIGHTS answers the block, and the weight that answered most of those samples right is kept. No
sample is seen twice for it, and no gradient: a count per candidate. (The second half: there,
layer 2 has learnt at least half of what it will, and answers more as it will answer test images;
on Fashion-MNIST's validation split the whole of layer 2's part chose a weight 0.3 points worse.)
"""

from __future__ import annotations

import math
import numbers
import tempfile
from pathlib import Path

import numpy as np

from memnet.models.memory._random_features import RandomFeatures
from memnet.models.memory.base import MemoryModel, corrupt_file
from memnet.models.memory.local import LocalMemoryNetwork
from memnet.models.memory.network import MemoryNetwork
from memnet.models.peers.slda import StreamingLDA
from memnet.validation import check_choice, check_images, check_int, check_labels, check_real

EVIDENCES = ("distance", "nearest", "rank", "vote", "winner")
NORMALISATIONS = ("none", "location", "threshold")
READOUTS = ("slda", "ncm", "memory")
SCHEDULES = ("prequential", "two-pass")
LAYER1 = ("patch", "stride", "n_per_bank", "shift", "preprocess", "beta")
CHUNK = 4096  # images whose evidence is formed at a time (float64: CHUNK x locations x K x j)
WINNER_CHUNK = 512  # patches compared with all of a location's memories at a time ("winner")
# layer 1's weight against layer 2's scores: candidates of layer1_weight="auto" (inf: layer 1 alone)
WEIGHTS = (0.0, *(2.0**e for e in range(-2, 13)), math.inf)


class HierarchicalMemoryNetwork(MemoryModel):
    """Two layers of memory learnt in one pass: locally connected banks, then a readout of their
    evidence (ours, beyond the paper; see the module docs).

    Evidence of a sample, per location and class (layer 1's banks there):

    - ``"distance"``: sqrt of the distance to the bank's nearest memory;
    - ``"nearest"``: sqrt of the distances to its ``n_nearest`` nearest memories, each apart;
    - ``"rank"``: the class's rank among the classes at that location (0: the nearest);
    - ``"vote"``: 1 for the class of the nearest memory (none when several tie), else 0;
    - ``"winner"``: a sparse code, one-hot at each location over all its memories (``n_per_bank``
      slots a class): which memory is the nearest there, of any class (the first on a tie, in
      class then slot order), at the location's own position. Its dimension (locations x K x
      n_per_bank, about a million on 28 x 28 images) allows only the nearest-class-mean readout,
      kept as counts; ``evidence_`` gives each sample's active coordinate per location.

    A bank with no memory yet (a class not seen) gives sqrt(patch features) as its distance, the
    largest that two patches of pixels in [0, 1] can be apart.

    The answer: the class of the largest ``g2 - w z1``, with g2 layer 2's class scores (streaming
    LDA's discriminant, or minus the squared distance to each class mean), z1 layer 1's summed
    squared distances to each class's nearest memories, per sample less their smallest and over
    their mean (so 0 for layer 1's class; smallest and mean over the classes with memories, so that
    classes yet to come leave the scale alone), and w ``layer1_weight`` (inf: layer 1's class).
    Layer 1's initial thresholds (and any preprocessing statistics) come from the stream's first
    block, as LocalMemoryNetwork.partial_fit takes them from its first batch. ``normalise="location"``: at each
    location the distances less their smallest over the classes, divided by their mean;
    ``"threshold"``: each bank's squared distances divided by the bank's own novelty threshold
    tau (which follows the scale of its distances as the bank fills up, so that early and late
    evidence speak the same units).

    Parameters
    ----------
    patch, stride, n_per_bank, shift, preprocess, beta
        Layer 1's (memnet.models.memory.local.LocalMemoryNetwork, the same defaults).
    evidence : {"distance", "nearest", "rank", "vote"}
        What layer 1 tells layer 2 (above).
    n_nearest : int
        Distances per class and location for ``evidence="nearest"``.
    normalise : {"none", "location", "threshold"}
        Distances as they are, normalised per location, or in units of each bank's tau.
    readout : {"slda", "ncm", "memory"}
        Layer 2: streaming LDA, nearest class mean, or a Memory Network (``layer2_neurons``).
    shrinkage : float
        Streaming LDA's shrinkage of the covariance toward the identity.
    layer2_neurons : int
        The Memory Network readout's neuron budget.
    layer2_hidden : int
        0: layer 2 reads the evidence. Else layer 2 reads this many fixed random features of it,
        relu(((f - m) / s) R + b) (memnet.models.memory._random_features: R, b drawn from
        ``random_state``, never learnt; m, s the first evidence block layer 2 learns), so that
        its readout is a non-linear function of the evidence, still without gradients.
    layer1_weight : "auto" or float >= 0 (inf allowed)
        w above; "auto": the one of WEIGHTS that answered most right of the blocks in the second
        half of layer 2's part of the stream, each block scored before layer 2 learnt it (none
        scored: 0). The Memory Network readout has no class scores: its answer is layer 2's
        ("auto" or 0 only). With ``schedule="two-pass"`` "auto" is 0: layer 1 has stored every
        sample layer 2 reads, so no block can be scored as an unseen image.
    schedule : {"prequential", "two-pass"}
        Layer 2 learns from evidence before each block is stored (one pass), or after layer 1
        has seen everything (two passes).
    block : int
        Samples of the stream whose evidence is taken with one state of layer 1.
    layer2_from : float
        Layer 2 learns the blocks that start after this fraction of the expected samples (0:
        all but the first). Later blocks' evidence is closer to what the full layer 1 gives test
        images; layer 1 alone learns the earlier ones.
    expected_samples : None, int or sequence of int
        Layer 1's T (LocalMemoryNetwork); fit: the class counts of y. partial_fit needs it.
    shuffle, random_state, n_threads
        As LocalMemoryNetwork: the seeded order of fit's samples; identical for any threads.
    """

    name = "hierarchy"
    FORMAT_NAME = "memnet.HierarchicalMemoryNetwork"
    FORMAT_VERSION = 2  # 2: layer 1's weight in the answer (its candidates' right answers saved)
    can_save = True
    uses_backprop = False
    uses_weight_sharing = False

    def __init__(
        self,
        patch=7,
        stride=3,
        n_per_bank=1600,
        shift=0,
        preprocess="deskew",
        beta=0.01,
        evidence="nearest",
        n_nearest=3,
        normalise="none",
        readout="slda",
        shrinkage=1e-4,
        layer2_neurons=2000,
        layer2_hidden=0,
        layer1_weight="auto",
        schedule="prequential",
        block=1000,
        layer2_from=0.5,
        expected_samples=None,
        shuffle=True,
        random_state=None,
        n_threads=None,
    ):
        self.patch = patch
        self.stride = stride
        self.n_per_bank = n_per_bank
        self.shift = shift
        self.preprocess = preprocess
        self.beta = beta
        self.evidence = evidence
        self.n_nearest = n_nearest
        self.normalise = normalise
        self.readout = readout
        self.shrinkage = shrinkage
        self.layer2_neurons = layer2_neurons
        self.layer2_hidden = layer2_hidden
        self.layer1_weight = layer1_weight
        self.schedule = schedule
        self.block = block
        self.layer2_from = layer2_from
        self.expected_samples = expected_samples
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_threads = n_threads

    @property
    def n_passes(self) -> int:
        return 2 if self.schedule == "two-pass" else 1

    # ---- training ---------------------------------------------------------------------------

    def fit(self, X, y):
        """Forget everything, then learn one pass over (X, y) in the seeded order: equal to
        partial_fit over X[order] in blocks of ``block``, with the class counts of y as
        expected_samples."""
        self._check_params()
        X = check_images(X)
        y = check_labels(y, len(X), zero_based=True)
        n_classes = int(y.max()) + 1
        order = np.arange(len(X))
        if self.shuffle:
            order = np.random.default_rng(self.random_state).permutation(len(X))
        counts = np.bincount(y, minlength=n_classes)
        self._start(X, np.arange(n_classes), counts.tolist())
        blocks = [(b.start, order[b]) for b in self._blocks(len(X))]
        if self.schedule == "two-pass":
            for _, idx in blocks:
                self._layer1.partial_fit(X[idx], y[idx], classes=self.classes_)
            for start, idx in blocks:
                if self._layer2_learns(start):
                    self._learn_block(X[idx], y[idx], start)
        else:
            for start, idx in blocks:
                self._prequential(X[idx], y[idx], start)
        return self

    def partial_fit(self, X, y, classes=None):
        """Continue the single pass with (X, y), in the order given, in blocks of ``block``
        (``schedule="prequential"`` only: the two-pass variant needs the whole stream)."""
        self._check_params()
        if self.schedule == "two-pass":
            raise ValueError(
                "partial_fit needs schedule='prequential': the two-pass variant revisits the "
                "whole stream; use fit"
            )
        X = check_images(X)
        if not hasattr(self, "_layer1"):
            if self.expected_samples is None:
                raise ValueError(
                    "partial_fit needs expected_samples (the samples of the whole pass, or one "
                    "count per class) to set layer 1's target birth rates"
                )
            y, n_classes = self._first_labels(y, len(X), classes)
            self._start(X, np.arange(n_classes), self.expected_samples)
        else:
            self._check_same_shape(X)
            y = self._later_labels(y, len(X), classes)
        offset = self._n_seen
        for b in self._blocks(len(X)):
            self._prequential(X[b], y[b], offset + b.start)
        return self

    def _blocks(self, n):
        """Slices of the next n samples of the stream: blocks of ``block``, except the stream's
        first, of one tenth of the expected samples when that is smaller (layer 2 cannot learn
        from it, layer 1 being empty), and a block boundary where layer 2 starts learning
        (``layer2_from`` x the expected samples)."""
        offset = self._n_seen
        first = min(self._first_block(), n) if offset == 0 else 0
        cut = min(max(self._layer2_start() - offset, first), n)
        edges = sorted({0, first, *range(first, cut, self.block), *range(cut, n, self.block), n})
        self._n_seen += n
        return [slice(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a]

    def _start(self, X, classes, expected):
        self._n_classes = len(classes)
        self.classes_ = np.arange(self._n_classes)
        self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        self.n_features_in_ = math.prod(self.image_shape_)
        self._layer1 = LocalMemoryNetwork(
            **self._layer1_params(),
            expected_samples=expected,
            shuffle=False,
            n_threads=self.n_threads,
        )
        self._layer2 = None
        self._features = None  # layer2_hidden's map, fixed by the first block layer 2 learns
        self._n_layer2 = 0
        self._hits = np.zeros(len(WEIGHTS), np.int64)  # right answers of each candidate weight
        self._n_seen = 0
        self._n_expected = int(np.sum(expected))

    def _first_block(self) -> int:
        """The stream's first block: ``block`` samples, or a tenth of the expected ones if fewer."""
        return max(1, min(self.block, self._n_expected // 10))

    def _layer2_start(self) -> int:
        """Where in the stream layer 2 starts learning: ceil(layer2_from x the expected samples),
        at most the last sample (so that a pass of the expected length always reaches it)."""
        return min(math.ceil(self.layer2_from * self._n_expected), max(self._n_expected - 1, 0))

    def _layer2_learns(self, position):
        """Whether layer 2 learns the block that starts at ``position`` in the stream."""
        return position >= self._layer2_start()

    def _prequential(self, X, y, position):
        if self._layer1._is_fitted() and self._layer2_learns(position):
            self._learn_block(X, y, position)
        self._layer1.partial_fit(X, y, classes=self.classes_)

    def _learn_block(self, X, y, position):
        """Layer 2 learns the block's evidence; first, if the weight is to be chosen and the
        block lies in the second half of layer 2's part, each candidate weight answers the
        block and its right answers count."""
        F, z1 = self._evidence_and_layer1(X)
        if self.layer2_hidden and self._features is None:
            self._features = RandomFeatures.start(F, self.layer2_hidden, self._features_seed())
        F = self._layer2_inputs(F)
        scored = self._choosing() and position >= self._scoring_start()
        if self._layer2 is not None and scored:
            g2 = self._layer2_scores(F)
            for i, w in enumerate(WEIGHTS):
                self._hits[i] += int(np.sum(_combine(g2, z1, w) == y))
        self._learn_readout(F, y)

    def _choosing(self) -> bool:
        """Whether the pass chooses layer 1's weight: not for the memory readout (no class
        scores), nor for the two-pass schedule (its layer 1 has stored every sample that layer 2
        reads, so no block answers as an unseen image would)."""
        return (self.layer1_weight == "auto" and self.readout != "memory"
                and self.schedule == "prequential")  # fmt: skip

    def _scoring_start(self) -> int:
        """Where in the stream the blocks that choose layer 1's weight start: half-way from
        layer 2's start to the expected end."""
        return math.ceil((self._layer2_start() + self._n_expected) / 2)

    def _learn_readout(self, F, y):
        if self._layer2 is None:
            d = (
                F.shape[1] * self._n_classes * self.n_per_bank
                if self.evidence == "winner"
                else F.shape[1]
            )
            self._layer2 = self._make_readout(d)
        if self.readout == "slda":
            if not hasattr(self._layer2, "_counts"):
                self._layer2.classes_ = self.classes_
                self._layer2._start((F.shape[1],), self._n_classes)
            self._layer2._learn_more(F, y)
        elif self.readout == "ncm":
            sums, counts = self._layer2
            if self.evidence == "winner":  # one-hot codes: a count per class and coordinate
                np.add.at(sums, (np.repeat(y, F.shape[1]), F.ravel()), 1.0)
            else:
                np.add.at(sums, y, F)
            counts += np.bincount(y, minlength=self._n_classes)
        else:
            self._layer2.partial_fit(F[:, None, None, :].astype(np.float32), y,
                                     classes=self.classes_)  # fmt: skip
        self._n_layer2 += len(y)

    def _make_readout(self, d):
        if self.readout == "slda":
            return StreamingLDA(shrinkage=self.shrinkage)
        if self.readout == "ncm":
            return np.zeros((self._n_classes, d)), np.zeros(self._n_classes, np.int64)
        first = max(self._layer2_start(), self._first_block())  # layer 2's first sample
        seen = max(self._n_expected - first, 1)
        return MemoryNetwork(n_neurons=self.layer2_neurons, expected_samples=seen,
                             preprocess=None, shuffle=False, n_threads=self.n_threads)  # fmt: skip

    # ---- evidence and inference -------------------------------------------------------------

    def evidence_(self, X) -> np.ndarray:
        """(n, n_locations x K x j) float64: layer 1's evidence for X as layer 2 reads it (j:
        ``n_nearest`` for "nearest", else 1), location-major."""
        return self._evidence_and_layer1(X)[0]

    def _winners(self, Xp, sc) -> np.ndarray:
        """(n, L) int64: per location, the code coordinate of the nearest memory of any class,
        (location x K + class) x n_per_bank + slot; squared distances as |x|^2 - 2 x.m + |m|^2
        from one-thread float32 products (so the same on any thread count)."""
        from threadpoolctl import threadpool_limits

        n, K, p, cap = len(Xp), self._n_classes, sc.patch, self.n_per_bank
        out = np.empty((n, len(sc.positions)), np.int64)
        with threadpool_limits(1):
            for loc, (r0, c0) in enumerate(sc.positions):
                counts = [int(sc.count[loc][c]) for c in range(K)]
                if not any(counts):
                    out[:, loc] = (loc * K) * cap
                    continue
                mem = np.concatenate([sc.mem[loc][c, :m] for c, m in enumerate(counts)])
                code = np.concatenate(
                    [
                        (loc * K + c) * cap + np.arange(m, dtype=np.int64)
                        for c, m in enumerate(counts)
                    ]
                )
                m_norm = (mem.astype(np.float64) ** 2).sum(axis=1)
                patches = Xp[:, :, r0 : r0 + p, c0 : c0 + p].reshape(n, -1)
                for s in range(0, n, WINNER_CHUNK):
                    x = patches[s : s + WINNER_CHUNK]
                    d = (x.astype(np.float64) ** 2).sum(axis=1)[:, None] + m_norm[None]
                    d -= 2.0 * (x @ mem.T)
                    out[s : s + len(x), loc] = code[np.argmin(d, axis=1)]
        return out

    def _evidence_and_layer1(self, X):
        """(evidence_(X), z1 (n, K)): z1 from layer 1's summed squared distances to each
        class's nearest memory (an empty bank: patch features), per sample less their
        smallest and over their mean, over the classes with memories (_layer1_scores)."""
        layer1 = self._layer1
        layer1._check_fitted()
        X = check_images(X)
        n, K = len(X), self._n_classes
        j = self.n_nearest if self.evidence == "nearest" else 1
        sc = layer1._scales[0]
        if self.evidence == "winner":
            out = np.empty((n, len(sc.positions)), np.int64)
        else:
            out = np.empty((n, len(sc.positions) * K * j))
        z1 = np.empty((n, K))
        for s in range(0, n, CHUNK):
            Xp = np.ascontiguousarray(layer1._transform(X[s : s + CHUNK]), np.float32)
            D, each = layer1._location_distances(Xp, sc, k=j, n_nearest=j)
            each = each.transpose(1, 0, 2, 3)
            if self.evidence == "winner":
                out[s : s + len(Xp)] = self._winners(Xp, sc)
            else:
                code = self._code(each, sc.n_features, sc.tau)
                out[s : s + len(Xp)] = code.reshape(len(Xp), -1)
            z1[s : s + len(Xp)] = _layer1_scores(each[..., 0], sc.n_features)
        return out, z1

    def _code(self, D, n_features, tau):
        """The evidence of squared distances D (n, L, K, j), as the parameters say."""
        if self.evidence in ("rank", "vote"):
            first = D[..., 0]
            if self.evidence == "rank":
                ranks = np.argsort(np.argsort(first, axis=2, kind="stable"), axis=2, kind="stable")
                return ranks[..., None].astype(np.float64)
            low = first.min(axis=2, keepdims=True)
            won = first == low
            return (won & (won.sum(axis=2, keepdims=True) == 1))[..., None].astype(np.float64)
        E = np.where(np.isinf(D), float(n_features), D)  # an empty bank: a large distance
        if self.normalise == "threshold":  # each bank's distances in units of its own tau
            E = E / tau[None, :, :, None]
        E = np.sqrt(E)
        if self.normalise == "location":
            low = E[..., :1].min(axis=2, keepdims=True)
            E = E - low
            E /= E[..., :1].mean(axis=2, keepdims=True) + 1e-12
        return E

    def predict(self, X):
        """The class of the largest g2 - w z1 for each sample (see the class docs)."""
        self._check_fitted()
        X = check_images(X)
        self._check_same_shape(X)
        if self._layer2 is None:  # the stream has not reached layer 2 yet: layer 1 answers
            return self._layer1.predict(X)
        return np.concatenate(
            [self._predict_block(X[s : s + CHUNK]) for s in range(0, len(X), CHUNK)]
        )

    def _predict_block(self, X):
        F, z1 = self._evidence_and_layer1(X)
        F = self._layer2_inputs(F)
        if self.readout == "memory":
            return self._layer2.predict(F[:, None, None, :].astype(np.float32))
        return _combine(self._layer2_scores(F), z1, self.layer1_weight_)

    def _layer2_inputs(self, F) -> np.ndarray:
        """What layer 2 reads of the evidence F: F, or its random features (layer2_hidden)."""
        return F if self._features is None else self._features(F)

    def _features_seed(self) -> list[int]:
        """The seed of layer2_hidden's R and b: random_state's (0 if None), apart from the order's."""
        return [0 if self.random_state is None else int(self.random_state), 2]

    def _layer2_scores(self, F) -> np.ndarray:
        """(n, K) layer 2's class scores, larger for likelier: streaming LDA's discriminant, or
        minus the squared distance to each class mean (-inf for a class not seen)."""
        if self.readout == "slda":
            return self._layer2.discriminant_scores(F)
        sums, counts = self._layer2
        means = sums / np.maximum(counts, 1)[:, None]
        if self.evidence == "winner":  # -|f - mean|^2 of one-hot f, from its coordinates
            scores = 2.0 * means[:, F].sum(axis=2).T - (means**2).sum(axis=1)[None] - F.shape[1]
        else:
            scores = -((F[:, None, :] - means[None]) ** 2).sum(axis=2)
        scores[:, counts == 0] = -np.inf
        return scores

    @property
    def layer1_weight_(self) -> float:
        """w: layer1_weight, or the candidate of WEIGHTS chosen in the pass (the first of the
        most right answers; 0 if no block was scored)."""
        self._check_fitted()
        if not self._choosing():
            return 0.0 if self.layer1_weight == "auto" else float(self.layer1_weight)
        return WEIGHTS[int(np.argmax(self._hits))] if self._hits.any() else 0.0

    # ---- fitted state -----------------------------------------------------------------------

    @property
    def layer1_(self) -> LocalMemoryNetwork:
        self._check_fitted()
        return self._layer1

    @property
    def n_layer2_samples_(self) -> int:
        """Samples layer 2 learnt from (the first block is not: layer 1 was empty)."""
        self._check_fitted()
        return int(self._n_layer2)

    @property
    def n_born_(self) -> int:
        return self.layer1_.n_born_

    @property
    def model_bytes(self) -> int:
        """Layer 1's learnt state plus layer 2's (its statistics or memories)."""
        self._check_fitted()
        if self._layer2 is None:
            two = 0
        elif self.readout == "slda":
            two = self._layer2.model_bytes
        elif self.readout == "ncm":
            two = self._layer2[0].nbytes + self._layer2[1].nbytes
        else:
            two = self._layer2.model_bytes
        if self._features is not None:
            two += self._features.nbytes
        return int(self._layer1.model_bytes + two)

    def run_facts(self, n_classes: int) -> dict:
        facts = super().run_facts(n_classes)
        facts.update(n_born=int(self.n_born_), layer2_samples=self.n_layer2_samples_,
                     layer1_weight=str(float(self.layer1_weight_)))  # fmt: skip
        return facts

    def for_warm_up(self):
        """A small copy of the model: the same code paths with little work."""
        return type(self)(**{**self.get_params(), "n_per_bank": 8, "layer2_neurons": 16,
                             "layer2_hidden": min(self.layer2_hidden, 16)})  # fmt: skip

    # ---- persistence ------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the model to ``path`` (.npz): layer 1's and a Memory Network readout's own files
        inside it, streaming LDA's or nearest class mean's statistics as arrays."""
        self._check_fitted()
        state = {"n_classes": self._n_classes, "image_shape": list(self.image_shape_),
                 "n_layer2": int(self._n_layer2), "n_seen": int(self._n_seen),
                 "n_expected": int(self._n_expected)}  # fmt: skip
        arrays = {"layer1": _file_bytes(self._layer1), "hits": self._hits}
        if self._features is not None:  # R and b are drawn again from the seed
            arrays.update(features_mean=self._features.mean, features_scale=self._features.scale)
        if self._layer2 is None:
            pass
        elif self.readout == "slda":
            arrays.update(l2_counts=self._layer2._counts, l2_means=self._layer2.means_,
                          l2_scatter=self._layer2._scatter)  # fmt: skip
        elif self.readout == "ncm":
            arrays.update(l2_sums=self._layer2[0], l2_counts=self._layer2[1])
        else:
            arrays["layer2"] = _file_bytes(self._layer2)
        self._write(path, state, arrays)

    @classmethod
    def load(cls, path) -> HierarchicalMemoryNetwork:
        """Read a model written by save(); a wrong, corrupt or other-version file: ValueError."""
        data, config, state = cls._read(path)
        with corrupt_file(path):
            model = cls.from_params(config)
            model._n_classes = int(state["n_classes"])
            model.classes_ = np.arange(model._n_classes)
            model.image_shape_ = tuple(state["image_shape"])
            model.n_features_in_ = math.prod(model.image_shape_)
            model._n_layer2 = int(state["n_layer2"])
            model._n_seen = int(state["n_seen"])
            model._n_expected = int(state["n_expected"])
            model._layer1 = _from_bytes(LocalMemoryNetwork, data["layer1"])
            model._hits = np.asarray(data["hits"], np.int64)
            model._features = None
            if "features_mean" in data:
                model._features = RandomFeatures.of(data["features_mean"], data["features_scale"],
                                                    model.layer2_hidden, model._features_seed())  # fmt: skip
            if "l2_counts" not in data and "layer2" not in data:
                model._layer2 = None
            elif model.readout == "slda":
                model._layer2 = StreamingLDA(shrinkage=model.shrinkage)
                model._layer2.classes_ = model.classes_
                model._layer2._counts = np.asarray(data["l2_counts"], np.int64)
                model._layer2.means_ = np.asarray(data["l2_means"], np.float64)
                model._layer2._scatter = np.asarray(data["l2_scatter"], np.float64)
                model._layer2._discriminant = None
            elif model.readout == "ncm":
                model._layer2 = (np.asarray(data["l2_sums"], np.float64),
                                 np.asarray(data["l2_counts"], np.int64))  # fmt: skip
            else:
                model._layer2 = _from_bytes(MemoryNetwork, data["layer2"])
        return model

    # ---- checks -----------------------------------------------------------------------------

    def _is_fitted(self) -> bool:
        return hasattr(self, "_layer1") and self._layer1._is_fitted()

    def check_input_shape(self, image_shape) -> None:
        """Layer 1's patches fit images of ``image_shape``."""
        self._check_params()
        LocalMemoryNetwork(**self._layer1_params()).check_input_shape(image_shape)

    def _layer1_params(self) -> dict:
        return {k: getattr(self, k) for k in LAYER1}

    def _check_params(self):
        check_choice("evidence", self.evidence, EVIDENCES)
        check_choice("normalise", self.normalise, NORMALISATIONS)
        check_choice("readout", self.readout, READOUTS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_int("n_nearest", self.n_nearest, minimum=1)
        check_int("block", self.block, minimum=1)
        check_int("layer2_neurons", self.layer2_neurons, minimum=1)
        check_int("layer2_hidden", self.layer2_hidden, minimum=0)
        if self.layer2_hidden and self.evidence == "winner":
            raise ValueError(
                "layer2_hidden with evidence='winner': the sparse code is read by class means "
                "only; give layer2_hidden=0 or another evidence"
            )
        check_real("shrinkage", self.shrinkage, low=0, high=1, low_open=True)
        check_real("layer2_from", self.layer2_from, low=0, high=1, high_open=True)
        if not _is_weight(self.layer1_weight):
            raise ValueError(
                "layer1_weight must be 'auto' or a number >= 0 (inf: layer 1's class alone); "
                f"got {self.layer1_weight!r}"
            )
        if self.evidence == "winner" and self.readout != "ncm":
            raise ValueError(
                f"evidence='winner' with readout={self.readout!r}: the sparse code has locations x "
                "classes x n_per_bank dimensions (about a million); its readout is readout='ncm'"
            )
        if self.layer1_weight != "auto":
            if self.readout == "memory" and self.layer1_weight != 0:
                raise ValueError(
                    f"layer1_weight={self.layer1_weight!r}: the memory readout has no class "
                    "scores to weigh layer 1's against; give 'auto' or 0, or another readout"
                )
        if isinstance(self.patch, tuple | list) and len(self.patch) > 1:
            raise ValueError(
                f"patch={self.patch}: the hierarchical model's layer 1 has one scale; give one "
                "patch size"
            )
        LocalMemoryNetwork(**self._layer1_params())._check_params()


def _file_bytes(model) -> np.ndarray:
    """A saved sub-model's file, as bytes in an array."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        model.save(path)
        return np.frombuffer(path.read_bytes(), np.uint8)


def _from_bytes(cls, array):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        path.write_bytes(np.asarray(array, np.uint8).tobytes())
        return cls.load(path)


def _layer1_scores(D, n_features):
    """z1 (n, K) from the squared distances D (n, L, K) of each location's patch to each class's
    nearest memory: their sums over the locations, less the sample's smallest and over its mean
    less its smallest, smallest and mean taken over the classes whose banks hold memories. An
    empty bank counts n_features a location: far from every class, and left out of the scale, so
    that classes yet to come (a class-incremental stream) do not shrink the seen classes' spread.
    With one class seen, the others' z1 is about 1e12 times their distance excess: finite, so that
    g2 - w z1 stays defined for w = 0. Layer 1 always holds a memory once fitted, so some class is
    seen."""
    empty = np.isinf(D).any(axis=1)  # (n, K): a bank empty at one location is empty at all
    total = np.where(np.isinf(D), float(n_features), D).sum(axis=1)
    seen = np.where(empty, np.nan, total)
    low = np.nanmin(seen, axis=1, keepdims=True)
    return (total - low) / (np.nanmean(seen, axis=1, keepdims=True) - low + 1e-12)


def _combine(g2, z1, w):
    """The class of the largest g2 - w z1 (w inf: of the smallest z1, layer 1's class)."""
    if math.isinf(w):
        return np.argmin(z1, axis=1).astype(np.int64)
    return np.argmax(g2 - w * z1, axis=1).astype(np.int64)


def _is_weight(w) -> bool:
    if isinstance(w, str):
        return w == "auto"
    return isinstance(w, numbers.Real) and not isinstance(w, bool | np.bool_) and w >= 0
