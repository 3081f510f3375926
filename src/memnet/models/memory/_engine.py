"""What drives the kernels of memnet._kernels: the memory's storage, training blocks, inference.

- :class:`Memory`: the neuron tensor, one pool of rows in which each memory bank (a class under
  ``competition="label"``, else all neurons) is a contiguous run of rows, earliest first;
- :func:`learn`: present samples in blocks; each block gets its approximate distances from
  BLAS products (:func:`_block_dots`), then K.train_block takes every decision exactly;
- :func:`predict`: queries in chunks, neurons in blocks of one BLAS product each, folded into
  each query's bounds (K.scan_block), then the exact k nearest (K.refine_topk) vote;
- :class:`Workers`: the threads that run independent products and chunks; :class:`Buffers`:
  reusable float32 scratch arrays.

Every constant that sizes blocks, chunks and buffers is here; none of them changes a result.
"""

from __future__ import annotations

import math
import queue
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from memnet.datasets import to_unit_float
from memnet.models.memory import _kernels as K
from memnet.models.memory import _search_kernels as S

QUERY_CHUNK = 1024  # queries per inference task
NEURON_BLOCK = 1024  # neurons per BLAS product at inference (the product stays in cache)
CANDIDATES = 60  # candidate list of a query at inference (overflow: exhaustive search)
SPARSE_SHARE = 0.9  # l2 products drop unused features when at most this share of them is left

BLOCK_DIVISOR, BLOCK_MAX = 4, 4096
BLOCK_DIVISOR_COSINE, BLOCK_MAX_COSINE = 16, 1024  # its changed neurons cost a full distance
BLOCK_MIN = 64
SPARE_ROWS = 1024  # a fit's pool has this many rows beyond the budget (bounds its blocks)
# The block's approximations against the memories take at most an eighth of the pool's bytes
# (at least 8 MiB): bigger blocks pay only while the products are small next to the memories.
BLOCK_DOTS_SHARE, BLOCK_DOTS_MIN_BYTES = 8, 8 << 20

NO_HALF_TERMS = np.zeros(0, np.float32)  # training's filter has no use for them


# ---- training -------------------------------------------------------------------------------


def learn(mem, X, y, order, *, distance, rule, progress, workers, plan_whole_pass):
    """Present X[order] (labels y[order]) to ``mem`` in blocks, one sample after the other.

    ``distance``: K.L2, K.L1 or K.COSINE; ``rule``: a K.Rule; ``progress``: a K.Progress that
    carries tau, the counters and the statistics (updated in place). ``plan_whole_pass``: this is
    the whole pass (fit), so one pool is allocated for it and the banks move inside it; else
    (partial_fit) the pool grows as needed. Returns the (sample, neuron) pairs approximated.
    """
    c, p = mem.n_channels, mem.n_pixels
    kappa, delta = K.error_bounds(p if distance == K.COSINE else c * p)
    bank_of = mem.bank_of(y)
    left = np.bincount(bank_of, minlength=mem.n_banks)  # samples of each bank still to come
    seen = np.zeros_like(left)
    if plan_whole_pass:  # one pool for the whole pass: the banks move inside it, never grow
        rows = min(rule.n_max, len(order)) + SPARE_ROWS
        mem.reserve_rows(np.zeros_like(left), left, rows)
    approx_pairs = 0
    start = 0
    while start < len(order):
        size = _block_size(mem, distance)
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
        needed = mem.count + np.minimum(in_block, max(rule.n_max - mem.n_born, 0))
        if np.any(needed > mem.cap):
            if plan_whole_pass:  # spare rows go where births are still expected
                rows, weights = len(mem.pool), left * (mem.count + 1) / (seen + 1)
            else:
                grown = max(math.ceil(1.5 * len(mem.pool)), int(needed.sum()) + BLOCK_MIN)
                rows = max(len(mem.pool), min(grown, rule.n_max + SPARE_ROWS))
                weights = mem.count + 1
            mem.reserve_rows(needed, weights, rows)
        mem.reserve_neurons(mem.n_born + len(idx))
        block, pairs = _block_dots(mem, xb, yb, bank, in_block, distance, rule, workers)
        approx_pairs += pairs
        terms = _filter_terms(mem.norm, distance, 0, c)  # fresh: training marks rows in it
        f = K.Filter(distance, 0, c, p, kappa, delta, mem.norm, terms, NO_HALF_TERMS)
        K.train_block(block, mem.neurons(), f, rule, progress)
        mem.n_born = int(progress.counters[0])
    mem.scratch = Buffers()
    return approx_pairs


