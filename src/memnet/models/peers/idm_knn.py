"""Nearest neighbours under the image distortion model (Keysers, Deselaers, Gollan & Ney,
"Deformation models for image recognition", IEEE PAMI 29(8), 2007).

The image distortion model (IDM) lets each pixel of the test image match any pixel of the
reference image within a small window around the same place (the warp range ``w``: a
``(2w + 1) x (2w + 1)`` window), independently of its neighbours' matches, and compares local
contexts rather than single values: the distance is

    D(x, r) = sum over pixels p of  min over |d| <= w (each axis), p + d inside the image,
              of  || C_x(p) - C_r(p + d) ||^2,

with ``C(p)`` the ``context x context`` neighbourhood of ``p`` in each feature image, by default
the horizontal and vertical Sobel gradients of each channel (zero outside the image). The
training set is the memory; a query's ``n_candidates`` nearest training images by Euclidean
distance on the (preprocessed) pixels are re-ranked by the IDM distance, and the ``k`` nearest
under IDM vote (:func:`memnet.models.baselines.vote`).

Exactness. For each shift ``d``, the squared feature difference is formed over the padded image
once and summed over each pixel's context by a box sum (rows, then columns), in float32; the
minimum over shifts is summed over the pixels in float64. Each query's distances are computed
by one thread, in the same order, so they do not depend on the thread count; equal IDM
distances go to the lower training index. The Euclidean pre-selection is a float32 BLAS product
per fixed chunk of queries, on one BLAS thread, so its candidates do not depend on the thread
count either. The chunks are shared among ``n_threads`` threads (a thread pool; the numba
kernel releases the GIL, as memnet.models._l1_kernels does), rather than numba's prange: a
chunk's BLAS product and its re-ranking then overlap with other chunks'. With ``n_candidates``
at least the number of stored images there is no pre-selection: the exact IDM nearest
neighbours. Where ours departs from the published method: docs/model.md, section 5.3.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from memnet.models.baselines import Baseline, vote
from memnet.models.preprocess import make_preprocessor, parse_steps
from memnet.validation import check_choice, check_int

FEATURES = ("sobel", "pixels")
OUTSIDE = np.float32(1e30)  # the cost of a match outside the image (never the minimum)
CHUNK = 128  # queries pre-selected and re-ranked at a time (memory: CHUNK x n_train float32)


# ---- kernels -----------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _feature_map(img, sobel, pad, out):
    """The feature images of ``img`` (C, H, W) into ``out`` (F, H + 2 pad, W + 2 pad), zero
    outside the image: the image itself (F = C), or per channel its horizontal and vertical
    Sobel gradients (F = 2C, the image taken as zero outside)."""
    n_ch, h, w = img.shape
    out[:] = 0.0
    if not sobel:
        for c in range(n_ch):
            for i in range(h):
                for j in range(w):
                    out[c, pad + i, pad + j] = img[c, i, j]
        return
    p = np.zeros((h + 2, w + 2), np.float32)
    for c in range(n_ch):
        for i in range(h):
            for j in range(w):
                p[i + 1, j + 1] = img[c, i, j]
        for i in range(h):
            for j in range(w):
                # p[i + 1, j + 1] is pixel (i, j)
                out[2 * c, pad + i, pad + j] = (
                    p[i, j + 2] + 2 * p[i + 1, j + 2] + p[i + 2, j + 2]
                ) - (p[i, j] + 2 * p[i + 1, j] + p[i + 2, j])
                out[2 * c + 1, pad + i, pad + j] = (
                    p[i + 2, j] + 2 * p[i + 2, j + 1] + p[i + 2, j + 2]
                ) - (p[i, j] + 2 * p[i, j + 1] + p[i, j + 2])


@njit(cache=True, nogil=True)
def _idm_distance(fq, fr, outside, warp, half, h, w, diff, rows, cost, best):
    """IDM distance (float64) between two images' feature maps ``fq`` and ``fr`` (F, L),
    each the flattened (F, H + 2P, S) padded maps, P = half + warp, S = w + 2P (the row
    stride). ``outside`` (L,): 0 at the image's pixels, BIG elsewhere (a shift may not leave the
    image). ``diff``, ``rows``, ``cost``, ``best`` (L,): float32 scratch.

    For each shift d, over flat indices: diff = the squared feature difference, rows = its sums
    along the context's rows, cost = their sums down the context's columns, plus ``outside`` at
    the matched pixel; best = the minimum over shifts at each pixel."""
    n_f = fq.shape[0]
    pad = half + warp
    stride = w + 2 * pad
    first = pad * stride + pad  # pixel (0, 0)
    last = (pad + h - 1) * stride + pad + w  # one past pixel (h - 1, w - 1)
    lo = first - half * stride - half  # the contexts' reach
    hi = last + half * stride + half
    n = hi - lo  # the places the contexts read, from lo
    m = last - first  # the pixels' places (and the padding between rows), from first
    best_px = best[first:last]
    best_px[:] = np.inf
    # every loop below runs over slices from index 0, which numba vectorises
    rows_px = rows[first - half * stride : last + half * stride]
    diff_in = diff[lo:hi]
    rows_in = rows[lo + half : hi - half]
    cost_px = cost[first:last]
    for di in range(-warp, warp + 1):
        for dj in range(-warp, warp + 1):
            shift = di * stride + dj
            a = fq[0, lo:hi]
            b = fr[0, lo + shift : hi + shift]
            for y in range(n):
                t = a[y] - b[y]
                diff_in[y] = t * t
            for f in range(1, n_f):
                a = fq[f, lo:hi]
                b = fr[f, lo + shift : hi + shift]
                for y in range(n):
                    t = a[y] - b[y]
                    diff_in[y] += t * t
            # sums along the context's rows (rows_in[y] is place lo + half + y)
            for y in range(n - 2 * half):
                rows_in[y] = diff_in[y]
            for v in range(1, 2 * half + 1):
                source = diff_in[v:]
                for y in range(n - 2 * half):
                    rows_in[y] += source[y]
            # sums down the context's columns (cost_px[x] is place first + x)
            for x in range(m):
                cost_px[x] = rows_px[x]
            for u in range(1, 2 * half + 1):
                source = rows_px[u * stride :]
                for x in range(m):
                    cost_px[x] += source[x]
            off = outside[first + shift : last + shift]
            for x in range(m):
                best_px[x] = min(best_px[x], cost_px[x] + off[x])
    total = 0.0
    for i in range(h):
        x0 = (pad + i) * stride + pad
        for x in range(x0, x0 + w):
            total += best[x]
    return total


@njit(cache=True, nogil=True)
def idm_distances(queries, train, candidates, warp, context, sobel, out):
    """IDM distances ``out`` (q, n) float64 of each query image (q, C, H, W) float32 to its
    candidates ``candidates`` (q, n) (indices into ``train``, (N, C, H, W) float32)."""
    n_q, n_ch, h, w = queries.shape
    half = context // 2
    n_f = 2 * n_ch if sobel else n_ch
    pad = half + warp
    size = (h + 2 * pad) * (w + 2 * pad)
    fq = np.empty((n_f, h + 2 * pad, w + 2 * pad), np.float32)
    fr = np.empty((n_f, h + 2 * pad, w + 2 * pad), np.float32)
    outside = np.full((h + 2 * pad, w + 2 * pad), OUTSIDE, np.float32)
    outside[pad : pad + h, pad : pad + w] = 0.0
    diff = np.empty(size, np.float32)
    rows = np.empty(size, np.float32)
    cost = np.empty(size, np.float32)
    best = np.empty(size, np.float32)
    fq_flat = fq.reshape(n_f, size)
    fr_flat = fr.reshape(n_f, size)
    outside_flat = outside.reshape(size)
    for q in range(n_q):
        _feature_map(queries[q], sobel, pad, fq)
        for c in range(candidates.shape[1]):
            _feature_map(train[candidates[q, c]], sobel, pad, fr)
            out[q, c] = _idm_distance(
                fq_flat, fr_flat, outside_flat, warp, half, h, w, diff, rows, cost, best
            )


# ---- the model ---------------------------------------------------------------------------------


class IDMNearestNeighbours(Baseline):
    """k nearest neighbours under the image distortion model, re-ranking Euclidean candidates.

    Parameters
    ----------
    k : int, default 4
        Neighbours under IDM that vote (a tie goes to the tied class whose nearest member is
        closest). 4 was best of 1, 3, 4, 5 and 7 on MNIST's validation split (docs/model.md).
    warp : int, default 2
        Warp range ``w``: each pixel may match any pixel up to ``w`` rows and ``w`` columns away
        (a ``(2w + 1) x (2w + 1)`` window); 0 compares each pixel with the same place only.
    context : int, default 3
        Side of the local context compared at each pixel (odd): ``context x context`` values of
        each feature image; 1 compares single values.
    features : {"sobel", "pixels"}, default "sobel"
        The feature images: each channel's horizontal and vertical Sobel gradients (as the
        published method), or the pixels themselves.
    n_candidates : int, default 200
        Training images pre-selected for each query by Euclidean distance on the (preprocessed)
        pixels, re-ranked by IDM; at least ``k``. As many as the stored images (or more): no
        pre-selection, the exact IDM nearest neighbours. The IDM's cost grows in proportion.
    preprocess : str, list of str or None, default "deskew"
        Steps of memnet.models.preprocess applied to every image first (deskewing: a departure
        from the published method, which compares the images as they are); steps with
        statistics take them from the first samples seen. None: the images as they are.
    random_state : int, default 0
        Unused (nothing is random: the same training images give the same predictions, in any
        order, except which of two images at exactly equal distance counts as nearer); accepted
        as by every baseline.
    n_threads : int, default 1
        Threads sharing the chunks of queries (each on one BLAS thread): the predictions are the
        same on any number of threads.

    Attributes
    ----------
    train_ : ndarray of shape (n, C, H, W), float32
        The stored (preprocessed) training images.
    labels_ : ndarray of shape (n,), int64
        Their encoded labels.
    """

    name = "idm_knn"
    accepts_flat_input = False  # it compares images: (n, C, H, W)

    def __init__(
        self,
        k=4,
        warp=2,
        context=3,
        features="sobel",
        n_candidates=200,
        preprocess="deskew",
        random_state=0,
        n_threads=1,
    ):
        self.k = k
        self.warp = warp
        self.context = context
        self.features = features
        self.n_candidates = n_candidates
        self.preprocess = preprocess
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self):
        super()._check_params()
        check_int("k", self.k, minimum=1)
        check_int("warp", self.warp, minimum=0)
        check_int("context", self.context, minimum=1)
        if self.context % 2 != 1:
            raise ValueError(
                f"context must be odd (a window centred on the pixel); got {self.context}"
            )
        check_choice("features", self.features, FEATURES)
        check_int("n_candidates", self.n_candidates, minimum=1)
        if self.n_candidates < self.k:
            raise ValueError(
                f"n_candidates {self.n_candidates} is below k {self.k}: the k nearest are chosen "
                "among the candidates; choose n_candidates >= k"
            )
        parse_steps(self.preprocess)

    def check_input_shape(self, image_shape) -> None:
        """A context of ``context`` pixels fits inside images of ``image_shape``."""
        self._check_params()
        _, h, w = make_preprocessor(self.preprocess).output_shape(image_shape)
        if min(h, w) < self.context:
            raise ValueError(
                f"context {self.context} does not fit images of {h} x {w} pixels; choose "
                f"context <= {min(h, w)}"
            )

    # ---- learning: store the images --------------------------------------------------------

    def _fit(self, X, y):
        self._start(X.shape[1:], len(self.classes_))
        self._learn_more(X, y)

    def _start(self, input_shape, n_classes):
        self.check_input_shape(input_shape)
        self._preprocessor = make_preprocessor(self.preprocess)
        shape = self._preprocessor.output_shape(input_shape)
        self.train_ = np.zeros((0, *shape), np.float32)
        self.labels_ = np.zeros(0, np.int64)
        self._sq_norms = np.zeros(0, np.float32)

    def _images(self, X) -> np.ndarray:
        """(n, C, H, W) float32 C-contiguous: the images after ``preprocess``."""
        if self._preprocessor.steps:
            X = self._preprocessor.transform(X)
        return np.ascontiguousarray(X, dtype=np.float32)

    def _learn_more(self, X, y):
        if self._preprocessor.stateful and not self._preprocessor.fitted:
            self._preprocessor.fit(X)  # statistics of the first samples seen
        images = self._images(X)
        flat = images.reshape(len(images), -1)
        self.train_ = np.concatenate([self.train_, images])
        self.labels_ = np.concatenate([self.labels_, y])
        self._sq_norms = np.concatenate([self._sq_norms, np.einsum("ij,ij->i", flat, flat)])

    # ---- predicting: pre-select, re-rank, vote --------------------------------------------

    def candidates(self, X) -> np.ndarray:
        """(q, n_candidates) int64, ascending: the stored images nearest each image of X by
        Euclidean distance after ``preprocess`` (all of them when there are no more)."""
        self._check_fitted()
        return self._candidates(self._images(self._check_X(X)))

    def _candidates(self, queries):
        n = len(self.labels_)
        if self.n_candidates >= n:
            return np.broadcast_to(np.arange(n), (len(queries), n)).copy()
        flat = queries.reshape(len(queries), -1)
        train = self.train_.reshape(n, -1)
        # ||t||^2 - 2 q.t: the squared distance less ||q||^2, the same for each of q's candidates
        scores = flat @ train.T
        scores *= -2.0
        scores += self._sq_norms
        chosen = np.argpartition(scores, self.n_candidates - 1, axis=1)[:, : self.n_candidates]
        chosen.sort(axis=1)
        return chosen.astype(np.int64)

    def distances(self, X, candidates: np.ndarray) -> np.ndarray:
        """(q, n) float64: IDM distances of the images X to the stored images ``candidates``
        (q, n)."""
        self._check_fitted()
        queries = self._images(self._check_X(X))
        return self._distances(queries, np.ascontiguousarray(candidates, dtype=np.int64))

    def _distances(self, queries, candidates):
        out = np.empty(candidates.shape, np.float64)
        idm_distances(
            queries, self.train_, candidates, int(self.warp), int(self.context),
            self.features == "sobel", out,
        )  # fmt: skip
        return out

    def features_of(self, X) -> np.ndarray:
        """(n, F, H, W) float32: the feature images IDM compares (after ``preprocess``)."""
        self._check_fitted()
        images = self._images(self._check_X(X))
        n_ch, h, w = images.shape[1:]
        n_f = 2 * n_ch if self.features == "sobel" else n_ch
        out = np.empty((len(images), n_f, h, w), np.float32)
        for s, image in enumerate(images):
            _feature_map(image, self.features == "sobel", 0, out[s])
        return out

    def neighbours(self, X) -> np.ndarray:
        """(n, k) int64: indices of the stored images nearest each image of X under IDM, nearest
        first (among each query's candidates; equal distances: the lower index first)."""
        self._check_fitted()
        return self._neighbours(self._images(self._check_X(X)))

    def _neighbours(self, queries):
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        if self.k > len(self.labels_):
            raise ValueError(f"k={self.k} exceeds the {len(self.labels_)} samples learnt; lower k")

        def chunk_neighbours(start):
            chunk = queries[start : start + CHUNK]
            candidates = self._candidates(chunk)
            distances = self._distances(chunk, candidates)
            # candidates ascend, so a stable sort puts equal distances in training order
            order = np.argsort(distances, axis=1, kind="stable")[:, : self.k]
            return np.take_along_axis(candidates, order, axis=1)

        starts = range(0, len(queries), CHUNK)
        threads = max(1, min(int(self.n_threads), len(starts)))
        with threadpool_limits(1), ThreadPoolExecutor(threads) as pool:
            return np.concatenate(list(pool.map(chunk_neighbours, starts)))

    def _predict_index(self, X):
        neighbours = self._neighbours(self._images(X))
        return vote(self.labels_[neighbours], len(self.classes_))

    @property
    def model_bytes(self) -> int:
        """The stored images (float32), their squared norms and labels."""
        self._check_fitted()
        return self.train_.nbytes + self._sq_norms.nbytes + self.labels_.nbytes
