"""The results schema: the columns of runs.csv and summary.csv, loading them, selecting rows, the
Student-t interval, and the names and display order of models and datasets.

Every step that reads results (aggregate, tables, figures, claims, report) takes these from here, so a
column, a filter or a label has one definition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from memnet.io import read_json
from memnet.models import registry

# ---------------------------------------------------------------------------------------------
# Columns (the project's interface: results/tables/runs.csv and summary.csv)

KEYS = ["dataset", "experiment", "model", "variant", "x"]  # one setting; x is the swept value
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
    "forgetting",  # class-incremental runs: the mean drop of a task's accuracy from best to final
    "seen_accuracy",  # class-incremental runs: accuracy on the classes seen after each task (JSON)
    "label",  # the model family's label (memnet.models.registry, or the config's model_families)
    "warmup_seconds",  # the untimed warm-up fit before the clock (memnet.pipeline.execute.warm_up)
    "git_revision",  # the commit of the code that ran,
    "git_dirty",  # whether its tree had uncommitted changes,
    "source_hash",  # and a hash of the memnet source itself (memnet.provenance)
]
JSON_COLUMNS = ["params", "seen_accuracy"]  # stored in the CSV as JSON text
# Columns that hold numbers (or nothing): a metrics file giving anything else is refused
NUMBER_COLUMNS = [
    "x",
    "accuracy",
    "n_train",
    "n_test",
    "n_born",
    "train_seconds",
    "infer_seconds",
    "peak_memory_bytes",
    "model_bytes",
    "n_passes",
    "threads",
    "forgetting",
    "warmup_seconds",
]
TIMING_COLUMNS = [
    "train_seconds",
    "infer_seconds",
    "warmup_seconds",
    "peak_memory_bytes",
]  # vary between machines
# averaged over seeds
MEANS = ["train_seconds", "infer_seconds", "peak_memory_bytes", "model_bytes", "forgetting"]
CONSTANTS = ["n_passes", "uses_backprop", "uses_weight_sharing", "label"]  # the same for every seed
ACCURACY_STATS = ["accuracy_mean", "accuracy_std", "accuracy_ci_low", "accuracy_ci_high"]
SUMMARY_COLUMNS = [*KEYS, "n_seeds", *ACCURACY_STATS, *(f"{c}_mean" for c in MEANS), *CONSTANTS]
BOOLEAN_COLUMNS = ["uses_backprop", "uses_weight_sharing"]
TEXT_COLUMNS = ["dataset", "experiment", "model", "variant"]
# Columns that metrics files and runs.csv of an older memnet lack, with their fill
OPTIONAL_COLUMNS = {
    "label": None,
    "warmup_seconds": None,
    "git_revision": "unknown",
    "git_dirty": None,
    "source_hash": None,
}

# The setting whose confusion matrices (F5), saved models (F4) and parameters the report shows
MAIN_MEMNET = {"experiment": "main", "model": "memnet", "variant": "paper"}


# ---------------------------------------------------------------------------------------------
# Loading


def as_bool(values: pd.Series) -> pd.Series:
    """True/False from booleans or their text ("True", "true", "1", "yes"; "False", "0", "no");
    anything else (a fact a model does not declare) is unknown: <NA> of pandas' boolean dtype."""
    text = values.astype(str).str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(["true", "1", "yes"])] = True
    out[text.isin(["false", "0", "no"])] = False
    return out


def read_table(path: str | Path, required: list[str]) -> pd.DataFrame:
    """A results CSV with its columns checked; one clear error names what is missing."""
    df = pd.read_csv(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: missing columns {missing}; regenerate it with `memnet aggregate` "
            "(the columns are fixed by the project's interfaces)"
        )
    for column in BOOLEAN_COLUMNS:
        df[column] = as_bool(df[column])
    for column in TEXT_COLUMNS:
        df[column] = df[column].astype(str)
    return df


def load_runs(path: str | Path) -> pd.DataFrame:
    """results/tables/runs.csv: one row per run (RUN_COLUMNS). The labels of families that memnet
    does not ship are noted, so that tables and figures call them what their runs recorded."""
    df = read_table(path, [c for c in RUN_COLUMNS if c not in OPTIONAL_COLUMNS])
    for column, fill in OPTIONAL_COLUMNS.items():
        if column not in df.columns:
            df[column] = fill
    registry.note_labels(zip(df["model"], df["label"], strict=True))
    return df


def load_summary(path: str | Path) -> pd.DataFrame:
    """results/tables/summary.csv: one row per setting, over seeds (SUMMARY_COLUMNS)."""
    df = read_table(path, [c for c in SUMMARY_COLUMNS if c != "label"])
    if "label" in df.columns:
        registry.note_labels(zip(df["model"], df["label"], strict=True))
    return df


# ---------------------------------------------------------------------------------------------
# Selecting rows


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()  # select(..., x=ANY): every value of that column


