"""Numba kernels of the Memory Network: exact distances, the filter and the sequential training pass
(the top-k search of inference is memnet.models.memory._search_kernels).

Every decision (winner, birth, neighbours) is taken on the *exact* distance: a float64 sum of
float64 differences of the float32 inputs. BLAS products (float32, expansion formula) and the l1
loop below are only a filter: each approximate distance ``a`` comes with a rigorous interval
``[lower, upper]`` that holds the exact one (standard float error bounds, doubled for safety), and
only the neurons whose interval can reach the best one are computed exactly. So results do not
depend on BLAS rounding, blocking or thread count, and they equal a plain one-sample-at-a-time
float64 implementation (memnet.reference) up to float64 rounding (about 1e-16 relative): the
two can only disagree on distances equal to ~1e-15, in practice on exact ties, which both
resolve to the lowest index when the tied values are computed from equal inputs. The exact sums
are vectorised (fastmath reassociation), which changes the order of additions but not the
result from run to run or thread to thread: every kernel here is sequential and deterministic;
parallelism comes from independent tasks (memnet._engine.Workers).

The kernels take their arrays and settings grouped in named tuples (numba compiles and caches
them like any tuple): Filter (how approximations are bounded), then for training Block (the
samples of a block), Neurons (the memory), Rule (the learning rule) and Progress (tau and the
counters), and, in memnet.models.memory._search_kernels, for inference Search (each query's bounds and
candidates) and TopK (the result).
train_block reads top to bottom: per sample, _find_winner, then _give_birth or _absorb.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit

L2, L1, COSINE = 0, 1, 2
ADAPTIVE, FIXED, NO_THRESHOLD = 0, 1, 2
MEAN, CONSTANT, NO_PLASTICITY = 0, 1, 2

# Below this, a product or norm may have lost accuracy to underflow: the filter then keeps the
# entry (the exact distance decides).
TINY = 1e-30
UNIT_ROUNDOFF_F32 = 2.0**-24
CHUNK = 128  # exact l2/l1 sums are checked against their limit after each chunk
FAST = {"reassoc", "contract"}  # lets LLVM vectorise sums; only the order of additions changes
SCAN = {"reassoc", "contract", "nnan", "ninf", "nsz"}  # and min-reductions (no NaN or inf here)


def error_bounds(n_terms: int) -> tuple[float, float]:
    """(kappa, delta) of the filter for sums of ``n_terms`` float32 products.

    l2: |a - d| <= kappa * (|x|^2 + |m|^2); cosine: |a - d| <= kappa per channel;
    l1: |a - d| <= delta * d. gamma_n = n u / (1 - n u) bounds any order of summation.
    """
    u = UNIT_ROUNDOFF_F32
    gamma = n_terms * u / (1.0 - n_terms * u)
    return 2.0 * (gamma + 8.0 * u), 2.0 * (gamma + 4.0 * u)


@njit(cache=True, fastmath=FAST)
def exact_distance(x, m, c0, c1, n_pixels, dist, limit):
    """Distance between rows x and m (float32, channel-major) over channels [c0, c1), in float64.

    l2 and l1 stop early and return inf once the sum passes ``limit`` (their partial sums only
    grow); the sum runs in fixed chunks, so a finished sum never depends on ``limit``.
    """
    total = 0.0
    if dist == COSINE:
        for c in range(c0, c1):
            dot = 0.0
            xx = 0.0
            mm = 0.0
            for i in range(c * n_pixels, (c + 1) * n_pixels):
                xi = np.float64(x[i])
                mi = np.float64(m[i])
                dot += xi * mi
                xx += xi * xi
                mm += mi * mi
            if xx == 0.0 or mm == 0.0:
                total += 1.0
            else:
                total += 1.0 - dot / (math.sqrt(xx) * math.sqrt(mm))
        return total
    lo = c0 * n_pixels
    end = c1 * n_pixels
    if dist == L1:
        while lo < end:
            part = 0.0
            for i in range(lo, min(lo + CHUNK, end)):
                part += abs(np.float64(x[i]) - np.float64(m[i]))
            total += part
            if total > limit:
                return np.inf
            lo += CHUNK
        return total
    while lo < end:
        part = 0.0
        for i in range(lo, min(lo + CHUNK, end)):
            diff = np.float64(x[i]) - np.float64(m[i])
            part += diff * diff
        total += part
        if total > limit:
            return np.inf
        lo += CHUNK
    return total


@njit(cache=True, fastmath=FAST)
def _channel_sq_norms(x, n_channels, n_pixels, out):
    for c in range(n_channels):
        s = 0.0
        for i in range(c * n_pixels, (c + 1) * n_pixels):
            v = np.float64(x[i])
            s += v * v
        out[c] = s


@njit(cache=True, nogil=True)
def sq_norms(X, n_channels, n_pixels, out):
    """out[i, c] = squared norm of channel c of row i, in float64."""
    for i in range(X.shape[0]):
        _channel_sq_norms(X[i], n_channels, n_pixels, out[i])


@njit(cache=True, nogil=True)
def add_moments(X, n_channels, n_pixels, unit, sums):
    """sums += each row of X (each channel scaled to unit length if ``unit``); returns sum x^2."""
    norms = np.empty(n_channels)
    total_sq = 0.0
    for i in range(X.shape[0]):
        x = X[i]
        _channel_sq_norms(x, n_channels, n_pixels, norms)
        for c in range(n_channels):
            total_sq += norms[c]
            scale = 1.0
            if unit:
                scale = 1.0 / math.sqrt(norms[c]) if norms[c] > 0.0 else 0.0
            for p in range(c * n_pixels, (c + 1) * n_pixels):
                sums[p] += np.float64(x[p]) * scale
    return total_sq


@njit(cache=True, nogil=True)
def l1_approx(Xq, pool, start, n_rows, c0, c1, n_pixels, out):
    """out[j, r] = float32 l1 distance of Xq[j] to pool[start + r] over channels [c0, c1).

    The samples are transposed so that the innermost loop runs over samples, contiguous and
    free of reductions (it vectorises as is), four neurons at a time.
    """
    lo = c0 * n_pixels
    hi = c1 * n_pixels
    q = Xq.shape[0]
    xt = np.ascontiguousarray(Xq[:, lo:hi].T)
    acc = np.empty((4, q), np.float32)
    for r0 in range(0, n_rows, 4):
        width = min(4, n_rows - r0)
        acc[:] = 0.0
        for i in range(hi - lo):
            x = xt[i]
            for t in range(width):
                mi = pool[start + r0 + t, lo + i]
                a = acc[t]
                for j in range(q):
                    a[j] += abs(x[j] - mi)
        for t in range(width):
            out[:, r0 + t] = acc[t]


# ---- the filter: an interval [lower, upper] around each exact distance --------------------------
# dots[b, col] holds the approximation of one (sample, neuron) pair: the float32 dot product for
# l2 and cosine (one buffer b per channel for cosine), the float32 distance itself for l1.
# qn: the sample's squared channel norms. The pool side is a Filter: its rows' squared channel
# norms (norm, rows x C) and a per-row term of both bounds (terms: norm summed over the channels
# in use for l2, else 0; terms = POISON takes a row out of the filter, its bounds become huge).

POISON = 3.0e38
BIG = 1.0e308  # a finite "infinity" for the scans, compiled to assume no inf

Filter = namedtuple("Filter", "dist c0 c1 n_pixels kappa delta norm terms half_terms")
Filter.__doc__ = """How approximate distances to the pool's rows are bounded, over channels [c0, c1).

