"""Datasets: declarations of verified raw files, fetching, conversion to one .npz, and loading.

A dataset is declared in YAML (config/datasets.yaml, or a config's `dataset_declarations`): its
format (``idx``, ``cifar-python`` or ``npz``), its files with their sizes and sha256, the URLs that
serve them, its class names and image shape. Raw files are accepted only when their size and sha256
match the declaration. ``prepare`` turns them into one compressed .npz (uint8 images (n, C, H, W),
int64 labels, class names, image shape, the sha256 of the raw files and a digest of the arrays);
``load`` checks that digest and gives float32 images in [0, 1]; ``read_info`` gives the class names
and image shape without loading the images.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import gzip
import hashlib
import http.client
import io
import json
import logging
import os
import pickle
import re
import secrets
import shlex
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

log = logging.getLogger(__name__)

MIRROR_ENV = "MEMNET_DATA_MIRROR"
MIRROR_CONFIG_KEY = "data.mirror"
CHUNK_BYTES = 1 << 20
PROGRESS_MIN_BYTES = 4 << 20  # downloads at least this big report progress every 10%
RETRY_DELAY_S = 2.0
STALE_PART_S = 3600  # a temp file of another host untouched this long belongs to a dead writer

DECLARATIONS_FILE = Path(__file__).resolve().parents[2] / "config" / "datasets.yaml"
CONFIG_KEY = "dataset_declarations"
FORMATS = ("idx", "cifar-python", "npz")
ROLES = {
    "idx": ("train_images", "train_labels", "test_images", "test_labels"),
    "cifar-python": ("archive",),
    "npz": ("arrays",),
}


@dataclass(frozen=True)
class RemoteFile:
    size: int  # bytes
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset's declaration (see config/datasets.yaml)."""

    name: str
    files: dict[str, RemoteFile]  # file name -> size and sha256
    urls: tuple[str, ...]  # base URLs, tried in order; the file name is appended
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (C, H, W)
    n_train: int
    n_test: int
    format: str = "npz"
    roles: dict[str, str] = field(default_factory=dict)  # role of the format -> file name
    label_key: str = "labels"  # cifar-python: the batches' label key
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cifar-python: batches
    description: str = ""
    instructions: str = ""  # how to get the files when no URL serves them

    def file_of(self, role: str) -> tuple[str, RemoteFile]:
        name = self.roles[role]
        return name, self.files[name]

    def declaration(self) -> dict:
        """The declaration as plain data (what config/datasets.yaml holds for it)."""
        out = {
            "format": self.format,
            "files": {
                role: {
                    "name": name,
                    "size": self.files[name].size,
                    "sha256": self.files[name].sha256,
                }
                for role, name in self.roles.items()
            },
            "urls": list(self.urls),
            "classes": list(self.classes),
            "image_shape": list(self.image_shape),
            "n_train": self.n_train,
            "n_test": self.n_test,
        }
        if self.format == "cifar-python":
            out["label_key"] = self.label_key
            out["members"] = {part: list(names) for part, names in self.members.items()}
        for key in ("description", "instructions"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


CIFAR10_MEMBERS = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}


def spec_from_declaration(name: str, decl: dict) -> DatasetSpec:
    """A DatasetSpec from a declaration already checked against the schema."""
    files = {f["name"]: RemoteFile(int(f["size"]), f["sha256"]) for f in decl["files"].values()}
    members = decl.get("members") or (CIFAR10_MEMBERS if decl["format"] == "cifar-python" else {})
    return DatasetSpec(
        name=name,
        files=files,
        urls=tuple(decl.get("urls", ())),
        classes=tuple(str(c) for c in decl["classes"]),
        image_shape=tuple(int(d) for d in decl["image_shape"]),
        n_train=int(decl["n_train"]),
        n_test=int(decl["n_test"]),
        format=decl["format"],
        roles={role: f["name"] for role, f in decl["files"].items()},
        label_key=decl.get("label_key", "labels"),
        members={part: tuple(names) for part, names in members.items()},
        description=decl.get("description", ""),
        instructions=decl.get("instructions", ""),
    )


class DeclarationError(ValueError):
    """A dataset declaration is invalid; the message names the file or config key."""


