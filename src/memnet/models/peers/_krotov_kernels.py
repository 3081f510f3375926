"""Kernels of Krotov & Hopfield's hidden rule (memnet.models.peers.krotov_hopfield): the ranking
of each sample's currents and the update of the units some sample ranks first or k-th.

Ranks order units by current, largest first, and a tie by unit index, smallest first (a stable
sort of the negated currents).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from memnet.models._simd import fmax


@njit(cache=True, inline="always")
def _ahead(v, u, w, t):
    """Whether unit u with current v ranks ahead of unit t with current w."""
    return v > w or (v == w and u < t)


SKIP = 32  # units a chunk: chunks whose largest current is below the k-th chunk maximum are skipped


@njit(cache=True, inline="always")
def _largest(row, start, end):
    """max(row[start:end]) in SIMD lanes (currents are never NaN)."""
    largest = row[start]
    for u in range(start + 1, end):
        largest = fmax(largest, row[u])
    return largest


@njit(cache=True, nogil=True)
def top_units(currents, lo, hi, k, ids):
    """ids[b, :k] = the k units of lo..hi-1 ranked first for sample b, in rank order
    (hi - lo >= k; currents (B, n_hidden) float32, never NaN).

    The k-th largest of the chunks' maxima is at most the k-th largest current (those maxima are
    k currents), so a chunk whose maximum is below it holds none of the k first."""
    n_chunks = (hi - lo + SKIP - 1) // SKIP
    maxima = np.empty(n_chunks, np.float32)
    best = np.empty(k, np.float32)
    vals = np.empty(k, np.float32)
    for b in range(currents.shape[0]):
        row = currents[b]
        best[:] = -np.inf
        for c in range(n_chunks):
            m = _largest(row, lo + c * SKIP, min(lo + (c + 1) * SKIP, hi))
            maxima[c] = m
            if m > best[k - 1]:
                pos = k - 1
                while pos > 0 and m > best[pos - 1]:
                    best[pos] = best[pos - 1]
                    pos -= 1
                best[pos] = m
        bound = best[k - 1]
        filled = 0
        for c in range(n_chunks):
            if maxima[c] < bound:
                continue
            for u in range(lo + c * SKIP, min(lo + (c + 1) * SKIP, hi)):
                v = row[u]
                if filled == k and v <= vals[k - 1]:  # a later unit ties behind
                    continue
                pos = filled if filled < k else k - 1
                filled = min(filled + 1, k)
                while pos > 0 and v > vals[pos - 1]:
                    vals[pos] = vals[pos - 1]
                    ids[b, pos] = ids[b, pos - 1]
                    pos -= 1
                vals[pos] = v
                ids[b, pos] = u


@njit(cache=True, nogil=True)
def first_and_kth(currents, candidates, k, first, kth):
    """first[b], kth[b]: the units ranked first and k-th for sample b among its candidates (B, c):
    the k first of every block of units, which hold the k first of all."""
    vals = np.empty(k, np.float32)
    ids = np.empty(k, np.int64)
    for b in range(currents.shape[0]):
        filled = 0
        for j in range(candidates.shape[1]):
            u = candidates[b, j]
            v = currents[b, u]
            if filled == k and not _ahead(v, u, vals[k - 1], ids[k - 1]):
                continue
            pos = filled if filled < k else k - 1
            filled = min(filled + 1, k)
            while pos > 0 and _ahead(v, u, vals[pos - 1], ids[pos - 1]):
                vals[pos] = vals[pos - 1]
                ids[pos] = ids[pos - 1]
                pos -= 1
            vals[pos] = v
            ids[pos] = u
        first[b] = ids[0]
        kth[b] = ids[k - 1]


@njit(cache=True, nogil=True)
def _unit_change(u, W, V, currents, samples, weights, lo, hi, out):
    """out = dW_u = sum_b g_bu (v_b - I_bu W_u) over unit u's samples[lo:hi], g: weights."""
    out[:] = 0.0
    drive = 0.0
    for j in range(lo, hi):
        b, g = samples[j], weights[j]
        drive += g * currents[b, u]
        for i in range(out.shape[0]):
            out[i] += g * V[b, i]
    for i in range(out.shape[0]):
        out[i] -= drive * W[u, i]


@njit(cache=True, fastmath=True, inline="always")
def _largest_abs(x):
    """max |x| (a max is exact in any order)."""
    top = 0.0
    for i in range(x.shape[0]):
        top = max(top, abs(x[i]))
    return top


@njit(cache=True, nogil=True)
def rule_update(W, V, currents, first, kth, delta, rate, precision, hit, row, dW):
    """One update of the rule, on the units hit (first or k-th for some sample) only:
    dW_u = sum_b g_bu v_b - (sum_b g_bu I_bu) W_u, with g = 1 for first, -delta for k-th;
    W_u += rate dW_u / max(max |dW|, precision). hit[:n] = the units changed, ascending; returns
    n. Scratch: row (n_hidden,) int64, dW (2 B, d) float64: the change of each unit hit, formed
    once in float64 sums, kept until the largest is known, then applied."""
    n_hidden = W.shape[0]
    B = V.shape[0]
    row[:] = 0  # samples per unit, then where each unit's samples start
    for b in range(B):
        row[first[b]] += 1
        row[kth[b]] += 1
    n = 0
    start = 0
    for u in range(n_hidden):
        count = row[u]
        row[u] = start
        start += count
        if count:
            hit[n] = u
            n += 1
    samples = np.empty(2 * B, np.int64)
    weights = np.empty(2 * B)
    fill = row.copy()
    for b in range(B):  # in sample order within each unit, as the dense sum
        for u, g in ((first[b], 1.0), (kth[b], -delta)):
            samples[fill[u]] = b
            weights[fill[u]] = g
            fill[u] += 1
    top = 0.0
    for r in range(n):
        u = hit[r]
        _unit_change(u, W, V, currents, samples, weights, row[u], fill[u], dW[r])
        top = max(top, _largest_abs(dW[r]))
    step = rate / max(top, precision)
    for r in range(n):
        u = hit[r]
        for i in range(dW.shape[1]):
            W[u, i] = np.float32(W[u, i] + step * dW[r, i])
    return n


@njit(cache=True, nogil=True)
def set_powered(W, hit, lo, hi, p, columns):
    """columns[:, u - lo] = sign(W_u) |W_u|^(p-1) for each unit u of hit in lo..hi-1: the
    transposed rows the currents multiply the inputs with (float32)."""
    units = hit[(hit >= lo) & (hit < hi)]
    exponent = np.float32(p - 1)
    for i in range(W.shape[1]):
        row = columns[i]
        for u in units:
            w = W[u, i]
            if p == 2:
                row[u - lo] = w
            elif p == 3:
                row[u - lo] = w * abs(w)
            else:
                row[u - lo] = np.float32(np.sign(w) * abs(w) ** exponent)