def _block_dots(mem, xb, yb, bank, in_block, dist, rule, workers):
    """The K.Block of a block of samples, its approximations from BLAS products (l1: its
    loop), and how many (sample, neuron) pairs they cover.

    dots: each sample against its bank's memories before the block (at row_off, row_len long);
    gram (not for cosine): the samples of each bank against each other (bank b's s_b x s_b
    block at gram_off[b]; local: a sample's place among its bank's samples), for the neurons
    that samples give birth to inside the block.
    """
    c, p = mem.n_channels, mem.n_pixels
    n_block, n_banks = len(xb), mem.n_banks
    xnorm = sq_norms(xb, c, p)
    row_off = np.zeros(n_block, np.int64)
    row_len = np.zeros(n_block, np.int64)
    local = np.zeros(n_block, np.int64)
    gram_off = np.zeros(n_banks, np.int64)
    gram_n = np.zeros(n_banks, np.int64)
    n_buf = c if dist == K.COSINE else 1
    if rule.threshold == K.NO_THRESHOLD and mem.n_born + n_block <= rule.n_max:
        dots, gram = np.zeros((n_buf, 0), np.float32), np.zeros(0, np.float32)
        block = K.Block(xb, yb, bank, xnorm, dots, row_off, row_len, gram, gram_off, gram_n, local)
        return block, 0
    banks = np.flatnonzero(in_block)
    members = {b: np.flatnonzero(bank == b) for b in banks}
    total = sum(int(in_block[b] * mem.count[b]) for b in banks)
    dots = mem.scratch.get("dots", (n_buf, total))
    with_gram = dist != K.COSINE
    gram = mem.scratch.get("gram", (int((in_block**2).sum()) if with_gram else 0,))
    channels = (0, c)
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
            tasks.append(partial(_approx, mem.pool, xs, start, n_rows, dist, out, channels, p))
            row_off[sel] = off + np.arange(len(sel)) * n_rows
            row_len[sel] = n_rows
            off += span
        if with_gram and len(sel) > 1:
            out = gram[goff : goff + len(sel) ** 2][None]
            tasks.append(partial(_approx, xs, xs, 0, len(xs), dist, out, channels, p))
            gram_off[b], gram_n[b] = goff, len(sel)
            goff += len(sel) ** 2
    workers.run(tasks)
    block = K.Block(xb, yb, bank, xnorm, dots, row_off, row_len, gram, gram_off, gram_n, local)
    return block, total + goff


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


# ---- inference ------------------------------------------------------------------------------


def predict(mem, X, labels, n_classes, *, distance, k, by_channel, n_threads):
    """The class voted by the ``k`` nearest neurons of each sample of X (checked, 4-D).

    ``labels``: the class of each neuron (birth order); ``by_channel``: each channel's k
    nearest vote (else the k nearest by the summed distance). Returns (predictions, work): the
    (query, neuron) pairs approximated and computed exactly.
    """
    pred = np.empty(len(X), np.int64)
    order = _by_extent(X) if distance == K.L2 else np.arange(len(X))
    chunks = [order[s : s + QUERY_CHUNK] for s in range(0, len(X), QUERY_CHUNK)]
    used = _used_columns(mem)
    c = mem.n_channels
    channel_sets = [(ch, ch + 1) for ch in range(c)] if by_channel and c > 1 else [(0, c)]
    with Workers(n_threads) as workers:
        # one set of buffers per worker, reused chunk after chunk; allocated here, where
        # memory that training freed can serve them, rather than in fresh thread arenas
        q, d = min(QUERY_CHUNK, len(X)), c * mem.n_pixels
        n_buf = c if distance == K.COSINE else 1
        buffers = queue.SimpleQueue()
        for _ in range(workers.n):
            sizes = dict(
                xq=q * d, xs=q * d, dots=n_buf * q * NEURON_BLOCK, memories=NEURON_BLOCK * d
            )
            buffers.put(Buffers(**sizes))

        def task(rows):
            buf = buffers.get()
            try:
                chunk = _Chunk(mem, X, rows, distance, k, used, buf)
                return chunk.vote(labels, n_classes, channel_sets, pred)
            finally:
                buffers.put(buf)

        work = workers.run([lambda rows=rows: task(rows) for rows in chunks])
    return pred, {
        "approx_pairs": sum(w[0] for w in work),
        "exact_pairs": sum(w[1] for w in work),
    }


def _used_columns(mem):
    """Per feature: whether any born memory is non-zero there."""
    used = np.zeros(mem.pool.shape[1], bool)
    for b in range(mem.n_banks):
        for s in range(mem.start[b], mem.start[b] + mem.count[b], NEURON_BLOCK):
            end = min(s + NEURON_BLOCK, mem.start[b] + mem.count[b])
            used |= (mem.pool[s:end] != 0).any(axis=0)
    return used


