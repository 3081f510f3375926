"""Executing one run: train and evaluate one model on one dataset for one seed, and return its
metrics (what the run is, how it scored, the model's own facts, and where and with what code it ran)."""

from __future__ import annotations

import resource
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from memnet import datasets
from memnet.models import registry
from memnet.models.registry import CONFIG_KEY, make_model
from memnet.provenance import git_state, source_hash


def load_data(npz: str | Path, subset: dict | None) -> datasets.Dataset:
    """The dataset, cut to the config's subset (the same subset for every run and seed)."""
    data = datasets.load(npz)
    if subset:
        data = datasets.subset(
            data, n_train=subset.get("n_train"), n_test=subset.get("n_test"), seed=0
        )
    return data


def limit_threads(n: int) -> None:
    """Make numba, BLAS (and torch, via the baselines) use at most ``n`` threads."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    threadpool_limits(n)


def _families(model: str, family: dict | None) -> dict | None:
    """The config fragment that declares ``model`` when it is a family of the user's own."""
    return {CONFIG_KEY: {model: family}} if family else None


def family_label(model: str, family: dict | None) -> str:
    """The label the report gives ``model``: its registry entry's, or its config entry's."""
    return registry.family(model, _families(model, family)).label


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def execute(
    *,
    data: datasets.Dataset,
    dataset: str,
    experiment: str,
    model: str,
    variant: str,
    params: dict,
    seed: int,
    threads: int = 1,
    x: float | None = None,
    n_train: int | None = None,
    model_out: str | Path | None = None,
    family: dict | None = None,
) -> dict:
    """Train ``model`` once on ``data`` (or a seeded stratified subset of ``n_train``) and test it."""
    limit_threads(threads)
    X, y = data.X_train, data.y_train
    if n_train is not None and n_train < len(y):
        idx = datasets.stratified_indices(y, n_train, seed)
        X, y = X[idx], y[idx]

    def make():
        return make_model(model, params, seed, threads, _families(model, family))

    estimator = make()
    if model_out is not None and not estimator.can_save:
        raise ValueError(
            f"a {model} model cannot be saved (only the memory models can); run it without a "
            "model file (--model-out)"
        )
    warmup_seconds = warm_up(make, X, y, data.X_test)
    start = time.perf_counter()
    estimator.fit(X, y)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    y_pred = estimator.predict(data.X_test)
    infer_seconds = time.perf_counter() - start
    if model_out is not None:
        estimator.save(model_out)

    return _metrics(
        estimator,
        data.y_test,
        y_pred,
        classes=data.classes,
        n_train=int(len(y)),
        seconds=(train_seconds, infer_seconds, warmup_seconds),
        threads=threads,
        run=dict(
            dataset=dataset,
            experiment=experiment,
            model=model,
            label=family_label(model, family),
            variant=variant,
            x=x,
            seed=seed,
            params=params,
        ),
    )


def execute_stream(
    *,
    data: datasets.Dataset,
    dataset: str,
    experiment: str,
    model: str,
    variant: str,
    params: dict,
    seed: int,
    tasks,
    threads: int = 1,
    family: dict | None = None,
) -> dict:
    """Learn ``data`` as a class-incremental stream of ``tasks`` (memnet.incremental), testing after
    each task; the metrics of ``execute`` (accuracy: on every class after the last task) plus the
    stream's measures. A model whose parameters include ``expected_samples`` and leave it unset is
    told the stream's length (the horizon "known"); a birth schedule that needs none ignores it."""
    from memnet.pipeline.incremental import make_stream, run_stream

    limit_threads(threads)
    stream = make_stream(data.y_train, tasks, seed, len(data.classes))

    def make():
        return make_model(model, params, seed, threads, _families(model, family))

    first = stream.order[0]
    warmup_seconds = warm_up(make, data.X_train[first], data.y_train[first], data.X_test)
    estimator = make()
    if estimator.get_params().get("expected_samples", 0) is None:
        estimator.set_params(expected_samples=stream.n_samples)
    out = run_stream(estimator, data, stream)
    metrics = _metrics(
        estimator,
        out["y_true"],
        out["y_pred"],
        classes=data.classes,
        n_train=stream.n_samples,
        seconds=(out["train_seconds"], out["infer_seconds"], warmup_seconds),
        threads=threads,
        run=dict(
            dataset=dataset,
            experiment=experiment,
            model=model,
            label=family_label(model, family),
            variant=variant,
            x=None,
            seed=seed,
            params=params,
        ),
    )
    stream_measures = ("tasks", "task_sizes", "accuracy_per_task", "seen_accuracy", "forgetting")
    return {**metrics, **{key: out[key] for key in stream_measures}}


