"""The report's figures F1-F8 (PDF + PNG; F9 is memnet.report.peers'), from the result tables,
the run files and a saved model.

F1 accuracy vs neurons, F2 accuracy vs training samples, F3 ablations (one file per dataset),
F4 memories gallery and hits histogram (one file per dataset), F5 confusion matrices, F6 accuracy vs
training time; ours, beyond the paper: F7 accuracy vs model memory, F8 class-incremental
learning. A missing experiment or dataset gives a figure that says so, so the pipeline's outputs
always exist. Every figure is WIDTH inches wide at DPI dots per inch, with a colour-blind-safe palette
and markers/line styles that also separate the models in greyscale print. The run files (F5) and the
saved models (F4) are the files given, never a search of a directory.

    memnet figures --summary results/tables/summary.csv --runs results/tables/runs.csv \\
        --claims paper/claims.yaml --models results/runs/mnist/main/memnet/paper/seed0.npz \\
        results/runs/mnist/main/memnet/paper/seed0.json \\
        --confusions results/runs/mnist/main/memnet/paper/seed0.json ... \\
        --model-seed 0 --datasets mnist --out results/figures
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from memnet.io import atomic_path
from memnet.models import registry
from memnet.report import tables
from memnet.report.outputs import FIGURES, load_builder, stale_figures
from memnet.report.results import (
    ANY,
    MAIN_MEMNET,
    MEMORY_SWEEPS,
    dataset_label,
    dataset_order,
    metrics_frame,
    model_label,
    ordered,
    saved_models,
    select,
    t_interval,
)

WIDTH = 7.0  # inches: a full text width in print
PANEL_HEIGHT = 2.8  # inches per row of panels
DPI = 150
MAX_COLUMNS = 4  # panels per row before wrapping (F3)
GALLERY_PER_CLASS = 8  # memories shown per class (F4)

COLOURS = sns.color_palette("colorblind", registry.COLOURS)  # Okabe-Ito-like


def colour(model: str):
    """A family's colour (memnet.models.registry: fixed per shipped family, spare ones for others)."""
    return COLOURS[registry.style(model)[0]]


def marker(model: str) -> str:
    return registry.style(model)[1]


def dashes(model: str):
    return registry.style(model)[2]


GREY = "0.55"
NOTE_SIZE = 6  # points: labels beside markers (F6, F7) and numbers in heatmap cells (F5)
DODGE = 1.04  # F2: neighbouring curves' x differ by this factor (4% on the log axis)
LEGEND_COLUMNS = 4  # a figure-wide legend wraps into rows of this many entries (F6)


def style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.0)
    mpl.rcParams.update(
        {
            "font.size": 8,
            "axes.titlesize": 9,
            "axes.labelsize": 8,
            "legend.fontsize": 7,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "savefig.dpi": DPI,
            "pdf.fonttype": 42,  # embed TrueType: text stays text in the PDF
        }
    )