class _Chunk:
    """One chunk of queries X[rows] against every neuron.

    The neurons go by in blocks of NEURON_BLOCK: one BLAS product each (sized for the cache),
    folded at once into each query's running bounds and candidates (K.scan_block). For l2 the
    products skip the features that are zero in every query of the chunk or in every memory
    (``used``): they add nothing to a dot product, and fewer terms only tighten its float32
    error, so the filter's bounds still hold.
    """

    def __init__(self, mem, X, rows, distance, k, used, buf):
        self.mem = mem
        self.rows = rows
        self.distance = distance
        self.k = k
        self.used = used
        self.buf = buf
        c, p = mem.n_channels, mem.n_pixels
        self.xq = rows_float32(X, rows, out=buf.get("xq", (len(rows), c * p)))
        self.qnorm = sq_norms(self.xq, c, p)
        self.blocks = [
            (int(s + r0), int(min(NEURON_BLOCK, n - r0)))
            for s, n in zip(mem.start, mem.count, strict=True)
            for r0 in range(0, n, NEURON_BLOCK)
        ]

    def vote(self, labels, n_classes, channel_sets, pred):
        """Write the voted classes to pred[rows]; return (approximate, exact) distance pairs."""
        q, k = len(self.rows), self.k
        votes = np.zeros((q, n_classes), np.int64)
        dsum = np.zeros((q, n_classes), np.float64)
        n_exact = np.zeros(q, np.int64)
        for c0, c1 in channel_sets:
            gidx, dist_k = self.nearest(c0, c1, n_exact)
            voter = np.repeat(np.arange(q), k)
            np.add.at(votes, (voter, labels[gidx.ravel()]), 1)
            np.add.at(dsum, (voter, labels[gidx.ravel()]), dist_k.ravel())
        top = votes == votes.max(axis=1, keepdims=True)
        pred[self.rows] = np.argmin(np.where(top, dsum, np.inf), axis=1)
        n_neurons = int(self.mem.count.sum())
        return q * n_neurons * len(channel_sets), int(n_exact.sum())

    def nearest(self, c0, c1, n_exact):
        """The k nearest neurons of each query over channels [c0, c1) and their distances."""
        mem, buf, dist, xq, k = self.mem, self.buf, self.distance, self.xq, self.k
        p, q = mem.n_pixels, len(self.rows)
        n_buf = c1 - c0 if dist == K.COSINE else 1
        kappa, delta = K.error_bounds((1 if dist == K.COSINE else c1 - c0) * p)
        terms = _filter_terms(mem.norm, dist, c0, c1)
        f = K.Filter(
            dist, c0, c1, p, kappa, delta, mem.norm, terms, (0.5 * terms).astype(np.float32)
        )
        cols = None
        if dist == K.L2:
            span = slice(c0 * p, c1 * p)
            keep = np.flatnonzero((xq[:, span] != 0).any(axis=0) & self.used[span]) + c0 * p
            if len(keep) < SPARSE_SHARE * (c1 - c0) * p:
                cols = keep
                xs = np.take(xq, cols, axis=1, out=buf.get("xs", (q, len(cols))), mode="clip")
        cap = CANDIDATES + 4 * k
        search = S.Search(
            np.full((q, k), K.BIG),
            np.empty((q, cap), np.int64),
            np.empty((q, cap), np.float64),
            np.zeros(q, np.int64),
            np.empty(NEURON_BLOCK, np.int64),
            np.empty(NEURON_BLOCK, np.float64),
        )
        dots = buf.get("dots", (n_buf, q * NEURON_BLOCK))
        for start, n_rows in self.blocks:
            out = dots[:, : q * n_rows]
            if cols is None:
                _approx(mem.pool, xq, start, n_rows, dist, out, (c0, c1), p)
            else:
                memories = buf.get("memories", (n_rows, len(cols)))
                np.take(mem.pool[start : start + n_rows], cols, axis=1, out=memories, mode="clip")
                np.matmul(xs, memories.T, out=out[0].reshape(q, n_rows))
            S.scan_block(f, out, self.qnorm, start, n_rows, search)
        top = S.TopK(np.empty((q, k), np.int64), np.empty((q, k), np.float64), n_exact)
        S.refine_topk(f, xq, mem.neurons(), search, top)
        return top.gidx, top.dist


# ---- the memory -----------------------------------------------------------------------------


class Memory:
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
        self.scratch = Buffers()  # training's per-block products

    def bank_of(self, y):
        """The bank of each label: its class (one bank per class), else bank 0."""
        return y if self.n_banks > 1 else np.zeros_like(y)

    def neurons(self) -> K.Neurons:
        """The arrays as the kernels take them (valid until the pool or the neurons grow)."""
        return K.Neurons(
            self.pool,
            self.gidx,
            self.start,
            self.count,
            self.dirty,
            self.hits,
            self.birth_label,
            self.assoc,
            self.row_of,
        )

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
        self.norm = sq_norms(self.pool, self.n_channels, self.n_pixels)


def _offsets(sizes):
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def _grown(a, size):
    out = np.zeros((size, *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    return out


# ---- approximations and their helpers --------------------------------------------------------


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


def sq_norms(x, n_channels, n_pixels):
    """(n, C) float64 squared norm of each channel of each row of x."""
    out = np.empty((len(x), n_channels), np.float64)
    K.sq_norms(x, n_channels, n_pixels, out)
    return out


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


# ---- threads and buffers --------------------------------------------------------------------


class Buffers:
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


class Workers:
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
