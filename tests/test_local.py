"""The locally connected Memory Network (memnet.local, our extension): the numpy reference, the
identity with MemoryNetwork, its local rule, single pass, determinism, inputs and files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from memnet.models.memory import local as local_module
from memnet.models.memory import reference_local as R
from memnet.models.memory.local import FORMAT_VERSION, LocalMemoryNetwork, location_taus
from memnet.models.memory.network import MemoryNetwork


def blobs(n=160, n_classes=3, n_channels=1, size=8, seed=0, noise=0.25):
    """Images in [0, 1] around one random template per class."""
    rng = np.random.default_rng(seed)
    templates = rng.random((n_classes, n_channels, size, size))
    y = rng.integers(0, n_classes, n)
    X = np.clip(templates[y] + noise * rng.normal(size=(n, n_channels, size, size)), 0, 1)
    return X.astype(np.float32), y.astype(np.int64)


BASE = dict(patch=4, stride=2, n_per_bank=12, preprocess=None, shuffle=False)
VARIANTS = [
    {},
    {"distance": "l1"},
    {"threshold": "fixed"},
    {"threshold": "none"},
    {"threshold": "none", "n_per_bank": 500},
    {"plasticity": "constant", "eta": 0.3},
    {"plasticity": "none"},
    {"scoring": "vote"},
    {"scoring": "sqrt"},
    {"k": 3},
    {"k": 3, "distance": "l1", "scoring": "sqrt"},
    {"shift": 1},
    {"patch": (3, 5), "stride": (2, 3), "shift": (0, 1), "n_per_bank": (10, 6)},
    {"patch": (3, 5), "stride": 2, "scoring": "vote"},
    {"patch": (3, 5), "stride": 2, "scoring": "sqrt", "k": 2},
    {"stride": 3, "beta": 0.05},
    {"tau": 0.05},
]


def scales_of(model):
    p = local_module._as_tuple("patch", model.patch, 1)
    n = len(p)
    s = local_module._broadcast("stride", local_module._as_tuple("stride", model.stride, 1), n)
    b = local_module._broadcast("n", local_module._as_tuple("n", model.n_per_bank, 1), n)
    sh = local_module._broadcast("shift", local_module._as_tuple("shift", model.shift, 0), n)
    return list(zip(p, s, b, strict=True)), list(sh)


def assert_same_as_reference(model, states, X_test, y_counts):
    scales, shifts = scales_of(model)
    for i, st in enumerate(states):
        mems, hits = model.memories_(i), model.hits_(i)
        for loc in range(len(st["locations"])):
            for c in range(len(y_counts)):
                ref = np.array(st["banks"][loc][c], np.float32).reshape(
                    len(st["banks"][loc][c]), -1
                )
                np.testing.assert_array_equal(mems[loc][c], ref)
                np.testing.assert_array_equal(hits[loc][c], st["hits"][loc][c])
        np.testing.assert_array_equal(model.tau_(i), np.array(st["tau"]))
    D = R.location_distances(states, X_test, k=model.k, shifts=shifts,
                             distance_kind=model.distance)  # fmt: skip
    for i, sc in enumerate(model._scales):
        got = model._location_distances(X_test, sc)
        np.testing.assert_allclose(got, D[i], rtol=1e-12, atol=1e-12)
    ref_pred = R.predict(states, X_test, n_classes=len(y_counts), scoring=model.scoring,
                         k=model.k, shifts=shifts, distance_kind=model.distance)  # fmt: skip
    np.testing.assert_array_equal(model.predict(X_test), ref_pred)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: json.dumps(v) if v else "base")
def test_kernels_equal_the_numpy_reference(variant):
    X, y = blobs(160, n_channels=2 if "shift" in variant else 1)
    X_test, _ = blobs(25, n_channels=X.shape[1], seed=1)
    model = LocalMemoryNetwork(**{**BASE, **variant}).fit(X, y)
    scales, _ = scales_of(model)
    counts = np.bincount(y)
    states = R.fit(
        X, y, n_classes=3, scales=scales, distance_kind=model.distance,
        threshold=model.threshold, plasticity=model.plasticity, beta=model.beta,
        eta=model.eta, expected=counts.tolist(),
        tau=[model.initial_tau_(i) for i in range(len(scales))],
    )  # fmt: skip
    births = sum(len(b) for st in states for loc in st["banks"] for b in loc)
    hits = sum(h for st in states for loc in st["hits"] for b in loc for h in b)
    assert model.n_born_ == births and 0 < births
    if model.threshold != "none" or model.n_per_bank == 12:
        assert hits > births  # some patches were absorbed, not only born
    assert_same_as_reference(model, states, X_test, counts)


def test_reference_matches_in_larger_banks_where_blocks_and_filter_do_the_work():
    """One class, 700 samples, banks up to 300: training blocks of up to 256 samples whose
    products are filtered and whose changed rows are refreshed inside the block; 300 queries,
    more than one block of inference products."""
    X, _ = blobs(700, n_classes=1, size=6, noise=0.35)
    y = np.zeros(len(X), np.int64)
    model = LocalMemoryNetwork(patch=5, stride=1, n_per_bank=300, preprocess=None,
                               random_state=4).fit(X, y)  # fmt: skip
    order = np.random.default_rng(4).permutation(len(X))
    states = R.fit(X[order], y[order], n_classes=1, scales=[(5, 1, 300)],
                   tau=[model.initial_tau_()], expected=[len(X)])  # fmt: skip
    assert model.bank_counts_().min() > 64
    assert 0 < model.work_()["train_exact"] < model.work_()["train_pairs"] / 5
    X_test, _ = blobs(300, n_classes=1, size=6, seed=2)  # more than one block of queries
    assert_same_as_reference(model, states, X_test, [len(X)])
    assert 0 < model.work_()["predict_exact"] < model.work_()["predict_pairs"] / 5


def test_one_location_covering_the_image_is_memory_network_fixed_threshold():
    """patch = image: the banks are MemoryNetwork's per-class banks. With a fixed tau and
    budgets that never bind, MemoryNetwork's global tau and budget change nothing: same births,
    memories, hits and predictions, for any number of classes."""
    X, y = blobs(300, n_classes=4, size=6)
    tau = 2.2
    ours = LocalMemoryNetwork(patch=6, n_per_bank=300, threshold="fixed", tau=tau,
                              preprocess=None, random_state=3).fit(X, y)  # fmt: skip
    theirs = MemoryNetwork(n_neurons=300, threshold="fixed", tau=tau, random_state=3).fit(X, y)
    mems = ours.memories_()[0]
    assert 10 < theirs.n_born_ < 200 and ours.n_born_ == theirs.n_born_
    for c in range(4):
        mine = theirs.labels_ == c
        np.testing.assert_array_equal(mems[c], theirs.memories_[mine].reshape(mine.sum(), -1))
        np.testing.assert_array_equal(ours.hits_()[0][c], theirs.hits_[mine])
    X_test, _ = blobs(200, n_classes=4, size=6, seed=5)
    np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))


def test_one_location_one_class_is_memory_network_adaptive_threshold():
    """With one class the per-bank adaptive rule is MemoryNetwork's global one (budget
    n_neurons = n_per_bank, T = the samples): same tau after every sample, same memories."""
    X, _ = blobs(400, n_classes=1, size=5, noise=0.3)
    y = np.zeros(len(X), np.int64)
    ours = LocalMemoryNetwork(patch=5, n_per_bank=40, tau=0.2, preprocess=None,
                              random_state=1).fit(X, y)  # fmt: skip
    theirs = MemoryNetwork(n_neurons=40, tau=0.2, random_state=1).fit(X, y)
    assert ours.n_born_ == theirs.n_born_ == 40
    assert ours.tau_()[0, 0] == theirs.tau_
    np.testing.assert_array_equal(ours.memories_()[0][0], theirs.memories_.reshape(40, -1))
    np.testing.assert_array_equal(ours.hits_()[0][0], theirs.hits_)


def test_threshold_none_with_room_for_every_sample_is_1nn():
    X, y = blobs(200, n_classes=3, size=5)
    X_test, _ = blobs(100, n_classes=3, size=5, seed=7)
    ours = LocalMemoryNetwork(patch=5, n_per_bank=200, threshold="none", preprocess=None)
    theirs = MemoryNetwork(n_neurons=200, threshold="none", shuffle=False)
    pred = ours.fit(X, y).predict(X_test)
    np.testing.assert_array_equal(pred, theirs.fit(X, y).predict(X_test))
    d = ((X_test.reshape(100, 1, -1) - X.reshape(1, 200, -1)).astype(np.float64) ** 2).sum(-1)
    np.testing.assert_array_equal(pred, y[np.argmin(d, axis=1)])


def test_a_sample_changes_at_most_one_memory_per_bank():
    X, y = blobs(120)
    model = LocalMemoryNetwork(patch=4, stride=2, n_per_bank=8, preprocess=None,
                               expected_samples=120, tau=0.2)  # fmt: skip
    model.partial_fit(X[:1], y[:1], classes=[0, 1, 2])
    births = absorbed = 0
    for x, label in zip(X[1:], y[1:], strict=True):
        before = model.memories_()
        hits_before = model.hits_()
        model.partial_fit(x[None], [label])
        after = model.memories_()
        for loc, (r, c) in enumerate(model.positions_()):
            for k in range(3):
                b, a = before[loc][k], after[loc][k]
                if k != label:
                    np.testing.assert_array_equal(a, b)
                    continue
                patch = x[:, r : r + 4, c : c + 4].reshape(-1)
                changed = np.flatnonzero((a[: len(b)] != b).any(axis=1))
                if len(a) > len(b):
                    births += 1
                    assert len(a) == len(b) + 1 and len(changed) == 0
                    np.testing.assert_array_equal(a[-1], patch)
                else:
                    absorbed += 1
                    d = ((b.astype(np.float64) - patch) ** 2).sum(axis=1)
                    winner = int(np.argmin(d))
                    assert set(changed) <= {winner}
                    assert model.hits_()[loc][k][winner] == hits_before[loc][k][winner] + 1
    assert births > 20 and absorbed > 20


@pytest.mark.parametrize("expected", [None, 300, (90, 110, 100)])
def test_fit_equals_partial_fit_over_the_same_order(expected):
    X, y = blobs(300)
    params = dict(patch=4, stride=2, n_per_bank=15, preprocess="deskew", tau=0.3)
    fitted = LocalMemoryNetwork(random_state=2, expected_samples=expected, **params).fit(X, y)
    order = np.random.default_rng(2).permutation(len(X))
    per_class = np.bincount(y).tolist() if expected is None else expected
    pieces = LocalMemoryNetwork(expected_samples=per_class, **params)
    for part in np.split(order, [1, 117, 240]):
        pieces.partial_fit(X[part], y[part], classes=[0, 1, 2])
    assert fitted.n_born_ == pieces.n_born_
    np.testing.assert_array_equal(fitted.tau_(), pieces.tau_())
    for la, lb in zip(fitted.memories_(), pieces.memories_(), strict=True):
        for ma, mb in zip(la, lb, strict=True):
            np.testing.assert_array_equal(ma, mb)
    np.testing.assert_array_equal(fitted.predict(X[:60]), pieces.predict(X[:60]))


def test_preprocessing_statistics_come_from_fit_data_or_the_first_batch():
    X, y = blobs(200)
    full = LocalMemoryNetwork(patch=4, preprocess="standardise", tau=0.3).fit(X, y)
    first = LocalMemoryNetwork(patch=4, preprocess="standardise", tau=0.3,
                               expected_samples=200).partial_fit(X[:50], y[:50])  # fmt: skip
    mean = X.mean(dtype=np.float64)
    assert full._preprocessor.state()["0_mean"][0] == pytest.approx(mean, rel=1e-12)
    assert first._preprocessor.state()["0_mean"][0] == pytest.approx(
        X[:50].mean(dtype=np.float64), rel=1e-12
    )
    first.partial_fit(X[50:], y[50:])  # later batches keep the first batch's statistics
    assert first._preprocessor.state()["0_mean"][0] == pytest.approx(
        X[:50].mean(dtype=np.float64), rel=1e-12
    )


def test_identical_results_on_one_and_two_threads_and_any_query_chunk(monkeypatch):
    X, y = blobs(900, n_classes=4, size=10)
    X_test, _ = blobs(300, n_classes=4, size=10, seed=3)
    params = dict(patch=(5, 7), stride=(1, 3), n_per_bank=(150, 60), shift=(0, 1), k=2,
                  preprocess="deskew", random_state=0)  # fmt: skip
    one = LocalMemoryNetwork(n_threads=1, **params).fit(X, y)
    two = LocalMemoryNetwork(n_threads=2, **params).fit(X, y)
    for s in range(2):
        np.testing.assert_array_equal(one.tau_(s), two.tau_(s))
        np.testing.assert_array_equal(one.bank_counts_(s), two.bank_counts_(s))
        for la, lb in zip(one.memories_(s), two.memories_(s), strict=True):
            for ma, mb in zip(la, lb, strict=True):
                np.testing.assert_array_equal(ma, mb)
    scores = one.decision_scores(X_test)
    np.testing.assert_array_equal(scores, two.decision_scores(X_test))
    monkeypatch.setattr(local_module, "QUERY_CHUNK", 7)
    monkeypatch.setattr(local_module, "PREPROCESS_CHUNK", 50)
    np.testing.assert_array_equal(scores, two.decision_scores(X_test))


def test_colour_preprocessing_is_the_same_on_any_number_of_threads():
    """opponent + ZCA (float64 products per chunk) on more images than a thread's chunk."""
    X, y = blobs(1100, n_channels=3, n_classes=3, size=8)
    params = dict(patch=4, stride=2, n_per_bank=40, preprocess="opponent+zca", random_state=0)
    one = LocalMemoryNetwork(n_threads=1, **params).fit(X, y)
    three = LocalMemoryNetwork(n_threads=3, **params).fit(X, y)
    np.testing.assert_array_equal(one._transform(X), three._transform(X))
    np.testing.assert_array_equal(one.decision_scores(X[:200]), three.decision_scores(X[:200]))


