"""The class-incremental protocol: each sample once, in task order; tests only on seen classes."""

from types import SimpleNamespace

import numpy as np
import pytest

from memnet.incremental import check_tasks, forgetting, make_stream, run_stream


class Recorder:
    """A fake model: it records what it is shown and predicts the label it read off the image."""

    def __init__(self, y_test_by_value):
        self.fitted, self.calls, self.queried = [], [], []
        self.y_of = y_test_by_value

    def partial_fit(self, X, y, classes=None):
        self.calls.append((X[:, 0, 0, 0].astype(int).tolist(), y.tolist(), classes))
        self.fitted.extend(set(y.tolist()))
        return self

    def predict(self, X):
        ids = X[:, 0, 0, 0].astype(int)
        self.queried.append(ids.tolist())
        truth = self.y_of[ids - 10_000]
        # right on the classes fitted so far, else class 0
        return np.where(np.isin(truth, self.fitted), truth, 0)


def fixture_data(n_train=60, n_test=30, n_classes=6, seed=1):
    rng = np.random.default_rng(seed)
    y_train = rng.integers(0, n_classes, n_train)
    y_test = rng.integers(0, n_classes, n_test)
    X_train = np.arange(n_train, dtype=np.float32).reshape(-1, 1, 1, 1)  # an image holds its index
    X_test = (10_000 + np.arange(n_test, dtype=np.float32)).reshape(-1, 1, 1, 1)
    classes = [str(c) for c in range(n_classes)]
    return SimpleNamespace(
        X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test, classes=classes
    )


def test_each_training_sample_arrives_once_in_task_order_and_only_seen_classes_are_tested():
    data = fixture_data()
    tasks = [[0, 1], [2, 3], [4, 5]]
    model = Recorder(data.y_test)
    out = run_stream(model, data, make_stream(data.y_train, tasks, seed=3, n_classes=6))

    shown = [i for ids, _, _ in model.calls for i in ids]
    assert sorted(shown) == list(range(len(data.y_train)))  # each sample exactly once
    for (ids, labels, classes), task in zip(model.calls, tasks, strict=True):
        assert set(labels) <= set(task) and labels == data.y_train[ids].tolist()
        assert list(classes) == list(range(6))  # every class is declared up front
    for t, queried in enumerate(model.queried):
        seen = [c for task in tasks[: t + 1] for c in task]
        assert sorted(queried) == sorted(10_000 + np.flatnonzero(np.isin(data.y_test, seen)))
    # the recorder is right on fitted classes: every seen class is fitted, so all are right
    assert out["seen_accuracy"] == [1.0, 1.0, 1.0] and out["forgetting"] == 0.0
    assert out["task_sizes"] == [int(np.isin(data.y_train, t).sum()) for t in tasks]


def test_the_order_within_a_task_follows_the_seed():
    y = np.repeat(np.arange(4), 25)
    a, b, c = (make_stream(y, [[0, 1], [2, 3]], seed, 4) for seed in (0, 0, 1))
    assert all(np.array_equal(x, z) for x, z in zip(a.order, b.order, strict=True))
    assert not np.array_equal(a.order[0], c.order[0])
    assert sorted(a.order[0]) == list(range(50)) and a.n_samples == 100


def test_forgetting_is_the_mean_drop_from_best_to_final():
    accuracy = [[1.0], [0.5, 0.9], [0.2, 0.6, 0.8]]
    assert forgetting(accuracy) == pytest.approx(((1.0 - 0.2) + (0.9 - 0.6)) / 2)
    assert forgetting([[0.7]]) is None


@pytest.mark.parametrize(
    ("tasks", "why"),
    [
        ([], "non-empty"),
        ([[0], []], "non-empty"),
        ([[0, 1], [1, 2]], "two tasks"),
        ([[0, 9]], "lacks"),
    ],
)
def test_bad_tasks_are_refused(tasks, why):
    with pytest.raises(ValueError, match=why):
        check_tasks(tasks, n_classes=4)