def select(df: pd.DataFrame, dataset: str | None = None, /, **keys) -> pd.DataFrame:
    """The rows of ``df`` whose columns equal ``keys`` (and ``dataset``, unless it is None).

    ``x`` is null unless ``keys`` gives it: a sweep's points are only chosen on purpose;
    ``x=ANY`` keeps every row, swept or not. A boolean value also matches its text ("True").
    A column that ``df`` lacks is an error, except ``x``.
    """
    mask = pd.Series(True, index=df.index)
    if dataset is not None:
        keys = {"dataset": dataset, **keys}
    keys.setdefault("x", None)
    for key, value in keys.items():
        if value is ANY or (key == "x" and key not in df):
            continue
        if key not in df:
            raise KeyError(f"no column {key!r} to select on (columns: {list(df.columns)})")
        if key == "x" and value is None:
            mask &= df[key].isna()
        elif isinstance(value, bool | np.bool_):
            mask &= (as_bool(df[key]) == bool(value)).fillna(False).astype(bool)
        else:
            mask &= df[key] == value
    return df[mask]


def metrics_frame(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per metrics JSON (its KEYS, seed and path), for ``select`` over explicit run files."""
    rows = []
    for path in paths:
        run = read_json(path)
        missing = [c for c in (*KEYS, "seed") if c not in run]
        if missing:
            raise ValueError(f"{path}: metrics file lacks {missing}; rerun that job")
        rows.append({**{c: run[c] for c in (*KEYS, "seed")}, "path": Path(path), "metrics": run})
    return pd.DataFrame(rows, columns=[*KEYS, "seed", "path", "metrics"])


@dataclass(frozen=True)
class SavedModel:
    """A saved MemoryNetwork (.npz) and what the run that trained it recorded."""

    path: Path
    dataset: str
    seed: int
    n_train: int | None  # None without the run's metrics file
    classes: list[str] | None = None  # the class names, from the run's metrics file


_MODEL_PATH = re.compile(r"(?:^|/)(?P<dataset>[^/]+)/main/memnet/paper/seed(?P<seed>\d+)\.npz$")


def saved_models(paths: Iterable[str | Path]) -> list[SavedModel]:
    """The models among ``paths`` (each .npz), by path; dataset, seed and n_train from the metrics
    .json beside each when that file is among ``paths`` too, else from the pipeline's file name
    (<dataset>/main/memnet/paper/seed<k>.npz). A file is never looked for beyond ``paths``."""
    paths = sorted(Path(p) for p in paths)
    given = set(paths)
    found = []
    for path in (p for p in paths if p.suffix == ".npz"):
        metrics = path.with_suffix(".json")
        if metrics in given:
            run = read_json(metrics)
            found.append(
                SavedModel(
                    path, run["dataset"], int(run["seed"]), run["n_train"], run.get("classes")
                )
            )
            continue
        match = _MODEL_PATH.search(path.as_posix())
        if match is None:
            raise ValueError(
                f"{path}: cannot tell the model's dataset and seed; pass the metrics file of the "
                f"run that trained it ({metrics.name}) as well"
            )
        found.append(SavedModel(path, match["dataset"], int(match["seed"]), None))
    return found


# ---------------------------------------------------------------------------------------------
# Statistics


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` Student-t confidence interval of the mean; NaN with fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    mean, sem = float(np.mean(values)), float(stats.sem(values))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sem
    return mean - half, mean + half


# ---------------------------------------------------------------------------------------------
# Names and display order

MODEL_ORDER = list(registry.FAMILIES)  # the shipped families; others follow (model_rank)
MODEL_NAMES = {name: f.label for name, f in registry.FAMILIES.items()}
# The memory models and the experiment that sweeps each one's memory: neurons, or neurons per bank
MEMORY_SWEEPS = registry.memory_sweeps()
BYTES_PER_FLOAT = 4  # model_bytes / 4: the learnt state counted in stored (float32-sized) numbers
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def model_label(model: str, variant: str) -> str:
    """'knn', 'k1-l2' -> 'kNN (k1-l2)' (a family memnet does not ship: the label its runs record)."""
    return f"{registry.label(model)} ({variant})"


def dataset_label(dataset: str) -> str:
    """'cifar10' -> 'CIFAR-10'."""
    return DATASET_NAMES.get(dataset, dataset)


def natural(text: str) -> tuple:
    """A sort key that orders numbers inside text by value: 'k-3' before 'k-10'."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text)))


def model_rank(model: str) -> int:
    """The model family's place in MODEL_ORDER; unknown families after every known one."""
    return registry.rank(model)


def dataset_order(present: Iterable[str], order: list[str] | None = None) -> list[str]:
    """The datasets of ``present``: those of ``order`` (the config's) first, in its order, then the
    others alphabetically."""
    present = set(present)
    order = list(order or [])
    return [d for d in order if d in present] + sorted(present - set(order))


def ordered(df: pd.DataFrame, datasets: list[str] | None = None) -> pd.DataFrame:
    """Rows by dataset (``dataset_order``), then model family, then variant, then x."""
    rank = {d: i for i, d in enumerate(dataset_order(df["dataset"], datasets))}
    key = df.apply(
        lambda r: (
            rank[r["dataset"]],
            model_rank(r["model"]),
            r["model"],
            natural(r["variant"]),
            r.get("x", 0),
        ),
        axis=1,
    )
    return df.loc[sorted(df.index, key=lambda i: key[i])].reset_index(drop=True)


def datasets_in(df: pd.DataFrame) -> list[str]:
    """The datasets of ``df`` in the order they first appear."""
    return list(dict.fromkeys(df["dataset"]))
