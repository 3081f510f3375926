"""Tiny dataset fixtures in the exact raw file formats; other tests `from fixtures_data import`.

The writers here build the bytes by hand (struct, pickle, tarfile, gzip) rather than through
memnet.datasets, so parser tests check the parsers against an independent description of the format.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from memnet import datasets

MNIST_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """IDX: big-endian magic (0x0803 images, 0x0801 labels), one big-endian uint32 per dim, data."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = {1: 0x00000801, 3: 0x00000803}[array.ndim]
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes(order="C")


def write_idx(path, array, compress: bool = True, magic: int | None = None) -> Path:
    path = Path(path)
    data = idx_bytes(array, magic)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def mnist_arrays(n_train: int = 30, n_test: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }


def write_mnist_raw(raw_dir, n_train: int = 30, n_test: int = 12, seed: int = 0) -> dict:
    """The four MNIST .gz files in ``raw_dir``; returns the arrays they hold."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    arrays = mnist_arrays(n_train, n_test, seed)
    for key, name in MNIST_NAMES.items():
        write_idx(raw_dir / name, arrays[key])
    return arrays


def cifar_batch_bytes(data, labels, **overrides) -> bytes:
    """One pickled CIFAR batch dict with bytes keys, like the real file read with encoding=bytes."""
    batch = {
        b"batch_label": b"fixture batch",
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"img{i}.png".encode() for i in range(len(labels))],
    }
    batch.update(overrides)
    return pickle.dumps(batch, protocol=2)


def write_cifar_archive(path, members: dict[str, bytes]) -> Path:
    """A tar.gz holding ``members`` under cifar-10-batches-py/, as the real archive does."""
    path = Path(path)
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def cifar_rows(n: int, seed: int) -> np.ndarray:
    """(n, 3072) uint8 rows: red plane, green plane, blue plane, each 32x32 row-major."""
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def write_cifar10_raw(raw_dir, rows_per_batch: int = 4, seed: int = 0) -> dict:
    """A CIFAR-10 style archive with five train batches and one test batch of ``rows_per_batch``."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    members, rows, labels = {}, {}, {}
    for i, name in enumerate([*CIFAR_TRAIN, "test_batch"]):
        rows[name] = cifar_rows(rows_per_batch, seed + i)
        labels[name] = [(i + j) % 10 for j in range(rows_per_batch)]
        members[name] = cifar_batch_bytes(rows[name], labels[name])
    members["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    write_cifar_archive(raw_dir / CIFAR_ARCHIVE, members)
    return {
        "train_rows": np.concatenate([rows[n] for n in CIFAR_TRAIN]),
        "train_labels": np.concatenate([labels[n] for n in CIFAR_TRAIN]),
        "test_rows": rows["test_batch"],
        "test_labels": np.array(labels["test_batch"]),
    }


def remote_file(path) -> datasets.RemoteFile:
    data = Path(path).read_bytes()
    return datasets.RemoteFile(size=len(data), sha256=hashlib.sha256(data).hexdigest())


def spec_for(dataset: str, raw_dir, n_train: int, n_test: int, urls=()) -> datasets.DatasetSpec:
    """The registry entry of ``dataset`` with file sizes and hashes taken from ``raw_dir``."""
    base = datasets.REGISTRY[dataset]
    files = {name: remote_file(Path(raw_dir) / name) for name in base.files}
    return dataclasses.replace(base, files=files, urls=tuple(urls), n_train=n_train, n_test=n_test)


def tiny_prepared_npz(
    path, name: str = "mnist", n_train: int = 100, n_test: int = 50, seed: int = 0
) -> Path:
    """A small, learnable prepared dataset: each class a fixed random pattern plus noise."""
    spec = datasets.REGISTRY[name]
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, (len(spec.classes), *spec.image_shape))

    def draw(n):
        y = np.arange(n) % len(spec.classes)
        rng.shuffle(y)
        noise = rng.integers(-40, 41, (n, *spec.image_shape))
        return np.clip(prototypes[y] + noise, 0, 255).astype(np.uint8), y.astype(np.int64)

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return datasets.write_npz(
        path, name, x_train, y_train, x_test, y_test, spec.classes, {"synthetic": "none"}
    )


# ---- declared fixture datasets, one per format --------------------------------------------------


def file_entry(path) -> dict:
    """A declaration's file entry (name, size, sha256) for a hand-made fixture file."""
    data = Path(path).read_bytes()
    return {"name": Path(path).name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def learnable(n: int, shape, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, *shape) and labels: each class a fixed random pattern plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(1234).integers(0, 256, (n_classes, *shape))
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    noise = rng.integers(-60, 61, (n, *shape))
    return np.clip(prototypes[y] + noise, 0, 255).astype(np.uint8), y.astype(np.int64)


def make_fixture(fmt: str, raw_dir, n_train: int = 200, n_test: int = 60) -> dict:
    """Raw files of a small learnable dataset in format ``fmt`` in ``raw_dir``; its declaration.

    idx: 10 classes of 1x12x12 (gzipped); cifar-python: 4 classes of 3x8x8 in two train batches,
    with fine and coarse labels; npz: 3 classes of 1x10x10 stored channels-last.
    """
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "idx":
        shape, classes = (12, 12), [f"digit{k}" for k in range(10)]
        x_train, y_train = learnable(n_train, shape, 10, 1)
        x_test, y_test = learnable(n_test, shape, 10, 2)
        files = {}
        for role, array in {
            "train_images": x_train,
            "train_labels": y_train,
            "test_images": x_test,
            "test_labels": y_test,
        }.items():
            path = write_idx(raw_dir / f"{role}.idx.gz", array)
            files[role] = file_entry(path)
        extra, image_shape = {}, [1, 12, 12]
    elif fmt == "cifar-python":
        classes, image_shape = ["red", "green", "blue", "grey"], [3, 8, 8]
        x_train, y_train = learnable(n_train, (192,), 4, 3)
        x_test, y_test = learnable(n_test, (192,), 4, 4)
        half = n_train // 2
        members = {}
        for name, (x, y) in {
            "part_a": (x_train[:half], y_train[:half]),
            "part_b": (x_train[half:], y_train[half:]),
            "held_out": (x_test, y_test),
        }.items():
            members[name] = pickle.dumps(
                {
                    b"data": x,
                    b"fine_labels": [int(v) for v in y],
                    b"coarse_labels": [int(v) // 2 for v in y],
                    b"filenames": [b"x.png"] * len(y),
                },
                protocol=2,
            )
        path = write_cifar_archive(raw_dir / "tiny-cifar.tar.gz", members)
        files = {"archive": file_entry(path)}
        extra = {
            "label_key": "fine_labels",
            "members": {"train": ["part_a", "part_b"], "test": ["held_out"]},
        }
    elif fmt == "npz":
        classes, image_shape = ["a", "b", "c"], [1, 10, 10]
        x_train, y_train = learnable(n_train, (10, 10, 1), 3, 5)
        x_test, y_test = learnable(n_test, (10, 10, 1), 3, 6)
        path = raw_dir / "own.npz"
        np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        files = {"arrays": file_entry(path)}
        extra = {}
    else:
        raise ValueError(fmt)
    return {
        "format": fmt,
        "files": files,
        "urls": [],
        "classes": classes,
        "image_shape": image_shape,
        "n_train": n_train,
        "n_test": n_test,
        **extra,
    }