def _resolve(raw: dict[str, dict], where: str, prefix: tuple = ()) -> dict[str, dict]:
    """Declarations with every `extends` replaced by the keys of the declaration it names."""
    out: dict[str, dict] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> dict:
        if name in out:
            return out[name]
        decl = raw[name]
        base_name = decl.get("extends")
        if base_name is None:
            resolved = copy.deepcopy(decl)
        else:
            key = f"{where} '{_join(prefix, name)}.extends'"
            if base_name not in raw:
                known = ", ".join(sorted(raw))
                raise DeclarationError(f"{key}: unknown dataset {base_name!r}; known: {known}")
            if base_name in chain:
                raise DeclarationError(f"{key}: a cycle ({' -> '.join((*chain, base_name))})")
            base = resolve(base_name, (*chain, base_name))
            resolved = {k: v for k, v in copy.deepcopy(base).items() if k != "description"}
            resolved.update(copy.deepcopy({k: v for k, v in decl.items() if k != "extends"}))
        out[name] = resolved
        return resolved

    for name in raw:
        resolve(name, (name,))
    return out


def _check(resolved: dict[str, dict], where: str, prefix: tuple = ()) -> dict[str, DatasetSpec]:
    from memnet.config import load_schema, schema_error

    schema = load_schema()
    declaration_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/dataset_declaration"}
    specs = {}
    for name, decl in resolved.items():
        if message := schema_error(decl, declaration_schema, (*prefix, name), where):
            raise DeclarationError(message)
        spec = spec_from_declaration(name, decl)
        if len(spec.files) != len(spec.roles):
            raise DeclarationError(
                f"{where} '{_join(prefix, name)}.files': two roles name one file"
            )
        specs[name] = spec
    return specs


def _join(prefix: tuple, name: str) -> str:
    return ".".join((*prefix, name))


@functools.cache
def _shipped_raw(path: Path = DECLARATIONS_FILE) -> dict[str, dict]:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DeclarationError(f"{path}: cannot read the dataset declarations ({err})") from err
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise DeclarationError(f"{path}: expected a mapping of dataset name -> declaration")
    return raw


@functools.cache
def _shipped_resolved() -> dict[str, dict]:
    return _resolve(_shipped_raw(), f"{DECLARATIONS_FILE.name} key")


@functools.cache
def _shipped() -> dict[str, DatasetSpec]:
    return _check(_shipped_resolved(), f"{DECLARATIONS_FILE.name} key")


def declarations(config: dict | None = None) -> dict[str, DatasetSpec]:
    """Every dataset declared: config/datasets.yaml, then the config's `dataset_declarations`.

    A config's declaration of a shipped name replaces it; ``{extends: <name>, ...}`` starts from
    another declaration (shipped or the config's) and changes some of its keys. An invalid
    declaration of the config raises a ConfigError naming its key.
    """
    extra = (config or {}).get(CONFIG_KEY) or {}
    if not extra:
        return dict(_shipped())
    return dict(_declarations(json.dumps(extra, sort_keys=True)))


@functools.lru_cache(maxsize=8)
def _declarations(extra_json: str) -> dict[str, DatasetSpec]:
    from memnet.config import ConfigError

    extra = json.loads(extra_json)
    shipped = _shipped()

    prefix = (CONFIG_KEY,)
    try:
        resolved = _resolve({**_shipped_raw(), **extra}, "config key", prefix)
        # the config's own entries, and shipped ones that extend an entry the config replaced
        changed = {
            name: decl
            for name, decl in resolved.items()
            if name in extra or decl != _shipped_resolved().get(name)
        }
        checked = _check(changed, "config key", prefix)
    except DeclarationError as err:
        raise ConfigError(str(err)) from None
    return {name: checked.get(name) or shipped[name] for name in resolved}


REGISTRY: dict[str, DatasetSpec] = dict(_shipped())  # the shipped declarations


class DatasetUnavailable(RuntimeError):
    """No source gave a copy of a raw dataset file with the declared size and sha256."""


class OutputError(OSError):
    """An output file could not be written; the message names the output, not its temp file."""


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


