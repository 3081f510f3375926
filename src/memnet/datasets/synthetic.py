"""A synthetic CIFAR-10: the canonical python archive, full size, of generated images.

    python -m memnet.datasets.synthetic cifar10 --out DIR [--seed 0]

writes DIR/cifar-10-python.tar.gz: cifar-10-batches-py/data_batch_1..5 and test_batch (10,000
images each) and batches.meta, pickled as the canonical archive is (Python 2 pickles, protocol 2:
b'data' uint8 (10000, 3072) rows of the red, green and blue 32x32 planes, b'labels', b'batch_label',
b'filenames'). It prints the archive's size and sha256, which config/datasets.yaml declares for
`cifar10-synthetic` (seed 0). The bytes depend only on the seed: the pickles are written opcode by
opcode (no numpy or Python version in them), and tar and gzip headers carry fixed times and names.

Each class has a smooth colour prototype; an image is its class's prototype, shifted, with random
contrast and brightness, plus a smooth random clutter field and pixel noise. Classes are
distinguishable but overlap: 1-nearest-neighbour accuracy is far from both chance and 100%.
"""

from __future__ import annotations

import argparse
import gzip
import io
import struct
import sys
import tarfile
from pathlib import Path

import numpy as np

from memnet.datasets import REGISTRY, file_digest
from memnet.io import atomic_path

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
DECLARED = "cifar10-synthetic"
ROWS = 10_000  # images per batch
N_TRAIN_BATCHES = 5
SIDE = 32
MARGIN = 6  # prototypes are drawn this much larger, and shifted by up to MARGIN pixels
CHUNK = 2_000  # images generated at once (memory)
MTIME = 1_262_304_000  # 2010-01-01, the archive's fixed timestamp
CLASSES = REGISTRY[DECLARED].classes

# How the images vary (pixel units, 0..255); chosen so that 1-NN accuracy lies in about 30-60%.
PROTOTYPE_GRID = 5  # a prototype is a smooth interpolation of a 5x5 grid of random colours
CLUTTER_GRID = 6
CONTRAST = (0.15, 0.6)
BRIGHTNESS_SD = 25.0
CLUTTER_SD = 70.0
NOISE_SD = 40.0


# ---------------------------------------------------------------------------------------------
# Images


def _smooth(grid: np.ndarray, side: int) -> np.ndarray:
    """(..., g, g) grids -> (..., side, side) fields, by linear interpolation along each axis.

    Only elementwise arithmetic (no BLAS, no reductions), so the values are the same bits on any
    machine.
    """
    g = grid.shape[-1]
    pos = np.linspace(0, g - 1, side)
    lo = np.minimum(np.floor(pos).astype(int), g - 2)
    w1 = (pos - lo).astype(grid.dtype)
    w0 = 1 - w1
    rows = grid[..., lo, :] * w0[:, None] + grid[..., lo + 1, :] * w1[:, None]
    return rows[..., lo] * w0 + rows[..., lo + 1] * w1


def prototypes(seed: int) -> np.ndarray:
    """float32 (10, 3, SIDE + 2 MARGIN, same) class prototypes, values 0..255."""
    rng = np.random.default_rng([seed, 0xC1FA])
    grid = rng.uniform(0, 255, (len(CLASSES), 3, PROTOTYPE_GRID, PROTOTYPE_GRID))
    return _smooth(grid.astype(np.float32), SIDE + 2 * MARGIN)


