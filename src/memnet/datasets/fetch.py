"""Fetching raw files: from a mirror directory or the declared URLs, accepted only when their size and
sha256 match the declaration, written atomically (memnet.io)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import shlex
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from memnet.datasets.catalogue import DatasetSpec, RemoteFile, get_spec
from memnet.io import OutputError, atomic_path, remove_stale_parts

log = logging.getLogger(__name__)

MIRROR_ENV = "MEMNET_DATA_MIRROR"
MIRROR_CONFIG_KEY = "data.mirror"
CHUNK_BYTES = 1 << 20
PROGRESS_MIN_BYTES = 4 << 20  # downloads at least this big report progress every 10%
RETRY_DELAY_S = 2.0


class DatasetUnavailable(RuntimeError):
    """No source gave a copy of a raw dataset file with the declared size and sha256."""


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
    with atomic_path(dest) as tmp:
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


def _refetch_hint(path: Path, spec: DatasetSpec) -> str:
    q = shlex.quote
    by_hand = f"memnet fetch --dataset {q(spec.name)} --file {q(path.name)} --out {q(str(path))}"
    if not path.exists():
        return f"Run snakemake, which fetches it, or by hand: {by_hand}"
    return (
        f"Delete it and run snakemake again, which fetches it again: rm {q(str(path))}. "
        f"By hand: {by_hand}"
    )
