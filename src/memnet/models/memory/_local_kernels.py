"""Numba kernels of the locally connected Memory Network (memnet.local; our extension).

One call trains every class bank of one location, or scores one chunk of queries at one
location; locations are independent tasks (memnet.local runs them on worker threads, each
kernel releases the GIL and calls a single-threaded BLAS).

Every decision (winner, birth, nearest memories) is taken on the *exact* distance: a float64
sum of float64 differences of the float32 values, as in memnet.reference_local. For l2, float32
BLAS products (the expansion |x|^2 + |m|^2 - 2 x.m) only filter: each approximation ``a``
holds the exact distance within kappa * (|x|^2 + |m|^2) (float32 error bounds of a sum of
P products, doubled), so only the memories whose interval can reach the best one are computed
exactly. l1 computes every distance exactly (no filter). Training works in blocks of samples of
one class: one product against the bank as it stood before the block, and the row a sample
changes (or gives birth to) has its approximations to the rest of the block recomputed, so
every sample sees the memories exactly as the samples before it left them.
Results do not depend on BLAS, block size or thread count. Memory updates are float32 without
contraction (m + rate * (x - m), rate = float32(1) / float32(hits)), as in MemoryNetwork.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from memnet.models._simd import fmax, prefetch

L2, L1 = 0, 1
ADAPTIVE, FIXED, NO_THRESHOLD = 0, 1, 2
MEAN, CONSTANT, NO_PLASTICITY = 0, 1, 2

TINY = 1e-30
UNIT_ROUNDOFF_F32 = 2.0**-24
BIG = 1.0e308
FAST = {"reassoc", "contract"}  # exact sums may be reordered (vectorised); float64 throughout
SCAN = {"reassoc", "contract", "nnan", "ninf", "nsz"}  # and max-reductions (no NaN or inf here)
BLOCK_MIN, BLOCK_MAX, BLOCK_DIVISOR = 32, 256, 16  # training block: clip(bank / 16, 32, 256)


def kappa_l2(n_terms: int) -> float:
    """Filter bound: |a - d| <= kappa * (|x|^2 + |m|^2) for float32 dots of ``n_terms`` terms;
    and the gap g = fl(dot - fl(|m|^2 / 2)) is within kappa / 2 (|x|^2 + |m|^2) of x.m -
    |m|^2 / 2 (gamma_n + 4u, doubled)."""
    u = UNIT_ROUNDOFF_F32
    gamma = n_terms * u / (1.0 - n_terms * u)
    return 2.0 * (gamma + 8.0 * u)


@njit(cache=True, fastmath=FAST)
def exact_distance(x, m, dist, limit):
    """Exact float64 distance of float32 rows x and m; inf once the sum passes ``limit``
    (checked only at the end, so a finished sum never depends on ``limit``)."""
    total = 0.0
    if dist == L1:
        for i in range(x.shape[0]):
            total += abs(np.float64(x[i]) - np.float64(m[i]))
    else:
        for i in range(x.shape[0]):
            d = np.float64(x[i]) - np.float64(m[i])
            total += d * d
    if total > limit:
        return np.inf
    return total


@njit(cache=True, fastmath=FAST)
def sq_norm(x):
    s = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        s += v * v
    return s


@njit(cache=True, fastmath=FAST)
def _dot32(a, b):
    """float32 dot of two rows (any order of the sums: it only feeds the filter)."""
    total = np.float32(0.0)
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


@njit(cache=True)
def _update(m, x, rate):
    """m += rate * (x - m) in float32, no contraction (the reference's numpy arithmetic)."""
    for i in range(m.shape[0]):
        m[i] = m[i] + rate * (x[i] - m[i])


@njit(cache=True, nogil=True)
def extract(X, idx, r0, c0, p, out):
    """out[t] = the p x p patch (all channels, channel-major) of image X[idx[t]] at (r0, c0)."""
    n_ch = X.shape[1]
    for t in range(idx.shape[0]):
        img = X[idx[t]]
        f = 0
        for ch in range(n_ch):
            for i in range(p):
                for j in range(p):
                    out[t, f] = img[ch, r0 + i, c0 + j]
                    f += 1


@njit(cache=True)
def _prefetch_patches(X, idx, r0, c0, p):
    """Prefetch the lines of the patches extract will read next (images in random order)."""
    n_ch, h, w = X.shape[1], X.shape[2], X.shape[3]
    for t in range(idx.shape[0]):
        for ch in range(n_ch):
            base = ((idx[t] * n_ch + ch) * h + r0) * w + c0
            for i in range(p):
                prefetch(X, base + i * w)
                prefetch(X, base + i * w + p - 1)


@njit(cache=True, nogil=True)
def pixel_sums(Xp, s1, s2):
    """s1, s2 (C, H, W) += the float64 sums over the images of each pixel and its square."""
    for t in range(Xp.shape[0]):
        for ch in range(Xp.shape[1]):
            for i in range(Xp.shape[2]):
                for j in range(Xp.shape[3]):
                    v = np.float64(Xp[t, ch, i, j])
                    s1[ch, i, j] += v
                    s2[ch, i, j] += v * v


CHUNK = 64  # rows per chunk of the candidates' scan
GROUP = 16  # rows per group when a chunk is listed (one packed maximum each)
QUERY_BLOCK = 256  # queries per product at inference (its dots stay in cache)


@njit(cache=True, inline="always")
def _set_gap_terms(pn, r, c, half, slack):
    """half[r] = float32(pn[r] / 2) and slack[r] = float32(4 c pn[r]) for _near_rows."""
    half[r] = np.float32(0.5 * pn[r])
    slack[r] = np.float32(4.0 * c * pn[r])


@njit(cache=True, fastmath=SCAN)
def _near_rows(row, half, slack, pn, n, c, xn, out, chunk_max):
    """The rows r < n that may be the nearest (l2): out[:count], returned count.

    With G_r = x.m_r - |m_r|^2 / 2 the exact distance is |x|^2 - 2 G_r, and the float32 gap
    g_r = fl(row[r] - half[r]) (row: the float32 dot, half: float32(pn[r] / 2), pn: the
    squared norms) is within e_r = c (|x|^2 + pn[r]) of G_r, c = gamma_P + 8u. A row r can only
    tie or beat the row b of the largest gap if g_r + e_r >= g_b - e_b.

    One vectorised pass takes, per chunk of CHUNK rows, the largest g_r (chunk_max[0]) and the
    largest g_r + slack[r] (chunk_max[1]; slack[r] = float32(4 c pn[r])). Only the chunks with
    some g_r + slack[r] >= F = g_b - 4 c (|x|^2 + P) - 4 c |x|^2 are listed row by row (GROUP rows
    at a time, skipped when their packed maximum is under F), where P >= pn[b] is the smaller
    of two bounds on the best row's norm: the largest norm of its chunk, and (|x| + |x - m_b|)^2
    with |x - m_b|^2 <= |x|^2 - 2 g_b + 2 e_b solved for pn[b]. With these slacks four times the
    bound, rounding cannot drop a row the final test keeps. That test (float64) keeps those
    with g_r + 2 e_r >= g_b - 2 e_b (the slack doubled for safety), b the first row of the
    largest gap. Rows come out in ascending order; chunk_max: (2, n / CHUNK + 1).
    """
    n_chunks = (n + CHUNK - 1) // CHUNK
    n_full = n // CHUNK
    gmax = np.float32(-3.0e38)
    for k in range(n_full):
        base = k * CHUNK
        best = np.float32(-3.0e38)
        best_slack = np.float32(-3.0e38)
        for t in range(CHUNK):  # a fixed trip count: unrolled into packed maxima
            g = row[base + t] - half[base + t]
            best = fmax(best, g)
            best_slack = fmax(best_slack, g + slack[base + t])
        chunk_max[0, k] = best
        chunk_max[1, k] = best_slack
        gmax = fmax(gmax, best)
    if n_chunks > n_full:
        best = np.float32(-3.0e38)
        best_slack = np.float32(-3.0e38)
        for r in range(n_full * CHUNK, n):
            g = row[r] - half[r]
            best = fmax(best, g)
            best_slack = fmax(best_slack, g + slack[r])
        chunk_max[0, n_full] = best
        chunk_max[1, n_full] = best_slack
        gmax = fmax(gmax, best)
    k_b = 0  # the first chunk that holds the largest gap
    for k in range(n_chunks):
        if chunk_max[0, k] == gmax:
            k_b = k
            break
    p_chunk = 0.0
    for r in range(k_b * CHUNK, min((k_b + 1) * CHUNK, n)):
        p_chunk = max(p_chunk, pn[r])
    d = max(0.0, xn - 2.0 * np.float64(gmax) + 2.0 * c * xn)
    root = (math.sqrt(xn) + math.sqrt(d)) / (1.0 - math.sqrt(2.0 * c))
    pn_b = min(p_chunk, root * root * (1.0 + 1e-9) + TINY)
    floor = np.float32(np.float64(gmax) - 4.0 * c * (xn + pn_b) - 4.0 * c * xn - 4.0 * TINY)
    count = 0
    for k in range(n_chunks):
        if chunk_max[1, k] >= floor:
            for r0 in range(k * CHUNK, min((k + 1) * CHUNK, n), GROUP):
                r1 = min(r0 + GROUP, n)
                if r1 - r0 == GROUP:
                    top = np.float32(-3.0e38)
                    for t in range(GROUP):
                        top = fmax(top, (row[r0 + t] - half[r0 + t]) + slack[r0 + t])
                    if top < floor:
                        continue
                for r in range(r0, r1):
                    if (row[r] - half[r]) + slack[r] >= floor:
                        out[count] = r
                        count += 1
    if count > 1:  # keep those with g_r + 2 e_r >= g_b - 2 e_b (float64)
        best_row = out[0]
        for t in range(1, count):
            if row[out[t]] - half[out[t]] > row[best_row] - half[best_row]:
                best_row = out[t]
        limit = (
            np.float64(row[best_row] - half[best_row]) - 2.0 * c * (xn + pn[best_row]) - 4.0 * TINY
        )
        kept = 0
        for t in range(count):
            r = out[t]
            if np.float64(row[r] - half[r]) + 2.0 * c * (xn + pn[r]) >= limit:
                out[kept] = r
                kept += 1
        count = kept
    return count


@njit(cache=True, inline="always")
def _nearest(x, xn, dots_row, half, slack, pn, c, mem, n, dist, filtered, cand, chunk_max):
    """(row, exact distance, exact distances taken) of the nearest of mem[:n] to x; ties: the
    lowest row (see _near_rows for the filter)."""
    winner = -1
    d_win = np.inf
    n_exact = 0
    if filtered:
        count = _near_rows(dots_row, half, slack, pn, n, c, xn, cand, chunk_max)
        for t in range(count):
            r = cand[t]
            e = exact_distance(x, mem[r], dist, d_win)
            n_exact += 1
            if e < d_win:
                d_win = e
                winner = r
    else:
        for r in range(n):
            e = exact_distance(x, mem[r], dist, d_win)
            if e < d_win:
                d_win = e
                winner = r
        n_exact = n
    return winner, d_win, n_exact


@njit(cache=True, nogil=True)
def train_location(
    X, order, class_start, r0, c0, p, mem, norm, hits, count, seen, tau,
    t_num, t_den, budget, dist, threshold, plasticity, eta, beta, kappa, stats,
):  # fmt: skip
    """Present to the banks of one location the samples X[order[class_start[c]:class_start[c +
    1]]] of each class c, in that order (each bank sees only its class, so classes may go one
    after the other).

    mem (K, cap, P) float32, norm (K, cap) float64 squared norms, hits (K, cap), count, seen
    (K,) int64 and tau (K,) float64 are the banks' state, updated in place; cap >= the most
    neurons a bank may reach. Adaptive threshold of bank c: after each of its samples, tau[c]
    *= 1 + beta if count[c] * t_num[c] > budget * t_den * seen[c] (births / seen > budget /
    T_c, T_c = t_num[c] / t_den), else *= 1 - beta. stats[0] += pairs compared, stats[1] +=
    exact distances taken.
    """
    n_classes = mem.shape[0]
    n_feat = mem.shape[2]
    cap = mem.shape[1]
    filtered = dist == L2
    xb = np.empty((BLOCK_MAX, n_feat), np.float32)
    prod = np.empty(BLOCK_MAX * cap, np.float32)
    xn = np.empty(BLOCK_MAX)
    half = np.empty(cap, np.float32)
    slack = np.empty(cap, np.float32)
    cand = np.empty(cap, np.int64)
    chunk_max = np.empty((2, cap // CHUNK + 1), np.float32)
    cf = 0.5 * kappa
    n_pairs = 0
    n_exact = 0
    for c in range(n_classes):
        s = class_start[c]
        end = class_start[c + 1]
        bank = mem[c]
        while s < end:
            n0 = count[c]
            size = min(BLOCK_MAX, max(BLOCK_MIN, n0 // BLOCK_DIVISOR), end - s)
            extract(X, order[s : s + size], r0, c0, p, xb)
            _prefetch_patches(X, order[s + size : min(s + 2 * size, end)], r0, c0, p)
            for j in range(size):
                xn[j] = sq_norm(xb[j])
            for r in range(n0):
                _set_gap_terms(norm[c], r, cf, half, slack)
            # One product against the bank's first n0 + size rows: the columns of rows not born
            # yet are garbage until a birth's refresh writes them, before any sample reads them.
            width = min(n0 + size, cap)
            dots = prod[: size * width].reshape((size, width))
            if filtered and n0 > 0:
                np.dot(xb[:size], bank[:width].T, dots)
            for j in range(size):
                x = xb[j]
                n = count[c]
                winner = -1
                d_win = np.inf
                if n > 0 and not (threshold == NO_THRESHOLD and n < budget):
                    winner, d_win, e = _nearest(
                        x,
                        xn[j],
                        dots[j],
                        half,
                        slack,
                        norm[c],
                        cf,
                        bank,
                        n,
                        dist,
                        filtered,
                        cand,
                        chunk_max,
                    )
                    n_pairs += n
                    n_exact += e
                novel = winner < 0 or threshold == NO_THRESHOLD or d_win > tau[c]
                row = -1
                if novel and n < budget:
                    row = n
                    bank[row, :] = x
                    hits[c, row] = 1
                    count[c] = n + 1
                elif winner >= 0:
                    row = winner
                    hits[c, row] += 1
                    if plasticity != NO_PLASTICITY:
                        if plasticity == MEAN:
                            rate = np.float32(1.0) / np.float32(hits[c, row])
                        else:
                            rate = np.float32(eta)
                        _update(bank[row], x, rate)
                    else:
                        row = -1  # unchanged: nothing to refresh
                if row >= 0:
                    norm[c, row] = sq_norm(bank[row])
                    _set_gap_terms(norm[c], row, cf, half, slack)
                    if filtered and j + 1 < size:
                        for i in range(j + 1, size):
                            dots[i, row] = _dot32(xb[i], bank[row])
                seen[c] += 1
                if threshold == ADAPTIVE:
                    if count[c] * t_num[c] > budget * t_den * seen[c]:
                        tau[c] = tau[c] * (1.0 + beta)
                    else:
                        tau[c] = tau[c] * (1.0 - beta)
            s += size
    stats[0] += n_pairs
    stats[1] += n_exact


@njit(cache=True, inline="always")
def _insert(vals, ids, v, r):
    """Insert (v, r) into the ascending lists vals/ids, kept at their length, by (v, r)."""
    n = vals.shape[0]
    pos = n - 1
    if v > vals[pos] or (v == vals[pos] and r >= ids[pos]):
        return
    while pos > 0 and (v < vals[pos - 1] or (v == vals[pos - 1] and r < ids[pos - 1])):
        vals[pos] = vals[pos - 1]
        ids[pos] = ids[pos - 1]
        pos -= 1
    vals[pos] = v
    ids[pos] = r


@njit(cache=True)
def _score_block(xq, xn, bank, pn, n, kk, dist, filtered, kappa, half, slack, prod, cand,
                 chunk_max, vals, ids, ubuf, out, each, stats):  # fmt: skip
    """out[i] = min(out[i], mean of the kk smallest exact distances of xq[i] to bank[:n]) for
    one block of queries (see score_location); where the minimum changes, each[i, u] = the
    u-th smallest of them (inf past kk); stats[1] += exact distances taken."""
    q = xq.shape[0]
    n_exact = 0
    dots = prod[: q * n].reshape((q, n))
    if filtered:
        np.dot(xq, bank[:n].T, dots)
    for i in range(q):
        x = xq[i]
        vals[:] = np.inf
        ids[:] = n
        if filtered and kk == 1:
            count_c = _near_rows(dots[i], half, slack, pn, n, 0.5 * kappa, xn[i], cand, chunk_max)
            for t in range(count_c):
                m = cand[t]
                e = exact_distance(x, bank[m], dist, vals[0])
                n_exact += 1
                if e < vals[0]:
                    vals[0] = e
        elif filtered:
            row = dots[i]
            # the kk-th smallest upper bound
            ub = ubuf[:kk]
            ub[:] = BIG
            for m in range(n):
                s = xn[i] + pn[m]
                v = s - 2.0 * np.float64(row[m]) + kappa * s + TINY
                if v < ub[kk - 1]:
                    pos = kk - 1
                    while pos > 0 and v < ub[pos - 1]:
                        ub[pos] = ub[pos - 1]
                        pos -= 1
                    ub[pos] = v
            limit = ub[kk - 1]
            for m in range(n):
                s = xn[i] + pn[m]
                lo = s - 2.0 * np.float64(row[m]) - kappa * s - TINY
                if lo <= limit and lo <= vals[kk - 1]:
                    e = exact_distance(x, bank[m], dist, vals[kk - 1])
                    n_exact += 1
                    _insert(vals[:kk], ids[:kk], e, m)
        else:
            for m in range(n):
                e = exact_distance(x, bank[m], dist, vals[kk - 1])
                n_exact += 1
                _insert(vals[:kk], ids[:kk], e, m)
        total = 0.0
        for u in range(kk):
            total += vals[u]
        mean = total / kk
        if mean < out[i]:
            out[i] = mean
            for u in range(each.shape[1]):
                each[i, u] = vals[u] if u < kk else np.inf
    stats[1] += n_exact


@njit(cache=True, nogil=True)
def score_location(X, r0, c0, p, shifts, mem, norm, count, dist, k, kappa, out, each, stats):
    """out[i, c] = min over the shifts (dr, dc) that keep the patch inside the image of the
    mean of the k smallest exact distances (fewer if the bank has fewer) between the patch of
    X[i] at (r0 + dr, c0 + dc) and bank c's memories; inf for an empty bank. each[i, c, u]
    (u < each.shape[2] <= k; shape (q, K, 0) for none): the u-th smallest of those distances,
    at the shift of the minimum (inf for fewer memories).

    The mean is the sum of the k distances in ascending order, divided by their number.
    stats[0] += (query, memory) pairs compared; stats[1] += exact distances taken.
    """
    q = X.shape[0]
    n_classes = mem.shape[0]
    cap = mem.shape[1]
    n_feat = mem.shape[2]
    h = X.shape[2]
    w = X.shape[3]
    filtered = dist == L2
    out[:, :] = np.inf
    each[:, :, :] = np.inf
    xq = np.empty((q, n_feat), np.float32)
    xn = np.empty(q)
    prod = np.empty(min(q, QUERY_BLOCK) * cap, np.float32)
    idx = np.arange(q)
    vals = np.empty(k)
    ids = np.empty(k, np.int64)
    ubuf = np.empty(k)
    half = np.empty(cap, np.float32)
    slack = np.empty(cap, np.float32)
    cand = np.empty(cap, np.int64)
    chunk_max = np.empty((2, cap // CHUNK + 1), np.float32)
    n_pairs = 0
    for t in range(shifts.shape[0]):
        r = r0 + shifts[t, 0]
        cc = c0 + shifts[t, 1]
        if r < 0 or cc < 0 or r + p > h or cc + p > w:
            continue
        extract(X, idx, r, cc, p, xq)
        for i in range(q):
            xn[i] = sq_norm(xq[i])
        for c in range(n_classes):
            n = count[c]
            if n == 0:
                continue
            bank = mem[c]
            pn = norm[c]
            n_pairs += q * n
            kk = min(k, n)
            for m in range(n):
                _set_gap_terms(pn, m, 0.5 * kappa, half, slack)
            for q0 in range(0, q, QUERY_BLOCK):  # a bank stays in cache for all the queries
                q1 = min(q0 + QUERY_BLOCK, q)
                _score_block(
                    xq[q0:q1], xn[q0:q1], bank, pn, n, kk, dist, filtered, kappa, half,
                    slack, prod, cand, chunk_max, vals, ids, ubuf, out[q0:q1, c],
                    each[q0:q1, c], stats,
                )  # fmt: skip
    stats[0] += n_pairs
