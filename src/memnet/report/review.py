"""What the review notebook (notebooks/results.ipynb) shows beyond the report: each model's
confusion matrix and the test images it got wrong, from its main run's metrics file (the files
given, never a search of a directory), and the runs whose times stand out from their seeds'.

    figs = confusion_figure(metrics_frame(files), "mnist")
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from memnet.report.figures import NOTE_SIZE, _figure, class_names, placeholder, row_percent
from memnet.report.results import dataset_label, model_label, ordered, select

MAX_PANELS = 12  # models per figure (the first ones in the report's order)
GALLERY = 8  # misclassified test images shown per model
OUTLIER_FACTOR = 2.0  # a run's time is an outlier beyond this factor of its other seeds' median


def main_runs(metrics: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The main experiment's runs on ``dataset`` (a metrics_frame), one per setting (the lowest
    seed), in the report's order."""
    rows = select(metrics, dataset, experiment="main").sort_values("seed")
    rows = rows.drop_duplicates(["model", "variant"])
    return ordered(rows).head(MAX_PANELS)


def confusion_figure(metrics: pd.DataFrame, dataset: str) -> Figure:
    """One row-normalised confusion matrix (% of each true class) per model of the main
    experiment on ``dataset``."""
    runs = main_runs(metrics, dataset)
    if runs.empty:
        return placeholder(f"Confusion matrices ({dataset_label(dataset)})", "No main runs given.")
    cols = min(4, len(runs))
    rows = -(-len(runs) // cols)
    fig, axes = _figure(len(runs), rows=rows, height=2.2)
    for ax, (_, run) in zip(axes, runs.iterrows(), strict=False):
        matrix = np.asarray(run["metrics"]["confusion"], dtype=float)
        percent = row_percent(matrix)
        names = run["metrics"].get("classes") or class_names(dataset, len(matrix))
        sns.heatmap(
            percent, ax=ax, cmap="viridis", vmin=0, vmax=100, square=True, cbar=False,
            xticklabels=names, yticklabels=names,
        )  # fmt: skip
        ax.tick_params(labelsize=NOTE_SIZE)
        accuracy = 100 * run["metrics"]["accuracy"]
        title = f"{model_label(run['model'], run['variant'])}\n{accuracy:.1f}%"
        ax.set_title(title, fontsize=NOTE_SIZE + 1)
        ax.set_xlabel("Predicted")
        ax.set_ylabel("True")
    return fig


def misclassified_figure(
    metrics: pd.DataFrame, dataset: str, X_test: np.ndarray, y_test: np.ndarray, classes: list
) -> Figure:
    """Up to GALLERY test images that each main model got wrong (one row per model), titled
    "true -> predicted"; ``X_test`` (n, C, H, W) in [0, 1] and ``y_test`` are the test set the
    runs were scored on (the prepared file, cut to the config's data.subset)."""
    runs = main_runs(metrics, dataset)
    runs = runs[[bool(m.get("misclassified")) for m in runs["metrics"]]]
    if runs.empty:
        title = f"Misclassified test images ({dataset_label(dataset)})"
        return placeholder(title, "No main run recorded misclassified test images.")
    fig, axes = _figure(len(runs) * GALLERY, rows=len(runs), height=1.1)
    for r, (_, run) in enumerate(runs.iterrows()):
        wrong = run["metrics"]["misclassified"][:GALLERY]
        for k in range(GALLERY):
            ax = axes[r * GALLERY + k]
            ax.axis("off")
            if k >= len(wrong):
                continue
            index, predicted = wrong[k]
            image = np.transpose(X_test[index], (1, 2, 0)).squeeze()
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_title(f"{classes[y_test[index]]}→{classes[predicted]}", fontsize=NOTE_SIZE)
        axes[r * GALLERY].text(
            -0.1, 0.5, model_label(run["model"], run["variant"]), transform=axes[r * GALLERY].transAxes,
            ha="right", va="center", fontsize=NOTE_SIZE,
        )  # fmt: skip
    return fig


def timing_outliers(runs: pd.DataFrame, factor: float = OUTLIER_FACTOR) -> pd.DataFrame:
    """The runs whose training or inference time is more than ``factor`` times the median of the
    other seeds of their setting (settings with two seeds or more): the slow ones, which a busy
    machine or a cold start makes. With two seeds, the slower of a pair that differ by more
    than ``factor``."""
    keys = ["dataset", "experiment", "model", "variant", "x"]
    out = []
    for column in ("train_seconds", "infer_seconds"):
        others = pd.Series(np.nan, index=runs.index)
        for _, group in runs.groupby(keys, dropna=False):
            for i in group.index:
                rest = group[column].drop(index=i)
                others[i] = rest.median() if len(rest) else np.nan
        ratio = runs[column] / others.where(others > 0)
        far = ratio > factor
        rows = runs.loc[far, [*keys, "seed", column]].rename(columns={column: "seconds"})
        out.append(rows.assign(time=column, median=others[far], ratio=ratio[far]))
    columns = [*keys, "seed", "time", "seconds", "median", "ratio"]
    found = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)
    return found[columns].sort_values("ratio", ascending=False, ignore_index=True)
