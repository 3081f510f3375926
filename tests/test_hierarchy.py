"""The hierarchical Memory Network (ours): the numpy reference, its one pass (layer 2 learns each
block's evidence before layer 1 stores it), its local rule, determinism, inputs and files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memnet.models.memory import reference_hierarchy as RH
from memnet.models.memory.hierarchy import HierarchicalMemoryNetwork
from memnet.models.memory.local import LocalMemoryNetwork


def blobs(n=160, n_classes=3, size=8, seed=0, noise=0.3):
    """Images in [0, 1] around one random template per class."""
    rng = np.random.default_rng(seed)
    templates = rng.random((n_classes, 1, size, size))
    y = rng.integers(0, n_classes, n)
    X = np.clip(templates[y] + noise * rng.normal(size=(n, 1, size, size)), 0, 1)
    return X.astype(np.float32), y.astype(np.int64)


BASE = dict(patch=4, stride=2, n_per_bank=6, preprocess=None, block=30, n_nearest=2,
            shrinkage=0.05, layer2_from=0.0, random_state=3)  # fmt: skip


def reference(model, X, y, X_test, n_classes=3):
    """RH.fit_predict on the model's order and parameters (BASE's layer 1)."""
    order = np.random.default_rng(3).permutation(len(X))
    params = model.get_params()
    j = params["n_nearest"] if params["evidence"] == "nearest" else 1
    return RH.fit_predict(
        X[order], y[order], X_test, n_classes=n_classes, patch=4, stride=2, n_per_bank=6,
        tau=model.layer1_.initial_tau_(), block=30, expected=np.bincount(y).tolist(), j=j,
        evidence=params["evidence"], normalise=params["normalise"], readout=params["readout"],
        shrinkage=0.05, layer2_from=params["layer2_from"], layer1_weight=params["layer1_weight"],
        layer2_hidden=params["layer2_hidden"], features_seed=[3, 2],
    )  # fmt: skip


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"normalise": "location"},
        {"normalise": "threshold"},
        {"evidence": "distance"},
        {"evidence": "rank"},
        {"evidence": "vote"},
        {"readout": "ncm"},
        {"layer2_from": 0.5},
        {"layer1_weight": 0},
        {"layer1_weight": 4.0},
        {"layer1_weight": math.inf},
        {"readout": "ncm", "layer1_weight": 2.0},
        {"evidence": "winner", "readout": "ncm"},
        {"evidence": "winner", "readout": "ncm", "layer1_weight": 0},
        {"layer2_hidden": 40},
        {"layer2_hidden": 40, "readout": "ncm", "layer1_weight": 0},
        {"layer2_hidden": 40, "layer2_from": 0.5, "normalise": "location"},
    ],  # fmt: skip
    ids=lambda v: "-".join(map(str, v.values())) or "base",
)
def test_it_equals_the_numpy_reference(variant):
    X, y = blobs(150)
    X_test, _ = blobs(40, seed=1)
    model = HierarchicalMemoryNetwork(**{**BASE, **variant}).fit(X, y)
    params = model.get_params()
    j = params["n_nearest"] if params["evidence"] == "nearest" else 1
    state, F, predicted, weight = reference(model, X, y, X_test)
    mems = model.layer1_.memories_()
    for loc in range(len(state["locations"])):
        for c in range(3):
            ref = np.array(state["banks"][loc][c], np.float32).reshape(-1, 16)
            np.testing.assert_array_equal(mems[loc][c], ref)
    # the first block (a tenth of 150) never reaches layer 2; with layer2_from 0.5, the blocks
    # that start before sample 75 (at 0, 15, 45) do not either
    assert model.n_layer2_samples_ == len(F) == (150 - 15 if params["layer2_from"] == 0 else 75)
    # the evidence layer 2 reads for the test images, and its predictions
    n_features = 16
    D = RH.nearest(state, X_test, j)
    if params["evidence"] == "winner":  # the model gives each location's active coordinate
        expected = RH.winners(state, X_test, 6)
        active = np.zeros_like(expected)
        np.put_along_axis(active, model.evidence_(X_test), 1.0, axis=1)
        np.testing.assert_array_equal(active, expected)
    else:
        expected = RH.code(D, n_features, params["evidence"], params["normalise"], state["tau"])
        np.testing.assert_allclose(model.evidence_(X_test), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(model.predict(X_test), predicted)
    assert model.layer1_weight_ == weight


@pytest.mark.parametrize("readout, evidence", [("slda", "nearest"), ("ncm", "nearest"),
                                               ("ncm", "winner")])  # fmt: skip
def test_layer1_weight_is_chosen_in_the_pass_as_the_reference_chooses_it(readout, evidence):
    """On noisy blobs the candidates disagree; the weight chosen is the reference's (the first
    with the most right answers over the second half of layer 2's blocks), neither 0 nor inf,
    and the model answers as one given that weight."""
    X, y = blobs(150, noise=0.9)
    X_test, _ = blobs(40, seed=1, noise=0.9)
    model = HierarchicalMemoryNetwork(**BASE, readout=readout, evidence=evidence).fit(X, y)
    _, _, predicted, weight = reference(model, X, y, X_test)
    assert model.layer1_weight_ == weight
    assert 0 < weight < math.inf
    np.testing.assert_array_equal(model.predict(X_test), predicted)
    fixed = HierarchicalMemoryNetwork(**BASE, readout=readout, evidence=evidence,
                                      layer1_weight=weight).fit(X, y)  # fmt: skip
    np.testing.assert_array_equal(fixed.predict(X_test), predicted)


def test_classes_yet_to_come_leave_the_seen_classes_layer1_scores_as_they_are():
    """z1 of the classes with memories is the same whether or not empty banks (classes the stream
    has not shown yet) stand beside them, and an empty bank's class scores worst."""
    from memnet.models.memory.hierarchy import _layer1_scores

    rng = np.random.default_rng(0)
    D = rng.random((5, 4, 3)) * 10  # (samples, locations, classes)
    with_empty = np.concatenate([D, np.full((5, 4, 2), np.inf)], axis=2)
    z1 = _layer1_scores(with_empty, 16)
    np.testing.assert_allclose(z1[:, :3], _layer1_scores(D, 16), rtol=1e-12)
    total = D.sum(axis=1)  # by hand: 0 for the nearest class, 1 at the mean of the seen three
    low = total.min(axis=1, keepdims=True)
    np.testing.assert_allclose(
        z1[:, :3], (total - low) / (total.mean(axis=1, keepdims=True) - low + 1e-12)
    )
    assert (z1[:, 3:] > z1[:, :3].max(axis=1, keepdims=True)).all()


