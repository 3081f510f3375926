"""Datasets: a registry of verified raw files, fetching, conversion to one .npz, and loading.

Raw files are accepted only when their size and sha256 match the registry. ``prepare`` turns them
into one compressed .npz (uint8 images (n, C, H, W), int64 labels, class names, and the sha256 of
the raw files); ``load`` reads that back as float32 images in [0, 1].
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import json
import logging
import os
import pickle
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memnet.io import atomic_path

log = logging.getLogger(__name__)

MIRROR_ENV = "MEMNET_DATA_MIRROR"
MIRROR_CONFIG_KEY = "data.mirror"
CHUNK_BYTES = 1 << 20
PROGRESS_MIN_BYTES = 4 << 20  # downloads at least this big report progress every 10%
RETRY_DELAY_S = 2.0


@dataclass(frozen=True)
class RemoteFile:
    size: int  # bytes
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: dict[str, RemoteFile]
    urls: tuple[str, ...]  # base URLs, tried in order; the file name is appended
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (C, H, W)
    n_train: int
    n_test: int


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"

REGISTRY: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files={
            MNIST_FILES["train_images"]: RemoteFile(
                9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
            ),
            MNIST_FILES["train_labels"]: RemoteFile(
                28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
            ),
            MNIST_FILES["test_images"]: RemoteFile(
                1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
            ),
            MNIST_FILES["test_labels"]: RemoteFile(
                4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
            ),
        },
        urls=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        classes=tuple(str(d) for d in range(10)),
        image_shape=(1, 28, 28),
        n_train=60000,
        n_test=10000,
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        files={
            CIFAR10_ARCHIVE: RemoteFile(
                170498071, "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
            ),
        },
        urls=("https://www.cs.toronto.edu/~kriz/",),
        classes=(
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        image_shape=(3, 32, 32),
        n_train=50000,
        n_test=10000,
    ),
}


class DatasetUnavailable(RuntimeError):
    """No source gave a copy of a raw dataset file with the registered size and sha256."""


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray  # float32 (n, C, H, W) in [0, 1]
    y_train: np.ndarray  # int64 (n,)
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.X_train.shape[1:])


def get_spec(dataset: str) -> DatasetSpec:
    if dataset not in REGISTRY:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[dataset]


# ---------------------------------------------------------------------------------------------
# Verification and fetching


def file_digest(path: str | os.PathLike) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of a file, read in chunks."""
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()


def _mismatch(size: int, sha256: str, expected: RemoteFile) -> str | None:
    """Why (size, sha256) is not the expected file, or None when it is."""
    if size != expected.size:
        return f"size {size} bytes, expected {expected.size}"
    if sha256 != expected.sha256:
        return f"sha256 {sha256}, expected {expected.sha256}"
    return None


def verify_file(path: str | os.PathLike, expected: RemoteFile) -> str | None:
    """Why the file at ``path`` is not the expected one (missing, wrong size or hash), or None."""
    path = Path(path)
    if not path.is_file():
        return "not found"
    if path.stat().st_size != expected.size:
        return f"size {path.stat().st_size} bytes, expected {expected.size}"
    return _mismatch(*file_digest(path), expected)


class _SourceFailed(Exception):
    def __init__(self, reason: str, transient: bool):
        super().__init__(reason)
        self.transient = transient


def _copy_from_mirror(src: Path, tmp: Path, expected: RemoteFile) -> None:
    if not src.is_file():
        raise _SourceFailed("not found", transient=False)
    if src.stat().st_size != expected.size:
        raise _SourceFailed(
            f"size {src.stat().st_size} bytes, expected {expected.size}", transient=False
        )
    sha = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(CHUNK_BYTES):
                fout.write(chunk)
                sha.update(chunk)
                size += len(chunk)
    except OSError as err:
        raise _SourceFailed(f"cannot copy ({err})", transient=False) from err
    if reason := _mismatch(size, sha.hexdigest(), expected):
        raise _SourceFailed(reason, transient=False)


