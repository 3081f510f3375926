"""Krotov & Hopfield's competing hidden units (memnet.models.peers.krotov_hopfield) against an
independent reference of one update of the hidden rule (plain loops, float64); its top layer
lowers its loss; the same seed gives the same model on 1 and 2 threads; a bad parameter is one
ValueError that names it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from memnet.models.peers.krotov_hopfield import KrotovHopfield


def reference_step(W, V, p, k, delta, rate):
    """One minibatch update from the paper's definition, with loops: for each sample, the currents
    I_u = sum_i sign(W_ui) |W_ui|^(p-1) v_i; the largest unit gets g = 1, the k-th g = -delta;
    dW_ui = sum_b g_bu (v_bi - I_bu W_ui); W + rate dW / max|dW|."""
    n_hidden, d = W.shape
    dW = np.zeros((n_hidden, d))
    for v in V:
        currents = []
        for u in range(n_hidden):
            total = 0.0
            for i in range(d):
                total += np.sign(W[u, i]) * abs(W[u, i]) ** (p - 1) * v[i]
            currents.append(total)
        ranked = sorted(range(n_hidden), key=lambda u: -currents[u])
        g = [0.0] * n_hidden
        g[ranked[0]] = 1.0
        g[ranked[k - 1]] = -delta
        for u in range(n_hidden):
            for i in range(d):
                dW[u, i] += g[u] * (v[i] - currents[u] * W[u, i])
    return W + rate * dW / np.abs(dW).max()


@pytest.mark.parametrize("p", [2.0, 3.0, 3.5])
def test_one_update_of_the_hidden_rule_equals_the_reference(p):
    rng = np.random.default_rng(1)
    model = KrotovHopfield(n_hidden=12, p=p, k=3, delta=0.4)
    model._start((1, 3, 3), 2)
    V = rng.random((5, 9)).astype(np.float32)
    W = model.weights_.astype(np.float64)
    model._start_rule(len(V))
    with ThreadPoolExecutor(1) as pool:
        model._hidden_step(V, 0.05, pool)
    expected = reference_step(W, V.astype(np.float64), p, 3, 0.4, 0.05)
    hit = np.unique(np.flatnonzero(np.any(expected != W, axis=1)))
    assert model.update_multiply_adds_ == (2 * 5 + 2 * len(hit)) * 9  # formed once, applied
    assert np.allclose(model.weights_, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.weights_, W)  # the step changed something
    for g in range(len(model._columns)):
        model._refresh(g)  # as each block's next product does
    rows = np.concatenate([columns.T for columns in model._columns])
    assert np.allclose(rows, model._powered(model.weights_))  # kept in step with W


def blobs(n=300, seed=0):
    """Three well separated classes of 4 x 4 images with values in [0, 1]."""
    rng = np.random.default_rng(seed)
    centres = rng.random((3, 1, 4, 4))
    y = rng.integers(0, 3, n)
    X = np.clip(centres[y] + 0.05 * rng.standard_normal((n, 1, 4, 4)), 0, 1)
    return X.astype(np.float32), y


SMALL = {"n_hidden": 40, "k": 3, "hidden_epochs": 3, "batch_size": 20, "top_batch_size": 20}


@pytest.mark.parametrize("loss", ["cross_entropy", "power"])
def test_the_top_layer_lowers_its_loss_on_a_separable_problem(loss):
    X, y = blobs()
    model = KrotovHopfield(**SMALL, top_epochs=40, top_lr=0.01, loss=loss).fit(X, y)
    after = model.top_loss(X, y)
    untrained = KrotovHopfield(**SMALL, loss=loss)
    untrained._start(X.shape[1:], 3)  # the same seed: the readout before its first step
    model.readout_, model.intercept_ = untrained.readout_, untrained.intercept_
    before = model.top_loss(X, y)
    assert after < 0.5 * before
    model_again = KrotovHopfield(**SMALL, top_epochs=40, top_lr=0.01, loss=loss).fit(X, y)
    assert model_again.score(X, y) == 1.0


def test_the_same_seed_gives_the_same_model_on_one_and_two_threads():
    rng = np.random.default_rng(3)
    X = rng.random((400, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 400)
    params = {**SMALL, "n_hidden": 60, "top_epochs": 2}
    one = KrotovHopfield(**params, n_threads=1).fit(X, y)
    two = KrotovHopfield(**params, n_threads=2).fit(X, y)
    assert np.array_equal(one.weights_, two.weights_)
    assert np.array_equal(one.readout_, two.readout_)
    assert np.array_equal(one.hidden(X), two.hidden(X))
    assert np.array_equal(one.predict(X), two.predict(X))
    other = KrotovHopfield(**params, random_state=1).fit(X, y)
    assert not np.array_equal(one.weights_, other.weights_)


def test_facts_record_the_epochs_of_each_part_and_a_stream_fine_tunes():
    X, y = blobs()
    model = KrotovHopfield(**SMALL, top_epochs=5).fit(X, y)
    facts = model.run_facts(3)
    assert facts["n_passes"] == 8 and (facts["hidden_epochs"], facts["top_epochs"]) == (3, 5)
    assert facts["uses_backprop"] and not facts["uses_weight_sharing"]
    assert facts["model_bytes"] == 40 * 16 * 4 + 40 * 3 * 4 + 3 * 4
    stream = KrotovHopfield(**SMALL, top_epochs=5)
    stream.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    stream.partial_fit(X[y == 2], y[y == 2])
    assert stream.predict(X).shape == (len(X),)
    warm = model.for_warm_up()
    assert (warm.n_hidden, warm.hidden_epochs, warm.top_epochs) == (40, 1, 1)


@pytest.mark.parametrize(
    "name, value",
    [("n_hidden", 1), ("p", 1.5), ("k", 1), ("k", 41), ("delta", -0.1), ("hidden_epochs", -1),
     ("batch_size", 0), ("lr", 0.0), ("activation_power", 0.5), ("top_epochs", 0),
     ("top_batch_size", 0), ("top_lr", -1.0), ("loss", "hinge"), ("m", 0.5), ("beta", 0.0),
     ("n_threads", 0)],
)  # fmt: skip
def test_a_bad_parameter_is_one_value_error_that_names_it(name, value):
    X, y = blobs(30)
    with pytest.raises(ValueError, match=name):
        KrotovHopfield(**{**SMALL, name: value}).fit(X, y)


def test_the_benchmark_counts_the_work_the_model_did():
    from memnet.bench_peers import krotov_hopfield_work

    X, y = blobs()
    model = KrotovHopfield(**SMALL, top_epochs=2).fit(X, y)
    # 3 epochs of 15 minibatches of 20; each update's product: (units hit <= 40) x 20 x 16
    assert 0 < model.update_multiply_adds_ <= 3 * 15 * 40 * 20 * 16
    work = krotov_hopfield_work(
        300, 50, 16, 40, hidden_epochs=3, top_epochs=2,
        update_multiply_adds=model.update_multiply_adds_,
    )  # fmt: skip
    currents, features, top = 3 * 300 * 40 * 16, 300 * 40 * 16, 2 * 300 * 40 * 10 * 2
    assert work["train_multiply_adds"] == currents + model.update_multiply_adds_ + features + top
    assert work["infer_multiply_adds"] == 50 * 40 * 16 + 50 * 40 * 10


@pytest.mark.parametrize(("n_hidden", "k"), [(9, 3), (40, 7), (5, 5), (2, 2), (1203, 7), (700, 11)])
def test_the_ranks_equal_a_stable_sort_with_ties(n_hidden, k):
    """The blocks' k first and their merge give the units a stable sort of -currents ranks
    first and k-th; currents of a few values make ties common (the smaller unit wins)."""
    from memnet.models.peers._krotov_kernels import first_and_kth, top_units

    rng = np.random.default_rng(n_hidden)
    currents = rng.integers(0, 4, (60, n_hidden)).astype(np.float32)
    if n_hidden > 100:  # many chunks of 32: the skipping of chunks below the bound is exercised
        currents = np.round(rng.standard_normal((60, n_hidden)), 1).astype(np.float32)
    edges = np.linspace(0, n_hidden, 3).astype(int)
    blocks = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        ids = np.empty((60, min(k, hi - lo)), np.int64)
        top_units(currents, lo, hi, ids.shape[1], ids)
        order = lo + np.argsort(-currents[:, lo:hi], axis=1, kind="stable")[:, : ids.shape[1]]
        assert np.array_equal(ids, order)
        blocks.append(ids)
    first, kth = np.empty(60, np.int64), np.empty(60, np.int64)
    first_and_kth(currents, np.concatenate(blocks, axis=1), k, first, kth)
    ranked = np.argsort(-currents, axis=1, kind="stable")
    assert np.array_equal(first, ranked[:, 0])
    assert np.array_equal(kth, ranked[:, k - 1])


def test_the_sparse_update_equals_the_dense_one():
    """rule_update on the units hit equals the dense float64 update g (v - I W) of every unit."""
    from memnet.models.peers._krotov_kernels import rule_update

    rng = np.random.default_rng(3)
    W = rng.standard_normal((30, 16)).astype(np.float32)
    V = rng.random((25, 16)).astype(np.float32)
    currents = (V @ W.T).astype(np.float32)
    first, kth = rng.integers(0, 30, 25), rng.integers(0, 30, 25)
    kth = np.where(kth == first, (first + 1) % 30, kth)
    g = np.zeros((25, 30))
    g[np.arange(25), first] = 1.0
    g[np.arange(25), kth] = -0.4
    dW = g.T @ V - (g * currents).sum(axis=0)[:, None] * W
    expected = W + 0.05 * dW / np.abs(dW).max()
    hit, row, scratch = np.empty(50, np.int64), np.empty(30, np.int64), np.full((50, 16), 7.0)
    n = rule_update(W, V, currents, first, kth, 0.4, 0.05, 1e-30, hit, row, scratch)
    assert np.array_equal(hit[:n], np.unique(np.concatenate([first, kth])))
    assert np.allclose(W, expected, rtol=1e-6, atol=1e-7)
    untouched = np.setdiff1d(np.arange(30), hit[:n])
    assert np.array_equal(W[untouched], expected[untouched].astype(np.float32))
