"""Parsers, prepare/load and subsets on hand-built fixtures, and real MNIST when a mirror has it."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle

import numpy as np
import pytest
from fixtures_data import (
    CIFAR_ARCHIVE,
    CIFAR_TRAIN,
    MNIST_NAMES,
    cifar_batch_bytes,
    cifar_rows,
    idx_bytes,
    remote_file,
    spec_for,
    tiny_prepared_npz,
    write_cifar10_raw,
    write_cifar_archive,
    write_idx,
    write_mnist_raw,
)

from memnet import datasets
from memnet import io as memnet_io
from memnet.datasets import load, prepare, read_cifar10_archive, read_idx, subset

# ---- IDX ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_images_and_labels(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 0, 255], dtype=np.uint8)
    got_images = read_idx(write_idx(tmp_path / "img", images, compress))
    got_labels = read_idx(write_idx(tmp_path / "lab", labels, compress))
    assert got_images.dtype == np.uint8 and got_images.shape == (2, 3, 4)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_idx_header_is_big_endian(tmp_path):
    # Hand-written header: magic 0x00000803, dims 1, 2, 2 -- then four pixels.
    raw = bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 10, 20, 30, 40])
    (tmp_path / "hand").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "hand"), [[[10, 20], [30, 40]]])


def test_read_idx_bad_magic(tmp_path):
    path = write_idx(tmp_path / "bad.gz", np.zeros((2, 2, 2), np.uint8), magic=0x00000D03)
    with pytest.raises(ValueError, match=r"bad\.gz.*magic number 0x00000d03"):
        read_idx(path)


@pytest.mark.parametrize("cut", [1, 5, 30])
def test_read_idx_truncated_data(tmp_path, cut):
    raw = idx_bytes(np.ones((3, 4, 4), np.uint8))
    (tmp_path / "short").write_bytes(raw[:-cut])
    with pytest.raises(ValueError, match=r"short: IDX data length .* truncated or corrupt"):
        read_idx(tmp_path / "short")


def test_read_idx_extra_bytes_and_short_header(tmp_path):
    (tmp_path / "long").write_bytes(idx_bytes(np.ones(5, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="does not match header dims"):
        read_idx(tmp_path / "long")
    (tmp_path / "stub").write_bytes(idx_bytes(np.ones((2, 2, 2), np.uint8))[:10])
    with pytest.raises(ValueError, match="header truncated"):
        read_idx(tmp_path / "stub")


def test_read_idx_truncated_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.ones((50, 28, 28), np.uint8)))
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz: cannot read IDX"):
        read_idx(tmp_path / "cut.gz")


# ---- MNIST prepare / load -------------------------------------------------------------------


@pytest.fixture
def mnist_raw(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    arrays = write_mnist_raw(raw, n_train=30, n_test=12)
    monkeypatch.setitem(datasets.REGISTRY, "mnist", spec_for("mnist", raw, 30, 12))
    return raw, arrays


def test_prepare_and_load_mnist_fixture(tmp_path, mnist_raw):
    raw, arrays = mnist_raw
    out = prepare("mnist", raw, tmp_path / "out" / "mnist.npz")
    ds = load(out)
    assert ds.name == "mnist" and ds.classes == [str(d) for d in range(10)]
    assert ds.X_train.dtype == np.float32 and ds.X_train.shape == (30, 1, 28, 28)
    assert ds.X_test.shape == (12, 1, 28, 28)
    np.testing.assert_allclose(ds.X_train[:, 0], arrays["train_images"] / 255.0, atol=1e-7)
    np.testing.assert_allclose(ds.X_test[:, 0], arrays["test_images"] / 255.0, atol=1e-7)
    assert ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])
    with np.load(out) as npz:
        sources = json.loads(str(npz["sources"]))
        assert npz["x_train"].dtype == np.uint8
    expected = {n: hashlib.sha256((raw / n).read_bytes()).hexdigest() for n in MNIST_NAMES.values()}
    assert sources == expected
    assert [p.name for p in out.parent.iterdir()] == ["mnist.npz"]  # no temp file left


def test_prepare_refuses_raw_file_with_wrong_checksum(tmp_path, mnist_raw):
    raw, _ = mnist_raw
    path = raw / MNIST_NAMES["test_labels"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError) as info:
        prepare("mnist", raw, tmp_path / "mnist.npz")
    message = str(info.value)
    assert message.startswith(f"{path}: sha256 ")
    # the pipeline never fetches a file it has again: the message says to delete it
    assert f"rm {path}" in message and "run snakemake again" in message
    assert f"memnet fetch --dataset mnist --file {path.name} --out {path}" in message
    assert not (tmp_path / "mnist.npz").exists()


def test_prepare_checks_image_count(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    write_mnist_raw(raw, n_train=30, n_test=12)
    monkeypatch.setitem(datasets.REGISTRY, "mnist", spec_for("mnist", raw, 31, 12))
    with pytest.raises(
        ValueError, match=r"has 30 train images, but the declaration says n_train: 31"
    ):
        prepare("mnist", raw, tmp_path / "mnist.npz")


def test_prepare_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; known: cifar10, .*, mnist"):
        prepare("svhn", tmp_path, tmp_path / "x.npz")


# ---- CIFAR-10 -------------------------------------------------------------------------------


def test_cifar_pixel_layout(tmp_path):
    # One known pixel per image: value 200 at (c=2, h=5, w=17) of image 1 of the test batch.
    rows = np.zeros((3, 3072), np.uint8)
    rows[1, 2 * 1024 + 5 * 32 + 17] = 200
    members = {n: cifar_batch_bytes(np.zeros((3, 3072), np.uint8), [0, 1, 2]) for n in CIFAR_TRAIN}
    members["test_batch"] = cifar_batch_bytes(rows, [9, 8, 7])
    path = write_cifar_archive(tmp_path / CIFAR_ARCHIVE, members)
    x_train, y_train, x_test, y_test = read_cifar10_archive(path, remote_file(path))
    assert x_train.shape == (15, 3, 32, 32) and x_test.shape == (3, 3, 32, 32)
    assert x_test[1, 2, 5, 17] == 200 and x_test.sum() == 200
    np.testing.assert_array_equal(y_test, [9, 8, 7])
    assert y_train.dtype == np.int64 and y_train.tolist() == [0, 1, 2] * 5


def test_prepare_and_load_cifar_fixture(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    expect = write_cifar10_raw(raw, rows_per_batch=4)
    monkeypatch.setitem(datasets.REGISTRY, "cifar10", spec_for("cifar10", raw, 20, 4))
    ds = load(prepare("cifar10", raw, tmp_path / "cifar10.npz"))
    assert ds.X_train.shape == (20, 3, 32, 32) and ds.X_test.shape == (4, 3, 32, 32)
    assert ds.classes[0] == "airplane" and ds.classes[9] == "truck"
    rng = np.random.default_rng(1)
    for _ in range(50):
        i, c, h, w = rng.integers(20), rng.integers(3), rng.integers(32), rng.integers(32)
        expected = expect["train_rows"][i, c * 1024 + h * 32 + w] / 255
        assert ds.X_train[i, c, h, w] == pytest.approx(expected, abs=1e-7)
    np.testing.assert_array_equal(ds.y_train, expect["train_labels"])
    np.testing.assert_array_equal(ds.y_test, expect["test_labels"])


def _archive_with_test_batch(tmp_path, test_payload):
    members = {n: cifar_batch_bytes(cifar_rows(2, 0), [0, 1]) for n in CIFAR_TRAIN}
    if test_payload is not None:
        members["test_batch"] = test_payload
    return write_cifar_archive(tmp_path / CIFAR_ARCHIVE, members)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (pickle.dumps([1, 2, 3]), "expected a dict with keys b'data' and b'labels'"),
        (pickle.dumps({b"data": cifar_rows(2, 0)}), "expected a dict with keys"),
        (cifar_batch_bytes(cifar_rows(2, 0)[:, :3071], [0, 1]), r"rows of 3071 values do not fit"),
        (cifar_batch_bytes(cifar_rows(2, 0).astype(np.int32), [0, 1]), "must be uint8"),
        (cifar_batch_bytes(cifar_rows(2, 0), [0, 1, 2]), "b'labels' must be 2 integers"),
        (b"not a pickle", "not a readable pickled batch"),
        (None, "no member named test_batch"),
    ],
)
def test_cifar_bad_structure(tmp_path, payload, message):
    path = _archive_with_test_batch(tmp_path, payload)
    with pytest.raises(ValueError, match=message) as info:
        read_cifar10_archive(path, remote_file(path))
    assert CIFAR_ARCHIVE in str(info.value)


def test_cifar_not_an_archive(tmp_path):
    (tmp_path / CIFAR_ARCHIVE).write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match="cannot read the cifar10 archive"):
        read_cifar10_archive(tmp_path / CIFAR_ARCHIVE, remote_file(tmp_path / CIFAR_ARCHIVE))


# ---- load validation ------------------------------------------------------------------------


def test_load_rejects_bad_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz: unreadable prepared dataset.*rm .*junk\.npz"):
        load(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((1, 1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"partial\.npz: missing keys \['name', 'y_train'"):
        load(tmp_path / "partial.npz")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("x_train", np.zeros((4, 1, 28, 28), np.float32), "x_train must be uint8"),
        ("x_test", np.zeros((2, 28, 28), np.uint8), "x_test must be uint8"),
        ("x_test", np.zeros((2, 3, 28, 28), np.uint8), "does not match x_train"),
        ("y_train", np.zeros(3, np.int64), r"y_train must be int64 of shape \(4,\)"),
        ("y_test", np.array([0, 10]), "labels outside 0..9"),
    ],
)
def test_load_rejects_bad_arrays(tmp_path, key, value, message):
    arrays = {
        "x_train": np.zeros((4, 1, 28, 28), np.uint8),
        "y_train": np.zeros(4, np.int64),
        "x_test": np.zeros((2, 1, 28, 28), np.uint8),
        "y_test": np.zeros(2, np.int64),
        "name": np.str_("mnist"),
        "classes": np.array([str(d) for d in range(10)]),
        "sources": np.str_("{}"),
        "image_shape": np.array([1, 28, 28]),
        "digest": np.str_("0" * 64),
    }
    arrays[key] = value
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load(tmp_path / "bad.npz")


def test_tiny_prepared_npz_loads(tmp_path):
    ds = load(tiny_prepared_npz(tmp_path / "tiny.npz", "cifar10", n_train=40, n_test=20))
    assert ds.X_train.shape == (40, 3, 32, 32) and ds.image_shape == (3, 32, 32)
    assert np.bincount(ds.y_train).tolist() == [4] * 10


# ---- subsets --------------------------------------------------------------------------------


def _toy_dataset(counts, n_test=30):
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(5).shuffle(y)
    x = np.arange(len(y), dtype=np.float32)[:, None, None, None] + y[:, None, None, None] / 10
    yt = np.arange(n_test) % len(counts)
    xt = np.zeros((n_test, 1, 1, 1), np.float32)
    return datasets.Dataset("toy", x, y, xt, yt, [str(k) for k in range(len(counts))])


@pytest.mark.parametrize("n", [1, 7, 50, 133, 400])
def test_subset_keeps_class_proportions(n):
    counts = np.array([300, 60, 25, 15])
    ds = _toy_dataset(counts)
    sub = subset(ds, n_train=n, seed=3)
    got = np.bincount(sub.y_train, minlength=len(counts))
    assert got.sum() == n
    assert np.all(np.abs(got - n * counts / counts.sum()) < 1.0 + 1e-9)
    # rows stay with their labels and are drawn without repetition
    np.testing.assert_allclose(np.round(sub.X_train.ravel() % 1 * 10), sub.y_train)
    assert len(np.unique(sub.X_train.ravel())) == n


def test_subset_is_seeded_and_nested():
    ds = _toy_dataset([300, 60, 25, 15])
    a, b = subset(ds, 100, seed=1), subset(ds, 100, seed=1)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, subset(ds, 100, seed=2).X_train)
    small = set(subset(ds, 40, seed=1).X_train.ravel())
    assert small <= set(a.X_train.ravel())
    assert not np.all(np.diff(a.X_train.ravel()) > 0)  # a shuffled order, not the file order


def test_subset_none_keeps_split_and_rejects_too_many():
    ds = _toy_dataset([30, 30])
    sub = subset(ds, n_test=10, seed=0)
    assert sub.X_train is ds.X_train and np.bincount(sub.y_test).tolist() == [5, 5]
    with pytest.raises(ValueError, match="cannot draw 61 items from 60"):
        subset(ds, n_train=61)


# ---- real MNIST -----------------------------------------------------------------------------


def test_real_mnist_counts(tmp_path, mirror):
    raw = mirror / "mnist"
    if not all((raw / name).is_file() for name in MNIST_NAMES.values()):
        pytest.skip(f"MNIST files not all present in {raw}")
    ds = load(prepare("mnist", raw, tmp_path / "mnist.npz"))
    assert ds.X_train.shape == (60000, 1, 28, 28) and ds.X_test.shape == (10000, 1, 28, 28)
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() == 1.0
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(ds.y_train).tolist() == train_counts
    assert np.bincount(ds.y_test).tolist() == test_counts


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"nothing\.gz: cannot read IDX file"):
        read_idx(tmp_path / "nothing.gz")


# ---- hardening: corrupt prepared files, temp files, unverified archives, messages ----------


@pytest.fixture
def prepared(tmp_path, mnist_raw):
    raw, _ = mnist_raw
    return prepare("mnist", raw, tmp_path / "data" / "mnist.npz")


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_load_names_a_corrupt_prepared_file_and_the_fix(prepared, damage):
    data = bytearray(prepared.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 3] ^= 0x55  # inside the compressed x_train
    else:
        data = b""
    prepared.write_bytes(bytes(data))
    with pytest.raises(ValueError) as info:
        load(prepared)
    message = str(info.value)
    assert message.startswith(f"{prepared}: ") and "corrupt" in message
    assert message.endswith(
        f"run snakemake again, which prepares it again from the verified raw files: rm {prepared}"
    )


def test_load_checks_the_recorded_digest(prepared):
    """Arrays changed after `prepare` (the zip itself intact) are caught by the digest."""
    with np.load(prepared) as npz:
        arrays = dict(npz)
    arrays["x_train"] = arrays["x_train"].copy()
    arrays["x_train"][0, 0, 0, 0] ^= 1
    np.savez_compressed(prepared, **arrays)
    with pytest.raises(ValueError, match=r"do not match the digest recorded when it was prepared"):
        load(prepared)


def test_read_info_gives_classes_and_image_shape(prepared):
    info = datasets.read_info(prepared)
    assert info.name == "mnist" and info.classes == tuple(str(d) for d in range(10))
    assert info.image_shape == (1, 28, 28) and (info.n_train, info.n_test) == (30, 12)
    with np.load(prepared) as npz:  # what code without memnet reads
        assert npz["image_shape"].tolist() == [1, 28, 28] and npz["classes"][3] == "3"


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_prepare_removes_temp_files_of_killed_writers(tmp_path, mnist_raw):
    import os
    import time

    raw, _ = mnist_raw
    out = tmp_path / "data" / "mnist.npz"
    out.parent.mkdir()
    host = memnet_io._host()
    dead = out.parent / f".mnist.npz.{host}-{_dead_pid()}-00ff.part"
    alive = out.parent / f".mnist.npz.{host}-{os.getpid()}-00ff.part"  # a writer still running
    old = out.parent / ".mnist.npz.otherhost-12-00ff.part"  # another host's, untouched for days
    other = out.parent / f".other.npz.{host}-{_dead_pid()}-00ff.part"  # not this output's
    for part in (dead, alive, old, other):
        part.write_bytes(b"half")
    past = time.time() - 3 * 86400
    os.utime(old, (past, past))
    prepare("mnist", raw, out)
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        ["mnist.npz", alive.name, other.name]
    )


def test_write_error_names_the_output_not_its_temp_file(tmp_path, mnist_raw, monkeypatch):
    import errno

    raw, _ = mnist_raw
    out = tmp_path / "data" / "mnist.npz"

    def fail(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(src), str(dst))

    monkeypatch.setattr(memnet_io.os, "replace", fail)
    with pytest.raises(OSError) as info:
        prepare("mnist", raw, out)
    assert str(info.value) == f"[Errno {errno.EXDEV}] cannot write {out}: Invalid cross-device link"
    assert ".part" not in str(info.value)
    assert list(out.parent.iterdir()) == []


def test_disk_full_names_the_output(tmp_path, mnist_raw):
    """A write that fails (here: past RLIMIT_FSIZE, as on a full disk) names the real output."""
    import resource
    import signal
    import subprocess
    import sys

    raw, _ = mnist_raw
    out = tmp_path / "data" / "mnist.npz"
    decl = json.dumps(datasets.REGISTRY["mnist"].declaration())

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    cmd = [sys.executable, "-m", "memnet.cli", "prepare", "--dataset", "mnist"]
    cmd += ["--raw-dir", str(raw), "--out", str(out), "--declaration", decl]
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"memnet prepare: error: [Errno 27] cannot write {out}: File too large" in proc.stderr
    assert list(out.parent.iterdir()) == []


class _Boom:
    def __reduce__(self):
        import os

        return (os.mkdir, (str(self.target),))


def test_cifar_archive_is_verified_before_anything_is_unpickled(tmp_path):
    target = tmp_path / "pwned"
    _Boom.target = target
    members = {n: cifar_batch_bytes(cifar_rows(2, 0), [0, 1]) for n in CIFAR_TRAIN}
    members["test_batch"] = pickle.dumps({b"data": _Boom(), b"labels": [0]}, protocol=2)
    path = write_cifar_archive(tmp_path / CIFAR_ARCHIVE, members)
    # not the declared archive: refused before any member is read
    with pytest.raises(
        ValueError, match=r"not the declared cifar10 archive .* refusing to unpickle"
    ):
        read_cifar10_archive(path)
    # declared (a caller vouches for its checksum): the unpickler still refuses to run code
    with pytest.raises(
        ValueError,
        match=r"test_batch: not a readable pickled batch \(refusing to load posix\.mkdir",
    ):
        read_cifar10_archive(path, remote_file(path))
    assert not target.exists()


def test_a_prepared_file_stands_in_unless_made_from_the_published_files(tmp_path):
    x, y = np.zeros((2, 3, 32, 32), np.uint8), np.array([0, 1])
    classes = datasets.REGISTRY["cifar10"].classes
    published = {n: f.sha256 for n, f in datasets.REGISTRY["cifar10"].files.items()}
    synthetic = {n: f.sha256 for n, f in datasets.REGISTRY["cifar10-synthetic"].files.items()}
    real = datasets.write_npz(tmp_path / "a.npz", "cifar10", x, y, x, y, classes, published)
    assert datasets.stand_in_reason(real) == ("cifar10", None)
    fake = datasets.write_npz(tmp_path / "b.npz", "cifar10", x, y, x, y, classes, synthetic)
    name, why = datasets.stand_in_reason(fake)
    assert name == "cifar10" and "not made from the published files of cifar10" in why
    own = datasets.write_npz(tmp_path / "c.npz", "shapes", x, y, x, y, classes, synthetic)
    assert datasets.stand_in_reason(own) == ("shapes", None)  # not shipped: nothing to stand in for