def _figure(n_panels: int, rows: int = 1, height: float = PANEL_HEIGHT, **kw):
    cols = math.ceil(n_panels / rows)
    # Figure without pyplot: no global state, nothing to close, no GUI backend needed.
    fig = Figure(figsize=(WIDTH, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    axes = axes.ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def placeholder(title: str, message: str) -> Figure:
    """A figure that states why there is nothing to plot."""
    fig, (ax,) = _figure(1, height=2.0)
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    return fig


def _band(ax, x, rows: pd.DataFrame, colour, label, model: str) -> None:
    """Mean accuracy (%) as a line with markers, its 95% CI as a band where there is one."""
    y = 100 * rows["accuracy_mean"].to_numpy(float)
    ax.plot(
        x,
        y,
        color=colour,
        marker=marker(model),
        linestyle=dashes(model),
        label=label,
        markersize=4,
        linewidth=1.4,
    )
    # an accuracy lies in [0, 100]: clip the t-interval (wide with few seeds) to what is possible
    low = np.clip(100 * rows["accuracy_ci_low"].to_numpy(float), 0, 100)
    high = np.clip(100 * rows["accuracy_ci_high"].to_numpy(float), 0, 100)
    ok = ~(np.isnan(low) | np.isnan(high))
    if ok.any():
        ax.fill_between(np.asarray(x)[ok], low[ok], high[ok], color=colour, alpha=0.15, linewidth=0)


def _error_bar(row, acc: float):
    """The 95% interval of ``row`` (a summary row) around ``acc`` (%), clipped to [0, 100], as
    errorbar's ``yerr``; None where there is no interval (one seed)."""
    low, high = np.clip(100 * np.array([row["accuracy_ci_low"], row["accuracy_ci_high"]]), 0, 100)
    return None if np.isnan(low) else [[acc - low], [high - acc]]


def _seeds(rows: pd.DataFrame) -> str:
    """How many seeds the panel's means and intervals rest on: "2 seeds", "1-5 seeds"."""
    n = sorted({int(v) for v in rows["n_seeds"].dropna()}) if "n_seeds" in rows else []
    if not n:
        return ""
    text = str(n[0]) if n[0] == n[-1] else f"{n[0]}-{n[-1]}"
    return f" ({text} seed{'s' if n[-1] != 1 else ''})"


def _log_x(ax, values) -> None:
    """Log x axis with a labelled tick at each sweep value (plain numbers, no 3x10^1)."""
    ticks = sorted({float(v) for v in values if not pd.isna(v)})
    labels, last = [], 0.0
    for t in ticks:  # label a tick only if it is well apart from the last labelled one
        labels.append(f"{t:,.0f}" if t >= 2.5 * last else "")
        last = t if labels[-1] else last
    ax.set_xscale("log")
    ax.set_xticks(ticks, labels)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _main_accuracy(summary: pd.DataFrame, dataset: str, model: str, variant: str) -> float | None:
    rows = select(summary, dataset, experiment="main", model=model, variant=variant)
    return float(rows["accuracy_mean"].iloc[0]) if len(rows) else None


# ---------------------------------------------------------------------------------------------
# F1, F2: sweeps


def fig_neurons(summary: pd.DataFrame, claims: list, datasets: list[str] | None = None) -> Figure:
    """F1: memnet accuracy vs neurons per dataset, with 1-NN and the paper's reported value."""
    rows = select(summary, experiment="neurons", model="memnet", x=ANY)
    if rows.empty:
        return placeholder("F1: accuracy vs neurons", "No 'neurons' experiment in this run.")
    names = dataset_order(rows["dataset"], datasets)
    fig, axes = _figure(len(names))
    for ax, dataset in zip(axes, names, strict=True):
        sweep = select(rows, dataset, x=ANY).sort_values("x")
        ax.set_xscale("log")  # before drawing, so that the limits are computed in log space
        ticks = list(sweep["x"])
        _band(ax, sweep["x"], sweep, colour("memnet"), "Memory Network (ours)", "memnet")
        knn = _main_accuracy(summary, dataset, "knn", "k1-l2")
        if knn is not None:
            ax.axhline(
                100 * knn,
                color=colour("knn"),
                linestyle=":",
                linewidth=1.2,
                label="1-NN, L2 (ours)",
            )
        for claim in paper_accuracy_claims(claims, dataset):
            _paper_reference(ax, claim)
            ticks += list(claim.reported_neurons or [])
        _log_x(ax, ticks)
        ax.set_title(dataset_label(dataset) + _seeds(sweep))
        ax.set_xlabel("Neurons (budget $N_{max}$)")
        ax.set_ylabel("Test accuracy (%)")
        ax.legend(loc="lower right")
    return fig


def paper_accuracy_claims(claims: list, dataset: str) -> list:
    """The paper's accuracy claims about the Memory Network on ``dataset``: what F1 draws as
    "paper". Our own findings (claims.yaml `findings:`) are never drawn as the paper's."""
    return [
        c
        for c in claims
        if not c.ours
        and c.kind == "numeric"
        and c.metric == "accuracy"
        and c.dataset == dataset
        and c.select.get("model") == "memnet"
    ]


def _paper_reference(ax, claim) -> None:
    y = 100 * claim.reported
    label = f"paper: ≈{y:.0f}%"
    if claim.reported_neurons:
        low, high = claim.reported_neurons
        ax.hlines(
            y, low, high, color="black", linewidth=2.5, label=f"{label} ({low:,.0f}+ neurons)"
        )
        ax.set_xlim(right=max(ax.get_xlim()[1], high * 1.2))
    else:
        ax.axhline(y, color="black", linestyle="--", linewidth=1.0, label=label)


def fig_samples(summary: pd.DataFrame, datasets: list[str] | None = None) -> Figure:
    """F2: accuracy vs training samples, memnet and every baseline, log x, CI bands."""
    rows = select(summary, experiment="samples", x=ANY)
    if rows.empty:
        return placeholder(
            "F2: accuracy vs training samples", "No 'samples' experiment in this run."
        )
    names = dataset_order(rows["dataset"], datasets)
    fig, axes = _figure(len(names))
    for ax, dataset in zip(axes, names, strict=True):
        here = ordered(select(rows, dataset, x=ANY))
        curves = list(here.groupby(["model", "variant"], sort=False))
        for i, ((model, variant), curve) in enumerate(curves):
            curve = curve.sort_values("x")
            # dodged sideways (a few % on the log axis) so that models that agree stay visible
            dodge = DODGE ** (i - (len(curves) - 1) / 2)
            _band(ax, curve["x"] * dodge, curve, colour(model), model_label(model, variant), model)
        _log_x(ax, here["x"])
        ax.set_title(dataset_label(dataset) + _seeds(here))
        ax.set_xlabel("Training samples")
        ax.set_ylabel("Test accuracy (%)")
        ax.legend(loc="lower right")
    return fig


# ---------------------------------------------------------------------------------------------
# F3: ablations


def fig_ablations(summary: pd.DataFrame, runs: pd.DataFrame, dataset: str) -> Figure:
    """F3: one panel per ablated parameter; the paper's setting is the highlighted bar."""
    t3 = select(tables.table_ablations(summary, runs), dataset).copy()
    title = f"F3: ablations on {dataset_label(dataset)}"
    variants = select(t3, is_paper=False)
    if variants.empty:
        return placeholder(title, f"No ablations for {dataset} in this run.")
    paper = select(t3, is_paper=True).iloc[0]
    params = list(dict.fromkeys(variants["parameter"]))
    rows = math.ceil(len(params) / MAX_COLUMNS)
    fig, axes = _figure(len(params), rows=rows, height=2.4, sharey=True)
    for column in ("accuracy_ci_low", "accuracy_ci_high"):  # an accuracy lies in [0, 1]
        t3[column] = t3[column].clip(0, 1)
    everything = pd.concat([t3["accuracy_ci_low"], t3["accuracy_ci_high"], t3["accuracy_mean"]])
    lo, hi = 100 * np.nanmin(everything), 100 * np.nanmax(everything)
    pad = max(0.5, 0.15 * (hi - lo))
    for ax, param in zip(axes, params, strict=True):
        mine = select(variants, parameter=param)
        paper_value = mine["paper_value"].iloc[0] or "paper"
        labels = [f"{paper_value}\n(paper)", *mine["value"]]
        means = [paper["accuracy_mean"], *mine["accuracy_mean"]]
        lows = [paper["accuracy_ci_low"], *mine["accuracy_ci_low"]]
        highs = [paper["accuracy_ci_high"], *mine["accuracy_ci_high"]]
        colours = [colour("memnet")] + [GREY] * len(mine)
        y = 100 * np.asarray(means, float)
        err = np.vstack([y - 100 * np.asarray(lows, float), 100 * np.asarray(highs, float) - y])
        err = np.where(np.isnan(err), 0, err)
        bars = ax.bar(
            range(len(y)),
            y,
            color=colours,
            edgecolor="black",
            linewidth=0.6,
            yerr=err,
            capsize=2,
            error_kw={"linewidth": 0.8},
        )
        bars[0].set_hatch("//")
        ax.axhline(y[0], color=colour("memnet"), linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(y)), labels)
        ax.set_title(param)
        ax.set_ylim(lo - pad, hi + pad)
    for ax in axes[:: min(MAX_COLUMNS, len(params))]:
        ax.set_ylabel("Test accuracy (%)")
    fig.suptitle(f"{dataset_label(dataset)}: ablations (y axis does not start at 0)")
    return fig


# ---------------------------------------------------------------------------------------------
# F4: memories of a saved model


def class_names(dataset: str, n_classes: int) -> list[str]:
    from memnet.datasets import REGISTRY

    spec = REGISTRY.get(dataset)
    if spec is not None and len(spec.classes) == n_classes:
        return list(spec.classes)
    return [str(k) for k in range(n_classes)]


def memory_images(model, indices: np.ndarray) -> np.ndarray:
    """(n, H, W, C) images of the memories of neurons ``indices``, channels recombined, in [0, 1]."""
    c, h, w = model.image_shape_
    images = np.asarray(model.memories_[indices], dtype=np.float32).reshape(-1, c, h, w)
    return np.clip(images.transpose(0, 2, 3, 1), 0.0, 1.0)


def gallery(model, per_class: int = GALLERY_PER_CLASS, gap: int = 2) -> np.ndarray:
    """(K*(H+gap), per_class*(W+gap), C) mosaic: row k holds the most-used memories of class k.

    Empty slots (a class with fewer neurons) and the gaps between images are white.
    """
    labels, hits = np.asarray(model.labels_), np.asarray(model.hits_)
    c, h, w = model.image_shape_
    n_classes = len(model.classes_)
    mosaic = np.ones((n_classes * (h + gap), per_class * (w + gap), c), dtype=np.float32)
    for k in range(n_classes):
        mine = np.flatnonzero(labels == k)
        top = mine[np.argsort(-hits[mine], kind="stable")][:per_class]
        for j, image in enumerate(memory_images(model, top)):
            mosaic[k * (h + gap) : k * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = image
    return mosaic


def fig_memories(
    model, dataset: str, per_class: int = GALLERY_PER_CLASS, names: list[str] | None = None
) -> Figure:
    """F4: per class, the memories of its most-used neurons; right, the histogram of hits.
    ``names``: the class names (the run's record), else those of a shipped dataset, else digits."""
    hits = np.asarray(model.hits_)
    names = names or class_names(dataset, len(model.classes_))
    fig = Figure(figsize=(WIDTH, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.2, 1])
    mosaic = gallery(model, per_class)
    if mosaic.shape[-1] == 1:
        left.imshow(mosaic[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        left.imshow(mosaic, interpolation="nearest")
    row = mosaic.shape[0] / len(names)
    left.set_yticks((np.arange(len(names)) + 0.5) * row - 1, names)
    left.set_xticks([])
    left.grid(False)
    left.set_title(f"{per_class} most-used neurons per class")
    bins = np.unique(np.geomspace(1, max(2, hits.max() + 1), num=30).astype(int))
    right.hist(hits, bins=bins, color=colour("memnet"), edgecolor="black", linewidth=0.4)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("Samples absorbed per neuron (hits)")
    right.set_ylabel("Neurons")
    right.set_title(f"{len(hits):,} neurons, {int(hits.sum()):,} samples absorbed")
    fig.suptitle(f"{dataset_label(dataset)}: memories of the trained network")
    return fig


# ---------------------------------------------------------------------------------------------
# F5: confusion matrices from the run files


def confusions(paths: Iterable[str | Path]) -> dict[str, tuple[np.ndarray, int, list | None]]:
    """Per dataset, the confusion matrix of main/memnet/paper summed over the run files ``paths``
    (those of another setting are left out), the number of seeds summed, and the class names
    the runs recorded (None for runs that recorded none)."""
    runs = select(metrics_frame(paths), **MAIN_MEMNET)
    found = {}
    for dataset in dict.fromkeys(runs["dataset"]):
        matrices = [
            np.asarray(m["confusion"], dtype=np.int64) for m in select(runs, dataset)["metrics"]
        ]
        names = select(runs, dataset)["metrics"].iloc[0].get("classes")
        found[dataset] = sum(matrices), len(matrices), names
    return found


def row_percent(matrix: np.ndarray) -> np.ndarray:
    """A confusion matrix as % of each true class (a class with no sample: zeros)."""
    totals = matrix.sum(axis=1, keepdims=True)
    return 100 * matrix / np.where(totals == 0, 1, totals)


def fig_confusion(runs: Iterable[str | Path], datasets: list[str]) -> Figure:
    """F5: memnet's row-normalised confusion matrix (% of each true class) per dataset of
    ``datasets``, from the main/memnet/paper run files ``runs``."""
    summed = confusions(runs)
    found = {d: summed[d] for d in datasets if d in summed}
    if not found:
        return placeholder("F5: confusion matrices", "No main Memory Network runs in this run.")
    fig, axes = _figure(len(found), height=3.6)
    for ax, (dataset, (matrix, n_seeds, recorded)) in zip(axes, found.items(), strict=True):
        percent = row_percent(matrix)
        names = recorded or class_names(dataset, len(matrix))
        sns.heatmap(
            percent,
            ax=ax,
            cmap="viridis",
            vmin=0,
            vmax=100,
            square=True,
            annot=len(matrix) <= 10,
            fmt=".0f",
            annot_kws={"fontsize": NOTE_SIZE},
            cbar=ax is axes[-1],
            cbar_kws={"label": "% of true class"},
            xticklabels=names,
            yticklabels=names,
        )
        ax.set_xlabel("Predicted")
        ax.set_ylabel("True")
        ax.tick_params(axis="x", labelrotation=90)
        ax.tick_params(axis="y", labelrotation=0)
        seeds = f"{n_seeds} seed{'s' * (n_seeds != 1)}"
        ax.set_title(f"{dataset_label(dataset)} ({seeds})")
    return fig


# ---------------------------------------------------------------------------------------------
# F6: accuracy vs training time


def pareto_front(times: np.ndarray, accuracies: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both (faster and more accurate), by time."""
    order = np.lexsort((-accuracies, times))
    front, best = [], -np.inf
    for i in order:
        if accuracies[i] > best:
            front.append(i)
            best = accuracies[i]
    return np.asarray(front, dtype=int)


def fig_pareto(summary: pd.DataFrame, datasets: list[str] | None = None) -> Figure:
    """F6: accuracy vs mean training time of every model at the main setting; the Pareto front."""
    rows = select(summary, experiment="main")
    if rows.empty:
        return placeholder("F6: accuracy vs training time", "No 'main' experiment in this run.")
    names = dataset_order(rows["dataset"], datasets)
    fig, axes = _figure(len(names))
    for ax, dataset in zip(axes, names, strict=True):
        here = ordered(select(rows, dataset))
        t = here["train_seconds_mean"].to_numpy(float)
        acc = 100 * here["accuracy_mean"].to_numpy(float)
        front = pareto_front(t, acc)
        ax.step(t[front], acc[front], where="post", color=GREY, linewidth=1, zorder=1)
        for i, row in here.iterrows():
            ax.errorbar(
                t[i],
                acc[i],
                yerr=_error_bar(row, acc[i]),
                color=colour(row["model"]),
                marker=marker(row["model"]),
                markersize=5,
                capsize=2,
                linestyle="none",
                markeredgecolor="black",
                markeredgewidth=0.5,
                zorder=2,
            )
            # alternate above/below so that points at the same time keep readable labels
            ax.annotate(
                row["variant"],
                (t[i], acc[i]),
                textcoords="offset points",
                xytext=(4, 3 if i % 2 == 0 else -9),
                fontsize=NOTE_SIZE,
            )
        ax.set_xscale("log")
        ax.set_title(dataset_label(dataset) + _seeds(here))
        ax.set_xlabel("Training time (s, mean over seeds)")
        ax.set_ylabel("Test accuracy (%)")
    models = list(dict.fromkeys(ordered(rows)["model"]))
    handles = [
        Line2D(
            [],
            [],
            color=colour(m),
            marker=marker(m),
            linestyle="none",
            markeredgecolor="black",
            markeredgewidth=0.5,
            label=registry.label(m),
        )
        for m in models
    ] + [Line2D([], [], color=GREY, label="Pareto front")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), LEGEND_COLUMNS))
    return fig


# ---------------------------------------------------------------------------------------------
# Writing


# ---------------------------------------------------------------------------------------------
# F8: class-incremental learning (ours)


def fig_incremental(runs: pd.DataFrame, datasets: list[str] | None = None) -> Figure:
    """F8: accuracy on the classes seen so far after each task, one line per model (mean over
    seeds, 95% t-interval as a band)."""
    rows = select(runs, experiment="incremental")
    if rows.empty:
        shown = ", ".join(dataset_label(d) for d in datasets or []) or "these datasets"
        return placeholder(
            "F8: class-incremental learning",
            f"No class-incremental runs on {shown}: the config has no 'incremental' experiment, "
            "or its only_datasets leaves these datasets out.",
        )
    names = dataset_order(rows["dataset"], datasets)
    fig, axes = _figure(len(names))
    for ax, dataset in zip(axes, names, strict=True):
        here = ordered(select(rows, dataset))
        for (model, variant), group in here.groupby(["model", "variant"], sort=False):
            curves = np.array([json.loads(s) for s in group["seen_accuracy"]], dtype=float)
            tasks = np.arange(1, curves.shape[1] + 1)
            bands = [t_interval(curves[:, t]) for t in range(curves.shape[1])]
            summary = pd.DataFrame(
                {
                    "accuracy_mean": curves.mean(axis=0),
                    "accuracy_ci_low": [b[0] for b in bands],
                    "accuracy_ci_high": [b[1] for b in bands],
                }
            )
            _band(ax, tasks, summary, colour(model), model_label(model, variant), model)
            if variant.endswith("-open"):  # the same model, the stream's length unknown
                ax.lines[-1].set_linestyle((0, (1, 1)))
        ax.set_xticks(tasks)
        ax.set_ylim(0, 102)
        ax.set_title(f"{dataset_label(dataset)}: class-incremental (ours)")
        ax.set_xlabel("Tasks learnt")
        ax.set_ylabel("Accuracy on the classes seen (%)")
        ax.legend(loc="lower left")
    return fig


# ---------------------------------------------------------------------------------------------
# F7: accuracy vs model memory (ours)


def fig_memory(summary: pd.DataFrame, datasets: list[str] | None = None) -> Figure:
    """F7: accuracy against stored floats (model bytes / 4, log x): a line along each memory
    model's sweep (95% band), a marker for each baseline's main setting (T5's rows)."""
    t5 = tables.table_memory(summary)
    if t5.empty:
        return placeholder(
            "F7: accuracy vs model memory", "No memory sweep or main experiment in this run."
        )
    names = dataset_order(t5["dataset"], datasets)
    fig, axes = _figure(len(names))
    for ax, dataset in zip(axes, names, strict=True):
        here = select(t5, dataset, x=ANY)
        ax.set_xscale("log")
        for i, row in enumerate(here.itertuples()):
            if row.experiment != "main":
                continue
            acc = 100 * row.accuracy_mean
            ax.errorbar(row.stored_floats, acc, yerr=_error_bar(row._asdict(), acc), color=colour(row.model),
                        marker=marker(row.model), markersize=5, capsize=2,
                        linestyle="none", markeredgecolor="black", markeredgewidth=0.5,
                        label=row.label)  # fmt: skip
            ax.annotate(row.variant, (row.stored_floats, acc), textcoords="offset points",
                        xytext=(4, 3 if i % 2 == 0 else -9), fontsize=NOTE_SIZE)  # fmt: skip
        for model in MEMORY_SWEEPS:
            curve = select(here, model=model, x=ANY)
            curve = curve[curve["experiment"] != "main"].sort_values("stored_floats")
            if len(curve):
                label = f"{curve['label'].iloc[0]}, {tables.SWEPT[curve['experiment'].iloc[0]]}"
                _band(ax, curve["stored_floats"], curve, colour(model), label, model)
        ax.set_title(dataset_label(dataset) + _seeds(here))
        ax.set_xlabel("Stored floats (model bytes / 4)")
        ax.set_ylabel("Test accuracy (%)")
        ax.legend(loc="lower right")
    return fig


def save_figure(fig: Figure, out_dir: str | Path, stem: str) -> list[Path]:
    """``stem``.pdf and .png under ``out_dir``, each written atomically."""
    paths = []
    for ext in ("pdf", "png"):
        path = Path(out_dir) / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=DPI)
        paths.append(path)
    return paths


@dataclass
class FigureContext:
    """What every figure builder may read."""

    summary: pd.DataFrame
    runs: pd.DataFrame
    claims: list
    confusion_runs: list  # the main/memnet/paper run files (F5)
    models: list  # the saved models (results.saved_models)
    model_seed: int  # F4 draws, per dataset, the model of this seed
    datasets: list[str]


def build_neurons(ctx: FigureContext) -> Figure:
    return fig_neurons(ctx.summary, ctx.claims, ctx.datasets)


def build_samples(ctx: FigureContext) -> Figure:
    return fig_samples(ctx.summary, ctx.datasets)


def build_ablations(ctx: FigureContext, dataset: str) -> Figure:
    return fig_ablations(ctx.summary, ctx.runs, dataset)


def build_memories(ctx: FigureContext, dataset: str) -> Figure:
    return _memories_or_placeholder(ctx.models, dataset, ctx.model_seed)


def build_confusion(ctx: FigureContext) -> Figure:
    return fig_confusion(ctx.confusion_runs, ctx.datasets)


def build_pareto(ctx: FigureContext) -> Figure:
    return fig_pareto(ctx.summary, ctx.datasets)


def build_memory(ctx: FigureContext) -> Figure:
    return fig_memory(ctx.summary, ctx.datasets)


def build_incremental(ctx: FigureContext) -> Figure:
    return fig_incremental(ctx.runs, ctx.datasets)


def build_all(
    summary: pd.DataFrame,
    runs: pd.DataFrame,
    claims: list,
    confusion_runs: Iterable[str | Path],
    models: Iterable[str | Path],
    model_seed: int,
    datasets: list[str],
    out_dir: str | Path,
) -> list[Path]:
    """Every figure of the outputs catalogue (``figure_names(datasets)``) under ``out_dir``; the
    catalogue's figures of other datasets left there by an earlier run are removed.

    ``confusion_runs`` are the main/memnet/paper run files (F5); ``models`` the saved-model files
    (F4 draws, per dataset, the model of seed ``model_seed`` among them).
    """
    style()
    ctx = FigureContext(
        summary=summary,
        runs=runs,
        claims=list(claims),
        confusion_runs=list(confusion_runs),
        models=saved_models(models),
        model_seed=model_seed,
        datasets=list(datasets),
    )
    written = []
    for output in FIGURES.values():
        build = load_builder(output)
        if output.per_dataset:
            for dataset, stem in zip(datasets, output.stems(datasets), strict=True):
                written += save_figure(build(ctx, dataset), out_dir, stem)
        else:
            written += save_figure(build(ctx), out_dir, output.stem)
    for path in stale_figures(out_dir, written):  # another dataset's, from an earlier run
        path.unlink()
    return written


def _memories_or_placeholder(models: list, dataset: str, seed: int) -> Figure:
    saved = next((m for m in models if (m.dataset, m.seed) == (dataset, seed)), None)
    path = None if saved is None else saved.path
    if path is None:
        title = f"F4: memories ({dataset_label(dataset)})"
        return placeholder(title, f"No saved model for {dataset} (seed {seed}) in this run.")
    from memnet.models.memory.network import MemoryNetwork

    return fig_memories(MemoryNetwork.load(path), dataset, names=saved.classes)