dist: L2, L1 or COSINE; n_pixels: values per channel; kappa, delta: error_bounds(); norm:
(rows, C) float64 squared channel norms of the rows; terms: (rows,) float64 per-row term of
the bounds (see above); half_terms: float32(terms / 2) (inference, l2 and k = 1; else unused).
"""


@njit(cache=True, inline="always")
def _channel_sum(qn, c0, c1):
    s = 0.0
    for c in range(c0, c1):
        s += qn[c]
    return s


@njit(cache=True, inline="always")
def _cosine_interval(f, dots, col, qn, row):
    lower = 0.0
    upper = 0.0
    for c in range(f.c0, f.c1):
        p = qn[c] * f.norm[row, c]
        if p < TINY:
            upper += 2.0  # a cosine distance lies in [0, 2]
        else:
            a = 1.0 - np.float64(dots[c - f.c0, col]) / math.sqrt(p)
            lower += a - f.kappa
            upper += a + f.kappa
    return lower, upper


@njit(cache=True, inline="always")
def _push(values, v):
    """Insert v into the ascending array values, dropping its largest entry."""
    pos = values.shape[0] - 1
    while pos > 0 and v < values[pos - 1]:
        values[pos] = values[pos - 1]
        pos -= 1
    values[pos] = v


@njit(cache=True, fastmath=SCAN)
def _min_linear(dots, pn, a, b):
    """min over r of pn[r] * a - b * dots[r], with eight running minima (numba yields no
    vectorised min-reduction; independent chains at least overlap)."""
    n = dots.shape[0]
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = BIG
    end = n - n % 8
    for r in range(0, end, 8):
        b0 = min(b0, pn[r] * a - b * np.float64(dots[r]))
        b1 = min(b1, pn[r + 1] * a - b * np.float64(dots[r + 1]))
        b2 = min(b2, pn[r + 2] * a - b * np.float64(dots[r + 2]))
        b3 = min(b3, pn[r + 3] * a - b * np.float64(dots[r + 3]))
        b4 = min(b4, pn[r + 4] * a - b * np.float64(dots[r + 4]))
        b5 = min(b5, pn[r + 5] * a - b * np.float64(dots[r + 5]))
        b6 = min(b6, pn[r + 6] * a - b * np.float64(dots[r + 6]))
        b7 = min(b7, pn[r + 7] * a - b * np.float64(dots[r + 7]))
    best = min(min(min(b0, b1), min(b2, b3)), min(min(b4, b5), min(b6, b7)))
    for r in range(end, n):
        best = min(best, pn[r] * a - b * np.float64(dots[r]))
    return best


@njit(cache=True, fastmath=SCAN)
def _smallest_uppers(f, dots, off, n, qn, start, ub):
    """Merge the upper bounds of rows start..start+n-1 (dots at off..) into ub, the k smallest
    so far (ascending; start it at BIG, not inf)."""
    k = ub.shape[0]
    pn = f.terms
    if f.dist == L2:
        row = dots[0]
        scale = 1.0 + f.kappa
        base = _channel_sum(qn, f.c0, f.c1) * scale + TINY
        if k == 1:
            nearest = _min_linear(row[off : off + n], pn[start : start + n], scale, 2.0)
            ub[0] = min(ub[0], base + nearest)
            return
        for r in range(n):
            v = base + pn[start + r] * scale - 2.0 * np.float64(row[off + r])
            if v < ub[k - 1]:
                _push(ub, v)
        return
    if f.dist == L1:
        row = dots[0]
        scale = 1.0 / (1.0 - f.delta)
        if k == 1:
            nearest = _min_linear(row[off : off + n], pn[start : start + n], 1.0, -scale)
            ub[0] = min(ub[0], TINY + nearest)
            return
        for r in range(n):
            v = np.float64(row[off + r]) * scale + TINY + pn[start + r]
            if v < ub[k - 1]:
                _push(ub, v)
        return
    for r in range(n):
        v = _cosine_interval(f, dots, off + r, qn, start + r)[1] + pn[start + r]
        if v < ub[k - 1]:
            _push(ub, v)


@njit(cache=True, fastmath=SCAN)
def _collect(f, dots, off, n, qn, start, limit, out, low):
    """Write to out the r < n whose lower bound is <= limit, and to low their lower bounds;
    return how many."""
    pn = f.terms
    count = 0
    if f.dist == L2:
        row = dots[0]
        scale = 1.0 - f.kappa
        base = _channel_sum(qn, f.c0, f.c1) * scale - TINY
        for r in range(n):
            v = base + pn[start + r] * scale - 2.0 * np.float64(row[off + r])
            if v <= limit:
                out[count] = r
                low[count] = v
                count += 1
    elif f.dist == L1:
        row = dots[0]
        scale = 1.0 / (1.0 + f.delta)
        for r in range(n):
            v = np.float64(row[off + r]) * scale - TINY + pn[start + r]
            if v <= limit:
                out[count] = r
                low[count] = v
                count += 1
    else:
        for r in range(n):
            v = _cosine_interval(f, dots, off + r, qn, start + r)[0] + pn[start + r]
            if v <= limit:
                out[count] = r
                low[count] = v
                count += 1
    return count


# ---- training: the samples of a block, one after the other --------------------------------------

Block = namedtuple("Block", "x y bank xnorm dots row_off row_len gram gram_off gram_n local")
Block.__doc__ = """A block of training samples and their approximate distances (see train_block).