def images(labels: np.ndarray, protos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (n, 3 * SIDE * SIDE) rows for ``labels``, in the canonical R, G, B plane order."""
    n, f32 = len(labels), np.float32
    offsets = rng.integers(0, 2 * MARGIN + 1, (n, 2))
    contrast = rng.uniform(*CONTRAST, (n, 1, 1, 1)).astype(f32)
    brightness = rng.normal(128, BRIGHTNESS_SD, (n, 1, 1, 1)).astype(f32)
    clutter = _smooth(
        rng.normal(0, CLUTTER_SD, (n, 3, CLUTTER_GRID, CLUTTER_GRID)).astype(f32), SIDE
    )
    ys = offsets[:, 0, None] + np.arange(SIDE)  # (n, SIDE): the rows of each image's window
    xs = offsets[:, 1, None] + np.arange(SIDE)
    x = protos[labels[:, None, None, None], np.arange(3)[None, :, None, None],
               ys[:, None, :, None], xs[:, None, None, :]]  # fmt: skip
    x -= f32(128)
    x *= contrast
    x += brightness
    x += clutter
    noise = rng.standard_normal((n, 3, SIDE, SIDE), dtype=f32)
    noise *= f32(NOISE_SD)
    x += noise
    np.rint(x, out=x)
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8).reshape(n, -1)


def batch(index: int, seed: int, rows: int, protos: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Batch ``index`` (0..4 train, 5 test): uint8 (rows, 3072) and its labels, balanced."""
    rng = np.random.default_rng([seed, index])
    labels = np.arange(rows) % len(CLASSES)
    rng.shuffle(labels)
    data = np.empty((rows, 3 * SIDE * SIDE), np.uint8)
    for start in range(0, rows, CHUNK):
        data[start : start + CHUNK] = images(labels[start : start + CHUNK], protos, rng)
    return data, labels.tolist()


def arrays(seed: int = 0, rows: int = ROWS):
    """The archive's images without the archive: uint8 (5 rows, 3, 32, 32) training images, their
    int64 labels, then the (rows, 3, 32, 32) test images and labels (for benchmarks)."""
    protos = prototypes(seed)
    parts = [batch(index, seed, rows, protos) for index in range(N_TRAIN_BATCHES + 1)]
    shape = (-1, 3, SIDE, SIDE)
    x_train = np.concatenate([data for data, _ in parts[:-1]]).reshape(shape)
    y_train = np.concatenate([labels for _, labels in parts[:-1]]).astype(np.int64)
    return x_train, y_train, parts[-1][0].reshape(shape), np.asarray(parts[-1][1], np.int64)


# ---------------------------------------------------------------------------------------------
# Python 2 pickles, protocol 2, written opcode by opcode (what the canonical archive holds)


def _p_str(b: bytes) -> bytes:
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b
    return b"T" + struct.pack("<I", len(b)) + b


def _p_int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _p_list(items: list[bytes]) -> bytes:
    return b"](" + b"".join(items) + b"e"


def _p_uint8_matrix(a: np.ndarray) -> bytes:
    """A 2-D uint8 numpy array as numpy 1 (Python 2) pickles it."""
    rows, cols = a.shape
    dtype = (
        b"cnumpy\ndtype\n" + _p_str(b"u1") + _p_int(0) + _p_int(1) + b"\x87R"
        b"(" + _p_int(3) + _p_str(b"|") + b"NNN" + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff"
        + _p_int(0) + b"tb"
    )  # fmt: skip
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _p_int(0) + b"\x85"
        + _p_str(b"b") + b"\x87R"
        b"(" + _p_int(1) + _p_int(rows) + _p_int(cols) + b"\x86" + dtype + b"\x89"
        + _p_str(np.ascontiguousarray(a, np.uint8).tobytes()) + b"tb"
    )  # fmt: skip