def test_default_tau_is_a_quarter_of_the_mean_patch_pair_distance():
    X, _ = blobs(60, n_channels=2, size=6)
    positions = np.array([(0, 0), (2, 3), (3, 1)])
    for distance in ("l2", "l1"):
        got = location_taus(X, 3, positions, distance)
        for t, (r, c) in zip(got, positions, strict=True):
            p = X[:, :, r : r + 3, c : c + 3].reshape(60, -1).astype(np.float64)
            diff = p[:, None] - p[None]
            d = (diff**2).sum(-1) if distance == "l2" else np.abs(diff).sum(-1)
            assert t == pytest.approx(0.25 * d.mean(), rel=1e-9)
    blank = np.zeros((5, 1, 6, 6), np.float32)
    assert location_taus(blank, 3, positions, "l2").tolist() == [1.0, 1.0, 1.0]


def test_prediction_sums_location_evidence_on_a_hand_made_case():
    """Two classes, 3 x 1 images, 1 x 1 patches: class 0 holds (0, 0, 0), class 1 (1, 1, 1).
    The query (0.1, 0.6, 0.6): summed squared distances 0.73 against 1.13 (class 0), summed
    distances 1.3 against 1.7 (class 0), but locations 2 and 3 vote for class 1."""
    X = np.array([np.zeros((1, 3, 1)), np.ones((1, 3, 1))], np.float32)
    y = np.array([0, 1])
    q = np.array([[[[0.1], [0.6], [0.6]]]], np.float32)
    expected = {"sum": ([0], [0.73, 1.13]), "sqrt": ([0], [1.3, 1.7]), "vote": ([1], [0.73, 1.13])}
    for scoring, (pred, scores) in expected.items():
        model = LocalMemoryNetwork(patch=1, stride=1, n_per_bank=1, preprocess=None,
                                   scoring=scoring).fit(X, y)  # fmt: skip
        assert model.n_locations_ == [3]
        assert model.predict(q).tolist() == pred
        np.testing.assert_allclose(model.decision_scores(q), [scores], rtol=1e-6)