x: (n, C*P) float32 samples; y, bank: their labels and memory banks (int64); xnorm: (n, C)
float64 squared channel norms; dots[:, row_off[j] + r] (r < row_len[j]): sample j against row
r of its bank as the memories stood before the block; gram[gram_off[b] + local[j] * gram_n[b]
+ local[s]]: samples j and s of bank b against each other (l2, l1; local: a sample's place
among its bank's samples in the block).
"""

Neurons = namedtuple("Neurons", "pool gidx start count dirty hits birth_label assoc row_of")
Neurons.__doc__ = """The neurons. Pool rows: memories (float32), bank b's at start[b] ..
start[b] + count[b] - 1, earliest first; gidx: a row's neuron; dirty: 0, or a row's place + 1
in the block's list of changed rows. Per neuron, in birth order: hits, birth_label, assoc (wins
per class; an empty array when not kept) and row_of (its pool row)."""

Rule = namedtuple("Rule", "threshold plasticity eta beta n_max n_expected")
Rule.__doc__ = """The learning rule: threshold (ADAPTIVE, FIXED or NO_THRESHOLD), plasticity
(MEAN, CONSTANT or NO_PLASTICITY), eta (a float32), beta, n_max (the neuron budget) and
n_expected (T, the samples of the whole pass; 0: the open schedule, which needs no T)."""

Progress = namedtuple("Progress", "tau counters stats")
Progress.__doc__ = """What training carries from block to block: tau, (1,) float64; counters,
(2,) int64: neurons born, samples seen; stats, (2,) int64: exact distances taken to changed
rows and to rows that passed the filter."""

# The rows born or changed inside a block: one linked list per bank (first[k], then next[t]).
# Entry t: its pool row; base, the row's filter term before the block (l2; 0 for a birth under
# l1); move, how far the memory may have moved since (l2: euclidean, l1: l1); low, its lower
# bound for the current sample; src, for a row born in the block, the local index of its sample
# (its distances come from the Gram product), else -1. size[0]: the entries in use.
Changed = namedtuple("Changed", "row base move low src next first last size")


@njit(cache=True)
def _no_changes(n_block, n_banks):
    return Changed(
        np.empty(n_block, np.int64),
        np.empty(n_block),
        np.zeros(n_block),
        np.empty(n_block),
        np.empty(n_block, np.int64),
        np.empty(n_block, np.int64),
        np.full(n_banks, -1, np.int64),
        np.full(n_banks, -1, np.int64),
        np.zeros(1, np.int64),
    )


@njit(cache=True, inline="always")
def _mark_changed(ch, dirty, k, row, src, base):
    """Pool row ``row`` of bank k joins the end of the bank's list of changed rows."""
    t = ch.size[0]
    ch.row[t] = row
    ch.next[t] = -1
    if ch.first[k] < 0:
        ch.first[k] = t
    else:
        ch.next[ch.last[k]] = t
    ch.last[k] = t
    ch.src[t] = src
    ch.base[t] = base
    ch.move[t] = 0.0
    dirty[row] = t + 1
    ch.size[0] = t + 1


