"""The prepared .npz: uint8 images (n, C, H, W), int64 labels, class names, image shape, the sha256 of
the raw files and a digest of the arrays. ``prepare`` writes it, ``load`` checks that digest and gives
float32 images in [0, 1], ``read_info`` gives the class names and image shape without the images."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memnet.datasets.catalogue import REGISTRY, DatasetSpec
from memnet.datasets.fetch import _as_spec, _refetch_hint, _writing, verify_file
from memnet.datasets.formats import _PARSERS
from memnet.io import atomic_path, remove_stale_parts
from memnet.validation import to_unit_float

log = logging.getLogger(__name__)


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


NPZ_KEYS = (
    "name",
    "x_train",
    "y_train",
    "x_test",
    "y_test",
    "classes",
    "image_shape",
    "sources",
    "digest",
)


def arrays_digest(x_train, y_train, x_test, y_test) -> str:
    """sha256 of the four arrays' bytes (uint8 images, int64 labels), as `prepare` records it."""
    sha = hashlib.sha256()
    for a, dtype in (
        (x_train, np.uint8),
        (y_train, np.int64),
        (x_test, np.uint8),
        (y_test, np.int64),
    ):
        a = np.ascontiguousarray(a, dtype=dtype)
        sha.update(f"{a.dtype.str}{a.shape};".encode())
        sha.update(memoryview(a).cast("B"))
    return sha.hexdigest()


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
    x_train = np.ascontiguousarray(x_train, dtype=np.uint8)
    x_test = np.ascontiguousarray(x_test, dtype=np.uint8)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_test = np.asarray(y_test, dtype=np.int64)
    with atomic_path(out_npz) as tmp, _writing(tmp, out_npz) as f:
        np.savez_compressed(
            f,
            name=np.str_(name),
            x_train=x_train,
            y_train=y_train,
            x_test=x_test,
            y_test=y_test,
            classes=np.array(list(classes), dtype=np.str_),
            image_shape=np.array(x_train.shape[1:], dtype=np.int64),
            sources=np.str_(json.dumps(sources, sort_keys=True)),
            digest=np.str_(arrays_digest(x_train, y_train, x_test, y_test)),
        )
    return out_npz


def prepare(
    dataset: str | DatasetSpec, raw_dir: str | os.PathLike, out_npz: str | os.PathLike
) -> Path:
    """Verify the raw files of ``dataset`` in ``raw_dir`` and convert them into ``out_npz``."""
    spec = _as_spec(dataset)
    raw_dir = Path(raw_dir)
    remove_stale_parts(out_npz)
    sources = {}
    for filename, expected in spec.files.items():
        path = raw_dir / filename
        if reason := verify_file(path, expected):
            raise ValueError(f"{path}: {reason}. {_refetch_hint(path, spec)}")
        sources[filename] = expected.sha256
    x_train, y_train, x_test, y_test = _PARSERS[spec.format](raw_dir, spec)
    for part, x, y, n in (
        ("train", x_train, y_train, spec.n_train),
        ("test", x_test, y_test, spec.n_test),
    ):
        if x.shape[1:] != spec.image_shape:
            raise ValueError(
                f"{raw_dir}: {spec.name} {part} images have shape {x.shape[1:]}, but the "
                f"declaration says image_shape {list(spec.image_shape)}"
            )
        if len(x) != n:
            raise ValueError(
                f"{raw_dir}: {spec.name} has {len(x)} {part} images, but the declaration says "
                f"n_{part}: {n}"
            )
        if len(y) and (y.min() < 0 or y.max() >= len(spec.classes)):
            raise ValueError(
                f"{raw_dir}: {spec.name} {part} labels span {y.min()}..{y.max()}, outside "
                f"0..{len(spec.classes) - 1} (the declaration names {len(spec.classes)} classes)"
            )
    return write_npz(out_npz, spec.name, x_train, y_train, x_test, y_test, spec.classes, sources)


def _redo(npz_path: Path) -> str:
    return (
        f"delete it and run snakemake again, which prepares it again from the verified raw "
        f"files: rm {shlex.quote(str(npz_path))}"
    )