def test_save_and_load_round_trip(tmp_path):
    X, y = blobs(200)
    model = LocalMemoryNetwork(patch=(3, 4), stride=2, n_per_bank=(9, 5), preprocess="zca",
                               expected_samples=400, random_state=0).fit(X, y)  # fmt: skip
    path = tmp_path / "local.npz"
    model.save(path)
    back = LocalMemoryNetwork.load(path)
    assert back.get_params() == model.get_params()
    np.testing.assert_array_equal(back.decision_scores(X[:40]), model.decision_scores(X[:40]))
    more, y_more = blobs(200, seed=9)
    model.partial_fit(more, y_more)
    back.partial_fit(more, y_more)
    np.testing.assert_array_equal(back.tau_(1), model.tau_(1))
    np.testing.assert_array_equal(back.predict(X), model.predict(X))


def test_load_rejects_other_files(tmp_path):
    X, y = blobs(50)
    path = tmp_path / "m.npz"
    LocalMemoryNetwork(patch=4, n_per_bank=3, preprocess=None).fit(X, y).save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for n, data in members.items():
            if n == "format_version.npy":
                buf = tmp_path / "v.npy"
                np.save(buf, np.array(FORMAT_VERSION + 1))
                data = buf.read_bytes()
            z.writestr(n, data)
    with pytest.raises(ValueError, match="format version"):
        LocalMemoryNetwork.load(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        LocalMemoryNetwork.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="marker"):
        LocalMemoryNetwork.load(tmp_path / "other.npz")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"patch": 9}, "does not fit"),
        ({"patch": (3, 4), "stride": (1, 2, 3)}, "stride has 3 entries"),
        ({"scoring": "max"}, "scoring 'max' is unknown; choose one of 'sum'"),
        ({"distance": "cosine"}, "distance 'cosine' is unknown; choose one of 'l2', 'l1'"),
        ({"k": 0}, "k must be"),
        ({"shift": -1}, "shift must be"),
        ({"preprocess": "blur"}, "unknown preprocessing"),
        ({"n_per_bank": 0}, "n_per_bank must be"),
    ],
)
def test_bad_parameters_get_one_clear_message(params, match):
    X, y = blobs(20)
    with pytest.raises(ValueError, match=match):
        LocalMemoryNetwork(**{"preprocess": None, **params}).fit(X, y)


