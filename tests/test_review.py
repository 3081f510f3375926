"""The review notebook's additions (memnet.report.review): each model's confusion matrix and
misclassified test images, and the runs whose times stand out; on hand-made runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memnet.io import write_json
from memnet.pipeline.execute import MISCLASSIFIED_KEPT, misclassified
from memnet.report import review
from memnet.report.results import metrics_frame


def test_misclassified_keeps_the_first_wrong_test_images_in_order():
    y_true = np.array([0, 1, 2, 1, 0, 2])
    y_pred = np.array([0, 2, 2, 0, 0, 1])
    assert misclassified(y_true, y_pred) == [[1, 2], [3, 0], [5, 1]]
    many = np.zeros(500, int)
    assert len(misclassified(many, many + 1)) == MISCLASSIFIED_KEPT


def run_file(tmp_path, model, variant, seed, confusion, wrong):
    path = tmp_path / f"{model}-{variant}-{seed}.json"
    cm = np.asarray(confusion)
    write_json(path, {
        "dataset": "mnist", "experiment": "main", "model": model, "variant": variant, "x": None,
        "seed": seed, "classes": ["a", "b"], "confusion": cm.tolist(),
        "accuracy": float(np.trace(cm) / cm.sum()), "misclassified": wrong,
    })  # fmt: skip
    return path


def test_one_confusion_matrix_and_one_gallery_row_per_main_model(tmp_path):
    files = [
        run_file(tmp_path, "knn", "k1-l2", 1, [[1, 1], [0, 2]], [[0, 1]]),
        run_file(tmp_path, "knn", "k1-l2", 0, [[2, 0], [1, 1]], [[3, 0]]),  # the lowest seed
        run_file(tmp_path, "memnet", "paper", 0, [[2, 0], [0, 2]], []),  # nothing wrong
    ]
    metrics = metrics_frame(files)
    fig = review.confusion_figure(metrics, "mnist")
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_visible())
    assert titles == ["Memory Network (paper)\n100.0%", "kNN (k1-l2)\n75.0%"]

    X = np.stack([np.full((1, 2, 2), v, np.float32) for v in (0.0, 0.25, 0.5, 0.75)])
    y = np.array([0, 0, 1, 1])
    fig = review.misclassified_figure(metrics, "mnist", X, y, ["a", "b"])
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 1  # seed 0's one mistake; the memory network made none
    assert shown[0].get_title() == "b→a"
    assert np.allclose(shown[0].images[0].get_array(), 0.75)  # test image 3


def test_timing_outliers_are_far_from_their_settings_median():
    runs = pd.DataFrame({
        "dataset": "mnist", "experiment": "main", "model": ["knn"] * 3 + ["mlp"] + ["ncm"] * 2,
        "variant": "v", "x": np.nan, "seed": [0, 1, 2, 0, 0, 1],
        "train_seconds": [1.0, 1.1, 5.0, 100.0, 1.0, 10.0],
        "infer_seconds": [2.0, 2.0, 2.0, 1.0, 1.0, 1.0],
    })  # fmt: skip
    out = review.timing_outliers(runs)
    # knn seed 2 against the median of seeds 0 and 1; ncm's slower seed of two; never the fast one
    assert out[["model", "seed", "time"]].values.tolist() == [
        ["ncm", 1, "train_seconds"],
        ["knn", 2, "train_seconds"],
    ]
    assert out["ratio"].tolist() == [10.0, 5.0 / 1.05]
    assert review.timing_outliers(runs, factor=20).empty
