"""F9 (ours): accuracy against training time of every learner without backpropagation (T9's
rows, memnet.report.peers), one marker per model, per dataset."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from memnet.report.figures import _error_bar, _figure, _seeds, colour, marker, placeholder
from memnet.report.peers import without_backprop
from memnet.report.results import dataset_label, dataset_order, model_label, select


def fig_peers(summary: pd.DataFrame, datasets: list[str] | None = None) -> Figure:
    """F9: accuracy against mean training time (log), one marker per model without backprop."""
    rows = without_backprop(summary)
    if rows.empty:
        return placeholder("F9: learners without backprop", "No such model in 'main' in this run.")
    names = dataset_order(rows["dataset"], datasets)
    fig, axes = _figure(len(names))
    for ax, dataset in zip(axes, names, strict=True):
        here = select(rows, dataset).reset_index(drop=True)
        for _, row in here.iterrows():
            acc = 100 * row["accuracy_mean"]
            ax.errorbar(
                row["train_seconds_mean"], acc, yerr=_error_bar(row, acc),
                color=colour(row["model"]), marker=marker(row["model"]), markersize=5, capsize=2,
                linestyle="none", markeredgecolor="black", markeredgewidth=0.5,
                label=model_label(row["model"], row["variant"]),
            )  # fmt: skip
        ax.set_xscale("log")
        ax.set_title(dataset_label(dataset) + _seeds(here))
        ax.set_xlabel("Training time (s, mean over seeds)")
        ax.set_ylabel("Test accuracy (%)")
        ax.legend(loc="lower right")
    return fig


def build_peers_figure(ctx) -> Figure:
    """F9 from a memnet.report.figures.FigureContext."""
    return fig_peers(ctx.summary, ctx.datasets)
