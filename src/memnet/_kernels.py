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
# qn: the sample's squared channel norms; pnorm: (rows, C) the neurons'; pn: pnorm summed over
# the channels in use (l2). A dots entry set to POISON (sign: see poison_value) gives a huge
# upper and lower bound: the neuron is ignored by the filter (used for neurons already handled).

POISON = 3.0e38
BIG = 1.0e308  # a finite "infinity" for the scans, compiled to assume no inf


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
def _push(values, v):
    """Insert v into the ascending array values, dropping its largest entry."""
    pos = values.shape[0] - 1
    while pos > 0 and v < values[pos - 1]:
        values[pos] = values[pos - 1]
        pos -= 1
    values[pos] = v


@njit(cache=True, fastmath=SCAN)
def _smallest_uppers(dist, dots, off, n, qn, pnorm, pn, start, c0, c1, kappa, delta, ub):
    """Merge the upper bounds of rows start..start+n-1 (dots at off..) into ub, the k smallest
    so far (ascending; start it at BIG, not inf)."""
    k = ub.shape[0]
    sx = _channel_sum(qn, c0, c1)
    if dist == L2:
        row = dots[0]
        scale = 1.0 + kappa
        base = sx * scale + TINY
        if k == 1:
            best = BIG
            for r in range(n):
                best = min(best, pn[start + r] * scale - 2.0 * np.float64(row[off + r]))
            ub[0] = min(ub[0], best + base)
            return
        for r in range(n):
            v = base + pn[start + r] * scale - 2.0 * np.float64(row[off + r])
            if v < ub[k - 1]:
                _push(ub, v)
        return
    if dist == L1:
        row = dots[0]
        scale = 1.0 / (1.0 - delta)
        if k == 1:
            best = BIG
            for r in range(n):
                best = min(best, np.float64(row[off + r]))
            ub[0] = min(ub[0], best * scale + TINY)
            return
        for r in range(n):
            v = np.float64(row[off + r]) * scale + TINY
            if v < ub[k - 1]:
                _push(ub, v)
        return
    for r in range(n):
        v = _cosine_interval(dots, off + r, qn, pnorm, start + r, c0, c1, kappa)[1]
        if v < ub[k - 1]:
            _push(ub, v)


@njit(cache=True, fastmath=SCAN)
def _collect(dist, dots, off, n, qn, pnorm, pn, start, c0, c1, kappa, delta, limit, out):
    """Write to out the r < n whose lower bound is <= limit; return how many."""
    sx = _channel_sum(qn, c0, c1)
    count = 0
    if dist == L2:
        row = dots[0]
        scale = 1.0 - kappa
        bar = limit - sx * scale + TINY
        for r in range(n):
            if pn[start + r] * scale - 2.0 * np.float64(row[off + r]) <= bar:
                out[count] = r
                count += 1
    elif dist == L1:
        row = dots[0]
        bar = (limit + TINY) * (1.0 + delta)
        for r in range(n):
            if np.float64(row[off + r]) <= bar:
                out[count] = r
                count += 1
    else:
        for r in range(n):
            lo, up = _cosine_interval(dots, off + r, qn, pnorm, start + r, c0, c1, kappa)
            if lo <= limit:
                out[count] = r
                count += 1
    return count


@njit(cache=True, nogil=True)
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
    stats,
):
    """Present the samples X[j] (label y[j], memory bank bank[j]) one after the other.

    dots[:, row_off[j] + r] approximates the distance of X[j] to pool row bank_start[bank[j]] + r
    (r < row_len[j]) as the memories stood before the block; pool_sum is pool_norm summed over
    channels, also from before the block. Rows born or changed inside the block are listed as
    dirty, recomputed exactly, and poisoned in the later samples' dots, so each sample sees the
    memories exactly as the samples before it left them. The caller guarantees room in the pool
    and in the per-neuron arrays. stats[0] counts exact distances (dirty rows), stats[1] exact
    distances of rows that passed the filter.
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
    candidates = np.empty(row_len.max() if n_block > 0 else 0, np.int64)
    upper = np.empty(1)
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
            off = row_off[j]
            n_rows = row_len[j]
            limit = np.inf  # an upper bound of the winning distance
            if n_rows > 0:
                upper[0] = BIG
                _smallest_uppers(
                    dist, dots, off, n_rows, qn, pool_norm, pool_sum, start, 0, n_channels,
                    kappa, delta, upper,
                )  # fmt: skip
                limit = upper[0]
            for t in range(n_dirty):  # rows changed inside this block: exactly
                r = dirty_rows[t] - start
                if r < 0 or r >= n_k:
                    continue
                stats[0] += 1
                e = exact_distance(
                    x, pool[start + r], 0, n_channels, n_pixels, dist, min(limit, d_win)
                )
                if e < d_win or (e == d_win and r < winner):
                    d_win = e
                    winner = r
            if n_rows > 0:
                limit = min(limit, d_win)
                n_cand = _collect(
                    dist, dots, off, n_rows, qn, pool_norm, pool_sum, start, 0, n_channels,
                    kappa, delta, limit, candidates,
                )  # fmt: skip
                for t in range(n_cand):
                    r = candidates[t]
                    stats[1] += 1
                    e = exact_distance(
                        x, pool[start + r], 0, n_channels, n_pixels, dist, min(limit, d_win)
                    )
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


@njit(cache=True, nogil=True)
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
    out_exact,
):
    """The k = out_gidx.shape[1] nearest neurons of each query by exact distance (ties: lowest id).

    Bank b's approximations for query i lie at dots[:, bank_off[b] + i * bank_n[b] + r]; pool_sum
    is pool_norm summed over channels c0..c1-1. out_exact[i] counts the exact distances taken.
    """
    k = out_gidx.shape[1]
    n_banks = bank_n.shape[0]
    for i in range(Xq.shape[0]):
        qn = qnorm[i]
        ub = np.full(k, BIG)
        for b in range(n_banks):
            _smallest_uppers(
                dist, dots, bank_off[b] + i * bank_n[b], bank_n[b], qn, pool_norm, pool_sum,
                bank_start[b], c0, c1, kappa, delta, ub,
            )  # fmt: skip
        limit = ub[k - 1]
        best = np.full(k, np.inf)
        best_id = np.full(k, np.iinfo(np.int64).max)
        candidates = np.empty(bank_n.max(), np.int64)
        for b in range(n_banks):
            n_cand = _collect(
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
                limit,
                candidates,
            )
            for t in range(n_cand):
                row = bank_start[b] + candidates[t]
                e = exact_distance(
                    Xq[i], pool[row], c0, c1, n_pixels, dist, min(limit, best[k - 1])
                )
                _insert(best, best_id, e, pool_gidx[row])
            out_exact[i] += n_cand
        out_gidx[i, :] = best_id
        out_dist[i, :] = best