def _metrics(estimator, y_true, y_pred, *, classes, n_train, seconds, threads, run) -> dict:
    """One run's metrics file: ``run`` (dataset, experiment, model, variant, x, seed, params),
    the test's outcome, the model's own facts (run_facts) and where it ran."""
    n_classes = len(classes)
    facts = estimator.run_facts(n_classes)
    return {
        **run,
        "classes": [str(c) for c in classes],
        "accuracy": float(np.mean(y_pred == y_true)),
        "confusion": confusion_matrix(y_true, y_pred, n_classes).tolist(),
        "misclassified": misclassified(y_true, y_pred),
        "n_train": n_train,
        "n_test": int(len(y_true)),
        "train_seconds": seconds[0],
        "infer_seconds": seconds[1],
        "warmup_seconds": seconds[2],
        "peak_memory_bytes": peak_rss_bytes(),
        "threads": threads,
        "versions": versions(),
        **provenance(),
        "forgetting": None,  # class-incremental runs only (execute_stream)
        "seen_accuracy": None,
        **facts,
    }


MISCLASSIFIED_KEPT = 64  # test images a run's metrics name among those it got wrong


def misclassified(y_true: np.ndarray, y_pred: np.ndarray) -> list[list[int]]:
    """[test index, predicted class] of the first MISCLASSIFIED_KEPT test images (in test order)
    that the model got wrong: the review notebook shows them."""
    wrong = np.flatnonzero(np.asarray(y_pred) != np.asarray(y_true))[:MISCLASSIFIED_KEPT]
    return [[int(i), int(y_pred[i])] for i in wrong]


def peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    process that started it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("memnet", "numpy", "numba", "torch", "faiss-cpu", "scikit-learn"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def provenance() -> dict:
    """Which code ran: the git commit, whether the tree had uncommitted changes, and the hash of
    the memnet source (memnet.provenance)."""
    state = git_state()
    return {
        "git_revision": state["commit"],
        "git_dirty": state["dirty"],
        "source_hash": source_hash(),
    }


# The warm-up fit: this many training images, and a prediction of a few test images.
WARMUP_SAMPLES = 64
WARMUP_QUERIES = 8


def warm_up(make, X, y, X_test) -> float:
    """Start the model's code before the clock: import it, compile its kernels (numba's first call
    in a fresh cache) and warm up torch, by fitting a fresh estimator (``make()``) on the first
    WARMUP_SAMPLES training images and predicting a few test images. Returns its seconds (the
    metrics' ``warmup_seconds``), which ``train_seconds`` and ``infer_seconds`` leave out.

    The warm-up model is thrown away; the run's own model starts from scratch with its seed. A
    model may warm up a smaller copy of itself (Estimator.for_warm_up: the RF-ELM, whose solve's
    size needs no warming). A warm-up that fails is ignored: the real fit then meets the same problem
    and says so.
    """
    start = time.perf_counter()
    n = min(len(y), WARMUP_SAMPLES)
    try:
        make().for_warm_up().fit(X[:n], y[:n]).predict(X_test[:WARMUP_QUERIES])
    except Exception:  # noqa: BLE001  (the real fit reports it)
        pass
    return time.perf_counter() - start