@pytest.mark.parametrize("weight", ["auto", 0, 4.0, 64.0, math.inf])
def test_a_class_incremental_stream_equals_the_reference(weight):
    """Classes in label order: layer 2 learns and the weights are scored while the banks of the
    classes to come are empty, and half-way (three classes of six) the model answers with them
    empty. Both then and at the end, the model equals the reference."""
    X, y = blobs(240, n_classes=6, noise=0.9)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    X_test, _ = blobs(60, n_classes=6, seed=1, noise=0.9)
    counts = np.bincount(y).tolist()
    half = int(np.sum(y < 3))
    model = HierarchicalMemoryNetwork(**BASE, layer1_weight=weight, expected_samples=counts)
    model.partial_fit(X[:half], y[:half], classes=np.arange(6))
    whole = HierarchicalMemoryNetwork(**{**BASE, "shuffle": False}, layer1_weight=weight).fit(X, y)
    for fitted, n in ((model, half), (whole, len(y))):
        _, F, predicted, chosen = RH.fit_predict(
            X[:n], y[:n], X_test, n_classes=6, patch=4, stride=2, n_per_bank=6,
            tau=fitted.layer1_.initial_tau_(), block=30, expected=counts, j=2, shrinkage=0.05,
            layer1_weight=weight,
        )  # fmt: skip
        assert fitted.n_layer2_samples_ == len(F)
        assert fitted.layer1_weight_ == chosen
        np.testing.assert_array_equal(fitted.predict(X_test), predicted)
    assert set(model.predict(X_test)) <= {0, 1, 2}


