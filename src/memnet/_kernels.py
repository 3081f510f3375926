"""Numba kernels of the Memory Network: exact distances, the sequential training pass, top-k search.

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
parallelism comes from independent tasks (memnet.model._Workers).
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
# qn: the sample's squared channel norms; pnorm: (rows, C) the neurons'; pn: a per-row term of
# both bounds: pnorm summed over the channels in use for l2, else 0. pn = POISON takes a row out
# of the filter (its bounds become huge).

POISON = 3.0e38
BIG = 1.0e308  # a finite "infinity" for the scans, compiled to assume no inf


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
            ub[0] = min(
                ub[0], base + _min_linear(row[off : off + n], pn[start : start + n], scale, 2.0)
            )
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
            ub[0] = min(
                ub[0], TINY + _min_linear(row[off : off + n], pn[start : start + n], 1.0, -scale)
            )
            return
        for r in range(n):
            v = np.float64(row[off + r]) * scale + TINY + pn[start + r]
            if v < ub[k - 1]:
                _push(ub, v)
        return
    for r in range(n):
        v = _cosine_interval(dots, off + r, qn, pnorm, start + r, c0, c1, kappa)[1] + pn[start + r]
        if v < ub[k - 1]:
            _push(ub, v)


@njit(cache=True, fastmath=SCAN)
def _collect(dist, dots, off, n, qn, pnorm, pn, start, c0, c1, kappa, delta, limit, out, low):
    """Write to out the r < n whose lower bound is <= limit, and to low their lower bounds;
    return how many."""
    sx = _channel_sum(qn, c0, c1)
    count = 0
    if dist == L2:
        row = dots[0]
        scale = 1.0 - kappa
        base = sx * scale - TINY
        for r in range(n):
            v = base + pn[start + r] * scale - 2.0 * np.float64(row[off + r])
            if v <= limit:
                out[count] = r
                low[count] = v
                count += 1
    elif dist == L1:
        row = dots[0]
        scale = 1.0 / (1.0 + delta)
        for r in range(n):
            v = np.float64(row[off + r]) * scale - TINY + pn[start + r]
            if v <= limit:
                out[count] = r
                low[count] = v
                count += 1
    else:
        for r in range(n):
            v = (
                _cosine_interval(dots, off + r, qn, pnorm, start + r, c0, c1, kappa)[0]
                + pn[start + r]
            )
            if v <= limit:
                out[count] = r
                low[count] = v
                count += 1
    return count


@njit(cache=True, inline="always")
def _append(rows, nxt, first, last, t, k, row):
    """Entry t (row) joins the end of bank k's list."""
    rows[t] = row
    nxt[t] = -1
    if first[k] < 0:
        first[k] = t
    else:
        nxt[last[k]] = t
    last[k] = t