@njit(cache=True)
def _bound_changed(f, block, j, start, ch, limit):
    """Bound the distance of sample j to each changed row of its bank: the interval of the
    row's memory at the block's start (or of the sample it was born from, through the Gram
    product), widened by how far it has moved since (the triangle inequality). Sets ch.low
    (-inf: no bound, compute it exactly); returns ``limit`` lowered to the smallest upper one.
    """
    k = block.bank[j]
    n_rows = block.row_len[j]
    off = block.row_off[j]
    sx = _channel_sum(block.xnorm[j], f.c0, f.c1)
    t = ch.first[k]
    while t >= 0:
        r = ch.row[t] - start
        ch.low[t] = -np.inf
        if f.dist != COSINE and (r < n_rows or ch.src[t] >= 0):
            if r < n_rows:
                a = np.float64(block.dots[0, off + r])
            else:
                pair = block.gram_off[k] + block.local[j] * block.gram_n[k] + ch.src[t]
                a = np.float64(block.gram[pair])
            move = ch.move[t]
            if f.dist == L2:
                a = sx + ch.base[t] - 2.0 * a
                b = f.kappa * (sx + ch.base[t]) + TINY
                lo = math.sqrt(max(a - b, 0.0)) - move
                lo = lo * lo * (1.0 - 1e-12) if lo > 0.0 else 0.0
                hi = math.sqrt(a + b) + move
                hi = hi * hi * (1.0 + 1e-12)
            else:
                lo = (a / (1.0 + f.delta) - TINY - move) * (1.0 - 1e-12)
                hi = (a / (1.0 - f.delta) + TINY + move) * (1.0 + 1e-12)
            ch.low[t] = lo
            limit = min(limit, hi)
        t = ch.next[t]
    return limit


