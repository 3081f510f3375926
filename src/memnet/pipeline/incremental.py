"""Class-incremental learning (our own experiment, beyond the paper): tasks of classes arrive in turn.

The protocol is the standard class-incremental split (van de Ven & Tolias, 2019): the classes are
grouped into tasks, each class in exactly one (MNIST: [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]); each task's training samples
arrive once, in task order, in a seeded order within the task; after each task the model is tested
on every class seen so far, with no task label given. A model learns the stream through
``partial_fit(X, y, classes=...)``.

Measures, after task t (t = 0..n-1) and for each task j <= t:
- ``accuracy[t][j]``: accuracy on the test samples of task j's classes;
- ``seen_accuracy[t]``: accuracy on the test samples of all classes seen so far;
- the final average accuracy, ``seen_accuracy[-1]`` (all classes, once every task is in);
- forgetting: the mean over the tasks before the last of (best accuracy[t][j] over t) minus
  (final accuracy[n-1][j]) (Chaudhry et al., 2018).
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_TASKS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))


@dataclass(frozen=True)
class Stream:
    """The training stream of one seed: each task's sample indices, in presentation order."""

    tasks: tuple[tuple[int, ...], ...]
    order: tuple[np.ndarray, ...]  # order[t]: indices into the training set, for task t

    @property
    def n_samples(self) -> int:
        return sum(len(o) for o in self.order)

    def indices(self) -> np.ndarray:
        """Every training index of the stream, in presentation order."""
        return np.concatenate(self.order)


def check_tasks(
    tasks: Sequence[Sequence[int]], n_classes: int | None, *, name: str = "tasks"
) -> tuple[tuple[int, ...], ...]:
    """The tasks as tuples, after checking that they cover every class exactly once.

    A class left out would leave the stream's final accuracy on fewer classes than a joint
    model's. ``n_classes`` None (the dataset not known yet) checks only that no class appears
    twice; ``name`` says where the tasks come from in messages (a config key, a CLI option).
    """
    try:
        out = tuple(tuple(operator.index(c) for c in task) for task in tasks)
    except TypeError:
        out = ()
    if not out or any(not task for task in out):
        raise ValueError(
            f"{name} must be a non-empty list of non-empty lists of class indices; got {tasks!r}"
        )
    first_task: dict[int, int] = {}
    for t, task in enumerate(out):
        for c in task:
            if c not in first_task:
                first_task[c] = t
            elif first_task[c] == t:
                raise ValueError(
                    f"{name}: class {c} appears twice in task {t} {list(task)}; list it once"
                )
            else:
                raise ValueError(
                    f"{name}: class {c} appears in two tasks, task {first_task[c]} and task {t}; "
                    "each class belongs to one task"
                )
    if n_classes is None:
        return out
    last = f"0..{n_classes - 1}"
    for t, task in enumerate(out):
        for c in task:
            if not 0 <= c < n_classes:
                raise ValueError(
                    f"{name}: task {t} names class {c}, which the dataset lacks (its classes are "
                    f"{last}); use class indices {last}"
                )
    missing = [c for c in range(n_classes) if c not in first_task]
    if missing:
        raise ValueError(
            f"{name}: {_classes(missing)} of the dataset's {n_classes} (classes {last}) "
            f"{'is' if len(missing) == 1 else 'are'} in no task; the tasks must cover every class "
            "exactly once, or the final accuracy would be on fewer classes than the joint one. "
            "Add each left-out class to a task"
        )
    return out


def _classes(classes: list[int]) -> str:
    return f"class {classes[0]}" if len(classes) == 1 else f"classes {', '.join(map(str, classes))}"


def make_stream(y: np.ndarray, tasks: Sequence[Sequence[int]], seed: int, n_classes: int) -> Stream:
    """Each task's training samples (``y``: the training labels), shuffled within the task by
    ``seed``; every class of every task needs at least one training sample."""
    tasks = check_tasks(tasks, n_classes)
    rng = np.random.default_rng(seed)
    present = set(np.unique(y).tolist())
    order = []
    for t, task in enumerate(tasks):
        absent = [c for c in task if c not in present]
        if absent:
            raise ValueError(
                f"task {t} {list(task)} has no training sample of {_classes(absent)}: the "
                f"training labels lack {'it' if len(absent) == 1 else 'them'}. Train on data "
                "with samples of every class (e.g. a larger subset)"
            )
        idx = np.flatnonzero(np.isin(y, task))
        order.append(idx[rng.permutation(len(idx))])
    return Stream(tasks, tuple(order))


def run_stream(estimator, data, stream: Stream) -> dict:
    """Learn ``data``'s training set as the class-incremental ``stream``; test after each task.

    ``data`` has X_train, y_train, X_test, y_test and classes (a memnet.datasets.Dataset). Returns
    the measures of the module docstring as plain lists, the seconds spent learning and testing,
    and the last test's labels and predictions (every class of the stream).
    """
    classes = np.arange(len(data.classes))
    test_of_task = [np.isin(data.y_test, task) for task in stream.tasks]
    accuracy, seen_accuracy = [], []
    train_seconds = infer_seconds = 0.0
    for t, order in enumerate(stream.order):
        start = time.perf_counter()
        estimator.partial_fit(data.X_train[order], data.y_train[order], classes=classes)
        train_seconds += time.perf_counter() - start
        seen = np.logical_or.reduce(test_of_task[: t + 1])
        start = time.perf_counter()
        y_pred = np.full(len(data.y_test), -1)
        y_pred[seen] = estimator.predict(data.X_test[seen])
        infer_seconds += time.perf_counter() - start
        hit = y_pred == data.y_test
        accuracy.append([float(hit[test_of_task[j]].mean()) for j in range(t + 1)])
        seen_accuracy.append(float(hit[seen].mean()))
    return {
        "tasks": [list(task) for task in stream.tasks],
        "task_sizes": [len(o) for o in stream.order],
        "accuracy_per_task": accuracy,
        "seen_accuracy": seen_accuracy,
        "final_accuracy": seen_accuracy[-1],
        "forgetting": forgetting(accuracy),
        "train_seconds": train_seconds,
        "infer_seconds": infer_seconds,
        "y_true": data.y_test[seen],
        "y_pred": y_pred[seen],
    }


def forgetting(accuracy: list[list[float]]) -> float | None:
    """Mean drop of each earlier task's accuracy from its best to its final value (None: one task)."""
    last = len(accuracy) - 1
    if last == 0:
        return None
    drops = [
        max(accuracy[t][j] for t in range(j, last + 1)) - accuracy[last][j] for j in range(last)
    ]
    return float(np.mean(drops))