def test_partial_fit_and_predict_misuse():
    X, y = blobs(20)
    with pytest.raises(ValueError, match="expected_samples"):
        LocalMemoryNetwork(preprocess=None).partial_fit(X, y)
    with pytest.raises(ValueError, match="not fitted"):
        LocalMemoryNetwork().predict(X)
    model = LocalMemoryNetwork(patch=4, preprocess=None).fit(X, y)
    with pytest.raises(ValueError, match="shape"):
        model.predict(X[:, :, :6, :6])
    with pytest.raises(ValueError, match="expected_samples has 2"):
        LocalMemoryNetwork(patch=4, preprocess=None, expected_samples=(5, 5)).fit(X, y)


def test_estimator_interface_facts():
    X, y = blobs(90)
    model = LocalMemoryNetwork(patch=4, stride=4, n_per_bank=5, preprocess=None).fit(X, y)
    assert LocalMemoryNetwork.uses_backprop is False
    assert LocalMemoryNetwork.uses_weight_sharing is False and LocalMemoryNetwork.n_passes == 1
    facts = model.run_facts(n_classes=3)
    assert facts["n_born"] == model.n_born_ == int(model.bank_counts_().sum())
    assert sum(facts["births_per_class"]) == model.n_born_ and len(facts["births_per_class"]) == 3
    assert facts["model_bytes"] == model.model_bytes and facts["uses_backprop"] is False
    details = model.details_()
    assert details["n_locations"] == [4] and details["n_seen"] == 90
    assert model.model_bytes == model.n_born_ * (4 * 16 + 8)
    assert "n_per_bank=5" in repr(model)


