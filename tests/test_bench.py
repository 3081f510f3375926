"""The model benchmark's memory probe."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from memnet.bench import AnonymousPeak


def rss_anon_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def test_anonymous_peak_sees_memory_that_was_freed_before_it_stopped():
    probe = AnonymousPeak()
    before = rss_anon_bytes()
    block = np.ones(64 << 20, np.uint8)  # 64 MiB, every page touched
    time.sleep(0.05)
    del block
    time.sleep(0.01)
    peak = probe.stop()
    assert peak >= before + (60 << 20)
    assert rss_anon_bytes() < peak - (32 << 20)  # it was a peak: the memory is gone again
