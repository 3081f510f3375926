"""Readers of the raw formats a declaration may name: IDX (MNIST and its kin), CIFAR's python
pickles, and a user's own .npz of four arrays."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import logging
import os
import pickle
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from memnet.datasets.catalogue import REGISTRY, ROLES, DatasetSpec, RemoteFile
from memnet.datasets.fetch import _mismatch, _refetch_hint

log = logging.getLogger(__name__)

IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain): uint8 images (n, rows, cols) or labels (n,)."""
    path = Path(path)
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
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


# The globals a CIFAR batch pickle may name: numpy's array and dtype reconstructors (of numpy 1
# and 2), and the helper Python 3 uses for bytes in protocol 2. Anything else is refused.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} (a CIFAR batch holds only a dict of numpy "
                "arrays, lists, numbers and strings)"
            )
        return super().find_class(module, name)


def read_cifar_archive(
    path: str | os.PathLike, spec: DatasetSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test from a CIFAR python tar.gz; x uint8 (n, C, H, W).

    The archive is read into memory and checked against the size and sha256 that ``spec``
    declares before any member is unpickled; members are unpickled by an unpickler that accepts
    numpy arrays and plain data only.
    """
    path = Path(path)
    name, expected = spec.file_of("archive")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ValueError(f"{path}: cannot read the {spec.name} archive ({err})") from err
    if reason := _mismatch(len(raw), hashlib.sha256(raw).hexdigest(), expected):
        raise ValueError(
            f"{path}: {reason}: not the declared {spec.name} archive {name}; refusing to "
            f"unpickle it. {_refetch_hint(path, spec)}"
        )
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            parts = {}
            for part in ("train", "test"):
                xs, ys = [], []
                for member in spec.members[part]:
                    if member not in members:
                        raise ValueError(f"{path}: no member named {member} in the archive")
                    with tar.extractfile(members[member]) as f:
                        x, y = _read_cifar_batch(f.read(), f"{path}:{member}", spec)
                    xs.append(x)
                    ys.append(y)
                parts[part] = np.concatenate(xs), np.concatenate(ys)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: cannot read the {spec.name} archive ({err})") from err
    return (*parts["train"], *parts["test"])


def read_cifar10_archive(
    path: str | os.PathLike, expected: RemoteFile | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The CIFAR-10 python archive (checked against ``expected``, by default the declared one)."""
    spec = REGISTRY["cifar10"]
    if expected is not None:
        spec = dataclasses.replace(spec, files={spec.roles["archive"]: expected})
    return read_cifar_archive(path, spec)


def _read_cifar_batch(raw: bytes, where: str, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    # encoding="bytes" reads Python 2 pickles (the canonical archives) as they are.
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:
        raise ValueError(f"{where}: not a readable pickled batch ({err})") from err
    label_key = spec.label_key.encode()
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(
            f"{where}: expected a dict with keys b'data' and {label_key!r} (label_key "
            f"{spec.label_key}), got {keys}"
        )
    data, labels = batch[b"data"], batch[label_key]
    c, h, w = spec.image_shape
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2):
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise ValueError(
            f"{where}: b'data' must be uint8 of shape (n, {c * h * w}), got {dtype} {shape}"
        )
    if data.shape[1] != c * h * w:
        raise ValueError(
            f"{where}: rows of {data.shape[1]} values do not fit the declared image_shape "
            f"{list(spec.image_shape)} ({c * h * w} values per image)"
        )
    rows = len(data)
    labels = np.asarray(labels)
    if labels.shape != (rows,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: {label_key!r} must be {rows} integers, got {labels.shape}")
    # Each row holds the red plane, then green, then blue, each H x W row-major.
    return data.reshape(rows, c, h, w), labels.astype(np.int64)


def _parse_idx(raw_dir: Path, spec: DatasetSpec):
    arrays = {role: read_idx(raw_dir / spec.roles[role]) for role in ROLES["idx"]}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        where = raw_dir / spec.roles[f"{part}_images"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{raw_dir}: {spec.name} {part} images {images.shape} and labels {labels.shape} "
                "disagree"
            )
        if (1, *images.shape[1:]) != spec.image_shape:
            raise ValueError(
                f"{where}: the images are {images.shape[1]}x{images.shape[2]} greyscale "
                f"(image_shape [1, {images.shape[1]}, {images.shape[2]}]), but the declaration "
                f"says image_shape {list(spec.image_shape)}"
            )
        arrays[f"{part}_images"] = images[:, None, :, :]
        arrays[f"{part}_labels"] = labels.astype(np.int64)
    return (
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
    )


def _parse_cifar(raw_dir: Path, spec: DatasetSpec):
    return read_cifar_archive(raw_dir / spec.roles["archive"], spec)


NPZ_INPUT_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _parse_npz(raw_dir: Path, spec: DatasetSpec):
    path = raw_dir / spec.roles["arrays"]
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_INPUT_KEYS if k not in npz.files]
            if missing:
                raise ValueError(
                    f"{path}: missing arrays {missing}; a dataset .npz holds x_train, y_train, "
                    f"x_test, y_test (it has {sorted(npz.files)})"
                )
            arrays = {k: npz[k] for k in NPZ_INPUT_KEYS}
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{path}: cannot read the .npz ({err})") from err
    c, h, w = spec.image_shape
    out = []
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8:
            raise ValueError(
                f"{path}: x_{part} must be uint8 pixels 0..255, got {x.dtype} "
                "(convert with x.astype(numpy.uint8) or (x * 255).round().astype(numpy.uint8))"
            )
        if x.ndim == 4 and x.shape[1:] == (c, h, w):
            pass
        elif x.ndim == 4 and x.shape[1:] == (h, w, c):
            x = x.transpose(0, 3, 1, 2)  # channels last
        elif x.ndim == 3 and c == 1 and x.shape[1:] == (h, w):
            x = x[:, None]
        else:
            raise ValueError(
                f"{path}: x_{part} has shape {x.shape}, which does not fit the declared "
                f"image_shape {list(spec.image_shape)}: expected (n, {c}, {h}, {w}) or "
                f"(n, {h}, {w}, {c})" + (f" or (n, {h}, {w})" if c == 1 else "")
            )
        if not np.issubdtype(y.dtype, np.integer) or y.shape != (len(x),):
            raise ValueError(
                f"{path}: y_{part} must be {len(x)} integer labels, got {y.dtype} {y.shape}"
            )
        out += [np.ascontiguousarray(x), y.astype(np.int64)]
    return tuple(out)


_PARSERS = {"idx": _parse_idx, "cifar-python": _parse_cifar, "npz": _parse_npz}
