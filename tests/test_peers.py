"""The peers (memnet.models.peers) against independent numpy references: streaming LDA equals
batch LDA with the same shrinkage after any stream; the RF-ELM's readout equals the batch ridge
solve on its hidden layer, its fields are local squares, and its results do not depend on the
thread count."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from memnet.models.peers.rf_elm import RandomFieldELM
from memnet.models.peers.slda import StreamingLDA


def blobs(n=400, shape=(1, 6, 6), k=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.random((k, *shape))
    y = rng.integers(0, k, n)
    X = centres[y] + 0.3 * rng.standard_normal((n, *shape))
    return X.astype(np.float32), y


def batch_lda(X, y, k, eps):
    """LDA from its definition: class means, the pooled within-class covariance (biased), shrunk."""
    flat = X.reshape(len(X), -1).astype(np.float64)
    means = np.stack([flat[y == c].mean(axis=0) for c in range(k)])
    centred = flat - means[y]
    cov = centred.T @ centred / len(flat)
    shrunk = (1 - eps) * cov + eps * np.eye(flat.shape[1])
    W = np.linalg.inv(shrunk) @ means.T
    b = np.array([-0.5 * means[c] @ W[:, c] for c in range(k)])
    return W, b


@pytest.mark.parametrize("chunks", [None, [1] * 20 + [380], [7, 50, 143, 200]])
def test_streaming_lda_equals_batch_lda_after_any_stream(chunks):
    X, y = blobs()
    model = StreamingLDA(shrinkage=1e-2)
    if chunks is None:
        model.fit(X, y)
    else:
        start = 0
        for size in chunks:
            model.partial_fit(X[start : start + size], y[start : start + size], classes=range(4))
            start += size
    W, b = batch_lda(X, y, 4, 1e-2)
    W_model, b_model = model.discriminant()
    assert np.allclose(W_model, W, rtol=1e-8, atol=1e-8)
    assert np.allclose(b_model, b, rtol=1e-8, atol=1e-8)
    flat = X.reshape(len(X), -1).astype(np.float64)
    assert (model.predict(X) == (flat @ W + b).argmax(axis=1)).all()
    assert model.score(X, y) > 0.9


def test_streaming_lda_predicts_only_the_classes_it_has_seen():
    X, y = blobs()
    model = StreamingLDA().partial_fit(X[y < 2], y[y < 2], classes=range(4))
    assert set(model.predict(X)) <= {0, 1}
    assert model.n_passes == 1 and not model.uses_backprop and not model.uses_weight_sharing


def ridge_reference(model, X, y, k):
    H = model.hidden(X).astype(np.float64)
    T = np.eye(k)[y]
    gram = H.T @ H
    gram += model.ridge * np.mean(np.diag(gram)) * np.eye(len(gram))
    return np.linalg.solve(gram, H.T @ T)


def test_rf_elm_readout_is_the_ridge_solve_on_its_hidden_layer_in_any_chunks():
    X, y = blobs(n=600)
    model = RandomFieldELM(n_hidden=50, min_field=2, border=0, ridge=1e-2, random_state=3)
    model.fit(X, y)
    reference = ridge_reference(model, X, y, 4)
    assert np.allclose(model._solve(), reference, rtol=1e-3, atol=1e-4)  # float32 H'H
    assert model.score(X, y) > 0.9

    stream = RandomFieldELM(n_hidden=50, min_field=2, border=0, ridge=1e-2, random_state=3)
    for start in (0, 13, 300):
        stop = {0: 13, 13: 300, 300: 600}[start]
        stream.partial_fit(X[start:stop], y[start:stop], classes=range(4))
    # its layer is drawn from its first 13 samples: the readout is the batch solve on that layer
    assert np.allclose(stream._solve(), ridge_reference(stream, X, y, 4), rtol=1e-3, atol=1e-4)


def test_rf_elm_fields_are_random_local_squares_inside_the_border():
    model = RandomFieldELM(n_hidden=40, weights="random", min_field=3, border=1, random_state=0)
    model.fit(*blobs(shape=(2, 9, 9)))
    weights = model.weights_.T.reshape(40, 2, 9, 9)
    sides = set()
    for unit in weights:
        rows, cols = np.nonzero(np.abs(unit).sum(axis=0))
        side = rows.max() - rows.min() + 1
        assert side == cols.max() - cols.min() + 1 >= 3  # a square of at least min_field
        assert rows.min() >= 1 and cols.min() >= 1 and rows.max() <= 7 and cols.max() <= 7
        assert np.isclose(np.linalg.norm(unit), 1.0)
        sides.add(side)
    assert len(sides) > 1
    again = RandomFieldELM(n_hidden=40, weights="random", min_field=3, border=1, random_state=0)
    again.fit(*blobs(shape=(2, 9, 9)))
    assert np.array_equal(again.weights_, model.weights_)  # seeded


def test_rf_elm_difference_weights_are_two_images_of_other_classes_inside_the_field():
    X, y = blobs(n=200, shape=(1, 9, 9))
    model = RandomFieldELM(n_hidden=30, min_field=3, border=0, random_state=2).fit(X, y)
    flat = model._inputs(X)  # centred, unit length: what the weights are made of
    for unit, (r, q, side) in enumerate(model.fields_):
        w = model.weights_[:, unit].reshape(9, 9)
        inside = np.zeros((9, 9), bool)
        inside[r : r + side, q : q + side] = True
        assert not w[~inside].any()
        # some pair of samples of different classes gives exactly these weights
        diff = (flat[:, None, :] - flat[None, :, :]).reshape(200, 200, 9, 9)[..., inside]
        diff /= np.linalg.norm(diff, axis=-1, keepdims=True) + 1e-12
        match = np.isclose(diff, w[inside], atol=1e-5).all(axis=-1)
        a, b = np.nonzero(match)
        assert len(a) and (y[a] != y[b]).all()


def test_rf_elm_gives_the_same_model_on_one_thread_and_two():
    X, y = blobs(n=3000, shape=(1, 12, 12), k=5)
    out = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            model = RandomFieldELM(n_hidden=300, random_state=1, n_threads=threads).fit(X, y)
            out.append((model._solve(), model.predict(X)))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])


def test_streaming_lda_gives_the_same_model_on_one_thread_and_two():
    X, y = blobs(n=3000, shape=(1, 12, 12), k=5)
    out = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            model = StreamingLDA(n_threads=threads).fit(X, y)
            out.append((model.discriminant()[0], model.predict(X)))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])


def test_rf_elm_fields_must_fit_the_image():
    with pytest.raises(
        ValueError, match="min_field 20 with border 5 does not fit images of 28 x 28"
    ):
        RandomFieldELM(min_field=20, border=5).check_input_shape((1, 28, 28))


def test_the_peers_benchmark_counts_the_work_of_each_product():
    from memnet.bench_peers import rf_elm_work, slda_work

    # 2 training images of 3 pixels, 2 hidden units (+1 constant), 10 classes, 1 test image
    assert rf_elm_work(2, 1, 3, 2) == {
        "train_multiply_adds": 2 * 3 * 2 + 2 * (3 * 4 // 2) + 2 * 3 * 10,
        "infer_multiply_adds": 1 * 3 * 2 + 1 * 3 * 10,
        "solve_flops": 27 / 3 + 2 * 9 * 10,
    }
    assert slda_work(5, 2, 4) == {
        "train_multiply_adds": 5 * 16,
        "infer_multiply_adds": 2 * 4 * 10,
        "solve_flops": 2 * 64 / 3,
    }


def test_the_peers_benchmark_checks_its_arguments(capsys, tmp_path):
    from memnet import bench_peers

    with pytest.raises(SystemExit) as err:
        bench_peers.main(["--threads", "0", "--out", str(tmp_path)])
    assert err.value.code == 2 and "--threads" in capsys.readouterr().err


def test_rf_elm_after_grayscale_draws_its_layer_on_one_channel():
    X, y = blobs(n=200, shape=(3, 9, 9))
    model = RandomFieldELM(n_hidden=20, min_field=3, preprocess="grayscale", random_state=0)
    assert model.fit(X, y).weights_.shape == (81, 20)  # 1 x 9 x 9 inputs
    assert model.score(X, y) > 0.5


def test_rf_elm_on_one_sample_of_one_class_has_no_dead_units_but_fits():
    X, y = blobs(n=2)
    model = RandomFieldELM(n_hidden=10, min_field=2, random_state=0)
    model.partial_fit(X[:2], np.array([1, 1]), classes=range(4))
    assert (np.abs(model.weights_).sum(axis=0) > 0).all()  # two different images in every field


def test_rf_elm_names_a_ridge_too_small_to_solve():
    X, y = blobs(n=50)
    model = RandomFieldELM(n_hidden=200, min_field=2, ridge=1e-30, random_state=0)
    with pytest.raises(ValueError, match="ridge 1e-30 is too small for 200 hidden units"):
        model.fit(X, y)


def test_rf_elm_warms_up_on_a_small_copy_of_itself():
    model = RandomFieldELM(n_hidden=14000, border=3, preprocess="deskew", random_state=4)
    small = model.for_warm_up()
    assert small.n_hidden == 64
    assert {**small.get_params(), "n_hidden": 14000} == model.get_params()
