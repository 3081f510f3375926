"""Numba kernels of the Memory Network: exact distances, the sequential training pass, top-k search.

Every decision (winner, birth, neighbours) is taken on the *exact* distance: a float64 sum of
float64 differences of the float32 inputs. BLAS products (float32, expansion formula) and the l1
loop below are only a filter: each approximate distance ``a`` comes with a rigorous interval
``[lower, upper]`` that holds the exact one (standard float error bounds, doubled for safety), and
only the neurons whose interval can reach the best one are computed exactly. So results do not
depend on BLAS rounding, blocking or thread count, and they equal a plain one-sample-at-a-time
float64 implementation (memnet.reference) up to float64 rounding (about 1e-16 relative).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

L2, L1, COSINE = 0, 1, 2
ADAPTIVE, FIXED, NO_THRESHOLD = 0, 1, 2
MEAN, CONSTANT, NO_PLASTICITY = 0, 1, 2

# Below this, a product or norm may have lost accuracy to underflow: the filter then keeps the
# entry (the exact distance decides).
TINY = 1e-30
UNIT_ROUNDOFF_F32 = 2.0**-24
FAST = {"reassoc", "contract"}  # lets LLVM vectorise sums; only the order of additions changes


def error_bounds(n_terms: int) -> tuple[float, float]:
    """(kappa, delta) of the filter for sums of ``n_terms`` float32 products.

    l2: |a - d| <= kappa * (|x|^2 + |m|^2); cosine: |a - d| <= kappa per channel;
    l1: |a - d| <= delta * d. gamma_n = n u / (1 - n u) bounds any order of summation.
    """
    u = UNIT_ROUNDOFF_F32
    gamma = n_terms * u / (1.0 - n_terms * u)
    return 2.0 * (gamma + 8.0 * u), 2.0 * (gamma + 4.0 * u)


@njit(cache=True, fastmath=FAST)
def exact_distance(x, m, c0, c1, n_pixels, dist):
    """Distance between rows x and m (float32, channel-major) over channels [c0, c1), in float64."""
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
    elif dist == L1:
        for i in range(c0 * n_pixels, c1 * n_pixels):
            total += abs(np.float64(x[i]) - np.float64(m[i]))
    else:
        for i in range(c0 * n_pixels, c1 * n_pixels):
            diff = np.float64(x[i]) - np.float64(m[i])
            total += diff * diff
    return total


@njit(cache=True, fastmath=FAST)
def _channel_sq_norms(x, n_channels, n_pixels, out):
    for c in range(n_channels):
        s = 0.0
        for i in range(c * n_pixels, (c + 1) * n_pixels):
            v = np.float64(x[i])
            s += v * v
        out[c] = s


@njit(cache=True)
def sq_norms(X, n_channels, n_pixels, out):
    """out[i, c] = squared norm of channel c of row i, in float64."""
    for i in range(X.shape[0]):
        _channel_sq_norms(X[i], n_channels, n_pixels, out[i])


@njit(cache=True, parallel=True, fastmath=FAST)
def l1_approx(Xq, pool, start, n_rows, c0, c1, n_pixels, out):
    """out[j, r] = float32 l1 distance of Xq[j] to pool[start + r] over channels [c0, c1)."""
    lo = c0 * n_pixels
    hi = c1 * n_pixels
    for r in prange(n_rows):
        m = pool[start + r]
        for j in range(Xq.shape[0]):
            x = Xq[j]
            s = np.float32(0.0)
            for i in range(lo, hi):
                s += abs(x[i] - m[i])
            out[j, r] = s


# ---- the filter: an interval [lower, upper] around each exact distance --------------------------
# dots[b, col] holds the approximation of one (sample, neuron) pair: the float32 dot product for
# l2 and cosine (one buffer b per channel for cosine), the float32 distance itself for l1.
# qn: the sample's squared channel norms; pnorm: (rows, C) the neurons'; pn: pnorm summed over
# the channels in use (l2). A dots entry set to POISON (sign: see poison_value) gives a huge
# upper and lower bound: the neuron is ignored by the filter (used for neurons already handled).

POISON = 3.0e38


@njit(cache=True)
def poison_value(dist):
    return POISON if dist == L1 else -POISON


@njit(cache=True, inline="always")
def _channel_sum(qn, c0, c1):
    s = 0.0
    for c in range(c0, c1):
        s += qn[c]
    return s


@njit(cache=True, inline="always")
def _cosine_interval(dots, col, qn, pnorm, row, c0, c1, kappa):
    lower = 0.0
    upper = 0.0
    for c in range(c0, c1):
        p = qn[c] * pnorm[row, c]
        if p < TINY:
            upper += 2.0  # a cosine distance lies in [0, 2]
        else:
            a = 1.0 - np.float64(dots[c - c0, col]) / math.sqrt(p)
            lower += a - kappa
            upper += a + kappa
    return lower, upper


@njit(cache=True, inline="always")
def _upper(dist, dots, col, qn, pnorm, pn, row, c0, c1, sx, kappa, delta):
    if dist == L2:
        return sx * (1.0 + kappa) + TINY + pn[row] * (1.0 + kappa) - 2.0 * np.float64(dots[0, col])
    if dist == L1:
        return np.float64(dots[0, col]) / (1.0 - delta) + TINY
    return _cosine_interval(dots, col, qn, pnorm, row, c0, c1, kappa)[1]


@njit(cache=True, inline="always")
def _lower(dist, dots, col, qn, pnorm, pn, row, c0, c1, sx, kappa, delta):
    if dist == L2:
        return sx * (1.0 - kappa) - TINY + pn[row] * (1.0 - kappa) - 2.0 * np.float64(dots[0, col])
    if dist == L1:
        return np.float64(dots[0, col]) / (1.0 + delta) - TINY
    return _cosine_interval(dots, col, qn, pnorm, row, c0, c1, kappa)[0]


@njit(cache=True, fastmath={"reassoc", "contract", "nnan", "nsz"})
def _min_upper(dist, dots, off, n, qn, pnorm, pn, start, c0, c1, kappa, delta):
    """The smallest upper bound over rows start..start+n-1 (their dots at off..off+n-1)."""
    best = 1.0e308
    sx = _channel_sum(qn, c0, c1)
    if dist == L2:
        row = dots[0]
        scale = 1.0 + kappa
        for r in range(n):
            best = min(best, pn[start + r] * scale - 2.0 * np.float64(row[off + r]))
        return best + sx * scale + TINY
    if dist == L1:
        row = dots[0]
        for r in range(n):
            best = min(best, np.float64(row[off + r]))
        return best / (1.0 - delta) + TINY
    for r in range(n):
        best = min(best, _cosine_interval(dots, off + r, qn, pnorm, start + r, c0, c1, kappa)[1])
    return best


@njit(cache=True)
def train_block(
    X,
    y,
    bank,
    dots,
    row_off,
    row_len,
    xnorm,
    pool,
    pool_norm,
    pool_sum,
    pool_gidx,
    bank_start,
    bank_count,
    hits,
    birth_label,
    assoc,
    row_of,
    dirty,
    dist,
    threshold,
    plasticity,
    eta,
    beta,
    n_max,
    n_expected,
    n_channels,
    n_pixels,
    kappa,
    delta,
    tau_state,
    counters,
):
    """Present the samples X[j] (label y[j], memory bank bank[j]) one after the other.

    dots[:, row_off[j] + r] approximates the distance of X[j] to pool row bank_start[bank[j]] + r
    (r < row_len[j]) as the memories stood before the block; pool_sum is pool_norm summed over
    channels, also from before the block. Rows born or changed inside the block are listed as
    dirty, recomputed exactly, and poisoned in the later samples' dots, so each sample sees the
    memories exactly as the samples before it left them. The caller guarantees room in the pool
    and in the per-neuron arrays.
    """
    n_block = X.shape[0]
    n_buf = dots.shape[0]
    poison = poison_value(dist)
    next_same = np.full(n_block, -1, np.int64)  # the next sample of the same bank in the block
    last = np.full(bank_start.shape[0], -1, np.int64)
    for j in range(n_block - 1, -1, -1):
        next_same[j] = last[bank[j]]
        last[bank[j]] = j
    dirty_rows = np.empty(n_block, np.int64)
    n_dirty = 0
    tau = tau_state[0]
    n_born = counters[0]
    n_seen = counters[1]
    use_assoc = assoc.shape[0] > 0
    for j in range(n_block):
        x = X[j]
        qn = xnorm[j]
        k = bank[j]
        start = bank_start[k]
        n_k = bank_count[k]
        winner = -1
        d_win = np.inf
        if n_k > 0 and not (threshold == NO_THRESHOLD and n_born < n_max):
            for t in range(n_dirty):  # rows changed inside this block: exactly
                r = dirty_rows[t] - start
                if 0 <= r < n_k:
                    e = exact_distance(x, pool[start + r], 0, n_channels, n_pixels, dist)
                    if e < d_win or (e == d_win and r < winner):
                        d_win = e
                        winner = r
            off = row_off[j]
            n_rows = row_len[j]
            if n_rows > 0:
                limit = _min_upper(
                    dist,
                    dots,
                    off,
                    n_rows,
                    qn,
                    pool_norm,
                    pool_sum,
                    start,
                    0,
                    n_channels,
                    kappa,
                    delta,
                )
                limit = min(limit, d_win)
                sx = _channel_sum(qn, 0, n_channels)
                for r in range(n_rows):
                    lo = _lower(
                        dist,
                        dots,
                        off + r,
                        qn,
                        pool_norm,
                        pool_sum,
                        start + r,
                        0,
                        n_channels,
                        sx,
                        kappa,
                        delta,
                    )
                    if lo <= limit:
                        e = exact_distance(x, pool[start + r], 0, n_channels, n_pixels, dist)
                        if e < d_win or (e == d_win and r < winner):
                            d_win = e
                            winner = r
        novel = winner < 0 or threshold == NO_THRESHOLD or d_win > tau
        row = -1
        if novel and n_born < n_max:
            row = start + n_k
            pool[row, :] = x
            g = n_born
            pool_gidx[row] = g
            row_of[g] = row
            birth_label[g] = y[j]
            hits[g] = 1
            if use_assoc:
                assoc[g, :] = 0
                assoc[g, y[j]] = 1
            bank_count[k] = n_k + 1
            n_born += 1
        elif winner >= 0:
            g = pool_gidx[start + winner]
            hits[g] += 1
            if use_assoc:
                assoc[g, y[j]] += 1
            if plasticity != NO_PLASTICITY:
                row = start + winner
                if plasticity == MEAN:
                    rate = np.float32(1.0) / np.float32(hits[g])
                else:
                    rate = eta
                m = pool[row]
                for i in range(m.shape[0]):
                    m[i] = m[i] + rate * (x[i] - m[i])
                if dirty[row] == 0:  # later samples must not trust their dots for this row
                    later = next_same[j]
                    while later >= 0:
                        if winner < row_len[later]:
                            for b in range(n_buf):
                                dots[b, row_off[later] + winner] = poison
                        later = next_same[later]
        # else: no neuron of this class and no room left; the sample leaves no trace
        if row >= 0:
            _channel_sq_norms(pool[row], n_channels, n_pixels, pool_norm[row])
            if dirty[row] == 0:
                dirty[row] = 1
                dirty_rows[n_dirty] = row
                n_dirty += 1
        n_seen += 1
        if threshold == ADAPTIVE:
            if n_born * n_expected > n_max * n_seen:
                tau = tau * (1.0 + beta)
            else:
                tau = tau * (1.0 - beta)
    for t in range(n_dirty):
        dirty[dirty_rows[t]] = 0
    tau_state[0] = tau
    counters[0] = n_born
    counters[1] = n_seen


@njit(cache=True, inline="always")
def _insert(vals, ids, v, g):
    """Insert (v, g) into the ascending lists vals/ids (kept at their length), by (v, g)."""
    n = vals.shape[0]
    pos = n - 1
    if v > vals[pos] or (v == vals[pos] and g >= ids[pos]):
        return
    while pos > 0 and (v < vals[pos - 1] or (v == vals[pos - 1] and g < ids[pos - 1])):
        vals[pos] = vals[pos - 1]
        ids[pos] = ids[pos - 1]
        pos -= 1
    vals[pos] = v
    ids[pos] = g


@njit(cache=True, parallel=True)
def query_topk(
    Xq,
    qnorm,
    dots,
    bank_off,
    bank_n,
    bank_start,
    pool,
    pool_norm,
    pool_sum,
    pool_gidx,
    dist,
    c0,
    c1,
    n_pixels,
    kappa,
    delta,
    out_gidx,
    out_dist,
):
    """The k = out_gidx.shape[1] nearest neurons of each query by exact distance (ties: lowest id).

    Bank b's approximations for query i lie at dots[:, bank_off[b] + i * bank_n[b] + r]; pool_sum
    is pool_norm summed over channels c0..c1-1.
    """
    k = out_gidx.shape[1]
    n_banks = bank_n.shape[0]
    for i in prange(Xq.shape[0]):
        qn = qnorm[i]
        sx = _channel_sum(qn, c0, c1)
        if k == 1:
            limit = np.inf
            for b in range(n_banks):
                up = _min_upper(
                    dist,
                    dots,
                    bank_off[b] + i * bank_n[b],
                    bank_n[b],
                    qn,
                    pool_norm,
                    pool_sum,
                    bank_start[b],
                    c0,
                    c1,
                    kappa,
                    delta,
                )
                limit = min(limit, up)
        else:
            ub = np.full(k, np.inf)
            ub_id = np.zeros(k, np.int64)
            for b in range(n_banks):
                base = bank_off[b] + i * bank_n[b]
                for r in range(bank_n[b]):
                    up = _upper(
                        dist,
                        dots,
                        base + r,
                        qn,
                        pool_norm,
                        pool_sum,
                        bank_start[b] + r,
                        c0,
                        c1,
                        sx,
                        kappa,
                        delta,
                    )
                    if up < ub[k - 1]:
                        _insert(ub, ub_id, up, 0)
            limit = ub[k - 1]
        best = np.full(k, np.inf)
        best_id = np.full(k, np.iinfo(np.int64).max)
        for b in range(n_banks):
            base = bank_off[b] + i * bank_n[b]
            for r in range(bank_n[b]):
                row = bank_start[b] + r
                lo = _lower(
                    dist, dots, base + r, qn, pool_norm, pool_sum, row, c0, c1, sx, kappa, delta
                )
                if lo <= limit:
                    e = exact_distance(Xq[i], pool[row], c0, c1, n_pixels, dist)
                    _insert(best, best_id, e, pool_gidx[row])
        out_gidx[i, :] = best_id
        out_dist[i, :] = best