def _download(url: str, tmp: Path, expected: RemoteFile, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            if announced is not None and int(announced) != expected.size:
                raise _SourceFailed(
                    f"server offers {announced} bytes, expected {expected.size}", transient=False
                )
            sha = hashlib.sha256()
            size = 0
            show_progress = expected.size >= PROGRESS_MIN_BYTES
            next_tenth = 1
            with open(tmp, "wb") as out:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    sha.update(chunk)
                    size += len(chunk)
                    if size > expected.size:
                        raise _SourceFailed(
                            f"more than the expected {expected.size} bytes", transient=False
                        )
                    while show_progress and size * 10 >= next_tenth * expected.size:
                        print(
                            f"  {url}: {10 * next_tenth}% "
                            f"({size / 1e6:.1f} of {expected.size / 1e6:.1f} MB)",
                            file=sys.stderr,
                            flush=True,
                        )
                        next_tenth += 1
    except urllib.error.HTTPError as err:
        raise _SourceFailed(f"HTTP {err.code} {err.reason}", transient=err.code >= 500) from err
    except urllib.error.URLError as err:
        raise _SourceFailed(f"cannot connect ({err.reason})", transient=True) from err
    except TimeoutError as err:
        raise _SourceFailed(f"timed out after {timeout} s", transient=True) from err
    except (http.client.HTTPException, OSError) as err:
        reason = f"transfer failed ({type(err).__name__}: {err})"
        raise _SourceFailed(reason, transient=True) from err
    if size < expected.size:
        raise _SourceFailed(f"truncated: got {size} of {expected.size} bytes", transient=True)
    if reason := _mismatch(size, sha.hexdigest(), expected):
        raise _SourceFailed(reason, transient=False)


def resolve_mirror(mirror: str | os.PathLike | None) -> Path | None:
    """The mirror directory: the argument, else $MEMNET_DATA_MIRROR, else None."""
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    return Path(mirror) if mirror else None


def fetch_file(
    dataset: str,
    filename: str,
    dest: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    timeout: float = 30,
    retries: int = 1,
) -> Path:
    """Get a verified copy of one raw file of ``dataset`` at ``dest`` (a file, or a directory).

    Sources in order: ``<mirror>/<dataset>/<filename>``, ``<mirror>/<filename>``, then each
    registered URL. A copy is accepted only if its size and sha256 match the registry. A ``dest``
    that already verifies is kept; a corrupt one is reported and replaced.
    """
    spec = get_spec(dataset)
    if filename not in spec.files:
        raise ValueError(
            f"{dataset} has no file {filename!r}; its files: {', '.join(sorted(spec.files))}"
        )
    expected = spec.files[filename]
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / filename
    if dest.exists():
        reason = verify_file(dest, expected)
        if reason is None:
            return dest
        log.warning("%s exists but is corrupt (%s); fetching it again", dest, reason)

    mirror_dir = resolve_mirror(mirror)
    sources: list[tuple[str, str]] = []  # (kind, location)
    if mirror_dir is not None:
        for candidate in (mirror_dir / dataset / filename, mirror_dir / filename):
            if candidate.resolve() != dest.resolve():  # dest itself is no source
                sources.append(("mirror", str(candidate)))
    sources += [("url", base + filename) for base in spec.urls]

    failures: list[str] = []
    if mirror_dir is None:
        failures.append(f"mirror: none set (${MIRROR_ENV} or config key {MIRROR_CONFIG_KEY})")
    with atomic_path(dest) as tmp:
        for kind, location in sources:
            attempts = 1 if kind == "mirror" else 1 + max(0, retries)
            for attempt in range(1, attempts + 1):
                try:
                    if kind == "mirror":
                        _copy_from_mirror(Path(location), tmp, expected)
                    else:
                        log.info("downloading %s", location)
                        _download(location, tmp, expected, timeout)
                except _SourceFailed as err:
                    if err.transient and attempt < attempts:
                        log.info("%s: %s; retrying", location, err)
                        time.sleep(RETRY_DELAY_S)
                        continue
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    failures.append(f"{kind} {location}: {err}{tries}")
                    break
                else:
                    log.info("%s: verified copy from %s", dest, location)
                    return dest  # leaving the block renames tmp onto dest
        dest.unlink(missing_ok=True)  # a corrupt old copy must not pass for the real file
        raise DatasetUnavailable(_unavailable_message(spec, filename, mirror_dir, failures))


def _unavailable_message(
    spec: DatasetSpec, filename: str, mirror_dir: Path | None, failures: list[str]
) -> str:
    expected = spec.files[filename]
    target = (mirror_dir or Path("<mirror>")) / spec.name / filename
    others = [name for name in REGISTRY if name != spec.name]
    lines = [
        f"Could not get a verified copy of {spec.name}/{filename} "
        f"({expected.size:,} bytes, sha256 {expected.sha256}).",
        "Sources tried:",
        *(f"  - {failure}" for failure in failures),
        "Remedies:",
        f"  1. Put the file in the mirror directory as {target} (the mirror directory is set "
        f"by the environment variable {MIRROR_ENV} or the config key {MIRROR_CONFIG_KEY}).",
        f"  2. Or leave {spec.name} out of the run: --config 'datasets=[{','.join(others)}]'.",
    ]
    return "\n".join(lines)


def fetch_dataset(
    dataset: str, raw_dir: str | os.PathLike, mirror: str | os.PathLike | None = None, **kwargs
) -> list[Path]:
    """Fetch every raw file of ``dataset`` into ``raw_dir``; kwargs go to fetch_file."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    return [
        fetch_file(dataset, name, raw_dir / name, mirror=mirror, **kwargs)
        for name in get_spec(dataset).files
    ]


# ---------------------------------------------------------------------------------------------
# Parsers

IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain): uint8 images (n, rows, cols) or labels (n,)."""
    path = Path(path)
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read IDX file ({err})") from err
    if len(raw) < 4:
        raise ValueError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic == IDX_IMAGES_MAGIC:
        ndim = 3
    elif magic == IDX_LABELS_MAGIC:
        ndim = 1
    else:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{magic:08x}; expected 0x{IDX_IMAGES_MAGIC:08x} "
            f"(uint8 images) or 0x{IDX_LABELS_MAGIC:08x} (uint8 labels)"
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(f"{path}: IDX header truncated ({len(raw)} bytes, need {header_len})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(raw) - header_len
    if actual != expected:
        raise ValueError(
            f"{path}: IDX data length {actual} bytes does not match header dims {dims} "
            f"({expected} bytes); the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_cifar10_archive(
    path: str | os.PathLike, batch_rows: int = 10000
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test from the CIFAR-10 python tar.gz; x uint8 (n, 3, 32, 32)."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            batches = {}
            for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH):
                if name not in members:
                    raise ValueError(f"{path}: no member named {name} in the archive")
                with tar.extractfile(members[name]) as f:
                    batches[name] = _read_cifar_batch(f.read(), f"{path}:{name}", batch_rows)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read CIFAR-10 archive ({err})") from err
    x_train = np.concatenate([batches[n][0] for n in CIFAR10_TRAIN_BATCHES])
    y_train = np.concatenate([batches[n][1] for n in CIFAR10_TRAIN_BATCHES])
    x_test, y_test = batches[CIFAR10_TEST_BATCH]
    return x_train, y_train, x_test, y_test


def _read_cifar_batch(raw: bytes, where: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    # pickle can run code, but this archive is the trusted CIFAR-10 file, checked against its
    # registered sha256 before parsing. encoding="bytes" reads its Python 2 pickles as-is.
    try:
        batch = pickle.loads(raw, encoding="bytes")
    except Exception as err:
        raise ValueError(f"{where}: not a readable pickled batch ({err})") from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{where}: expected a dict with keys b'data' and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.shape == (rows, 3072)):
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise ValueError(
            f"{where}: b'data' must be uint8 of shape ({rows}, 3072), got {dtype} {shape}"
        )
    labels = np.asarray(labels)
    if labels.shape != (rows,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: b'labels' must be {rows} integers, got {labels.shape}")
    # Each row holds the red plane, then green, then blue, each 32x32 row-major.
    return data.reshape(rows, 3, 32, 32), labels.astype(np.int64)


def _parse_mnist(raw_dir: Path, spec: DatasetSpec):
    arrays = {key: read_idx(raw_dir / name) for key, name in MNIST_FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{raw_dir}: MNIST {part} images {images.shape} and labels {labels.shape} disagree"
            )
        arrays[f"{part}_images"] = images[:, None, :, :]
        arrays[f"{part}_labels"] = labels.astype(np.int64)
    return (
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
    )


def _parse_cifar10(raw_dir: Path, spec: DatasetSpec):
    # Each of the five train batches and the test batch holds n_test (10000) images.
    return read_cifar10_archive(raw_dir / CIFAR10_ARCHIVE, batch_rows=spec.n_test)


_PARSERS = {"mnist": _parse_mnist, "cifar10": _parse_cifar10}


# ---------------------------------------------------------------------------------------------
# Prepared .npz: write, prepare, load

NPZ_KEYS = ("name", "x_train", "y_train", "x_test", "y_test", "classes", "sources")


def write_npz(
    out_npz: str | os.PathLike,
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    classes,
    sources: dict[str, str],
) -> Path:
    """Write a prepared dataset atomically as one compressed .npz."""
    out_npz = Path(out_npz)
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            name=np.str_(name),
            x_train=np.ascontiguousarray(x_train, dtype=np.uint8),
            y_train=np.asarray(y_train, dtype=np.int64),
            x_test=np.ascontiguousarray(x_test, dtype=np.uint8),
            y_test=np.asarray(y_test, dtype=np.int64),
            classes=np.array(list(classes), dtype=np.str_),
            sources=np.str_(json.dumps(sources, sort_keys=True)),
        )
    return out_npz


def prepare(dataset: str, raw_dir: str | os.PathLike, out_npz: str | os.PathLike) -> Path:
    """Verify the raw files of ``dataset`` in ``raw_dir`` and convert them into ``out_npz``."""
    spec = get_spec(dataset)
    raw_dir = Path(raw_dir)
    sources = {}
    for filename, expected in spec.files.items():
        if reason := verify_file(raw_dir / filename, expected):
            raise ValueError(
                f"{raw_dir / filename}: {reason}; fetch it again (memnet.datasets.fetch_file) "
                "before preparing"
            )
        sources[filename] = expected.sha256
    x_train, y_train, x_test, y_test = _PARSERS[dataset](raw_dir, spec)
    for part, x, y, n in (
        ("train", x_train, y_train, spec.n_train),
        ("test", x_test, y_test, spec.n_test),
    ):
        if x.shape != (n, *spec.image_shape):
            raise ValueError(
                f"{raw_dir}: {dataset} {part} images have shape {x.shape}, "
                f"expected {(n, *spec.image_shape)}"
            )
        if y.min() < 0 or y.max() >= len(spec.classes):
            raise ValueError(
                f"{raw_dir}: {dataset} {part} labels outside 0..{len(spec.classes) - 1}"
            )
    return write_npz(out_npz, dataset, x_train, y_train, x_test, y_test, spec.classes, sources)


def load(npz_path: str | os.PathLike) -> Dataset:
    """Read a prepared .npz: X float32 (n, C, H, W) in [0, 1], y int64, class names."""
    npz_path = Path(npz_path)
    redo = "prepare it again with memnet.datasets.prepare"
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, EOFError, ValueError) as err:
        raise ValueError(f"{npz_path}: not a readable prepared dataset ({err}); {redo}") from err
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{npz_path}: missing keys {missing}; {redo}")
    classes = [str(c) for c in arrays["classes"]]
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        problem = None
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
            problem = f"x_{part} must be uint8 (n, C, H, W) with C 1 or 3, got {x.dtype} {x.shape}"
        elif x.shape[1:] != arrays["x_train"].shape[1:]:
            problem = f"x_test shape {x.shape} does not match x_train {arrays['x_train'].shape}"
        elif y.dtype != np.int64 or y.shape != (len(x),):
            problem = f"y_{part} must be int64 of shape ({len(x)},), got {y.dtype} {y.shape}"
        elif len(y) and (y.min() < 0 or y.max() >= len(classes)):
            problem = f"y_{part} has labels outside 0..{len(classes) - 1}"
        if problem:
            raise ValueError(f"{npz_path}: {problem}; {redo}")
    return Dataset(
        name=str(arrays["name"]),
        X_train=to_unit_float(arrays["x_train"]),
        y_train=arrays["y_train"],
        X_test=to_unit_float(arrays["x_test"]),
        y_test=arrays["y_test"],
        classes=classes,
    )


def to_unit_float(x: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1] (what load gives)."""
    out = x.astype(np.float32)
    out *= np.float32(1 / 255)
    return out


# ---------------------------------------------------------------------------------------------
# Stratified subsets


def stratified_indices(y: np.ndarray, n: int, seed: int | Sequence[int]) -> np.ndarray:
    """``n`` indices into ``y``, class proportions kept, in a seeded random order.

    Every item gets a random rank; within its class it is taken in rank order, and the classes
    are interleaved by Sainte-Lague priority (r + 1/2) / n_class. The first ``n`` of that order
    keep the proportions within about one item per class, and a smaller subset is always
    contained in a larger one with the same seed.
    """
    y = np.asarray(y)
    if not 0 <= n <= len(y):
        raise ValueError(f"cannot draw {n} items from {len(y)}")
    rank = np.random.default_rng(seed).permutation(len(y))
    by_rank = np.argsort(rank, kind="stable")  # items in random order
    priority = np.empty(len(y), dtype=np.float64)
    for label in np.unique(y):
        members = by_rank[y[by_rank] == label]
        priority[members] = (np.arange(len(members)) + 0.5) / len(members)
    chosen = np.lexsort((rank, priority))[:n]
    return chosen[np.argsort(rank[chosen], kind="stable")]


def subset(
    ds: Dataset, n_train: int | None = None, n_test: int | None = None, seed: int = 0
) -> Dataset:
    """A stratified, seeded subset of ``ds``; None keeps a split whole and in its order."""
    x_train, y_train, x_test, y_test = ds.X_train, ds.y_train, ds.X_test, ds.y_test
    if n_train is not None:
        idx = stratified_indices(ds.y_train, n_train, seed=[seed, 0])
        x_train, y_train = x_train[idx], y_train[idx]
    if n_test is not None:
        idx = stratified_indices(ds.y_test, n_test, seed=[seed, 1])
        x_test, y_test = x_test[idx], y_test[idx]
    return dataclasses.replace(ds, X_train=x_train, y_train=y_train, X_test=x_test, y_test=y_test)