def test_layer2_learns_each_block_before_layer1_stores_it():
    """The prequential evidence of a training sample is that of an unseen image: for the second
    block it equals layer 1 fitted on the first block alone, scoring the second."""
    X, y = blobs(120)
    model = HierarchicalMemoryNetwork(**{**BASE, "shuffle": False, "readout": "ncm"})
    seen = []
    model._learn_readout = lambda F, y_: seen.append(F.copy())  # record what layer 2 is given
    model.fit(X, y)
    first = LocalMemoryNetwork(patch=4, stride=2, n_per_bank=6, preprocess=None, shuffle=False,
                               expected_samples=np.bincount(y).tolist())  # fmt: skip
    first.partial_fit(X[:12], y[:12], classes=np.arange(3))  # the first block: 120 // 10
    probe = HierarchicalMemoryNetwork(**{**BASE, "readout": "ncm"})
    probe._layer1, probe._n_classes = first, 3
    np.testing.assert_array_equal(seen[0], probe.evidence_(X[12:42]))


def test_fit_equals_partial_fit_over_the_same_blocks():
    X, y = blobs(200)
    order = np.random.default_rng(3).permutation(len(X))
    whole = HierarchicalMemoryNetwork(**BASE).fit(X, y)
    parts = HierarchicalMemoryNetwork(**{**BASE, "expected_samples": np.bincount(y).tolist()})
    Xo, yo = X[order], y[order]
    parts.partial_fit(Xo[:80], yo[:80], classes=np.arange(3))  # 20, then blocks of 30
    parts.partial_fit(Xo[80:], yo[80:])
    X_test, _ = blobs(50, seed=2)
    np.testing.assert_array_equal(whole.evidence_(X_test), parts.evidence_(X_test))
    np.testing.assert_array_equal(whole.predict(X_test), parts.predict(X_test))


def test_a_sample_changes_at_most_one_memory_per_bank_of_layer1():
    X, y = blobs(100)
    model = HierarchicalMemoryNetwork(**{**BASE, "expected_samples": np.bincount(y).tolist()})
    model.partial_fit(X[:60], y[:60], classes=np.arange(3))
    before = [[m.copy() for m in loc] for loc in model.layer1_.memories_()]
    model.partial_fit(X[60:61], y[60:61])
    after = model.layer1_.memories_()
    for loc in range(len(before)):
        for c in range(3):
            old, new = before[loc][c], after[loc][c]
            grown = len(new) - len(old)
            changed = int((old != new[: len(old)]).any(axis=1).sum())
            assert grown + changed <= 1 and (c == y[60] or grown + changed == 0)


@pytest.mark.parametrize("hidden", [0, 50])
def test_one_and_two_threads_give_the_same_model(hidden):
    X, y = blobs(300, size=12)
    X_test, _ = blobs(60, size=12, seed=5)
    a = HierarchicalMemoryNetwork(**{**BASE, "n_threads": 1, "layer2_hidden": hidden}).fit(X, y)
    b = HierarchicalMemoryNetwork(**{**BASE, "n_threads": 2, "layer2_hidden": hidden}).fit(X, y)
    np.testing.assert_array_equal(a.evidence_(X_test), b.evidence_(X_test))
    np.testing.assert_array_equal(a.predict(X_test), b.predict(X_test))


@pytest.mark.parametrize("readout, hidden", [("slda", 0), ("ncm", 0), ("memory", 0), ("slda", 30)])
def test_save_and_load_give_the_same_predictions(tmp_path, readout, hidden):
    X, y = blobs(150, noise=0.9)  # noisy: the weight chosen in the pass is not the first
    X_test, _ = blobs(40, seed=1, noise=0.9)
    model = HierarchicalMemoryNetwork(**{**BASE, "readout": readout, "layer2_neurons": 20,
                                         "layer2_hidden": hidden})  # fmt: skip
    model.fit(X, y)
    model.save(tmp_path / "h.npz")
    loaded = HierarchicalMemoryNetwork.load(tmp_path / "h.npz")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    assert loaded.model_bytes == model.model_bytes
    assert loaded.layer1_weight_ == model.layer1_weight_
    assert readout == "memory" or model.layer1_weight_ > 0


