"""The fast kernels against plain numpy: exact distances, the filter's bounds, and the whole
Memory Network against memnet.reference for every combination of its choices."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from memnet.models.memory import _kernels as K
from memnet.models.memory import reference
from memnet.models.memory.network import DISTANCES, MemoryNetwork, default_tau


def numpy_distance(x, m, dist, channels):
    """Exact float64 distance over the given channels; x, m are (C, P) float32."""
    x = x[channels].astype(np.float64)
    m = m[channels].astype(np.float64)
    if dist == "l2":
        return ((x - m) ** 2).sum()
    if dist == "l1":
        return np.abs(x - m).sum()
    nx, nm = np.linalg.norm(x, axis=1), np.linalg.norm(m, axis=1)
    sim = np.where((nx > 0) & (nm > 0), (x * m).sum(axis=1) / np.maximum(nx * nm, 1e-300), 0.0)
    return (1.0 - sim).sum()


@pytest.mark.parametrize("dist", ["l2", "l1", "cosine"])
def test_exact_distance_matches_numpy_and_stops_past_its_limit(dist):
    rng = np.random.default_rng(0)
    n_channels, n_pixels = 3, 300  # 900 values: several chunks of the early-stopping sum
    x = rng.normal(size=(n_channels, n_pixels)).astype(np.float32)
    m = rng.normal(size=(n_channels, n_pixels)).astype(np.float32)
    m[1] = 0.0  # an all-zero channel: cosine distance 1 by convention
    for c0, c1 in [(0, 3), (1, 2), (2, 3)]:
        want = numpy_distance(x, m, dist, slice(c0, c1))
        got = K.exact_distance(x.ravel(), m.ravel(), c0, c1, n_pixels, DISTANCES[dist], np.inf)
        assert got == pytest.approx(want, rel=1e-12)
        capped = K.exact_distance(x.ravel(), m.ravel(), c0, c1, n_pixels, DISTANCES[dist], got)
        assert capped == got  # a limit equal to the sum: the full, identical sum
    if dist != "cosine":  # cosine has no monotone partial sums and ignores the limit
        below = K.exact_distance(x.ravel(), m.ravel(), 0, 3, n_pixels, DISTANCES[dist], 1.0)
        assert below == np.inf


def hard_rows(rng, n, n_channels, n_pixels):
    """Rows that stress float32 error bounds: big norms, near-duplicates, zeros, tiny values."""
    rows = rng.normal(size=(n, n_channels * n_pixels)).astype(np.float32)
    rows[: n // 4] *= 300.0
    rows[n // 4 : n // 2] = rows[0] + rng.normal(size=n_pixels * n_channels) * 1e-4
    rows[n // 2] = 0.0
    rows[n // 2 + 1] = 1e-20
    return rows


@pytest.mark.parametrize("dist", ["l2", "l1", "cosine"])
def test_filter_bounds_hold_and_collect_every_possible_winner(dist):
    """_smallest_uppers bounds the k smallest exact distances from above; _collect keeps every
    row whose distance may be under such a bound."""
    rng = np.random.default_rng(1)
    n_channels, n_pixels = 2, 200
    code = DISTANCES[dist]
    pool = hard_rows(rng, 80, n_channels, n_pixels)
    queries = np.concatenate([hard_rows(rng, 6, n_channels, n_pixels), pool[:4] * 1.0000001])
    pnorm = np.empty((len(pool), n_channels))
    qnorm = np.empty((len(queries), n_channels))
    K.sq_norms(pool, n_channels, n_pixels, pnorm)
    K.sq_norms(queries, n_channels, n_pixels, qnorm)
    for c0, c1 in [(0, 2), (1, 2)]:
        cols = slice(c0 * n_pixels, c1 * n_pixels)
        if dist == "l2":
            dots = (queries[:, cols] @ pool[:, cols].T)[None]
        elif dist == "cosine":
            chans = [slice(c * n_pixels, (c + 1) * n_pixels) for c in range(c0, c1)]
            dots = np.stack([queries[:, ch] @ pool[:, ch].T for ch in chans])
        else:
            dots = np.abs(queries[:, None, cols] - pool[None, :, cols]).sum(axis=2)[None]
        dots = np.ascontiguousarray(dots.reshape(len(dots), -1), dtype=np.float32)
        n_terms = (1 if dist == "cosine" else c1 - c0) * n_pixels
        kappa, delta = K.error_bounds(n_terms)
        pool_sum = pnorm[:, c0:c1].sum(axis=1) if dist == "l2" else np.zeros(len(pool))
        for i, q in enumerate(queries):
            exact = np.array(
                [numpy_distance(q.reshape(n_channels, -1), m.reshape(n_channels, -1), dist,
                                slice(c0, c1)) for m in pool]
            )  # fmt: skip
            f = K.Filter(
                code, c0, c1, n_pixels, kappa, delta, pnorm, pool_sum, np.zeros(0, np.float32)
            )
            args = (f, dots, i * len(pool), len(pool), qnorm[i], 0)
            for k in (1, 3):
                uppers = np.full(k, K.BIG)
                K._smallest_uppers(*args, uppers)
                kth = np.sort(exact)[k - 1]
                assert uppers[-1] >= kth
                found = np.empty(len(pool), np.int64)
                n = K._collect(*args, uppers[-1], found, np.empty(len(pool)))
                assert set(np.flatnonzero(exact <= kth)) <= set(found[:n])


def small_data(n_channels, n=140, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_channels, 3, 4), dtype=np.float32)
    y = rng.integers(0, 4, n)
    return X, y


COMBOS = list(itertools.product(["l2", "l1", "cosine"], ["adaptive", "fixed", "none"],
                                ["mean", "constant", "none"], ["label", "all"], [1, 3]))  # fmt: skip


@pytest.mark.parametrize(("dist", "threshold", "plasticity", "competition", "n_channels"), COMBOS)
def test_model_equals_reference(dist, threshold, plasticity, competition, n_channels):
    """Births, labels, hits, memories, tau and predictions equal the one-sample-at-a-time numpy
    reference. 140 samples span several training blocks; the budget of 45 binds for 'none'."""
    X, y = small_data(n_channels)
    tau = 0.5 * default_tau(X, dist)
    params = dict(n_neurons=45, distance=dist, threshold=threshold, plasticity=plasticity,
                  competition=competition, tau=tau, random_state=3)  # fmt: skip
    order = np.random.default_rng(3).permutation(len(X))
    flat = X.reshape(len(X), n_channels, -1)
    want = reference.fit(flat[order], y[order], n_classes=4, n_neurons=45, distance_kind=dist,
                         threshold=threshold, plasticity=plasticity, competition=competition,
                         tau=tau)  # fmt: skip
    model = MemoryNetwork(**params, k=3).fit(X, y)
    assert model.n_born_ == len(want["memories"])
    assert 5 < model.n_born_ <= 45
    np.testing.assert_array_equal(
        model.births_per_class_, np.bincount(want["birth_labels"], minlength=4)
    )
    np.testing.assert_array_equal(model.hits_, want["hits"])
    np.testing.assert_array_equal(model.labels_, reference.neuron_labels(want, competition))
    np.testing.assert_allclose(model.memories_, want["memories"], rtol=1e-6, atol=1e-7)
    assert model.tau_ == pytest.approx(want["tau"], rel=1e-12)
    if competition == "all":
        np.testing.assert_array_equal(model.assoc_, want["assoc"])
    queries = np.random.default_rng(9).random((25, n_channels, 3, 4), dtype=np.float32)
    for voting in ["channel", "joint"]:
        model.set_params(voting=voting)
        expected = reference.predict(want, queries.reshape(25, n_channels, -1), n_classes=4, k=3,
                                     voting=voting, distance_kind=dist, competition=competition)  # fmt: skip
        np.testing.assert_array_equal(model.predict(queries), expected)


def test_reference_run_absorbs_and_gives_birth():
    """The reference comparison above is only meaningful if its runs both give birth and absorb."""
    X, y = small_data(1)
    out = reference.fit(
        X.reshape(len(X), 1, -1), y, n_classes=4, n_neurons=45, tau=0.5 * default_tau(X)
    )
    assert 5 < len(out["memories"]) < len(X)
    assert out["hits"].max() > 1


@pytest.mark.parametrize("dist", ["l2", "l1", "cosine"])
def test_threshold_none_with_room_for_all_is_exactly_1nn(dist):
    """Every sample is born, and predict equals brute-force 1-NN (ties: the earlier sample)."""
    rng = np.random.default_rng(5)
    X = rng.random((300, 2, 5, 5), dtype=np.float32)
    X[150:160] = X[140:150]  # exact duplicates with other labels: ties go to the earlier one
    y = rng.integers(0, 5, 300)
    queries = np.concatenate([rng.random((60, 2, 5, 5), dtype=np.float32), X[140:150]])
    model = MemoryNetwork(n_neurons=300, threshold="none", voting="joint", distance=dist,
                          shuffle=False).fit(X, y)  # fmt: skip
    assert model.n_born_ == 300
    np.testing.assert_array_equal(model.memories_, X.reshape(300, 2, -1))
    flat_q = queries.reshape(len(queries), 2, -1)
    flat_x = X.reshape(300, 2, -1)
    d = np.array([[numpy_distance(q, x, dist, slice(0, 2)) for x in flat_x] for q in flat_q])
    np.testing.assert_array_equal(model.predict(queries), y[np.argmin(d, axis=1)])


def test_banks_move_inside_the_one_pool_of_a_fit_and_stay_exact(monkeypatch):
    """Class 0 is noise (each sample novel), classes 1-3 twelve images (absorbed): class 0's bank
    outgrows its share of the pool, whose spare rows were split by class frequency. The banks
    then move inside the one pool allocated for the pass (never a second copy of the
    memories) and the model still equals the reference."""
    from memnet.models.memory import _engine

    monkeypatch.setattr(_engine, "SPARE_ROWS", 64)  # so blocks of 128 must be cut
    monkeypatch.setattr(_engine, "BLOCK_MIN", 128)
    calls = {"_repack": 0, "_move_banks": 0}
    for name in calls:
        original = getattr(_engine.Memory, name)

        def counted(self, *args, _original=original, _name=name):
            calls[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(_engine.Memory, name, counted)
    rng = np.random.default_rng(11)
    y = rng.integers(0, 4, 800)
    templates = rng.random((4, 12, 1, 3, 4))  # classes 1-3: twelve images each, and noise
    X = np.where((y == 0)[:, None, None, None], rng.random((800, 1, 3, 4)),
                 templates[y, rng.integers(0, 12, 800)])  # fmt: skip
    X = (X + 0.001 * rng.random(X.shape)).astype(np.float32)
    tau = 0.05 * default_tau(X)
    order = np.random.default_rng(4).permutation(len(X))
    want = reference.fit(X.reshape(800, 1, -1)[order], y[order], n_classes=4, n_neurons=150,
                         threshold="fixed", tau=tau)  # fmt: skip
    model = MemoryNetwork(n_neurons=150, threshold="fixed", tau=tau, random_state=4).fit(X, y)
    assert calls == {"_repack": 1, "_move_banks": calls["_move_banks"]} and calls["_move_banks"] > 0
    assert model.n_born_ == len(want["memories"]) == 150
    assert model.births_per_class_[0] > 0.5 * 150  # the skew that made the banks move
    np.testing.assert_array_equal(model.hits_, want["hits"])
    np.testing.assert_array_equal(model.labels_, want["birth_labels"])
    np.testing.assert_allclose(model.memories_, want["memories"], rtol=1e-6, atol=1e-7)
    queries = np.random.default_rng(9).random((40, 1, 3, 4), dtype=np.float32)
    expected = reference.predict(want, queries.reshape(40, 1, -1), n_classes=4, k=1,
                                 voting="channel", distance_kind="l2", competition="label")  # fmt: skip
    np.testing.assert_array_equal(model.predict(queries), expected)


@pytest.mark.parametrize(
    ("dist", "competition"), list(itertools.product(["l2", "cosine"], ["label", "all"]))
)
def test_open_birth_schedule_equals_reference(dist, competition):
    """birth_schedule='open' (no T): the kernels equal the reference, and partial_fit in pieces
    equals fit without being told the stream's length."""
    X, y = small_data(1, n=300)
    tau = 0.5 * default_tau(X, dist)
    params = dict(n_neurons=150, distance=dist, competition=competition, tau=tau)
    flat = X.reshape(len(X), 1, -1)
    want = reference.fit(flat, y, n_classes=4, n_neurons=150, distance_kind=dist,
                         competition=competition, tau=tau, birth_schedule="open")  # fmt: skip
    model = MemoryNetwork(**params, birth_schedule="open", shuffle=False).fit(X, y)
    assert model.n_born_ == len(want["memories"])
    np.testing.assert_array_equal(model.hits_, want["hits"])
    np.testing.assert_allclose(model.memories_, want["memories"], rtol=1e-6, atol=1e-7)
    assert model.tau_ == pytest.approx(want["tau"], rel=1e-12)
    parts = MemoryNetwork(**params, birth_schedule="open")
    for piece in np.array_split(np.arange(len(X)), 3):
        parts.partial_fit(X[piece], y[piece], classes=range(4))
    np.testing.assert_array_equal(parts.hits_, model.hits_)
    assert parts.tau_ == model.tau_
    uniform = reference.fit(flat, y, n_classes=4, n_neurons=150, distance_kind=dist,
                            competition=competition, tau=tau)  # fmt: skip
    assert uniform["tau"] != want["tau"] and len(want["memories"]) < 150  # the schedule matters