@njit(cache=True, nogil=True)
def train_block(
    X, y, bank, dots, row_off, row_len, xnorm, gram, gram_off, gram_n, local,
    pool, pool_norm, pool_sum, pool_gidx, bank_start, bank_count,
    hits, birth_label, assoc, row_of, dirty,
    dist, threshold, plasticity, eta, beta, n_max, n_expected, n_channels, n_pixels,
    kappa, delta, tau_state, counters, stats,
):  # fmt: skip
    """Present the samples X[j] (label y[j], memory bank bank[j]) one after the other.

    dots[:, row_off[j] + r] approximates the distance of X[j] to pool row bank_start[bank[j]] + r
    (r < row_len[j]) as the memories stood before the block; pool_sum holds the per-row term of
    the filter from before the block; gram[gram_off[b] + local[j] * gram_n[b] + local[s]]
    approximates the distance between block samples j and s of bank b (l2, l1). Rows born or
    changed inside the block are listed as dirty and taken out of the filter (their pool_sum
    set to POISON), so each sample sees the memories exactly as the samples before it left
    them: a dirty row keeps the interval of its memory at the block's start (or of the sample
    it was born from, through gram), widened by how far it has moved since (the triangle
    inequality; a move is eta * the exact winning distance, plus float32 rounding), and is
    computed exactly only if that interval can still win. Under cosine (no triangle
    inequality) dirty rows are computed exactly.
    The caller guarantees room in the pool and in the per-neuron arrays, and a zeroed ``dirty``
    (one entry per pool row). stats[0] counts exact distances to dirty rows, stats[1] to rows
    that passed the filter.
    """
    n_block = X.shape[0]
    dirty_rows = np.empty(n_block, np.int64)
    dirty_sum = np.empty(n_block)  # pool_sum of a changed row before the block
    dirty_move = np.zeros(n_block)  # how far it may have moved (l2: euclidean, l1: l1)
    dirty_low = np.empty(n_block)
    dirty_src = np.empty(n_block, np.int64)  # born in the block: local index of its sample
    dirty_next = np.empty(n_block, np.int64)  # the bank's next dirty row (a linked list)
    first = np.full(bank_start.shape[0], -1, np.int64)
    last = np.full(bank_start.shape[0], -1, np.int64)
    n_dirty = 0
    candidates = np.empty(row_len.max() if n_block > 0 else 0, np.int64)
    candidate_low = np.empty(candidates.shape[0])
    upper = np.empty(1)
    u = UNIT_ROUNDOFF_F32
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
        n_rows = row_len[j]  # rows of this bank from before the block
        off = row_off[j]
        winner = -1
        d_win = np.inf
        if n_k > 0 and not (threshold == NO_THRESHOLD and n_born < n_max):
            limit = np.inf  # an upper bound of the winning distance
            if n_rows > 0:
                upper[0] = BIG
                _smallest_uppers(
                    dist, dots, off, n_rows, qn, pool_norm, pool_sum, start, 0, n_channels,
                    kappa, delta, upper,
                )  # fmt: skip
                limit = upper[0]
            sx = _channel_sum(qn, 0, n_channels)
            t = first[k]
            while t >= 0:  # changed rows: their widened intervals
                r = dirty_rows[t] - start
                dirty_low[t] = -np.inf  # unless bounded below: computed exactly
                if dist != COSINE and (r < n_rows or dirty_src[t] >= 0):
                    if r < n_rows:
                        a = np.float64(dots[0, off + r])
                    else:
                        a = np.float64(gram[gram_off[k] + local[j] * gram_n[k] + dirty_src[t]])
                    move = dirty_move[t]
                    if dist == L2:
                        a = sx + dirty_sum[t] - 2.0 * a
                        b = kappa * (sx + dirty_sum[t]) + TINY
                        lo = math.sqrt(max(a - b, 0.0)) - move
                        lo = lo * lo * (1.0 - 1e-12) if lo > 0.0 else 0.0
                        hi = math.sqrt(a + b) + move
                        hi = hi * hi * (1.0 + 1e-12)
                    else:
                        lo = (a / (1.0 + delta) - TINY - move) * (1.0 - 1e-12)
                        hi = (a / (1.0 - delta) + TINY + move) * (1.0 + 1e-12)
                    dirty_low[t] = lo
                    limit = min(limit, hi)
                t = dirty_next[t]
            t = first[k]
            while t >= 0:  # rows born in the block, and changed ones that may win
                r = dirty_rows[t] - start
                if dirty_low[t] <= min(limit, d_win):
                    stats[0] += 1
                    e = exact_distance(
                        x, pool[start + r], 0, n_channels, n_pixels, dist, min(limit, d_win)
                    )
                    if e < d_win or (e == d_win and r < winner):
                        d_win = e
                        winner = r
                t = dirty_next[t]
            if n_rows > 0:
                limit = min(limit, d_win)
                n_cand = _collect(
                    dist, dots, off, n_rows, qn, pool_norm, pool_sum, start, 0, n_channels,
                    kappa, delta, limit, candidates, candidate_low,
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
            _channel_sq_norms(x, n_channels, n_pixels, pool_norm[row])
            _append(dirty_rows, dirty_next, first, last, n_dirty, k, row)
            dirty_src[n_dirty] = local[j] if gram_n[k] > 1 else -1
            dirty_sum[n_dirty] = qn.sum() if dist == L2 else 0.0
            dirty_move[n_dirty] = 0.0
            dirty[row] = n_dirty + 1
            n_dirty += 1
        elif winner >= 0:
            row = start + winner
            g = pool_gidx[row]
            hits[g] += 1
            if use_assoc:
                assoc[g, y[j]] += 1
            if plasticity != NO_PLASTICITY:
                if plasticity == MEAN:
                    rate = np.float32(1.0) / np.float32(hits[g])
                else:
                    rate = eta
                m = pool[row]
                for i in range(m.shape[0]):
                    m[i] = m[i] + rate * (x[i] - m[i])
                _channel_sq_norms(m, n_channels, n_pixels, pool_norm[row])
                if dirty[row] == 0:  # the first change in this block: out of the filter
                    _append(dirty_rows, dirty_next, first, last, n_dirty, k, row)
                    dirty_src[n_dirty] = -1
                    dirty_sum[n_dirty] = pool_sum[row]
                    dirty_move[n_dirty] = 0.0
                    pool_sum[row] = POISON
                    dirty[row] = n_dirty + 1
                    n_dirty += 1
                # the move: rate * |x - m| exactly, plus the float32 rounding of the update
                # (per value <= u |m'_i| + 2.01 u rate |x_i - m_i|), doubled for safety
                norm_new = math.sqrt(_channel_sum(pool_norm[row], 0, n_channels))
                if dist == L1:
                    step = rate * d_win
                    rounding = 1.01 * u * math.sqrt(m.shape[0]) * norm_new + 2.01 * u * step
                else:
                    step = rate * math.sqrt(d_win)
                    rounding = 1.01 * u * norm_new + 2.01 * u * step
                dirty_move[dirty[row] - 1] += step + 2.0 * rounding
        # else: no neuron of this class and no room left; the sample leaves no trace
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


@njit(cache=True, fastmath=SCAN)
def _max_gap(row, half, off, start, n):
    """max over r of the float32 gap row[off + r] - half[start + r], sixteen running maxima."""
    lanes = np.full(16, np.float32(-POISON))
    end = n - n % 16
    for r0 in range(0, end, 16):
        for t in range(16):
            lanes[t] = max(lanes[t], row[off + r0 + t] - half[start + r0 + t])
    best = lanes.max()
    for r in range(end, n):
        best = max(best, row[off + r] - half[start + r])
    return best


@njit(cache=True, fastmath=SCAN)
def _nearest_l2(row, off, n, sx, half, pn, pn_max, start, kappa, ub, out, low):
    """_smallest_uppers then _collect for l2 and k = 1, on the few rows that can matter.

    With G = a - pn / 2 (a: the float32 dot), lower = sx + pn - 2a - kappa (sx + pn) - TINY,
    so a row can only have lower <= L (the best upper bound so far) if G >= (sx - L) / 2 -
    kappa (sx + pn_max) / 2 - TINY. The float32 gap g = fl(a - fl(pn / 2)) is within 2u (sx +
    pn) of G: rows with g under that floor, less twice these slacks, are out. Before any upper
    bound is known, the floor comes from the row with the largest g instead (lower_r <=
    upper_s needs G_r >= G_s - kappa (sx + pn_max) - TINY). Every row that can hold the new
    best upper bound or pass _collect is above the floor; the float64 bounds are taken on them.
    """
    slack = (kappa + 4.0 * UNIT_ROUNDOFF_F32) * (sx + pn_max) + 4.0 * TINY
    if ub[0] < BIG:
        floor = 0.5 * (sx - ub[0]) - slack
    else:
        floor = np.float64(_max_gap(row, half, off, start, n)) - 2.0 * slack
    count = 0
    for r in range(n):  # out, low: first the rows past the floor, then the candidates
        if np.float64(row[off + r] - half[start + r]) >= floor:
            out[count] = r
            count += 1
    scale = 1.0 + kappa
    base = sx * scale + TINY
    for t in range(count):
        r = out[t]
        ub[0] = min(ub[0], base + pn[start + r] * scale - 2.0 * np.float64(row[off + r]))
    limit = ub[0]
    scale = 1.0 - kappa
    base = sx * scale - TINY
    kept = 0
    for t in range(count):
        r = out[t]
        v = base + pn[start + r] * scale - 2.0 * np.float64(row[off + r])
        if v <= limit:
            out[kept] = r
            low[kept] = v
            kept += 1
    return kept


@njit(cache=True, nogil=True)
def scan_block(
    dots, qnorm, pool_norm, pool_sum, row0, n_rows, dist, c0, c1, kappa, delta,
    upper, cand_row, cand_low, cand_n, found_row, found_low, half_sum,
):  # fmt: skip
    """Fold one block of approximations into each query's search state.

    dots[:, i * n_rows + r] approximates the distance of query i to pool row row0 + r.
    upper[i] holds the k smallest upper bounds seen so far (ascending); cand_row/cand_low[i,
    :cand_n[i]] the rows whose lower bound was under upper[i, -1] when seen (a superset of the
    final candidates: the limit only falls). A full candidate list is compacted; if that frees
    nothing, cand_n[i] is set to -1 and the query is later searched exhaustively.
    half_sum: float32(pool_sum / 2), used (l2, k = 1) to pass over the block once in float32
    and take the float64 bounds only of the rows near the best (_nearest_l2).
    """
    k = upper.shape[1]
    cap = cand_row.shape[1]
    fast = dist == L2 and k == 1
    pn_max = 0.0
    if fast:
        for r in range(n_rows):
            pn_max = max(pn_max, pool_sum[row0 + r])
    for i in range(qnorm.shape[0]):
        off = i * n_rows
        if fast:
            n = _nearest_l2(
                dots[0], off, n_rows, _channel_sum(qnorm[i], c0, c1), half_sum, pool_sum,
                pn_max, row0, kappa, upper[i], found_row, found_low,
            )  # fmt: skip
            if cand_n[i] < 0:
                continue
            limit = upper[i, 0]
        else:
            _smallest_uppers(
                dist, dots, off, n_rows, qnorm[i], pool_norm, pool_sum, row0, c0, c1, kappa,
                delta, upper[i],
            )  # fmt: skip
            if cand_n[i] < 0:
                continue
            limit = upper[i, k - 1]
            n = _collect(
                dist, dots, off, n_rows, qnorm[i], pool_norm, pool_sum, row0, c0, c1, kappa,
                delta, limit, found_row, found_low,
            )  # fmt: skip
        for t in range(n):
            if cand_n[i] == cap:  # keep only those still under the limit
                kept = 0
                for u in range(cap):
                    if cand_low[i, u] <= limit:
                        cand_row[i, kept] = cand_row[i, u]
                        cand_low[i, kept] = cand_low[i, u]
                        kept += 1
                cand_n[i] = kept
                if kept == cap:
                    cand_n[i] = -1
                    break
            cand_row[i, cand_n[i]] = row0 + found_row[t]
            cand_low[i, cand_n[i]] = found_low[t]
            cand_n[i] += 1


@njit(cache=True, nogil=True)
def refine_topk(
    Xq, pool, pool_gidx, bank_start, bank_n, c0, c1, n_pixels, dist,
    upper, cand_row, cand_low, cand_n, out_gidx, out_dist, out_exact,
):  # fmt: skip
    """The k nearest neurons of each query by exact distance (ties: the lowest neuron id),
    among its candidates (all rows for a query whose candidate list overflowed)."""
    k = out_gidx.shape[1]
    for i in range(Xq.shape[0]):
        limit = upper[i, k - 1]
        best = np.full(k, np.inf)
        best_id = np.full(k, np.iinfo(np.int64).max)
        if cand_n[i] >= 0:
            for t in range(cand_n[i]):
                if cand_low[i, t] <= limit:
                    row = cand_row[i, t]
                    e = exact_distance(
                        Xq[i], pool[row], c0, c1, n_pixels, dist, min(limit, best[k - 1])
                    )
                    _insert(best, best_id, e, pool_gidx[row])
                    out_exact[i] += 1
        else:
            for b in range(bank_n.shape[0]):
                for row in range(bank_start[b], bank_start[b] + bank_n[b]):
                    e = exact_distance(
                        Xq[i], pool[row], c0, c1, n_pixels, dist, min(limit, best[k - 1])
                    )
                    _insert(best, best_id, e, pool_gidx[row])
                    out_exact[i] += 1
        out_gidx[i, :] = best_id
        out_dist[i, :] = best