def test_layer2_never_answers_a_class_it_has_not_learnt():
    """A class-incremental stream: after the tasks of classes 0 and 1, no answer is class 2, for
    any weight of layer 1 (streaming LDA's discriminant gives a class without samples 0, not
    -inf, unless it is masked)."""
    X, y = blobs(200, noise=0.9)
    seen = y < 2
    X_test, _ = blobs(60, seed=1, noise=0.9)
    for weight in ("auto", 0, 4.0, math.inf):
        for readout in ("slda", "ncm"):
            model = HierarchicalMemoryNetwork(**{**BASE, "readout": readout}, layer1_weight=weight,
                                              expected_samples=200)  # fmt: skip
            model.partial_fit(X[seen], y[seen], classes=[0, 1, 2])
            assert model._layer2 is not None
            assert set(model.predict(X_test)) <= {0, 1}, (weight, readout)
            scores = model._layer2_scores(model.evidence_(X_test) * 0.2)  # all seen ones < 0
            assert np.all(scores[:, 2] == -np.inf) and np.isfinite(scores[:, :2]).all()


def test_two_pass_variant_learns_layer2_from_the_final_layer1_and_says_two_passes():
    X, y = blobs(120)
    model = HierarchicalMemoryNetwork(**{**BASE, "schedule": "two-pass", "readout": "ncm"})
    model.fit(X, y)
    assert model.n_passes == 2 and model.n_layer2_samples_ == 120
    order = np.random.default_rng(3).permutation(len(X))
    F = model.evidence_(X[order])  # every sample's evidence from the final layer 1
    sums = np.zeros((3, F.shape[1]))
    np.add.at(sums, y[order], F)
    np.testing.assert_allclose(model._layer2[0], sums, rtol=1e-12)
    assert HierarchicalMemoryNetwork(**BASE).n_passes == 1
    with pytest.raises(ValueError, match="partial_fit needs schedule='prequential'"):
        model.partial_fit(X, y)
    # its layer 1 has stored every sample layer 2 reads: "auto" scores no block, so w is 0
    noisy, labels = blobs(150, noise=0.9)
    two = HierarchicalMemoryNetwork(**{**BASE, "schedule": "two-pass"}).fit(noisy, labels)
    assert not two._hits.any() and two.layer1_weight_ == 0
    assert HierarchicalMemoryNetwork(**BASE).fit(noisy, labels).layer1_weight_ > 0


@pytest.mark.parametrize(
    "params, message",
    [({"evidence": "sparse"}, "evidence"), ({"readout": "mlp"}, "readout"),
     ({"n_nearest": 0}, "n_nearest"), ({"block": 0}, "block"),
     ({"patch": (4, 6), "stride": (2, 2)}, "one scale"), ({"patch": 9}, "patch 9"),
     ({"layer1_weight": "best"}, "layer1_weight"), ({"layer1_weight": -1}, "layer1_weight"),
     ({"readout": "memory", "layer1_weight": 2}, "no class scores"),
     ({"evidence": "winner"}, "readout='ncm'"), ({"layer2_hidden": -1}, "layer2_hidden"),
     ({"evidence": "winner", "readout": "ncm", "layer2_hidden": 8}, "layer2_hidden with")],
)  # fmt: skip
def test_bad_parameters_are_named(params, message):
    X, y = blobs(40)
    with pytest.raises(ValueError, match=message):
        HierarchicalMemoryNetwork(**{**BASE, **params}).fit(X, y)


def test_partial_fit_needs_the_stream_length():
    X, y = blobs(40)
    with pytest.raises(ValueError, match="expected_samples"):
        HierarchicalMemoryNetwork(**BASE).partial_fit(X, y)


def test_bench_hierarchy_counts_the_random_features_work():
    """With layer2_hidden h, layer 2's work is the projection of every evidence row it reads
    (d x h each), its scatter of h features and the test scores (h x K)."""
    from memnet.bench_hierarchy import layer2_macs

    X, y = blobs(150, size=10)
    model = HierarchicalMemoryNetwork(patch=5, stride=5, n_per_bank=4, preprocess=None, block=30,
                                      layer2_from=0.0, layer2_hidden=7, random_state=0).fit(X, y)  # fmt: skip
    d, h, n = 4 * 3 * 3, 7, 150 - 15
    assert layer2_macs(model, 20) == (n + 20) * d * h + n * h * h + 20 * h * 3