def get_spec(dataset: str, config: dict | None = None) -> DatasetSpec:
    """The declaration of ``dataset`` (shipped, or from the config's `dataset_declarations`)."""
    known = REGISTRY if config is None else declarations(config)
    if dataset not in known:
        raise ValueError(
            f"unknown dataset {dataset!r}; known: {', '.join(sorted(known))}. Declare a new one "
            f"under the config key {CONFIG_KEY} (README, 'Adding a dataset')"
        )
    return known[dataset]


def spec_from_json(name: str, text: str) -> DatasetSpec:
    """A declaration given as JSON (`memnet fetch/prepare --declaration`), checked by the schema."""
    try:
        decl = json.loads(text)
    except json.JSONDecodeError as err:
        raise DeclarationError(f"--declaration: not valid JSON ({err.msg})") from None
    if not isinstance(decl, dict):
        raise DeclarationError("--declaration: expected a JSON object")
    return _check({name: decl}, "--declaration key")[name]


# ---------------------------------------------------------------------------------------------
# Writing outputs: a temp file beside the output, renamed onto it when complete


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


_PART = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]+\.part$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(dest: str | os.PathLike) -> list[Path]:
    """Remove the temp files that killed writers of ``dest`` left beside it; returns them.

    A temp file is stale when its writer (named in it: host and process id) is a dead process of
    this host, or when it has not changed for STALE_PART_S seconds.
    """
    dest = Path(dest)
    removed = []
    if not dest.parent.is_dir():
        return removed
    host, now = _host(), time.time()
    for part in dest.parent.glob(f".{glob_escape(dest.name)}.*.part"):
        m = _PART.match(part.name)
        try:
            dead = m is not None and m["host"] == host and not _pid_alive(int(m["pid"]))
            if dead or now - part.stat().st_mtime > STALE_PART_S:
                part.unlink()
                removed.append(part)
                log.info("removed %s, left by a writer that was killed", part)
        except FileNotFoundError:
            pass
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextlib.contextmanager
def output_file(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; rename it onto ``dest`` only if the block succeeds.

    Stale temp files of ``dest`` are removed first; the temp file is removed on any exception
    (the `memnet` command turns SIGTERM into one). An OSError about the temp file is reraised as
    an OutputError that names ``dest``.
    """
    dest = Path(dest)
    tmp = dest.parent / f".{dest.name}.{_host()}-{os.getpid()}-{secrets.token_hex(4)}.part"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(dest)
        yield tmp
        os.replace(tmp, dest)
    except OutputError:
        raise
    except OSError as err:
        if str(tmp) not in (err.filename, err.filename2) and err.filename != str(dest.parent):
            raise
        raise OutputError(err.errno, f"cannot write {dest}: {err.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _writing(tmp: Path, dest: Path):
    """``tmp`` open for writing; an OSError while writing or closing it names ``dest``.

    Only for blocks whose other OSErrors are already handled (reading a source is).
    """
    try:
        with open(tmp, "wb") as f:
            yield f
    except OutputError:
        raise
    except OSError as err:
        raise OutputError(err.errno, f"cannot write {dest}: {err.strerror}") from None


class _Sink:
    """A file being written whose write errors name the real output."""

    def __init__(self, f, dest: Path):
        self.f, self.dest = f, dest

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as err:
            raise OutputError(err.errno, f"cannot write {self.dest}: {err.strerror}") from None

    def __getattr__(self, name):
        return getattr(self.f, name)


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


def _copy_from_mirror(src: Path, out: _Sink, expected: RemoteFile) -> None:
    if not src.is_file():
        raise _SourceFailed("not found", transient=False)
    if src.stat().st_size != expected.size:
        raise _SourceFailed(
            f"size {src.stat().st_size} bytes, expected {expected.size}", transient=False
        )
    sha = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin:
            while chunk := fin.read(CHUNK_BYTES):
                out.write(chunk)
                sha.update(chunk)
                size += len(chunk)
    except OutputError:
        raise
    except OSError as err:
        raise _SourceFailed(f"cannot copy ({err})", transient=False) from err
    if reason := _mismatch(size, sha.hexdigest(), expected):
        raise _SourceFailed(reason, transient=False)


def _download(url: str, out: _Sink, expected: RemoteFile, timeout: float) -> None:
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
    except OutputError:
        raise
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


def _as_spec(dataset: str | DatasetSpec) -> DatasetSpec:
    return dataset if isinstance(dataset, DatasetSpec) else get_spec(dataset)


def fetch_file(
    dataset: str | DatasetSpec,
    filename: str,
    dest: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    timeout: float = 30,
    retries: int = 1,
) -> Path:
    """Get a verified copy of one raw file of ``dataset`` at ``dest`` (a file, or a directory).

    ``dataset`` is a shipped dataset's name or a declaration. Sources in order:
    ``<mirror>/<dataset>/<filename>``, ``<mirror>/<filename>``, then each declared URL. A copy is
    accepted only if its size and sha256 match the declaration. A ``dest`` that already verifies
    is kept; a corrupt one is reported and replaced.
    """
    spec = _as_spec(dataset)
    if filename not in spec.files:
        raise ValueError(
            f"{spec.name} has no file {filename!r}; its files: {', '.join(sorted(spec.files))}"
        )
    expected = spec.files[filename]
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / filename
    if dest.exists():
        reason = verify_file(dest, expected)
        if reason is None:
            remove_stale_parts(dest)
            return dest
        log.warning("%s exists but is corrupt (%s); fetching it again", dest, reason)

    mirror_dir = resolve_mirror(mirror)
    sources: list[tuple[str, str]] = []  # (kind, location)
    if mirror_dir is not None:
        for candidate in (mirror_dir / spec.name / filename, mirror_dir / filename):
            if candidate.resolve() != dest.resolve():  # dest itself is no source
                sources.append(("mirror", str(candidate)))
    sources += [("url", base + filename) for base in spec.urls]

    failures: list[str] = []
    if mirror_dir is None:
        failures.append(f"mirror: none set (${MIRROR_ENV} or config key {MIRROR_CONFIG_KEY})")
    with output_file(dest) as tmp:
        for kind, location in sources:
            attempts = 1 if kind == "mirror" else 1 + max(0, retries)
            for attempt in range(1, attempts + 1):
                try:
                    with _writing(tmp, dest) as f:
                        out = _Sink(f, dest)
                        if kind == "mirror":
                            _copy_from_mirror(Path(location), out, expected)
                        else:
                            log.info("downloading %s", location)
                            _download(location, out, expected, timeout)
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
    remedies = [
        f"Put the file in the mirror directory as {target} (the mirror directory is set "
        f"by the environment variable {MIRROR_ENV} or the config key {MIRROR_CONFIG_KEY}).",
        f"Or leave {spec.name} out of the run: take it out of the config key datasets "
        "(on the command line: --config 'datasets=[<the others>]').",
    ]
    if spec.instructions:
        remedies.insert(0, f"To get it: {spec.instructions}.")
    lines = [
        f"Could not get a verified copy of {spec.name}/{filename} "
        f"({expected.size:,} bytes, sha256 {expected.sha256}).",
        "Sources tried:",
        *(f"  - {failure}" for failure in failures),
        "Remedies:",
        *(f"  {i}. {remedy}" for i, remedy in enumerate(remedies, 1)),
    ]
    return "\n".join(lines)


def fetch_dataset(
    dataset: str | DatasetSpec,
    raw_dir: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    **kwargs,
) -> list[Path]:
    """Fetch every raw file of ``dataset`` into ``raw_dir``; kwargs go to fetch_file."""
    spec = _as_spec(dataset)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    return [fetch_file(spec, name, raw_dir / name, mirror=mirror, **kwargs) for name in spec.files]


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


# ---------------------------------------------------------------------------------------------
# Prepared .npz: write, prepare, load

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
    with output_file(out_npz) as tmp, _writing(tmp, out_npz) as f:
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


def _refetch_hint(path: Path, spec: DatasetSpec) -> str:
    q = shlex.quote
    by_hand = f"memnet fetch --dataset {q(spec.name)} --file {q(path.name)} --out {q(str(path))}"
    if not path.exists():
        return f"Run snakemake, which fetches it, or by hand: {by_hand}"
    return (
        f"Delete it and run snakemake again, which fetches it again: rm {q(str(path))}. "
        f"By hand: {by_hand}"
    )


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
