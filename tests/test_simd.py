"""The SIMD helpers (memnet.models._simd) and the l2 candidate scan of the local model that uses them,
against plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from memnet.models._simd import fmax, prefetch
from memnet.models.memory import _local_kernels as K


@njit
def _max_of(a):
    best = np.float32(-3.0e38)
    for i in range(a.shape[0]):
        best = fmax(best, a[i])
    return best


@njit
def _pairwise(a, b, out):
    for i in range(a.shape[0]):
        out[i] = fmax(a[i], b[i])


@njit
def _touch(a, idx):
    for i in range(idx.shape[0]):
        prefetch(a, idx[i])
    return a.sum()


def test_fmax_is_the_maximum_of_float32_values():
    rng = np.random.default_rng(0)
    for n in [1, 7, 64, 1000]:
        a = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(np.float32)
        b = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(np.float32)
        out = np.empty(n, np.float32)
        _pairwise(a, b, out)
        np.testing.assert_array_equal(out, np.maximum(a, b))
        assert _max_of(a) == a.max()


def test_prefetch_changes_nothing():
    a = np.arange(1000, dtype=np.float32)
    before = a.copy()
    assert _touch(a, np.array([0, 17, 999])) == before.sum()
    np.testing.assert_array_equal(a, before)


def kept_rows(row, half, pn, c, xn):
    """The rows the scan must return (numpy): g_r = fl32(row - half); b the first row of the
    largest g; keep r with g_r + 2 c (xn + pn_r) >= g_b - 2 c (xn + pn_b) - 4 TINY (float64)."""
    g = (row - half).astype(np.float64)
    b = int(np.argmax(g))
    limit = g[b] - 2.0 * c * (xn + pn[b]) - 4.0 * K.TINY
    return np.flatnonzero(g + 2.0 * c * (xn + pn) >= limit)


def scan(row, pn, c, xn):
    n = len(row)
    half = np.empty(n, np.float32)
    slack = np.empty(n, np.float32)
    for r in range(n):
        K._set_gap_terms(pn, r, c, half, slack)
    out = np.empty(n, np.int64)
    chunk_max = np.empty((2, n // K.CHUNK + 1), np.float32)
    count = K._near_rows(row, half, slack, pn, n, c, xn, out, chunk_max)
    return out[:count], half


def case(kind, n, rng):
    """(memories, query) of a kind the scan must handle."""
    P = 49
    if kind == "random":
        return rng.random((n, P), dtype=np.float32), rng.random(P, dtype=np.float32)
    if kind == "blank":  # a border location: a blank patch, memories of every norm down to 0
        M = rng.random((n, P), dtype=np.float32) * np.float32(10.0) ** rng.integers(-9, 0, (n, 1))
        M[rng.integers(0, n)] = 0.0
        return M.astype(np.float32), np.zeros(P, np.float32)
    if kind == "ties":  # duplicated memories: every copy of the nearest must come back
        base = rng.random((max(n // 8, 1), P), dtype=np.float32)
        return base[rng.integers(0, len(base), n)], base[0] + np.float32(1e-3)
    if kind == "near":  # near-ties of slightly different norms: rows within the bound of the best
        base = rng.random(P, dtype=np.float32)
        scale = 2.0 + 1e-4 * rng.random((n, 1))
        M = base * scale + 10.0 ** rng.uniform(-7, -4, (n, 1)) * rng.standard_normal((n, P))
        return M.astype(np.float32), rng.random(P, dtype=np.float32) * 4.0
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["random", "blank", "ties", "near"])
@pytest.mark.parametrize("n", [1, 5, 63, 64, 65, 200, 1601])
def test_candidate_scan_returns_exactly_the_rows_its_bound_keeps(kind, n):
    rng = np.random.default_rng(n)
    M, x = case(kind, n, rng)
    row = (M @ x).astype(np.float32)
    pn = (M.astype(np.float64) ** 2).sum(axis=1)
    xn = float((x.astype(np.float64) ** 2).sum())
    c = 0.5 * K.kappa_l2(M.shape[1])
    got, half = scan(row, pn, c, xn)
    np.testing.assert_array_equal(got, kept_rows(row, half, pn, c, xn))
    exact = ((M.astype(np.float64) - x.astype(np.float64)) ** 2).sum(axis=1)
    nearest = np.flatnonzero(exact == exact.min())
    assert set(nearest) <= set(got)  # the filter never drops the nearest (nor a tie of it)
    if kind == "near" and n > 64:
        assert len(got) > 1  # the case does test rows kept beside the best one


def test_scan_keeps_a_large_norm_row_alone_in_its_chunk():
    """Row 130 (the only close one of its chunk) has a gap 1.5 c pn_130 under the best: its
    own error bound keeps it, which only its slack can see (its gap is under the floor)."""
    n, xn = 200, 10.0
    c = 0.5 * K.kappa_l2(49)
    pn = np.linspace(5.0, 15.0, n)
    g = np.full(n, -100.0)
    g[5] = 5.0
    pn[130] = 1.0e4
    g[130] = 5.0 - 1.5 * c * pn[130]
    half = (0.5 * pn).astype(np.float32)
    row = (g + half).astype(np.float32)
    got, half_used = scan(row, pn, c, xn)
    np.testing.assert_array_equal(half_used, half)
    np.testing.assert_array_equal(got, [5, 130])
    np.testing.assert_array_equal(got, kept_rows(row, half, pn, c, xn))


def test_scan_bounds_the_best_rows_norm_from_its_distance():
    """|x|^2 = 100; the best row b (gap 0, norm^2 400: |x - m_b| = 10) and a small row r whose
    gap is just inside the pair's bound: listing r needs the floor to allow for b's own error,
    4 c (|x|^2 + pn_b), which only a valid bound on pn_b gives (here (|x| + |x - m_b|)^2)."""
    n, xn = 200, 100.0
    c = 0.5 * K.kappa_l2(49)
    pn = np.linspace(1.0, 2.0, n)
    g = np.full(n, -100.0)
    g[10], pn[10] = 0.0, 400.0
    g[150], pn[150] = -2.0 * c * (xn + 400.0) - 2.0 * c * (xn + 1.0) + 10.0 * c, 1.0
    half = (0.5 * pn).astype(np.float32)
    row = (g + half).astype(np.float32)
    got, _ = scan(row, pn, c, xn)
    np.testing.assert_array_equal(got, kept_rows(row, half, pn, c, xn))
    np.testing.assert_array_equal(got, [10, 150])