def _read_npz(npz_path: Path, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    if npz_path.is_file() and not zipfile.is_zipfile(npz_path):
        raise ValueError(
            f"{npz_path}: unreadable prepared dataset, truncated or corrupt (not a zip archive, "
            f"as a .npz is); {_redo(npz_path)}"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            missing = [key for key in NPZ_KEYS if key not in npz.files]
            raw = {"x_train", "y_train", "x_test", "y_test"} <= set(npz.files)
            if missing and raw:  # a user's own arrays: prepare them, never delete them
                raise ValueError(
                    f"{npz_path}: raw arrays (x_train, y_train, x_test, y_test), not a prepared "
                    f"dataset (it lacks {missing}). Declare it as a dataset of format npz "
                    "(README, 'Adding a dataset') and give the .npz that `memnet prepare` "
                    "writes from it"
                )
            if missing:
                raise ValueError(
                    f"{npz_path}: missing keys {missing} (written by another version of memnet, "
                    f"or not by `memnet prepare`); {_redo(npz_path)}"
                )
            return {key: npz[key] for key in (keys or npz.files)}
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        if isinstance(err, ValueError) and str(err).startswith(str(npz_path)):
            raise
        raise ValueError(
            f"{npz_path}: unreadable prepared dataset, truncated or corrupt "
            f"({type(err).__name__}: {err}); {_redo(npz_path)}"
        ) from err


def load(npz_path: str | os.PathLike) -> Dataset:
    """Read a prepared .npz: X float32 (n, C, H, W) in [0, 1], y int64, class names.

    The arrays are checked against the digest `prepare` recorded; a truncated or corrupt file
    raises a ValueError naming it and saying how to rebuild it.
    """
    npz_path = Path(npz_path)
    arrays = _read_npz(npz_path)
    classes = [str(c) for c in arrays["classes"]]
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        problem = None
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
            problem = f"x_{part} must be uint8 (n, C, H, W) with C 1 or 3, got {x.dtype} {x.shape}"
        elif x.shape[1:] != arrays["x_train"].shape[1:]:
            problem = f"x_test shape {x.shape} does not match x_train {arrays['x_train'].shape}"
        elif tuple(arrays["image_shape"].tolist()) != x.shape[1:]:
            problem = (
                f"image_shape {arrays['image_shape'].tolist()} does not match x_{part} {x.shape}"
            )
        elif y.dtype != np.int64 or y.shape != (len(x),):
            problem = f"y_{part} must be int64 of shape ({len(x)},), got {y.dtype} {y.shape}"
        elif len(y) and (y.min() < 0 or y.max() >= len(classes)):
            problem = f"y_{part} has labels outside 0..{len(classes) - 1}"
        if problem:
            raise ValueError(f"{npz_path}: {problem}; {_redo(npz_path)}")
    digest = arrays_digest(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"])
    if digest != str(arrays["digest"]):
        raise ValueError(
            f"{npz_path}: its arrays do not match the digest recorded when it was prepared "
            f"(corrupt); {_redo(npz_path)}"
        )
    return Dataset(
        name=str(arrays["name"]),
        X_train=to_unit_float(arrays["x_train"]),
        y_train=arrays["y_train"],
        X_test=to_unit_float(arrays["x_test"]),
        y_test=arrays["y_test"],
        classes=classes,
    )


@dataclass(frozen=True)
class DatasetInfo:
    """What a prepared .npz says about its dataset, without its images."""

    name: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (C, H, W)
    n_train: int
    n_test: int


def stand_in_reason(npz_path: str | os.PathLike) -> tuple[str, str | None]:
    """(dataset, why) for a prepared file: why is None when it was made from the files that
    config/datasets.yaml publishes for its name (or the name is not shipped there), else says
    that the data only stands in for that dataset (the synthetic CIFAR-10 rehearsal, say)."""
    arrays = _read_npz(Path(npz_path), ["name", "sources"])
    name = str(arrays["name"])
    shipped = REGISTRY.get(name)
    if shipped is None:
        return name, None
    made_from = json.loads(str(arrays["sources"]))
    published = {file: f.sha256 for file, f in shipped.files.items()}
    if made_from == published:
        return name, None
    return name, (
        f"this run's {name} was not made from the published files of {name} (their sha256 in "
        f"config/datasets.yaml); it stands in for {name}, as the synthetic rehearsal does, so "
        "its results say nothing of the paper's figure"
    )


def read_info(npz_path: str | os.PathLike) -> DatasetInfo:
    """Name, class names, image shape (C, H, W) and split sizes of a prepared .npz (cheap)."""
    npz_path = Path(npz_path)
    a = _read_npz(npz_path, ("name", "classes", "image_shape", "y_train", "y_test"))
    return DatasetInfo(
        name=str(a["name"]),
        classes=tuple(str(c) for c in a["classes"]),
        image_shape=tuple(int(d) for d in a["image_shape"]),
        n_train=len(a["y_train"]),
        n_test=len(a["y_test"]),
    )
