"""Numba kernels of the Memory Network's inference: the k nearest neurons of each query.

Each query's running bounds and candidates are folded block by block (scan_block), then the exact
k nearest are taken among the candidates (refine_topk); the filter, the exact distances and the
constants are those of memnet.models.memory._kernels, and so are the guarantees.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from memnet.models.memory._kernels import (
    BIG,
    L2,
    POISON,
    SCAN,
    TINY,
    UNIT_ROUNDOFF_F32,
    _channel_sum,
    _collect,
    _smallest_uppers,
    exact_distance,
)

# ---- inference: the k nearest neurons of each query ---------------------------------------------

Search = namedtuple("Search", "upper cand_row cand_low cand_n found_row found_low")
Search.__doc__ = """The search state of q queries: upper (q, k), the k smallest upper bounds seen
so far (ascending); cand_row/cand_low[i, :cand_n[i]], the pool rows whose lower bound was under
upper[i, -1] when seen, and those bounds (a superset of the final candidates: the limit only
falls; cand_n[i] = -1: the list overflowed, search all rows); found_row/found_low: scratch for
one block of rows."""

TopK = namedtuple("TopK", "gidx dist n_exact")
TopK.__doc__ = """The result: gidx, dist (q, k), the k nearest neurons by exact distance (ties:
the lowest neuron id); n_exact (q,), the exact distances taken (added to)."""


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

    With G = a - pn / 2 (a: the float32 dot, pn: the row's term), lower = sx + pn - 2a - kappa
    (sx + pn) - TINY, so a row can only have lower <= L (the best upper bound so far) if G >=
    (sx - L) / 2 - kappa (sx + pn_max) / 2 - TINY. The float32 gap g = fl(a - fl(pn / 2)) is
    within 2u (sx + pn) of G: rows with g under that floor, less twice these slacks, are out.
    Before any upper bound is known, the floor comes from the row with the largest g instead
    (lower_r <= upper_s needs G_r >= G_s - kappa (sx + pn_max) - TINY). Every row that can hold
    the new best upper bound or pass _collect is above the floor; the float64 bounds are taken
    on them. (It takes its arrays one by one: it runs once per query and block of rows.)
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


@njit(cache=True, inline="always")
def _add_candidates(s, i, row0, n, limit):
    """Append the rows row0 + s.found_row[:n] to query i's candidates; a full list first keeps
    only those still under ``limit``, and if that frees nothing it overflows (cand_n = -1)."""
    cap = s.cand_row.shape[1]
    for t in range(n):
        if s.cand_n[i] == cap:  # keep only those still under the limit
            kept = 0
            for u in range(cap):
                if s.cand_low[i, u] <= limit:
                    s.cand_row[i, kept] = s.cand_row[i, u]
                    s.cand_low[i, kept] = s.cand_low[i, u]
                    kept += 1
            s.cand_n[i] = kept
            if kept == cap:
                s.cand_n[i] = -1
                return
        s.cand_row[i, s.cand_n[i]] = row0 + s.found_row[t]
        s.cand_low[i, s.cand_n[i]] = s.found_low[t]
        s.cand_n[i] += 1


@njit(cache=True, nogil=True)
def scan_block(f, dots, qnorm, row0, n_rows, s):
    """Fold one block of approximations into each query's search state ``s`` (a Search).

    dots[:, i * n_rows + r] approximates the distance of query i (squared channel norms
    qnorm[i]) to pool row row0 + r. For l2 and k = 1 the block is passed over once in float32
    and the float64 bounds are taken only of the rows near the best (_nearest_l2).
    """
    k = s.upper.shape[1]
    fast = f.dist == L2 and k == 1
    row, half, terms = dots[0], f.half_terms, f.terms
    out, low = s.found_row, s.found_low
    pn_max = 0.0
    if fast:
        for r in range(n_rows):
            pn_max = max(pn_max, terms[row0 + r])
    for i in range(qnorm.shape[0]):
        off = i * n_rows
        if fast:
            sx = _channel_sum(qnorm[i], f.c0, f.c1)
            ub = s.upper[i]
            n = _nearest_l2(row, off, n_rows, sx, half, terms, pn_max, row0, f.kappa, ub, out, low)
            if s.cand_n[i] < 0:
                continue
            limit = s.upper[i, 0]
        else:
            _smallest_uppers(f, dots, off, n_rows, qnorm[i], row0, s.upper[i])
            if s.cand_n[i] < 0:
                continue
            limit = s.upper[i, k - 1]
            n = _collect(f, dots, off, n_rows, qnorm[i], row0, limit, out, low)
        _add_candidates(s, i, row0, n, limit)


@njit(cache=True, nogil=True)
def refine_topk(f, Xq, mem, s, out):
    """The k nearest neurons of each query Xq[i] by exact distance over channels [f.c0, f.c1)
    (ties: the lowest neuron id), into ``out`` (a TopK), among its candidates in ``s`` (all
    rows of ``mem`` (a Neurons) for a query whose candidate list overflowed)."""
    k = out.gidx.shape[1]
    for i in range(Xq.shape[0]):
        limit = s.upper[i, k - 1]
        best = np.full(k, np.inf)
        best_id = np.full(k, np.iinfo(np.int64).max)
        x = Xq[i]
        if s.cand_n[i] >= 0:
            for t in range(s.cand_n[i]):
                if s.cand_low[i, t] <= limit:
                    row = s.cand_row[i, t]
                    e = exact_distance(
                        x, mem.pool[row], f.c0, f.c1, f.n_pixels, f.dist, min(limit, best[k - 1])
                    )
                    _insert(best, best_id, e, mem.gidx[row])
                    out.n_exact[i] += 1
        else:
            for b in range(mem.start.shape[0]):
                for row in range(mem.start[b], mem.start[b] + mem.count[b]):
                    e = exact_distance(
                        x, mem.pool[row], f.c0, f.c1, f.n_pixels, f.dist, min(limit, best[k - 1])
                    )
                    _insert(best, best_id, e, mem.gidx[row])
                    out.n_exact[i] += 1
        out.gidx[i, :] = best_id
        out.dist[i, :] = best
