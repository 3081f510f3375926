"""T9 (ours; F9 is memnet.report.peers_figure): the learners without end-to-end backpropagation
side by side, measured in the same DAG (same data, splits, seeds, timing and memory accounting): the two memory models, the
peers (memnet.models.peers; the Krotov-Hopfield model's top layer is trained by gradient descent, and
its Backprop column says so), 1-NN and nearest class mean; beside each, the published figure of its
method (an anchor from its own paper, claims.yaml `anchors:` entries that name a `model`), and
whether our measurement meets it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memnet.report.results import as_bool, dataset_label, model_label, ordered, select
from memnet.report.tables import megabytes, model_facts, pct, pct_interval

COLUMNS = """
    dataset model variant label n_seeds accuracy_mean accuracy_ci_low accuracy_ci_high n_passes
    uses_backprop uses_weight_sharing train_seconds_mean infer_seconds_mean peak_memory_bytes_mean
    model_bytes_mean anchor anchor_source anchor_met
""".split()


def without_backprop(summary: pd.DataFrame) -> pd.DataFrame:
    """The main experiment's settings of models that declare no backpropagation, and of the peers
    (memnet.models.peers: none backpropagates end to end, whatever its flag says)."""
    from memnet.models.registry import peers

    rows = select(summary, experiment="main")
    keep = as_bool(rows["uses_backprop"]).eq(False).fillna(False) | rows["model"].isin(peers())
    return ordered(rows[keep])


def anchor_of(anchors: list[dict], dataset: str, model: str, variant: str) -> dict | None:
    """The published figure for a setting: an anchor naming its model (and variant, if any)."""
    for a in anchors:
        if (
            a.get("model") == model
            and a["dataset"] == dataset
            and a.get("variant", variant) == variant
        ):
            return a
    return None


BELOW_SCALE = "not at this scale"


def anchor_met(anchor: dict, accuracy: float, n_train: float = np.nan) -> bool | str | None:
    """Whether our mean accuracy meets the anchor: at least its figure (``comparison:
    at_least``, the default), or within its ``tolerance`` of it (``within``); BELOW_SCALE when
    our runs trained on fewer images than the anchor's ``n_train`` (the quick config)."""
    if anchor is None or pd.isna(accuracy):
        return None
    if not pd.isna(n_train) and n_train < anchor.get("n_train", 0):
        return BELOW_SCALE
    if anchor.get("comparison", "at_least") == "within":
        return bool(abs(accuracy - anchor["accuracy"]) <= anchor.get("tolerance", 0.0))
    return bool(accuracy >= anchor["accuracy"])


def table_peers(
    summary: pd.DataFrame, anchors: list[dict], runs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """T9: one row per setting without backpropagation, with its anchor and verdict (``runs``
    give the training images of each setting, against an anchor's scale)."""
    rows = without_backprop(summary).copy()
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows["label"] = [model_label(m, v) for m, v in zip(rows["model"], rows["variant"], strict=True)]
    found = [anchor_of(anchors, r.dataset, r.model, r.variant) for r in rows.itertuples()]
    rows["anchor"] = [np.nan if a is None else a["accuracy"] for a in found]
    rows["anchor_source"] = [None if a is None else a["source"] for a in found]
    images = [_n_train(runs, r.dataset, r.model, r.variant) for r in rows.itertuples()]
    rows["anchor_met"] = [
        anchor_met(a, m, n) for a, m, n in zip(found, rows["accuracy_mean"], images, strict=True)
    ]
    return rows[COLUMNS].reset_index(drop=True)


def _n_train(runs: pd.DataFrame | None, dataset: str, model: str, variant: str) -> float:
    if runs is None:
        return np.nan
    rows = select(runs, dataset, experiment="main", model=model, variant=variant)
    return float(rows["n_train"].max()) if len(rows) else np.nan


def display_peers(t9: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Dataset": t9["dataset"].map(dataset_label),
            "Model": t9["label"],
            "Accuracy (%)": t9["accuracy_mean"].map(pct),
            "95% CI (%)": [
                pct_interval(lo, hi)
                for lo, hi in zip(t9["accuracy_ci_low"], t9["accuracy_ci_high"], strict=True)
            ],
            **model_facts(t9),
            "Peak memory (MB)": t9["peak_memory_bytes_mean"].map(megabytes),
            "Model size (MB)": t9["model_bytes_mean"].map(megabytes),
            "Published (%)": [
                "–" if pd.isna(a) else f"{pct(a)} ({s})"
                for a, s in zip(t9["anchor"], t9["anchor_source"], strict=True)
            ],
            "Met": [_verdict(m) for m in t9["anchor_met"]],
        }
    )


def _verdict(met) -> str:
    if isinstance(met, str):
        return met
    return "–" if met is None or pd.isna(met) else ("yes" if met else "no")


def build_peers(ctx):
    """T9 from a memnet.report.tables.TableContext."""
    t9 = table_peers(ctx.summary, ctx.anchors, ctx.runs)
    return t9, display_peers(t9)
