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


def test_multiply_adds_count_each_channel_once_under_channel_voting():
    """A query-neuron pair costs C x P multiply-adds whether the C channels vote apart or not."""
    from memnet.bench import multiply_adds
    from memnet.models.memory.network import MemoryNetwork

    rng = np.random.default_rng(0)
    X = rng.random((300, 3, 4, 5), dtype=np.float32)
    y = rng.integers(0, 3, 300)
    queries = rng.random((37, 3, 4, 5), dtype=np.float32)
    for voting in ("channel", "joint"):
        model = MemoryNetwork(n_neurons=50, voting=voting, random_state=0).fit(X, y)
        model.predict(queries)
        macs = multiply_adds(model, model.work_)
        assert macs["infer_filter"] == 37 * model.n_born_ * 3 * 20
        assert macs["train_filter"] == model.work_["train_approx_pairs"] * 60
