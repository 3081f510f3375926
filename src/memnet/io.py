"""Atomic file writing: a reader never sees half a file, even if the writer dies.

Every output of memnet is written through :func:`atomic_path`: a temporary file beside the output,
named after its writer (host and process id), renamed onto the output when the block succeeds and
removed when it fails. Temporary files that a killed writer left are removed the next time the same
output is written. An error about the temporary file names the output instead.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
STALE_PART_S = 3600  # a temp file of another host untouched this long belongs to a dead writer


class OutputError(OSError):
    """An output file could not be written; the message names the output, not its temp file."""


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


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


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


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; rename it onto ``dest`` only if the block succeeds.

    Stale temp files of ``dest`` are removed first; the temp file is removed on any exception
    (the `memnet` command turns SIGTERM into one). An OSError about the temp file (a full disk, a
    read-only directory) is reraised as an OutputError that names ``dest``.
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
        about_tmp = str(tmp) in (err.filename, err.filename2)
        about_dest = err.filename in (str(dest.parent), str(dest))
        # a write that fails (a full disk, a quota, a file size limit) often names no file
        unnamed_write = err.filename is None and err.errno in WRITE_ERRORS
        if not (about_tmp or about_dest or unnamed_write):
            raise
        raise OutputError(err.errno, f"cannot write {dest}: {err.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``; a file that is not JSON raises one ValueError that names it."""
    with open(path) as f:
        try:
            return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{path}: not valid JSON ({exc}); it may be truncated: delete it and rerun the "
                "step that writes it"
            ) from None


def _to_builtin(obj: Any) -> Any:
    """json.dumps fallback for numpy scalars and arrays."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def output_dir(text: str) -> Path:
    """An argparse type: a directory to write in, made if missing. Refused at once (not after
    the run) when it, or the nearest of its parents that exists, is not a writable directory."""
    if not text:
        raise argparse.ArgumentTypeError("expected a directory, got ''")
    path = Path(text)
    nearest = next(p for p in (path, *path.parents) if p.exists() or p.is_symlink())
    if nearest == path and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    if not nearest.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} cannot be made: {str(nearest)!r} is not a directory"
        )
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: {str(nearest)!r} is not writable")
    return path
