"""The class-incremental protocol: each sample once, in task order; tests only on seen classes."""

from types import SimpleNamespace

import numpy as np
import pytest

from memnet.pipeline.incremental import check_tasks, forgetting, make_stream, run_stream


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


def blobs(n=400, n_classes=4, size=6, seed=0):
    """Images around one random template per class (an easy problem when learnt jointly)."""
    rng = np.random.default_rng(seed)
    templates = rng.random((n_classes, 1, size, size))
    y = rng.integers(0, n_classes, n)
    X = np.clip(templates[y] + 0.2 * rng.normal(size=(n, 1, size, size)), 0, 1)
    return X.astype(np.float32), y.astype(np.int64)


def two_task_data():
    X, y = blobs(600, seed=0)
    return SimpleNamespace(X_train=X[:400], y_train=y[:400], X_test=X[400:], y_test=y[400:],
                           classes=list("abcd"))  # fmt: skip


def test_a_fine_tuned_mlp_forgets_the_first_task():
    from memnet.models.baselines import MLP

    data = two_task_data()
    stream = make_stream(data.y_train, [[0, 1], [2, 3]], seed=0, n_classes=4)
    out = run_stream(MLP(epochs=20, random_state=0), data, stream)
    first_after_first, first_at_end = out["accuracy_per_task"][0][0], out["accuracy_per_task"][1][0]
    assert first_after_first > 0.9  # it had learnt the first task...
    assert first_at_end < 0.3  # ...and lost most of it to the second
    assert out["forgetting"] > 0.6


def test_with_t_known_the_memory_network_stream_equals_one_fit_in_the_same_order():
    from memnet.models.memory.network import MemoryNetwork, default_tau

    data = two_task_data()
    stream = make_stream(data.y_train, [[0, 1], [2, 3]], seed=4, n_classes=4)
    tau = 0.5 * default_tau(data.X_train)
    params = dict(n_neurons=40, tau=tau, random_state=4)
    streamed = MemoryNetwork(**params, expected_samples=stream.n_samples)
    out = run_stream(streamed, data, stream)
    order = stream.indices()
    whole = MemoryNetwork(**params, shuffle=False).fit(data.X_train[order], data.y_train[order])
    assert streamed.n_born_ == whole.n_born_ and streamed.n_seen_ == len(order) == 400
    np.testing.assert_array_equal(streamed.labels_, whole.labels_)
    np.testing.assert_array_equal(streamed.hits_, whole.hits_)
    np.testing.assert_array_equal(streamed.memories_, whole.memories_)
    np.testing.assert_array_equal(streamed.predict(data.X_test), whole.predict(data.X_test))
    assert out["forgetting"] < 0.1  # its class banks are untouched by the second task


def test_execute_stream_tells_a_memory_network_the_stream_length_and_records_the_measures():
    from memnet.pipeline.execute import execute_stream

    data = two_task_data()
    params = {"n_neurons": 40, "tau": 1.0}
    metrics = execute_stream(data=data, dataset="blobs", experiment="incremental", model="memnet",
                             variant="paper-known", params=params, seed=0, tasks=[[0, 1], [2, 3]])  # fmt: skip
    assert metrics["accuracy"] == metrics["seen_accuracy"][-1] and metrics["n_train"] == 400
    assert len(metrics["accuracy_per_task"]) == 2 and metrics["forgetting"] is not None
    assert np.array(metrics["confusion"]).sum() == metrics["n_test"] == 200
    open_params = {**params, "birth_schedule": "open"}
    other = execute_stream(data=data, dataset="blobs", experiment="incremental", model="memnet",
                           variant="paper-open", params=open_params, seed=0, tasks=[[0, 1], [2, 3]])  # fmt: skip
    assert (
        other["n_born"] != metrics["n_born"] or other["seen_accuracy"] != metrics["seen_accuracy"]
    )
    for model, model_params in [("knn", {"k": 1, "metric": "l2"}), ("ncm", {})]:
        run = execute_stream(data=data, dataset="blobs", experiment="incremental", model=model,
                             variant="v", params=model_params, seed=0, tasks=[[0, 1], [2, 3]])  # fmt: skip
        assert run["forgetting"] < 0.1  # memories of each class stay as they were
