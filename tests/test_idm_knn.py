"""Nearest neighbours under the image distortion model (memnet.models.peers.idm_knn) against an
independent plain-loop numpy reference: the IDM distance, the Sobel features, the exact nearest
neighbours without pre-selection, the Euclidean pre-selection, and the same results on one
thread and two, in any chunks of the training set."""

from __future__ import annotations

import numpy as np
import pytest

from memnet.models.peers.idm_knn import CHUNK, IDMNearestNeighbours


def images(n, shape=(1, 7, 6), seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def sobel_reference(image):
    """Each channel's horizontal and vertical Sobel gradients, the image zero outside."""
    n_ch, h, w = image.shape
    out = np.zeros((2 * n_ch, h, w))
    for c in range(n_ch):
        p = np.pad(image[c].astype(np.float64), 1)
        for i in range(h):
            for j in range(w):
                win = p[i : i + 3, j : j + 3]
                out[2 * c, i, j] = (win[:, 2] * [1, 2, 1]).sum() - (win[:, 0] * [1, 2, 1]).sum()
                out[2 * c + 1, i, j] = (win[2] * [1, 2, 1]).sum() - (win[0] * [1, 2, 1]).sum()
    return out


def idm_reference(fx, fr, warp, context):
    """sum over pixels of the min over the window (inside the image) of the squared difference
    of the context x context neighbourhoods (zero outside the image), from the definition."""
    _, h, w = fx.shape
    half = context // 2
    px = np.pad(fx, ((0, 0), (half, half), (half, half)))
    pr = np.pad(fr, ((0, 0), (half, half), (half, half)))
    total = 0.0
    for i in range(h):
        for j in range(w):
            best = np.inf
            for di in range(-warp, warp + 1):
                for dj in range(-warp, warp + 1):
                    if 0 <= i + di < h and 0 <= j + dj < w:
                        a = px[:, i : i + context, j : j + context]
                        b = pr[:, i + di : i + di + context, j + dj : j + dj + context]
                        best = min(best, ((a - b) ** 2).sum())
            total += best
    return total


def model(**params):
    return IDMNearestNeighbours(**{"preprocess": None, "k": 1, "n_candidates": 1, **params})


@pytest.mark.parametrize(
    "shape, warp, context, features",
    [((1, 7, 6), 2, 3, "sobel"), ((1, 7, 6), 1, 5, "pixels"), ((2, 5, 8), 3, 3, "sobel"),
     ((1, 6, 6), 0, 3, "sobel"), ((1, 4, 4), 2, 1, "pixels")],
)  # fmt: skip
def test_idm_distance_equals_a_plain_loop_reference(shape, warp, context, features):
    X, Q = images(6, shape), images(3, shape, seed=1)
    m = model(warp=warp, context=context, features=features).fit(X, np.arange(6) % 2)
    candidates = np.tile(np.arange(6), (3, 1))
    got = m.distances(Q, candidates)
    feats = (lambda x: sobel_reference(x)) if features == "sobel" else (lambda x: x)
    want = np.array([[idm_reference(feats(q), feats(x), warp, context) for x in X] for q in Q])
    np.testing.assert_allclose(got, want, rtol=2e-6)
    if features == "sobel":
        np.testing.assert_allclose(m.features_of(Q), [sobel_reference(q) for q in Q], atol=1e-6)


def test_no_warp_and_single_values_is_the_squared_euclidean_distance_of_the_features():
    X, Q = images(8), images(4, seed=1)
    m = model(warp=0, context=1).fit(X, np.arange(8) % 3)
    fx, fq = m.features_of(X).reshape(8, -1), m.features_of(Q).reshape(4, -1)
    want = ((fq[:, None].astype(np.float64) - fx[None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(m.distances(Q, np.tile(np.arange(8), (4, 1))), want, rtol=1e-6)


def test_as_many_candidates_as_images_gives_the_exact_idm_nearest_neighbours():
    X, Q = images(40, (1, 6, 6)), images(10, (1, 6, 6), seed=2)
    y = np.arange(40) % 4
    m = model(k=3, n_candidates=40).fit(X, y)
    full = np.array([[idm_reference(sobel_reference(q), sobel_reference(x), 2, 3) for x in X]
                     for q in Q])  # fmt: skip
    want = np.argsort(full, axis=1, kind="stable")[:, :3]
    assert (m.neighbours(Q) == want).all()
    assert (model(k=1, n_candidates=1000).fit(X, y).predict(Q) == y[want[:, 0]]).all()


def test_the_candidates_are_the_euclidean_nearest_in_training_order():
    X, Q = images(50), images(5, seed=3)
    m = model(n_candidates=7).fit(X, np.arange(50) % 5)
    d2 = ((Q.reshape(5, 1, -1).astype(np.float64) - X.reshape(1, 50, -1)) ** 2).sum(axis=2)
    want = np.sort(np.argsort(d2, axis=1)[:, :7], axis=1)
    assert (m.candidates(Q) == want).all()
    # the re-ranked neighbours come from the candidates
    assert all(set(nb) <= set(c) for nb, c in zip(m.neighbours(Q), want, strict=True))


def test_equal_distances_go_to_the_lower_training_index():
    X = images(3)
    X = np.concatenate([X, X[[1, 0]]])  # images 3 and 4 repeat 1 and 0
    m = model(k=2, n_candidates=5).fit(X, [0, 1, 2, 1, 0])
    assert m.neighbours(X[[1, 0]]).tolist() == [[1, 3], [0, 4]]


def test_the_same_predictions_on_one_thread_and_two_and_in_any_chunks():
    X, y = images(300, (1, 8, 8)), np.arange(300) % 10
    Q = images(CHUNK + 90, (1, 8, 8), seed=4)  # more than one chunk of queries
    one = model(k=3, n_candidates=12, n_threads=1).fit(X, y)
    two = model(k=3, n_candidates=12, n_threads=2).fit(X, y)
    assert (one.neighbours(Q) == two.neighbours(Q)).all()
    assert (one.predict(Q) == two.predict(Q)).all()
    streamed = model(k=3, n_candidates=12, n_threads=2)
    for start in range(0, 300, 70):  # partial_fit appends: the same memory
        streamed.partial_fit(X[start : start + 70], y[start : start + 70], classes=range(10))
    assert (streamed.neighbours(Q) == one.neighbours(Q)).all()
    assert streamed.n_passes == 1 and not streamed.uses_backprop


def test_the_training_order_does_not_change_the_predictions():
    X, y = images(120, (1, 8, 8)), np.arange(120) % 6
    Q = images(30, (1, 8, 8), seed=5)
    order = np.random.default_rng(0).permutation(120)
    a = IDMNearestNeighbours(n_candidates=20).fit(X, y)  # the defaults: deskewed, k = 4
    b = IDMNearestNeighbours(n_candidates=20).fit(X[order], y[order])
    assert (order[b.neighbours(Q)] == a.neighbours(Q)).all()
    assert (a.predict(Q) == b.predict(Q)).all()


def test_a_stream_predicts_only_the_classes_it_has_seen():
    X, y = images(60), np.arange(60) % 4
    m = model(k=3, n_candidates=10).partial_fit(X[y < 2], y[y < 2], classes=range(4))
    assert set(m.predict(images(20, seed=6))) <= {0, 1}
    assert m.model_bytes == 30 * 42 * 4 + 30 * 4 + 30 * 8


@pytest.mark.parametrize(
    "params, message",
    [({"k": 5, "n_candidates": 3}, "n_candidates 3 is below k 5"),
     ({"context": 4}, "context must be odd"), ({"warp": -1}, "warp"),
     ({"features": "gabor"}, "features"), ({"n_candidates": 0}, "n_candidates")],
)  # fmt: skip
def test_bad_parameters_are_one_value_error_naming_them(params, message):
    with pytest.raises(ValueError, match=message):
        model(**params).fit(images(10), np.arange(10) % 2)


def test_images_too_small_for_the_context_are_refused_before_training():
    with pytest.raises(ValueError, match="context 7 does not fit images of 7 x 6 pixels"):
        model(context=7).check_input_shape((1, 7, 6))
    with pytest.raises(ValueError, match="context 7 does not fit"):
        model(context=7).fit(images(10), np.arange(10) % 2)
    with pytest.raises(ValueError, match="k=4 exceeds the 3 samples"):
        model(k=4, n_candidates=4).fit(images(3), [0, 1, 0]).predict(images(2))


def test_the_peers_benchmark_counts_the_idm_work():
    from memnet.bench_peers import idm_knn_work

    work = idm_knn_work(60000, 10000, 784, n_candidates=200, warp=2, context=3, features=2)
    assert work["infer_multiply_adds"] == 10000 * 60000 * 784  # the Euclidean pre-selection
    assert work["train_multiply_adds"] == 60000 * 784  # the stored images' squared norms
    assert work["idm_pairs"] == 10000 * 200
    assert work["idm_terms_per_pair"] == 25 * 784 * 9 * 2
