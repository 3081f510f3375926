"""T9 and F9 (memnet.report.peers): the learners without backpropagation side by side, each beside
its method's published figure, with a verdict that a model below it must fail."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memnet.report import peers, peers_figure

ANCHORS = [
    {"dataset": "mnist", "model": "rf_elm", "method": "RF-ELM", "accuracy": 0.99,
     "source": "PLoS ONE 2015"},
    {"dataset": "mnist", "model": "idm_knn", "method": "IDM", "accuracy": 0.9946,
     "comparison": "within", "tolerance": 0.002, "source": "PAMI 2007"},
    {"dataset": "mnist", "method": "iCaRL", "accuracy": 0.9457, "source": "T6's"},
]  # fmt: skip


def summary(rows):
    base = dict(experiment="main", x=np.nan, n_seeds=5, accuracy_std=0.001, n_passes=1,
                uses_weight_sharing=False, train_seconds_mean=1.0, infer_seconds_mean=1.0,
                peak_memory_bytes_mean=1e8, model_bytes_mean=1e6, label=None)  # fmt: skip
    out = []
    for dataset, model, variant, acc, backprop in rows:
        out.append({**base, "dataset": dataset, "model": model, "variant": variant,
                    "accuracy_mean": acc, "accuracy_ci_low": acc - 0.01,
                    "accuracy_ci_high": acc + 0.01, "uses_backprop": backprop})  # fmt: skip
    return pd.DataFrame(out)


def test_t9_sets_each_learner_without_backprop_beside_its_anchor():
    t9 = peers.table_peers(
        summary([
            ("mnist", "rf_elm", "h12000", 0.9905, False),
            ("mnist", "idm_knn", "w3", 0.9900, False),  # 0.46 points from 99.46: not within 0.2
            ("mnist", "slda", "default", 0.87, False),
            ("mnist", "mlp", "epochs1", 0.97, True),  # backprop: not in T9
            ("mnist", "krotov_hopfield", "h2000", 0.981, True),  # a peer: in T9, "Backprop: yes"
        ]),
        ANCHORS,
    )  # fmt: skip
    assert set(t9["model"]) == {"slda", "rf_elm", "idm_knn", "krotov_hopfield"}
    shown_backprop = peers.display_peers(t9).set_index("Model")["Backprop"]
    assert shown_backprop[t9.set_index("model").loc["krotov_hopfield", "label"]] == "yes"
    by_model = t9.set_index("model")
    assert by_model.loc["rf_elm", "anchor"] == 0.99 and by_model.loc["rf_elm", "anchor_met"]
    assert (
        by_model.loc["idm_knn", "anchor_met"] is False or not by_model.loc["idm_knn", "anchor_met"]
    )
    assert pd.isna(by_model.loc["slda", "anchor"]) and by_model.loc["slda", "anchor_met"] is None
    shown = peers.display_peers(t9).set_index("Model")
    assert shown.loc[t9.set_index("model").loc["rf_elm", "label"], "Met"] == "yes"


def test_a_model_below_its_anchor_fails():
    """A fake RF-ELM at 98.5% must not meet "below 1% error"."""
    t9 = peers.table_peers(summary([("mnist", "rf_elm", "h12000", 0.985, False)]), ANCHORS)
    assert t9["anchor_met"].tolist() == [False]
    assert peers.display_peers(t9)["Met"].tolist() == ["no"]


def test_f9_draws_one_marker_per_learner_without_backprop():
    rows = summary([("mnist", "rf_elm", "h", 0.99, False), ("mnist", "ncm", "d", 0.82, False),
                    ("mnist", "cnn", "e", 0.99, True)])  # fmt: skip
    fig = peers_figure.fig_peers(rows, ["mnist"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(labels) == 2 and not any("CNN" in label for label in labels)


def test_an_anchor_is_not_judged_below_its_scale():
    anchors = [{**ANCHORS[0], "n_train": 60000}]
    rows = summary([("mnist", "rf_elm", "h1000", 0.974, False)])
    runs = rows.assign(seed=0, n_train=2000)
    t9 = peers.table_peers(rows, anchors, runs)
    assert t9["anchor_met"].tolist() == [peers.BELOW_SCALE]
    assert peers.display_peers(t9)["Met"].tolist() == ["not at this scale"]
    full = peers.table_peers(rows, anchors, runs.assign(n_train=60000))
    assert full["anchor_met"].tolist() == [False]
