"""fetch_file against a local HTTP server and mirror directories: verification, fallback, errors."""

from __future__ import annotations

import collections
import functools
import hashlib
import http.server
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memnet import datasets
from memnet.datasets import DatasetUnavailable, RemoteFile, fetch_file
from memnet.datasets import fetch as fetch_module

NAME = "blob.bin"
PAYLOAD = bytes(range(256)) * 40  # 10240 bytes


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a directory; /cut/ sends half the body and closes; /flaky/ fails once."""

    requests: collections.Counter  # set per server

    def do_GET(self):
        top = self.path.strip("/").split("/")[0]
        self.requests[top] += 1
        if top == "cut":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.close_connection = True
            return
        if top == "slow":  # half the body, then a stall (long enough to kill the client)
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            time.sleep(5)
            return
        if top == "flaky" and self.requests[top] == 1:
            self.send_error(503, "try again")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path_factory):
    """Local server: /good/ and /flaky/ serve PAYLOAD, /bad/ other bytes, /short/ fewer."""
    root = tmp_path_factory.mktemp("www")
    for folder, data in {
        "good": PAYLOAD,
        "flaky": PAYLOAD,
        "bad": PAYLOAD[::-1],
        "short": PAYLOAD[:-100],
    }.items():
        (root / folder).mkdir()
        (root / folder / NAME).write_bytes(data)
    handler = type("H", (Handler,), {"requests": collections.Counter()})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, handler.requests
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def offline_defaults(monkeypatch):
    monkeypatch.delenv(datasets.MIRROR_ENV, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(fetch_module, "RETRY_DELAY_S", 0.0)


def register(monkeypatch, *urls):
    spec = datasets.DatasetSpec(
        name="toy",
        files={NAME: RemoteFile(len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())},
        urls=tuple(urls),
        classes=("a", "b"),
        image_shape=(1, 2, 2),
        n_train=1,
        n_test=1,
    )
    monkeypatch.setitem(datasets.REGISTRY, "toy", spec)


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_good_download(tmp_path, server, monkeypatch):
    base, requests = server
    register(monkeypatch, f"{base}/good/")
    got = fetch_file("toy", NAME, tmp_path / "raw" / NAME)
    assert got == tmp_path / "raw" / NAME and got.read_bytes() == PAYLOAD
    assert listing(tmp_path / "raw") == [NAME]
    # a directory as dest means "put it in there"; a verified copy is kept without a request
    assert fetch_file("toy", NAME, tmp_path / "raw") == got
    assert requests["good"] == 1


@pytest.mark.parametrize(
    ("folder", "reason"),
    [
        ("bad", "sha256 "),
        ("short", "server offers 10140 bytes, expected 10240"),
        ("cut", r"(truncated: got 5120 of 10240 bytes|transfer failed).*\(after 2 attempts\)"),
    ],
)
def test_bad_downloads_leave_nothing(tmp_path, server, monkeypatch, folder, reason):
    base, _ = server
    register(monkeypatch, f"{base}/{folder}/")
    with pytest.raises(DatasetUnavailable, match=rf"url {base}/{folder}/{NAME}: {reason}"):
        fetch_file("toy", NAME, tmp_path / NAME)
    assert listing(tmp_path) == []


def test_unreachable_then_fallback(tmp_path, server, monkeypatch, closed_port_url):
    base, requests = server
    register(monkeypatch, closed_port_url, f"{base}/bad/", f"{base}/good/")
    assert fetch_file("toy", NAME, tmp_path / NAME).read_bytes() == PAYLOAD
    assert requests["bad"] == 1 and requests["good"] == 1
    assert listing(tmp_path) == [NAME]


def test_retry_after_server_error(tmp_path, server, monkeypatch):
    base, requests = server
    register(monkeypatch, f"{base}/flaky/")
    assert fetch_file("toy", NAME, tmp_path / NAME).read_bytes() == PAYLOAD
    assert requests["flaky"] == 2


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_mirror_preferred_when_good(tmp_path, server, monkeypatch, layout):
    base, requests = server
    register(monkeypatch, f"{base}/good/")
    mirror = tmp_path / "mirror"
    folder = mirror / "toy" if layout == "nested" else mirror
    folder.mkdir(parents=True)
    (folder / NAME).write_bytes(PAYLOAD)
    monkeypatch.setenv(datasets.MIRROR_ENV, str(mirror))
    dest = tmp_path / "raw" / NAME
    assert fetch_file("toy", NAME, dest).read_bytes() == PAYLOAD
    assert sum(requests.values()) == 0
    assert listing(dest.parent) == [NAME]


def test_corrupt_mirror_falls_back_to_url(tmp_path, server, monkeypatch):
    base, requests = server
    register(monkeypatch, f"{base}/good/")
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / NAME).write_bytes(PAYLOAD[:-1] + b"\x00")
    dest = tmp_path / "raw" / NAME
    assert fetch_file("toy", NAME, dest, mirror=tmp_path / "mirror").read_bytes() == PAYLOAD
    assert requests["good"] == 1


def test_mirror_rescues_when_every_url_fails(tmp_path, server, monkeypatch, closed_port_url):
    base, _ = server
    register(monkeypatch, closed_port_url, f"{base}/bad/")
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / NAME).write_bytes(PAYLOAD)
    dest = tmp_path / "raw" / NAME
    assert fetch_file("toy", NAME, dest, mirror=tmp_path / "mirror").read_bytes() == PAYLOAD


def test_corrupt_dest_is_reported_and_replaced(tmp_path, server, monkeypatch, caplog):
    base, _ = server
    register(monkeypatch, f"{base}/good/")
    dest = tmp_path / NAME
    dest.write_bytes(PAYLOAD[:100])
    with caplog.at_level(logging.WARNING, logger="memnet.datasets"):
        fetch_file("toy", NAME, dest)
    assert dest.read_bytes() == PAYLOAD
    assert "exists but is corrupt (size 100 bytes, expected 10240)" in caplog.text


def test_error_names_every_source_and_both_remedies(tmp_path, server, monkeypatch, closed_port_url):
    base, _ = server
    register(monkeypatch, closed_port_url, f"{base}/bad/", f"{base}/missing/")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / NAME).write_bytes(b"tiny")
    dest = tmp_path / "raw" / NAME
    dest.parent.mkdir()
    dest.write_bytes(b"old and corrupt")
    with pytest.raises(DatasetUnavailable) as info:
        fetch_file("toy", NAME, dest, mirror=mirror)
    message = str(info.value)
    assert f"toy/{NAME}" in message and hashlib.sha256(PAYLOAD).hexdigest() in message
    assert f"mirror {mirror / 'toy' / NAME}: not found" in message
    assert f"mirror {mirror / NAME}: size 4 bytes, expected 10240" in message
    assert f"url {closed_port_url}{NAME}: cannot connect" in message
    assert f"url {base}/bad/{NAME}: sha256" in message
    assert f"url {base}/missing/{NAME}: HTTP 404" in message
    assert f"Put the file in the mirror directory as {mirror / 'toy' / NAME}" in message
    assert "MEMNET_DATA_MIRROR" in message and "data.mirror" in message
    assert "leave toy out of the run: take it out of the config key datasets" in message
    assert listing(dest.parent) == []  # neither temp files nor the corrupt old copy


def test_error_without_mirror_says_none_set(tmp_path, monkeypatch, closed_port_url):
    register(monkeypatch, closed_port_url)
    with pytest.raises(DatasetUnavailable, match=r"mirror: none set \(\$MEMNET_DATA_MIRROR"):
        fetch_file("toy", NAME, tmp_path / NAME, retries=0)


def test_progress_on_stderr(tmp_path, server, monkeypatch, capsys):
    base, _ = server
    register(monkeypatch, f"{base}/good/")
    monkeypatch.setattr(fetch_module, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(fetch_module, "CHUNK_BYTES", 1024)
    fetch_file("toy", NAME, tmp_path / NAME)
    err = capsys.readouterr().err
    assert [f"{p}%" in err for p in range(10, 101, 10)] == [True] * 10


def test_unknown_file_or_dataset(tmp_path):
    with pytest.raises(ValueError, match="mnist has no file 'x.gz'"):
        fetch_file("mnist", "x.gz", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'emnist'"):
        fetch_file("emnist", "x.gz", tmp_path)


def test_real_mirror_copy(tmp_path, mirror):
    name = "t10k-labels-idx1-ubyte.gz"
    if not (mirror / "mnist" / name).is_file():
        pytest.skip(f"{mirror / 'mnist' / name} not present")
    got = fetch_file("mnist", name, tmp_path, mirror=mirror)
    assert got.read_bytes() == (mirror / "mnist" / name).read_bytes()
    assert datasets.read_idx(got).shape == (10000,)


def toy_declaration(*urls) -> str:
    return json.dumps(
        {
            "format": "npz",
            "files": {
                "arrays": {
                    "name": NAME,
                    "size": len(PAYLOAD),
                    "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
                }
            },
            "urls": list(urls),
            "classes": ["a", "b"],
            "image_shape": [1, 2, 2],
            "n_train": 1,
            "n_test": 1,
        }
    )


def start_fetch(dest: Path, *urls) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "memnet.cli", "fetch", "--dataset", "toy", "--file", NAME]
    cmd += ["--out", str(dest), "--declaration", toy_declaration(*urls)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".part") for p in dest.parent.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc


def test_sigterm_leaves_no_temp_file(tmp_path, server):
    """Snakemake and schedulers stop a job with SIGTERM: the half-written temp file goes."""
    base, _ = server
    proc = start_fetch(tmp_path / NAME, f"{base}/slow/")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert listing(tmp_path) == []


def test_temp_file_of_a_killed_fetch_is_removed_by_the_next(tmp_path, server, monkeypatch):
    base, _ = server
    proc = start_fetch(tmp_path / NAME, f"{base}/slow/")
    proc.kill()  # SIGKILL: nothing can clean up
    proc.communicate(timeout=30)
    assert [p.endswith(".part") for p in listing(tmp_path)] == [True]
    register(monkeypatch, f"{base}/good/")
    fetch_file("toy", NAME, tmp_path / NAME)
    assert listing(tmp_path) == [NAME]


def test_cli_fetch_with_a_declaration(tmp_path, server):
    from memnet.cli import main

    base, _ = server
    args = ["fetch", "--dataset", "toy", "--file", NAME, "--out", str(tmp_path)]
    assert main([*args, "--declaration", toy_declaration(f"{base}/good/")]) == 0
    assert (tmp_path / NAME).read_bytes() == PAYLOAD


def test_unavailable_synthetic_dataset_says_how_to_make_it(tmp_path):
    with pytest.raises(DatasetUnavailable) as info:
        fetch_file("cifar10-synthetic", "cifar-10-python.tar.gz", tmp_path, mirror=tmp_path / "m")
    message = str(info.value)
    assert "1. To get it: make it with `python -m memnet.synthetic cifar10 --out" in message
    assert (
        f"2. Put the file in the mirror directory as {tmp_path / 'm' / 'cifar10-synthetic'}"
        in message
    )