@pytest.mark.slow
def test_on_mnist_local_evidence_beats_whole_image_nearest_neighbour(mirror):
    """On 10,000 MNIST training images, summed local evidence (7 x 7 patches, 100 neurons per
    bank, deskewed) beats 1-nearest-neighbour on whole images by over a point."""
    from memnet.datasets import read_idx

    d = mirror / "mnist"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]  # fmt: skip
    paths = [d / f"{name}.gz" for name in names]
    if not all(p.exists() for p in paths):
        pytest.skip(f"MNIST files missing from the mirror {d}")
    X, y, Xt, yt = (read_idx(p) for p in paths)
    X, y, Xt, yt = X[:10000, None], y[:10000].astype(np.int64), Xt[:2000, None], yt[:2000]
    ours = LocalMemoryNetwork(n_per_bank=100, random_state=0).fit(X, y).score(Xt, yt)
    nn = MemoryNetwork(n_neurons=10000, threshold="none", shuffle=False).fit(X, y).score(Xt, yt)
    assert ours > nn + 0.01


def test_bench_local_counts_the_multiply_adds_it_compares_with(monkeypatch):
    from memnet import bench_local

    rates = iter([2e9, 5e8, 1e9, 7e8])  # patch before, 784 before, patch after, 784 after
    monkeypatch.setattr(bench_local, "matmul_rate", lambda d, r: next(rates))
    X, y = blobs(120, size=10)
    data = (X, y, X[:30], y[:30])
    run = bench_local.bench_local(data, threads=1, repeats=1,
                                  params=dict(patch=5, stride=5, n_per_bank=4, preprocess=None))  # fmt: skip
    w = run["work"]
    assert run["multiply_adds"] == 25 * (w["train_pairs"] + w["predict_pairs"])
    # inference compares every query with every memory of every bank
    assert w["predict_pairs"] == 30 * run["n_born"]
    # the best rate of before and after: 2e9 for the patch's inner dimension, 7e8 for 784
    assert run["ratio_to_matmul"] == pytest.approx(
        (run["train_seconds"] + run["infer_seconds"]) / (run["multiply_adds"] / 2e9)
    )
    assert run["ratio_to_matmul_784"] == pytest.approx(
        (run["train_seconds"] + run["infer_seconds"]) / (run["multiply_adds"] / 7e8)
    )
    report = {"run": run, "machine": {"cpu": "x", "cores": 1, "load_before": [0], "load_after": [0]},
              "threads": 1, "repeats": 1, "peak_rss_bytes": 2**20}  # fmt: skip
    assert "| ratio |" in bench_local.markdown(report)
