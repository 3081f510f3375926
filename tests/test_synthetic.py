"""The synthetic CIFAR-10: canonical archive layout and pickles, determinism, class structure."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
import pickletools
import tarfile

import numpy as np
import pytest

from memnet import datasets
from memnet.datasets import synthetic


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small archive (100 images a batch) of seed 0, made twice in two directories."""
    paths = []
    for i in range(2):
        out = tmp_path_factory.mktemp(f"syn{i}")
        assert synthetic.main(["cifar10", "--out", str(out), "--rows", "100"]) == 0
        paths.append(out / synthetic.ARCHIVE)
    return paths


def test_deterministic(small, tmp_path):
    a, b = small
    assert a.read_bytes() == b.read_bytes()
    other = synthetic.write_archive(tmp_path, seed=1, rows=100)
    assert other.read_bytes() != a.read_bytes()


def test_canonical_layout(small):
    with tarfile.open(small[0], "r:gz") as tar:
        names = tar.getnames()
        assert names == [
            "cifar-10-batches-py",
            *(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
            "cifar-10-batches-py/test_batch",
            "cifar-10-batches-py/batches.meta",
            "cifar-10-batches-py/readme.html",
        ]
        raw = {n.split("/")[-1]: tar.extractfile(n).read() for n in names[1:]}
    for name in ["data_batch_1", "test_batch", "batches.meta"]:
        ops = {op.name for op, _, _ in pickletools.genops(raw[name])}
        assert "PROTO" in ops and not ops & {"BINUNICODE", "SHORT_BINBYTES", "BINBYTES"}  # Python 2
    # read as the canonical file is usually read: plain pickle, encoding="bytes"
    batch = pickle.loads(raw["data_batch_3"], encoding="bytes")
    assert sorted(batch) == [b"batch_label", b"data", b"filenames", b"labels"]
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (100, 3072)
    assert batch[b"batch_label"] == b"training batch 3 of 5"
    assert len(batch[b"labels"]) == 100 and set(batch[b"labels"]) == set(range(10))
    assert batch[b"filenames"][0].endswith(b".png")
    # and as torchvision reads it (encoding="latin1", str keys)
    latin = pickle.loads(raw["test_batch"], encoding="latin1")
    assert latin["data"].shape == (100, 3072) and latin["batch_label"] == "testing batch 1 of 1"
    meta = pickle.loads(raw["batches.meta"], encoding="bytes")
    assert meta[b"label_names"][0] == b"airplane" and len(meta[b"label_names"]) == 10
    assert meta[b"num_cases_per_batch"] == 100 and meta[b"num_vis"] == 3072


def test_rows_hold_rgb_planes(small):
    """Row = 1024 red, then 1024 green, then 1024 blue values, each plane row-major 32x32."""
    with tarfile.open(small[0], "r:gz") as tar:
        batch = pickle.load(io.BytesIO(tar.extractfile("cifar-10-batches-py/test_batch").read()),
                            encoding="bytes")  # fmt: skip
    protos = synthetic.prototypes(0)
    data, labels = synthetic.batch(5, 0, 100, protos)
    np.testing.assert_array_equal(batch[b"data"], data)
    # the images are smooth along a row within a plane, not across plane boundaries
    img = data.reshape(100, 3, 32, 32).astype(float)
    within = np.abs(np.diff(img, axis=3)).mean()
    shuffled = np.abs(np.diff(data.reshape(100, 3072)[:, ::37].astype(float), axis=1)).mean()
    assert within < shuffled


def small_spec(archive):
    """cifar10-synthetic's declaration for the small archive (its size, sha256 and counts)."""
    size, sha = datasets.file_digest(archive)
    return dataclasses.replace(
        datasets.REGISTRY["cifar10-synthetic"],
        files={synthetic.ARCHIVE: datasets.RemoteFile(size, sha)},
        n_train=500,
        n_test=100,
    )


def test_prepares_through_its_declaration(small, tmp_path):
    ds = datasets.load(datasets.prepare(small_spec(small[0]), small[0].parent, tmp_path / "s.npz"))
    assert ds.X_train.shape == (500, 3, 32, 32) and ds.classes[9] == "truck"
    assert np.bincount(ds.y_train).tolist() == [50] * 10


def test_arrays_are_the_archives_images(small, tmp_path):
    """synthetic.arrays (what make bench uses) holds what the prepared archive holds."""
    prepared = np.load(datasets.prepare(small_spec(small[0]), small[0].parent, tmp_path / "s.npz"))
    x_train, y_train, x_test, y_test = synthetic.arrays(seed=0, rows=100)
    np.testing.assert_array_equal(x_train, prepared["x_train"])
    np.testing.assert_array_equal(y_train, prepared["y_train"])
    np.testing.assert_array_equal(x_test, prepared["x_test"])
    np.testing.assert_array_equal(y_test, prepared["y_test"])


def _one_nn(x_train, y_train, x_test):
    x_train = x_train.reshape(len(x_train), -1).astype(np.float64)
    x_test = x_test.reshape(len(x_test), -1).astype(np.float64)
    d = (x_train**2).sum(1)[None] - 2 * x_test @ x_train.T
    return y_train[d.argmin(1)]


def test_class_structure_neither_chance_nor_perfect():
    protos = synthetic.prototypes(0)
    parts = [synthetic.batch(i, 0, 1000, protos) for i in (0, 1, 5)]
    x_train = np.concatenate([parts[0][0], parts[1][0]])
    y_train = np.array(parts[0][1] + parts[1][1])
    x_test, y_test = parts[2][0][:500], np.array(parts[2][1][:500])
    acc = (_one_nn(x_train, y_train, x_test) == y_test).mean()
    assert 0.2 < acc < 0.6, acc  # 2,000 training images; the full 50,000 give more


@pytest.mark.slow
def test_full_size_matches_its_declaration(tmp_path):
    path = synthetic.write_archive(tmp_path)
    declared = datasets.REGISTRY["cifar10-synthetic"].files[synthetic.ARCHIVE]
    data = path.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (declared.size, declared.sha256)