def _p_dict(items: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x80\x02}(" + b"".join(k + v for k, v in items) + b"u."


def batch_pickle(label: str, data: np.ndarray, labels: list[int], filenames: list[str]) -> bytes:
    return _p_dict(
        [
            (_p_str(b"batch_label"), _p_str(label.encode())),
            (_p_str(b"labels"), _p_list([_p_int(v) for v in labels])),
            (_p_str(b"data"), _p_uint8_matrix(data)),
            (_p_str(b"filenames"), _p_list([_p_str(f.encode()) for f in filenames])),
        ]
    )


def meta_pickle(rows: int) -> bytes:
    return _p_dict(
        [
            (_p_str(b"num_cases_per_batch"), _p_int(rows)),
            (_p_str(b"label_names"), _p_list([_p_str(c.encode()) for c in CLASSES])),
            (_p_str(b"num_vis"), _p_int(3 * SIDE * SIDE)),
        ]
    )


# ---------------------------------------------------------------------------------------------
# The archive

README = (
    b"<html><body><p>A synthetic stand-in for CIFAR-10 made by memnet.synthetic: the layout and "
    b"pickles of the CIFAR-10 python version, but generated images (class prototypes, shifts, "
    b"clutter and noise), not photographs.</p></body></html>\n"
)


def _add(tar: tarfile.TarFile, name: str, payload: bytes | None) -> None:
    info = tarfile.TarInfo(f"{FOLDER}/{name}" if name else FOLDER)
    info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "", ""
    if payload is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(payload), 0o644
        tar.addfile(info, io.BytesIO(payload))


def write_archive(out_dir: str | Path, seed: int = 0, rows: int = ROWS) -> Path:
    """Write ``out_dir``/cifar-10-python.tar.gz (``rows`` images per batch; full size 10,000)."""
    dest = Path(out_dir) / ARCHIVE
    protos = prototypes(seed)
    with atomic_path(dest) as tmp, open(tmp, "wb") as raw:
        # filename="" and mtime keep the gzip header free of the temp name and the time
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=MTIME) as gz:
            with tarfile.open(fileobj=gz, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                _add(tar, "", None)
                for index in range(N_TRAIN_BATCHES + 1):
                    data, labels = batch(index, seed, rows, protos)
                    if index < N_TRAIN_BATCHES:
                        name, label = f"data_batch_{index + 1}", f"training batch {index + 1} of 5"
                    else:
                        name, label = "test_batch", "testing batch 1 of 1"
                    filenames = [
                        f"synthetic_{CLASSES[y]}_{index * rows + i:05d}.png"
                        for i, y in enumerate(labels)
                    ]
                    _add(tar, name, batch_pickle(label, data, labels, filenames))
                    del data
                _add(tar, "batches.meta", meta_pickle(rows))
                _add(tar, "readme.html", README)
    return dest


def _rows(text: str) -> int:
    """--rows (tests): images per batch, 1..ROWS (the canonical archive's 10,000)."""
    from memnet.cli import _positive_int

    try:
        rows = _positive_int(text)
    except argparse.ArgumentTypeError:
        rows = ROWS + 1
    if rows > ROWS:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {ROWS}, got {text!r}")
    return rows


def build_parser() -> argparse.ArgumentParser:
    # The argument types of the `memnet` command and the benchmarks (imported here: the
    # datasets package does not depend on them otherwise).
    from memnet.cli import _seed
    from memnet.io import output_dir

    parser = argparse.ArgumentParser(
        prog="python -m memnet.datasets.synthetic", description=__doc__.split("\n")[0]
    )
    parser.add_argument("dataset", choices=["cifar10"], help="the format and size to imitate")
    parser.add_argument(
        "--out", type=output_dir, default=".", help="the directory to write the archive in"
    )
    parser.add_argument(
        "--seed", type=_seed, default=0, help="config/datasets.yaml declares seed 0"
    )
    parser.add_argument("--rows", type=_rows, default=ROWS, help=argparse.SUPPRESS)  # tests
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = write_archive(args.out, seed=args.seed, rows=args.rows)
    size, sha256 = file_digest(path)
    print(f"{path}\n  size: {size}\n  sha256: {sha256}")
    declared = REGISTRY[DECLARED].files[ARCHIVE]
    if (size, sha256) == (declared.size, declared.sha256):
        print(f"  matches the declaration of {DECLARED} (config/datasets.yaml)")
    elif args.seed == 0 and args.rows == ROWS:
        print(
            f"  does NOT match the declaration of {DECLARED} (size {declared.size}, sha256 "
            f"{declared.sha256})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
