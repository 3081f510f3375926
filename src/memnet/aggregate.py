"""Gather the per-run metrics files into one tidy table and a per-setting summary over seeds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from memnet.io import atomic_path, read_json
from memnet.results import (
    CONSTANTS,
    KEYS,
    MEANS,
    RUN_COLUMNS,
    SUMMARY_COLUMNS,
    TIMING_COLUMNS,
    t_interval,
)

__all__ = ["TIMING_COLUMNS", "runs_table", "summary_table", "write_csv"]


def runs_table(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per metrics file (RUN_COLUMNS), sorted by setting and seed; params as JSON text."""
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


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting (SUMMARY_COLUMNS): accuracy over seeds with its 95% t-interval."""
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
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
