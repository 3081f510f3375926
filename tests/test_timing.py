"""What a run's times measure: the work, not the start-up. Each run is a fresh process (as every
pipeline job is), so the start-up (import torch, numba's compilation in a cold cache) falls on the
first fit of the process; `execute` pays it in an untimed warm-up fit (`warmup_seconds`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memnet import provenance

TESTS = Path(__file__).resolve().parent

# One run in a fresh process, on tests/warmup.py's tiny dataset cut to N_TRAIN training images
SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from warmup import tiny_dataset
from memnet.pipeline.execute import execute
data = tiny_dataset(n_train={n_train})
out = execute(data=data, dataset="tiny", experiment="main", model={model!r}, variant="v",
              params={params!r}, seed={seed}, threads=1)
print(json.dumps(out))
"""


def run_fresh(model: str, params: dict, seed: int, n_train: int, env: dict | None = None) -> dict:
    code = SCRIPT.format(tests=str(TESTS), n_train=n_train, model=model, params=params, seed=seed)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_30_image_mlp_times_its_training_not_torchs_start_up():
    out = run_fresh("mlp", {"epochs": 1}, seed=0, n_train=30)
    # import torch and its first steps take seconds in a fresh process; 30 images, milliseconds
    assert out["train_seconds"] < 1.0, out
    assert out["warmup_seconds"] > out["train_seconds"], out
    assert out["infer_seconds"] < 1.0, out


@pytest.mark.slow
def test_a_memory_model_in_a_cold_numba_cache_compiles_before_the_clock(tmp_path):
    """Seed 0 meets a cold cache (it compiles the kernels), seed 1 a warm one: their training
    times are alike, and the compilation shows in seed 0's warm-up."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba cache")}
    params = {"n_neurons": 100, "distance": "l1"}
    first = run_fresh("memnet", params, seed=0, n_train=100, env=env)
    second = run_fresh("memnet", params, seed=1, n_train=100, env=env)
    assert any((tmp_path / "numba cache").rglob("*.nbi")), "the kernels were not cached"
    # 3x, with 50 ms of slack for the noise of timing a few milliseconds on a shared machine
    assert first["train_seconds"] <= 3 * second["train_seconds"] + 0.05, (first, second)
    assert first["warmup_seconds"] > first["train_seconds"] + second["warmup_seconds"]


def test_a_run_records_which_code_made_it():
    out = run_fresh("ncm", {}, seed=0, n_train=30)
    state = provenance.git_state()
    assert out["git_revision"] == state["commit"]
    assert out["git_dirty"] == state["dirty"]
    assert out["source_hash"] == provenance.source_hash()
