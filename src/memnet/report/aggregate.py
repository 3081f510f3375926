"""Gather the per-run metrics files into one tidy table and a per-setting summary over seeds."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from memnet.io import atomic_path, read_json
from memnet.report.results import (
    CONSTANTS,
    JSON_COLUMNS,
    KEYS,
    MEANS,
    NUMBER_COLUMNS,
    OPTIONAL_COLUMNS,
    RUN_COLUMNS,
    SUMMARY_COLUMNS,
    TIMING_COLUMNS,
    t_interval,
)

__all__ = ["TIMING_COLUMNS", "runs_table", "summary_table", "write_csv"]

# One run: its setting (x too: a sweep's points share a variant) and seed
RUN_KEYS = [*KEYS, "seed"]


def runs_table(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per metrics file (RUN_COLUMNS), sorted by setting and seed; params as JSON text.

    A file given twice, or two files of the same run (setting and seed), are refused: each
    would count as a seed of its own.
    """
    rows, files, runs = [], {}, {}
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in files:
            raise ValueError(
                f"{path}: metrics file given twice (also as {files[resolved]}); each run counts "
                "once, so give each file once"
            )
        files[resolved] = path
        row = _row(read_json(path), path)
        run = tuple(row[c] for c in RUN_KEYS)
        if run in runs:
            what = ", ".join(f"{c} {row[c]!r}" for c in RUN_KEYS if row[c] is not None)
            raise ValueError(
                f"{runs[run]} and {path} are the same run ({what}): it would count as two seeds. "
                "Keep one of them (the other is likely a stale copy) or rerun one with its own seed"
            )
        runs[run] = path
        rows.append(row)
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return df.sort_values([*KEYS, "seed"], na_position="first", kind="stable").reset_index(
        drop=True
    )


def _row(run, path) -> dict:
    """The runs.csv row of one metrics file, each value checked; a bad file is named."""
    if not isinstance(run, dict):
        raise ValueError(f"{path}: not a metrics file (a JSON object); rerun that job")
    missing = [c for c in RUN_COLUMNS if c not in run and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(f"{path}: metrics file lacks {missing}; rerun that job")
    for column in NUMBER_COLUMNS:
        value = run.get(column)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(
                f"{path}: '{column}' should be a number, got {value!r}; rerun that job"
            )
    if not 0 <= run["accuracy"] <= 1:
        raise ValueError(f"{path}: 'accuracy' {run['accuracy']!r} is not in [0, 1]; rerun that job")
    if isinstance(run["seed"], bool) or not isinstance(run["seed"], int):
        raise ValueError(
            f"{path}: 'seed' should be an integer, got {run['seed']!r}; rerun that job"
        )
    row = {c: run.get(c, OPTIONAL_COLUMNS.get(c)) for c in RUN_COLUMNS}
    for column in JSON_COLUMNS:
        row[column] = None if run[column] is None else json.dumps(run[column], sort_keys=True)
    return row


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
