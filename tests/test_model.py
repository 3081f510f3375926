"""The MemoryNetwork estimator: its local rule, single pass, determinism, voting, inputs and files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from memnet.models.memory import _engine
from memnet.models.memory import network as model_module
from memnet.models.memory.network import FORMAT_VERSION, MemoryNetwork, default_tau


def blobs(n=400, n_classes=3, n_channels=1, seed=0):
    """Images in [0, 1] around one random template per class."""
    rng = np.random.default_rng(seed)
    templates = rng.random((n_classes, n_channels, 4, 4))
    y = rng.integers(0, n_classes, n)
    X = np.clip(templates[y] + 0.25 * rng.normal(size=(n, n_channels, 4, 4)), 0, 1)
    return X.astype(np.float32), y


def nearest_of_class(memories, labels, x, label):
    """Index of the nearest memory of the class (exact float64, ties: the lowest index)."""
    d = ((memories.astype(np.float64) - x.astype(np.float64)) ** 2).sum(axis=(1, 2))
    d[labels != label] = np.inf
    return int(np.argmin(d))


def test_local_rule_one_sample_changes_at_most_its_winner():
    X, y = blobs(150)
    model = MemoryNetwork(n_neurons=40, expected_samples=150, tau=0.3 * default_tau(X))
    model.partial_fit(X[:1], y[:1], classes=[0, 1, 2])
    births = absorbed = 0
    for x, label in zip(X[1:], y[1:], strict=True):
        before, labels_before, hits_before = model.memories_, model.labels_, model.hits_
        model.partial_fit(x[None], [label])
        after = model.memories_
        changed = np.flatnonzero((after[: len(before)] != before).any(axis=(1, 2)))
        if len(after) > len(before):  # a birth: the new neuron holds the sample, no one else moved
            births += 1
            assert len(after) == len(before) + 1 and len(changed) == 0
            np.testing.assert_array_equal(after[-1], x.reshape(1, -1))
        else:  # only the winner (the nearest neuron of the sample's class) moved toward x
            absorbed += 1
            winner = nearest_of_class(before, labels_before, x.reshape(1, -1), label)
            assert set(changed) <= {winner}
            assert model.hits_[winner] == hits_before[winner] + 1
            mean = before[winner] + (x.reshape(1, -1) - before[winner]) / np.float32(
                hits_before[winner] + 1
            )
            np.testing.assert_allclose(after[winner], mean, rtol=1e-6)
    assert births > 5 and absorbed > 5


def test_mean_plasticity_keeps_the_exact_running_mean():
    X, y = blobs(300)
    model = MemoryNetwork(n_neurons=10, tau=1e9, threshold="fixed", shuffle=False).fit(X, y)
    assert model.n_born_ == 3  # one neuron per class: each absorbs its whole class
    for c in range(3):
        neuron = int(np.flatnonzero(model.labels_ == c)[0])
        assert model.hits_[neuron] == np.sum(y == c)
        np.testing.assert_allclose(
            model.memories_[neuron, 0], X[y == c].mean(axis=0).ravel(), rtol=1e-5
        )


def test_fit_equals_partial_fit_over_the_seeded_order():
    X, y = blobs(500)
    params = dict(n_neurons=60, tau=0.4 * default_tau(X), random_state=7)
    whole = MemoryNetwork(**params).fit(X, y)
    order = np.random.default_rng(7).permutation(len(X))
    parts = MemoryNetwork(**params, expected_samples=len(X))
    for chunk in np.array_split(order, [130, 131, 400]):
        parts.partial_fit(X[chunk], y[chunk], classes=[0, 1, 2])
    np.testing.assert_array_equal(parts.memories_, whole.memories_)
    np.testing.assert_array_equal(parts.hits_, whole.hits_)
    assert parts.tau_ == whole.tau_ and parts.n_seen_ == whole.n_seen_ == 500


def test_one_pass_adaptive_threshold_spends_the_budget():
    X, y = blobs(2000, n_classes=4)
    model = MemoryNetwork(n_neurons=200, random_state=0).fit(X, y)
    assert 180 <= model.n_born_ <= 200
    assert model.hits_.sum() == 2000  # every sample is counted exactly once
    assert model.births_per_class_.sum() == model.n_born_


def test_budget_caps_births_and_absorbs_the_rest():
    X, y = blobs(100)
    model = MemoryNetwork(n_neurons=30, threshold="none", random_state=0).fit(X, y)
    assert model.n_born_ == 30 and model.hits_.sum() == 100


def test_same_seed_same_model_for_any_thread_count_and_other_seed_other_order():
    X, y = blobs(3000, n_classes=5, n_channels=3)
    fits = [MemoryNetwork(n_neurons=300, random_state=1, n_threads=t).fit(X, y) for t in (1, 2)]
    np.testing.assert_array_equal(fits[0].memories_, fits[1].memories_)
    np.testing.assert_array_equal(fits[0].predict(X[:500]), fits[1].predict(X[:500]))
    other = MemoryNetwork(n_neurons=300, random_state=2).fit(X, y)
    assert not np.array_equal(other.memories_[:50], fits[0].memories_[:50])


def test_uint8_is_scaled_like_the_dataset_loader():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (200, 1, 4, 4), dtype=np.uint8)
    y = rng.integers(0, 2, 200)
    scaled = raw.astype(np.float32) * np.float32(1 / 255)
    a = MemoryNetwork(n_neurons=50, random_state=0).fit(raw, y)
    b = MemoryNetwork(n_neurons=50, random_state=0).fit(scaled, y)
    np.testing.assert_array_equal(a.memories_, b.memories_)
    np.testing.assert_array_equal(a.predict(raw), b.predict(scaled))
    rows = np.array([5, 0, 9])  # inference scales its chunks into reused buffers: same values
    out = np.full((3, 16), np.nan, np.float32)
    _engine.rows_float32(raw, rows, out=out)
    np.testing.assert_array_equal(out, scaled[rows].reshape(3, 16))
    _engine.rows_float32(scaled[:, :, ::-1].astype(np.float64), rows, out=out)
    np.testing.assert_array_equal(out, scaled[rows, :, ::-1].reshape(3, 16))


def test_flat_input_is_one_channel():
    X, y = blobs(200)
    a = MemoryNetwork(n_neurons=50, random_state=0).fit(X.reshape(200, -1), y)
    assert a.image_shape_ == (1, 1, 16)
    np.testing.assert_array_equal(
        a.memories_.ravel(), MemoryNetwork(n_neurons=50, random_state=0).fit(X, y).memories_.ravel()
    )


def fixed_model(memories, labels, **params):
    """A model whose neurons are exactly ``memories`` (each born, never changed)."""
    memories = np.asarray(memories, np.float32)
    model = MemoryNetwork(n_neurons=len(memories), threshold="none", shuffle=False, **params)
    return model.fit(memories, np.asarray(labels))


def test_k_votes_ties_go_to_the_smaller_summed_distance_then_the_lower_class():
    memories = np.array([[[[0.0]]], [[[0.3]]], [[[1.0]]], [[[0.6]]]])  # (4, 1, 1, 1)
    model = fixed_model(memories, [2, 1, 2, 1], k=2, voting="joint")
    # x=0.1: nearest 0.0 (class 2, d=.01) and 0.3 (class 1, d=.04): one vote each, 2 is closer
    # x=0.5: nearest 0.6 (class 1, d=.01) and 0.3 (class 1, d=.04): two votes for 1
    # x=0.15: 0.0 and 0.3 both at d=.0225: a full tie goes to the lower class, 1
    got = model.predict(np.array([0.1, 0.5, 0.15], np.float32).reshape(3, 1, 1, 1))
    np.testing.assert_array_equal(got, [2, 1, 1])


def test_channel_voting_differs_from_joint_as_specified():
    # Neuron 0 (class 0) is nearer on channels 0 and 1 (0.01 against 0.04 each); neuron 1
    # (class 1) matches channel 2 exactly, where neuron 0 is far (0.81). Joint distances:
    # 0.83 against 0.08, so joint voting says 1; channel votes say 0, two to one.
    memories = np.array([[[0.7], [0.7], [0.0]], [[1.0], [1.0], [0.9]]]).reshape(2, 3, 1, 1)
    x = np.array([[0.8], [0.8], [0.9]], np.float32).reshape(1, 3, 1, 1)
    assert fixed_model(memories, [0, 1], voting="joint").predict(x)[0] == 1
    assert fixed_model(memories, [0, 1], voting="channel").predict(x)[0] == 0


def test_competition_all_labels_neurons_by_their_wins():
    X, y = blobs(600)
    model = MemoryNetwork(n_neurons=30, competition="all", random_state=0).fit(X, y)
    np.testing.assert_array_equal(model.labels_, np.argmax(model.assoc_, axis=1))
    np.testing.assert_array_equal(model.assoc_.sum(axis=1), model.hits_)
    assert model.score(X, y) > 0.9


def test_default_tau_is_a_fraction_of_the_mean_pair_distance():
    rng = np.random.default_rng(0)
    X = rng.random((60, 2, 3, 3)).astype(np.float32)
    X[5] = 0.0  # an all-zero sample: cosine distance 1 to everything
    flat = X.reshape(60, 2, -1).astype(np.float64)
    diff = flat[:, None] - flat[None]
    unit = flat / np.maximum(np.linalg.norm(flat, axis=2, keepdims=True), 1e-300)
    cosine = (1 - (unit[:, None] * unit[None]).sum(axis=3)).sum(axis=2)
    want = {"l2": (diff**2).sum(axis=(2, 3)), "l1": np.abs(diff).sum(axis=(2, 3)), "cosine": cosine}
    for dist, pairs in want.items():  # all ordered pairs, a sample with itself included
        assert default_tau(X, dist) == pytest.approx(
            model_module.TAU_FRACTION * pairs.mean(), rel=1e-9
        )


def test_work_counts_and_memory_bytes():
    X, y = blobs(300)
    model = MemoryNetwork(n_neurons=40, random_state=0).fit(X, y)
    model.predict(X[:10])
    work = model.work_
    assert work["predict_approx_pairs"] == 10 * model.n_born_
    assert 10 <= work["predict_exact_pairs"] <= 10 * model.n_born_
    assert work["train_approx_pairs"] > 0
    assert model.memory_bytes_ == model.n_born_ * (16 * 4 + 16)


# ---- inputs ----------------------------------------------------------------------------------


BAD_X = {
    "nan": (np.full((4, 1, 2, 2), np.nan, np.float32), "NaN or infinite"),
    "inf": (np.full((4, 1, 2, 2), np.inf), "NaN or infinite"),
    "empty": (np.zeros((0, 1, 2, 2), np.float32), "empty"),
    "3-d": (np.zeros((4, 2, 2), np.float32), "shape"),
    "int": (np.zeros((4, 1, 2, 2), np.int64), "uint8"),
    "object": (np.array([[None, 1]] * 4, dtype=object), "uint8"),
    "no features": (np.zeros((4, 0), np.float32), "no features"),
}


@pytest.mark.parametrize("case", list(BAD_X))
def test_bad_X_is_refused_with_its_reason(case):
    X, reason = BAD_X[case]
    with pytest.raises(ValueError, match=reason):
        MemoryNetwork().fit(X, np.zeros(len(X), np.int64))


@pytest.mark.parametrize(
    ("y", "reason"),
    [
        ([0, 1, -1, 0], "negative"),
        ([0.0, 1.0, 1.0, 0.0], "integer"),
        ([0, 1, 0], "one label per sample"),
        ([[0], [1], [0], [1]], "one label per sample"),
    ],
)
def test_bad_y_is_refused_with_its_reason(y, reason):
    with pytest.raises(ValueError, match=reason):
        MemoryNetwork().fit(np.zeros((4, 1, 2, 2), np.float32), np.asarray(y))


def test_predict_needs_a_fitted_model_and_the_same_image_shape():
    X, y = blobs(50)
    with pytest.raises(ValueError, match="not fitted"):
        MemoryNetwork().predict(X)
    model = MemoryNetwork(n_neurons=10).fit(X, y)
    with pytest.raises(ValueError, match=r"\(1, 4, 4\)"):
        model.predict(np.zeros((3, 1, 4, 5), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((3, 1, 4, 4), np.nan, np.float32))


def test_partial_fit_checks_classes_and_expected_samples():
    X, y = blobs(50)
    with pytest.raises(ValueError, match="expected_samples"):
        MemoryNetwork().partial_fit(X, y)
    model = MemoryNetwork(n_neurons=10, threshold="fixed", tau=1.0)
    model.partial_fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="pass all classes"):
        model.partial_fit(X, y)
    with pytest.raises(ValueError, match="classes must be 0..K-1"):
        MemoryNetwork(threshold="none").partial_fit(X, y, classes=[1, 2, 3])


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n_neurons", 0),
        ("n_neurons", 2.5),
        ("distance", "euclid"),
        ("threshold", "auto"),
        ("plasticity", "hebb"),
        ("competition", "none"),
        ("voting", "majority"),
        ("k", 0),
        ("tau", -1.0),
        ("tau", float("nan")),
        ("beta", 1.0),
        ("eta", 0.0),
        ("expected_samples", 0),
        ("shuffle", "yes"),
        ("random_state", -1),
        ("n_threads", 0),
    ],
)
def test_bad_parameters_name_themselves(param, value):
    X, y = blobs(20)
    with pytest.raises(ValueError, match=param):
        MemoryNetwork(**{param: value}).fit(X, y)


# ---- files -----------------------------------------------------------------------------------


def test_save_load_round_trip_and_continue(tmp_path):
    X, y = blobs(400, n_channels=3)
    params = dict(n_neurons=50, competition="all", expected_samples=400, random_state=0)
    model = MemoryNetwork(**params).partial_fit(X[:200], y[:200])
    model.save(tmp_path / "m.npz")
    loaded = MemoryNetwork.load(tmp_path / "m.npz")
    assert loaded.get_params() == model.get_params()
    for name in ("memories_", "labels_", "hits_", "assoc_", "births_per_class_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.tau_ == model.tau_ and loaded.image_shape_ == model.image_shape_
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    model.partial_fit(X[200:], y[200:])
    loaded.partial_fit(X[200:], y[200:])
    np.testing.assert_array_equal(loaded.memories_, model.memories_)


def test_load_refuses_wrong_corrupt_and_other_version_files(tmp_path):
    X, y = blobs(60)
    good = tmp_path / "good.npz"
    MemoryNetwork(n_neurons=10).fit(X, y).save(good)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    (tmp_path / "truncated.npz").write_bytes(good.read_bytes()[:200])
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with np.load(good) as f:
        arrays = dict(f)
    np.savez(tmp_path / "v99.npz", **{**arrays, "format_version": np.array(FORMAT_VERSION + 98)})
    config = json.loads(str(arrays["config"]))
    np.savez(
        tmp_path / "badconfig.npz",
        **{**arrays, "config": np.array(json.dumps({**config, "k": -3}))},
    )
    np.savez(tmp_path / "short.npz", **{**arrays, "hits": arrays["hits"][:-1]})
    cases = {
        "garbage.npz": "not a readable memnet model",
        "truncated.npz": "not a readable memnet model",
        "other.npz": "not a memnet model",
        "v99.npz": "version 99",
        "badconfig.npz": "corrupt.*k must be",
        "short.npz": "corrupt",
    }
    for name, reason in cases.items():
        with pytest.raises(ValueError, match=reason):
            MemoryNetwork.load(tmp_path / name)
    assert zipfile.is_zipfile(good)


def test_save_is_atomic_and_leaves_no_partial_file(tmp_path, monkeypatch):
    X, y = blobs(60)
    model = MemoryNetwork(n_neurons=10).fit(X, y)

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError):
        model.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_many_exact_ties_overflow_the_candidates_and_still_go_to_the_earliest():
    """300 identical neurons tie for every query: more than the candidate list holds, so the
    search falls back to all neurons; the earliest born still win."""
    rng = np.random.default_rng(0)
    same = np.tile(rng.random((1, 1, 3, 3), dtype=np.float32), (300, 1, 1, 1))
    labels = np.arange(300) % 7
    model = fixed_model(same, labels, k=3, voting="joint")
    # neurons 0, 1, 2 (classes 0, 1, 2) are the three nearest: one vote each, equal distances
    assert model.predict(same[:5]).tolist() == [0] * 5
    assert model.set_params(k=1).predict(same[:1])[0] == 0
    assert model.work_["predict_exact_pairs"] == 300


def test_k_larger_than_the_neurons_uses_them_all():
    model = fixed_model(np.array([0.0, 1.0]).reshape(2, 1, 1, 1), [0, 1], k=5, voting="joint")
    assert model.predict(np.array([0.4, 0.6], np.float32).reshape(2, 1, 1, 1)).tolist() == [0, 1]


def test_estimator_protocol():
    from sklearn.base import clone

    X, y = blobs(100)
    model = MemoryNetwork(n_neurons=20, distance="cosine", random_state=3)
    assert repr(model) == "MemoryNetwork(n_neurons=20, distance='cosine', random_state=3)"
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    assert model.set_params(k=3).k == 3
    with pytest.raises(ValueError, match="unknown parameter 'kk'"):
        model.set_params(kk=3)
    model.fit(X, y)
    assert model.score(X, y) == pytest.approx(np.mean(model.predict(X) == y))


@pytest.mark.parametrize("large", [False, True])
def test_nearest_neuron_among_near_ties_on_sparse_features(monkeypatch, large):
    """k=1, l2: sparse samples (many zero features, as MNIST's borders), some neurons at
    distances that differ by about float32's rounding, in several query chunks and neuron
    blocks: the predicted class is the float64 brute-force nearest neuron's (ties: earliest)."""
    monkeypatch.setattr(_engine, "QUERY_CHUNK", 16)
    monkeypatch.setattr(_engine, "NEURON_BLOCK", 24)
    rng = np.random.default_rng(7)
    scale = 1e3 if large else 1.0
    memories = rng.random((150, 30), dtype=np.float32) * scale
    memories[:, rng.random(30) < 0.3] = 0  # features no neuron uses
    memories[rng.random(memories.shape) < 0.5] = 0
    base = memories[3].copy()
    for j in range(40, 80):  # near copies of neuron 3: tiny moves, some exact ties
        memories[j] = base
        if j % 3:
            memories[j, rng.integers(30)] += np.float32(scale * 1e-6 * rng.integers(-3, 4))
    labels = np.arange(150) % 10
    queries = np.concatenate([memories[35:85] + 1e-7 * scale, rng.random((60, 30)) * scale])
    queries[rng.random(queries.shape) < 0.6] = 0
    queries = queries.astype(np.float32)
    model = fixed_model(memories, labels)
    d = ((queries[:, None].astype(np.float64) - memories[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_array_equal(model.predict(queries), labels[np.argmin(d, axis=1)])


def test_preprocessing_is_applied_before_the_neurons_and_saved_with_the_model(tmp_path):
    from memnet.models.preprocess import deskew

    rng = np.random.default_rng(5)
    X = rng.random((120, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 3, 120)
    queries = rng.random((30, 1, 8, 8), dtype=np.float32)
    params = dict(n_neurons=40, tau=1.0, random_state=2)
    model = MemoryNetwork(**params, preprocess="deskew").fit(X, y)
    by_hand = MemoryNetwork(**params).fit(deskew(X), y)
    np.testing.assert_array_equal(model.memories_, by_hand.memories_)
    np.testing.assert_array_equal(model.predict(queries), by_hand.predict(deskew(queries)))

    colour = rng.random((120, 3, 6, 6), dtype=np.float32)
    chained = MemoryNetwork(**params, preprocess="grayscale+standardise").fit(colour, y)
    assert chained.image_shape_ == (1, 6, 6)
    chained.save(tmp_path / "m.npz")
    again = MemoryNetwork.load(tmp_path / "m.npz")
    colour_queries = rng.random((30, 3, 6, 6), dtype=np.float32)
    np.testing.assert_array_equal(again.predict(colour_queries), chained.predict(colour_queries))
    with pytest.raises(ValueError, match="preprocessing step 'blur'"):
        MemoryNetwork(preprocess="blur").fit(X, y)
