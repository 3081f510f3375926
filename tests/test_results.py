"""The results schema: row selection, display order and the explicit-file readers."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from memnet.report import results as R


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "dataset": ["mnist", "mnist", "mnist", "cifar10", "mnist"],
            "experiment": ["main", "samples", "samples", "main", "main"],
            "model": ["memnet", "memnet", "memnet", "memnet", "mlp"],
            "variant": ["paper", "paper", "paper", "paper", "epochs1"],
            "x": [math.nan, 10.0, 100.0, math.nan, math.nan],
            "uses_backprop": ["False", "False", "False", "False", "True"],  # text, as in a CSV
        }
    )


def test_select_leaves_out_swept_rows_unless_asked(frame):
    assert R.select(frame, "mnist", model="memnet").index.tolist() == [0]
    assert R.select(frame, "mnist", model="memnet", x=R.ANY).index.tolist() == [0, 1, 2]
    assert R.select(frame, experiment="samples", x=100.0).index.tolist() == [2]
    assert R.select(frame, experiment="main").index.tolist() == [0, 3, 4]  # every dataset


def test_select_matches_booleans_written_as_text(frame):
    assert R.select(frame, uses_backprop=True).index.tolist() == [4]
    assert R.select(frame, uses_backprop=False, x=R.ANY).index.tolist() == [0, 1, 2, 3]


def test_select_names_a_missing_column(frame):
    with pytest.raises(KeyError, match="no column 'seed'"):
        R.select(frame, seed=0)
    assert R.select(frame.drop(columns="x"), model="mlp").index.tolist() == [4]  # x is optional


def test_ordered_puts_the_config_datasets_first_then_the_model_families():
    df = pd.DataFrame(
        {
            "dataset": ["a", "mnist", "cifar10", "mnist", "mnist"],
            "model": ["memnet", "ncm", "memnet", "knn", "knn"],
            "variant": ["paper", "default", "paper", "k3-l2", "k10-l2"],
        }
    )
    out = R.ordered(df, datasets=["mnist", "cifar10"])
    assert list(zip(out.dataset, out.variant, strict=True)) == [
        ("mnist", "k3-l2"), ("mnist", "k10-l2"), ("mnist", "default"),
        ("cifar10", "paper"), ("a", "paper"),
    ]  # fmt: skip
    assert R.dataset_order(["b", "mnist", "a"], ["cifar10", "mnist"]) == ["mnist", "a", "b"]


def test_saved_models_read_only_the_files_given(tmp_path):
    base = tmp_path / "mnist" / "main" / "memnet" / "paper"
    base.mkdir(parents=True)
    for seed in (0, 1):
        (base / f"seed{seed}.npz").write_bytes(b"")
        (base / f"seed{seed}.json").write_text(
            json.dumps({"dataset": "mnist", "seed": seed, "n_train": 100 + seed})
        )
    # seed 1's metrics file exists beside its model but is not given: it is not read
    found = R.saved_models([base / "seed1.npz", base / "seed0.json", base / "seed0.npz"])
    assert [(m.dataset, m.seed, m.n_train) for m in found] == [
        ("mnist", 0, 100),
        ("mnist", 1, None),
    ]
    odd = tmp_path / "model.npz"
    odd.write_bytes(b"")
    with pytest.raises(ValueError, match="model.npz: cannot tell the model's dataset"):
        R.saved_models([odd])


def test_metrics_frame_names_an_incomplete_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"dataset": "mnist"}))
    with pytest.raises(ValueError, match="run.json: metrics file lacks"):
        R.metrics_frame([path])