@njit(cache=True, inline="always")
def _closer(f, x, memory, r, limit, winner, d_win):
    """The exact distance to row r of the bank (its memory); (winner, d_win) updated with it."""
    e = exact_distance(x, memory, f.c0, f.c1, f.n_pixels, f.dist, min(limit, d_win))
    if e < d_win or (e == d_win and r < winner):
        return r, e
    return winner, d_win


@njit(cache=True)
def _find_winner(f, block, j, mem, ch, upper, candidates, candidate_low, stats):
    """The nearest memory of sample j's bank by exact distance (ties: the lowest row, that is
    the earliest born): (its row in the bank, the distance), or (-1, inf) if none can win.

    The rows from before the block go through the filter; the rows changed in the block have
    their own bounds (_bound_changed) and are computed exactly when they can still win.
    """
    x = block.x[j]
    qn = block.xnorm[j]
    start = mem.start[block.bank[j]]
    n_rows = block.row_len[j]  # rows of this bank from before the block
    off = block.row_off[j]
    limit = np.inf  # an upper bound of the winning distance
    if n_rows > 0:
        upper[0] = BIG
        _smallest_uppers(f, block.dots, off, n_rows, qn, start, upper)
        limit = upper[0]
    limit = _bound_changed(f, block, j, start, ch, limit)
    winner = -1
    d_win = np.inf
    t = ch.first[block.bank[j]]
    while t >= 0:  # rows born in the block, and changed ones that may win
        r = ch.row[t] - start
        if ch.low[t] <= min(limit, d_win):
            stats[0] += 1
            winner, d_win = _closer(f, x, mem.pool[start + r], r, limit, winner, d_win)
        t = ch.next[t]
    if n_rows > 0:
        limit = min(limit, d_win)
        n_cand = _collect(f, block.dots, off, n_rows, qn, start, limit, candidates, candidate_low)
        for t in range(n_cand):
            r = candidates[t]
            stats[1] += 1
            winner, d_win = _closer(f, x, mem.pool[start + r], r, limit, winner, d_win)
    return winner, d_win


@njit(cache=True)
def _give_birth(f, block, j, mem, ch, g):
    """Neuron g is born in sample j's bank with the sample as its memory."""
    x = block.x[j]
    k = block.bank[j]
    label = block.y[j]
    row = mem.start[k] + mem.count[k]
    mem.pool[row, :] = x
    mem.gidx[row] = g
    mem.row_of[g] = row
    mem.birth_label[g] = label
    mem.hits[g] = 1
    if mem.assoc.shape[0] > 0:
        mem.assoc[g, :] = 0
        mem.assoc[g, label] = 1
    mem.count[k] += 1
    _channel_sq_norms(x, f.norm.shape[1], f.n_pixels, f.norm[row])
    src = block.local[j] if block.gram_n[k] > 1 else -1
    base = block.xnorm[j].sum() if f.dist == L2 else 0.0
    _mark_changed(ch, mem.dirty, k, row, src, base)


