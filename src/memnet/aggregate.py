"""Gather the per-run metrics files into one tidy table and a per-setting summary over seeds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from memnet.io import atomic_path, read_json

KEYS = ["dataset", "experiment", "model", "variant", "x"]
RUN_COLUMNS = [
    *KEYS,
    "seed",
    "accuracy",
    "n_train",
    "n_test",
    "n_born",
    "train_seconds",
    "infer_seconds",
    "peak_memory_bytes",
    "model_bytes",
    "uses_backprop",
    "uses_weight_sharing",
    "n_passes",
    "threads",
    "params",
]
TIMING_COLUMNS = ["train_seconds", "infer_seconds", "peak_memory_bytes"]
MEANS = ["train_seconds", "infer_seconds", "peak_memory_bytes", "model_bytes"]
CONSTANTS = ["n_passes", "uses_backprop", "uses_weight_sharing"]


def runs_table(paths: Iterable[str | Path]) -> pd.DataFrame:
    rows = []
    for path in paths:
        run = read_json(path)
        missing = [c for c in RUN_COLUMNS if c not in run]
        if missing:
            raise ValueError(f"{path}: metrics file lacks {missing}; rerun that job")
        row = {c: run[c] for c in RUN_COLUMNS}
        row["params"] = json.dumps(run["params"], sort_keys=True)
        rows.append(row)
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return df.sort_values([*KEYS, "seed"], na_position="first", kind="stable").reset_index(
        drop=True
    )


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` Student-t confidence interval of the mean; NaN with fewer than 2 values."""
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    mean, sem = float(np.mean(values)), float(stats.sem(values))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sem
    return mean - half, mean + half


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for key, group in runs.groupby(KEYS, dropna=False, sort=True):
        acc = group["accuracy"].to_numpy(dtype=float)
        low, high = t_interval(acc)
        row = dict(zip(KEYS, key, strict=True))
        row.update(
            n_seeds=len(group),
            accuracy_mean=float(acc.mean()),
            accuracy_std=float(acc.std(ddof=1)) if len(acc) > 1 else float("nan"),
            accuracy_ci_low=low,
            accuracy_ci_high=high,
        )
        row.update({f"{c}_mean": float(group[c].mean()) for c in MEANS})
        row.update({c: group[c].iloc[0] for c in CONSTANTS})
        rows.append(row)
    return pd.DataFrame(rows)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