def test_bench_hierarchy_counts_layer2_work_and_compares_with_the_local_model(monkeypatch):
    from memnet import bench_hierarchy

    monkeypatch.setattr(bench_hierarchy, "matmul_rate", lambda d, r: 1e9)
    X, y = blobs(150, size=10)
    params = dict(patch=5, stride=5, n_per_bank=4, preprocess=None, block=30, layer2_from=0.0)
    result = bench_hierarchy.bench((X, y, X[:20], y[:20]), [0], 1, params)
    run = result["runs"][0]
    model = HierarchicalMemoryNetwork(**params, random_state=0).fit(X, y)
    work = model.layer1_.work_()
    d = 4 * 3 * 3  # 4 locations x 3 classes x the 3 nearest distances
    layer1 = 25 * (work["train_pairs"] + work["predict_pairs"])  # before any test evidence
    test_pairs = 20 * model.layer1_.n_born_  # each test image against every memory
    expected = layer1 + 25 * test_pairs + (150 - 15) * d * d + 20 * d * 3
    assert run["hierarchy"]["multiply_adds"] == expected
    h, lo = run["hierarchy"], run["local"]
    assert run["time_ratio_to_local"] == pytest.approx(
        (h["train_seconds"] + h["infer_seconds"]) / (lo["train_seconds"] + lo["infer_seconds"])
    )
    report = {"dataset": "mnist", "result": result, "threads": 1, "peak_rss_bytes": 2**20,
              "machine": {"cpu": "x", "cores": 1, "load_before": [0], "load_after": [0]}}  # fmt: skip
    text = bench_hierarchy.markdown(report)
    assert "| ratio to local |" in text
    assert run["hierarchy"]["layer1_weight"] == str(float(model.layer1_weight_))
    assert f"chosen in each seed's pass: {model.layer1_weight_}." in text
    for name in ("local", "hierarchy"):  # row: the true class; its diagonal: the right answers
        counts = np.array(run[name]["confusion"])
        assert counts.shape == (3, 3) and counts.sum() == 20
        assert np.trace(counts) / 20 == pytest.approx(run[name]["accuracy"])
        assert np.array_equal(counts.sum(axis=1), np.bincount(y[:20], minlength=3))
    section = text.split("Where the errors go")[1].split("\n")
    rows = [line for line in section if line.startswith("| ") and "true class" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| 0", "| 1", "| 2"]  # one row a class


@pytest.mark.parametrize("n, layer2_from, learnt", [(60, 0.5, 30), (60, 0.95, 3), (10, 0.95, 1)])
def test_layer2_learns_even_a_stream_shorter_than_one_block(n, layer2_from, learnt):
    """A block boundary falls where layer 2 starts (at the last sample at the latest), so it
    learns whatever the stream's length."""
    X, y = blobs(n)
    model = HierarchicalMemoryNetwork(**{**BASE, "block": 1000, "layer2_from": layer2_from})
    model.fit(X, y)
    assert model.n_layer2_samples_ == learnt
    assert model.predict(X[:5]).shape == (5,)


def test_before_layer2_starts_layer1_answers_and_the_model_saves(tmp_path):
    X, y = blobs(100)
    model = HierarchicalMemoryNetwork(**{**BASE, "layer2_from": 0.5, "expected_samples": 100})
    model.partial_fit(X[:40], y[:40], classes=np.arange(3))  # layer 2 starts at sample 50
    assert model.n_layer2_samples_ == 0
    np.testing.assert_array_equal(model.predict(X[40:]), model.layer1_.predict(X[40:]))
    model.save(tmp_path / "h.npz")
    loaded = HierarchicalMemoryNetwork.load(tmp_path / "h.npz")
    loaded.partial_fit(X[40:], y[40:])
    model.partial_fit(X[40:], y[40:])
    assert loaded.n_layer2_samples_ == model.n_layer2_samples_ == 50
    np.testing.assert_array_equal(loaded.predict(X[:20]), model.predict(X[:20]))


def test_evidence_of_standardised_images_is_not_capped():
    """Only an empty bank's distance is replaced; standardised patches may lie farther apart
    than pixels in [0, 1] can."""
    X, y = blobs(150)
    model = HierarchicalMemoryNetwork(**{**BASE, "preprocess": "standardise"}).fit(X, y)
    E = model.evidence_(X[:40] * 4)
    assert E.max() > 4.0  # sqrt(16 patch features): the old cap