@njit(cache=True)
def _absorb(f, rule, block, j, mem, ch, row, d_win):
    """The memory in pool row ``row`` absorbs sample j (at exact distance d_win): one more hit,
    and under plasticity memory += rate * (x - memory), in float32; the row leaves the filter
    (its bound widens by how far it moved)."""
    x = block.x[j]
    g = mem.gidx[row]
    mem.hits[g] += 1
    if mem.assoc.shape[0] > 0:
        mem.assoc[g, block.y[j]] += 1
    if rule.plasticity == NO_PLASTICITY:
        return
    if rule.plasticity == MEAN:
        rate = np.float32(1.0) / np.float32(mem.hits[g])
    else:
        rate = rule.eta
    m = mem.pool[row]
    for i in range(m.shape[0]):
        m[i] = m[i] + rate * (x[i] - m[i])
    n_channels = f.norm.shape[1]
    _channel_sq_norms(m, n_channels, f.n_pixels, f.norm[row])
    if mem.dirty[row] == 0:  # the first change in this block: out of the filter
        _mark_changed(ch, mem.dirty, block.bank[j], row, -1, f.terms[row])
        f.terms[row] = POISON
    # the move: rate * |x - m| exactly, plus the float32 rounding of the update
    # (per value <= u |m'_i| + 2.01 u rate |x_i - m_i|), doubled for safety
    u = UNIT_ROUNDOFF_F32
    norm_new = math.sqrt(_channel_sum(f.norm[row], 0, n_channels))
    if f.dist == L1:
        step = rate * d_win
        rounding = 1.01 * u * math.sqrt(m.shape[0]) * norm_new + 2.01 * u * step
    else:
        step = rate * math.sqrt(d_win)
        rounding = 1.01 * u * norm_new + 2.01 * u * step
    ch.move[mem.dirty[row] - 1] += step + 2.0 * rounding


@njit(cache=True, nogil=True)
def train_block(block, mem, f, rule, progress):
    """Present the samples of ``block`` to the memory ``mem`` one after the other.

    Each sample looks for its winner (_find_winner); then a neuron is born from it (_give_birth)
    if it is novel and the budget allows, or else the winner absorbs it (_absorb); then tau
    adapts. ``f`` holds the filter's terms from before the block. Rows born or changed inside
    the block are listed as changed and taken out of the filter (their term set to POISON), so
    each sample sees the memories exactly as the samples before it left them: a changed row
    keeps the interval of its memory at the block's start (or of the sample it was born from,
    through gram), widened by how far it has moved since (a move is eta * the exact winning
    distance, plus float32 rounding), and is computed exactly only if that interval can still
    win. Under cosine (no triangle inequality) changed rows are computed exactly.
    The caller guarantees room in the pool and in the per-neuron arrays, and a zeroed
    ``mem.dirty``.
    """
    n_block = block.x.shape[0]
    ch = _no_changes(n_block, mem.start.shape[0])
    most = block.row_len.max() if n_block > 0 else 0
    candidates = np.empty(most, np.int64)
    candidate_low = np.empty(most)
    upper = np.empty(1)
    tau = progress.tau[0]
    n_born = progress.counters[0]
    n_seen = progress.counters[1]
    for j in range(n_block):
        k = block.bank[j]
        winner = -1
        d_win = np.inf
        if mem.count[k] > 0 and not (rule.threshold == NO_THRESHOLD and n_born < rule.n_max):
            winner, d_win = _find_winner(
                f, block, j, mem, ch, upper, candidates, candidate_low, progress.stats
            )
        novel = winner < 0 or rule.threshold == NO_THRESHOLD or d_win > tau
        if novel and n_born < rule.n_max:
            _give_birth(f, block, j, mem, ch, n_born)
            n_born += 1
        elif winner >= 0:
            _absorb(f, rule, block, j, mem, ch, mem.start[k] + winner, d_win)
        # else: no neuron of this class and no room left; the sample leaves no trace
        n_seen += 1
        if rule.threshold == ADAPTIVE:
            if rule.n_expected > 0:  # births spread evenly over the T samples of the pass
                over = n_born * rule.n_expected > rule.n_max * n_seen
            else:  # the open schedule: no T, births toward n_max (1 - exp(-seen / n_max))
                over = n_born > rule.n_max * (1.0 - math.exp(-n_seen / rule.n_max))
            if over:
                tau = tau * (1.0 + rule.beta)
            else:
                tau = tau * (1.0 - rule.beta)
    for t in range(ch.size[0]):
        mem.dirty[ch.row[t]] = 0
    progress.tau[0] = tau
    progress.counters[0] = n_born
    progress.counters[1] = n_seen
