"""Experiments as data: the config expands into runs, and one run turns into one metrics file.

`plan(config)` lists every run the config declares (seeds aside); the Snakemake rules expand it into jobs.
`execute(...)` trains and evaluates one model on one dataset for one seed and returns its metrics.
Adding a seed, sweep point, ablation or baseline is a config edit: nothing here names one.
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from memnet import datasets, paths
from memnet.incremental import check_tasks

MEMNET = "memnet"
LOCAL = "local"  # the locally connected Memory Network (ours, beyond the paper)
BASELINES = ("mlp", "cnn", "knn", "ncm")
# Keys of a config entry that select where it applies rather than being model parameters.
SELECTORS = ("only_datasets",)


@dataclass(frozen=True)
class Run:
    """One model setting on one dataset; the pipeline runs it once per seed."""

    dataset: str
    experiment: str
    model: str
    variant: str
    name: str  # unique within (dataset, experiment, model): the variant, plus the sweep value
    params: dict[str, Any] = field(hash=False)
    x: float | None = None  # the swept value (n_neurons or n_train), if any
    n_train: int | None = None  # a stratified training subset of this size, if any
    tasks: tuple[tuple[int, ...], ...] | None = None  # class-incremental: the classes of each task

    def metrics_path(self, seed: int | str, results_dir: str) -> str:
        """Where this run's metrics file for ``seed`` lies, under a config's results directory."""
        fields = dict(dataset=self.dataset, experiment=self.experiment, model=self.model)
        return paths.under(results_dir, paths.RUN, **fields, name=self.name, seed=seed)

    @property
    def needs_tuning(self) -> bool:
        return self.model == MEMNET and self.params.get("tau") is None


def _applies(entry: dict, dataset: str) -> bool:
    only = entry.get("only_datasets")
    return only is None or dataset in only


def _params(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in SELECTORS}


def _model_variants(config: dict, models: dict, dataset: str, key: str = "experiments"):
    """Yield (model, variant, params) for a `models:` block of an experiment (config key ``key``)."""
    for model, variants in models.items():
        for variant in variants:
            if model == MEMNET:
                yield model, variant, paper_params(config)
                continue
            if model == LOCAL:
                entry = local_entry(config, variant, f"{key}.local")
                if _applies(entry, dataset):
                    yield model, variant, _params(entry)
                continue
            try:
                entry = config["baselines"][model][variant]
            except KeyError:
                raise ValueError(
                    f"config: experiments use baseline {model}/{variant}, but "
                    f"baselines.{model} defines no '{variant}'; add it under baselines.{model}"
                ) from None
            if _applies(entry, dataset):
                yield model, variant, _params(entry)


def train_size(config: dict, dataset: str) -> int:
    """The number of training images a run of this dataset sees at most."""
    full = datasets.get_spec(dataset, config).n_train
    cap = config.get("data", {}).get("subset", {}).get(dataset, {}).get("n_train")
    return min(full, cap) if cap else full


def sweep_sizes(config: dict, dataset: str) -> list[tuple[int, int]]:
    """(size run, size asked) for each point of the `samples` sweep on ``dataset``.

    A size above the training set (or its configured subset) means all of it: it is clipped to the
    training set's size, and `clipped_sweep_points` says so.
    """
    available = train_size(config, dataset)
    asked = config.get("experiments", {}).get("samples", {}).get("n_train", [])
    return [(min(n, available), n) for n in asked]


def clipped_sweep_points(config: dict) -> list[str]:
    """A warning for each `samples` sweep point larger than a dataset's training set."""
    return [
        f"experiments.samples.n_train: {asked} is more than the {run} training images of "
        f"{dataset}; it runs on all {run}"
        for dataset in config["datasets"]
        if "samples" in config.get("experiments", {})
        for run, asked in sweep_sizes(config, dataset)
        if run != asked
    ]


# The variant of the config's `local:` entry that `local_banks` sweeps and `local_ablations` vary.
LOCAL_REFERENCE = "default"


def local_entry(config: dict, variant: str, key: str) -> dict:
    """The `local:` entry of ``variant`` (LocalMemoryNetwork parameters); ``key`` is the config key
    that asks for it, named in the error when the entry is missing."""
    try:
        return config["local"][variant]
    except KeyError:
        raise ValueError(
            f"config key '{key}': uses the local model's variant '{variant}', but the config key "
            f"'local' defines no '{variant}'; add it under local"
        ) from None


def paper_params(config: dict) -> dict:
    """The Memory Network's `paper` parameters of ``config`` (its `memnet` entry)."""
    return _params(config["memnet"])


def plan(config: dict) -> list[Run]:
    """Every run that `config` declares, in a stable order."""
    runs: list[Run] = []
    experiments = config.get("experiments", {})
    paper = paper_params(config)
    for dataset in config["datasets"]:
        main = experiments.get("main")
        if main:
            for model, variant, params in _model_variants(
                config, main["models"], dataset, "experiments.main.models"
            ):
                runs.append(Run(dataset, "main", model, variant, variant, params))

        neurons = experiments.get("neurons")
        if neurons:
            for n in neurons["n_neurons"]:
                params = {**paper, "n_neurons": n}
                runs.append(Run(dataset, "neurons", MEMNET, f"n{n}", f"n{n}", params, x=n))

        samples = experiments.get("samples")
        if samples:
            sizes = sorted({n for n, _ in sweep_sizes(config, dataset)})
            for model, variant, params in _model_variants(
                config, samples["models"], dataset, "experiments.samples.models"
            ):
                for n in sizes:
                    name = f"{variant}-t{n}"
                    runs.append(
                        Run(dataset, "samples", model, variant, name, params, x=n, n_train=n)
                    )

        for name, overrides in experiments.get("ablations", {}).items():
            if _applies(overrides, dataset):
                params = {**paper, **_params(overrides)}
                runs.append(Run(dataset, "ablations", MEMNET, name, name, params))

        banks = experiments.get("local_banks")
        if banks:
            entry = local_entry(config, LOCAL_REFERENCE, "experiments.local_banks")
            for n in banks["n_per_bank"] if _applies(entry, dataset) else ():
                params = {**_params(entry), "n_per_bank": n}
                runs.append(Run(dataset, "local_banks", LOCAL, f"b{n}", f"b{n}", params, x=n))

        local_ablations = experiments.get("local_ablations", {})
        if local_ablations:
            entry = local_entry(config, LOCAL_REFERENCE, "experiments.local_ablations")
            for name, overrides in local_ablations.items():
                if _applies(entry, dataset) and _applies(overrides, dataset):
                    params = {**_params(entry), **_params(overrides)}
                    runs.append(Run(dataset, "local_ablations", LOCAL, name, name, params))

        incremental = experiments.get("incremental")
        if incremental and _applies(incremental, dataset):
            runs += _incremental_runs(config, incremental, dataset)
    return runs


# How the Memory Network learns a stream: with its length T known (the budget spread evenly over it,
# as in one pass over a dataset), or not known (a birth schedule that needs no T: see MemoryNetwork).
HORIZONS = {"known": {}, "open": {"birth_schedule": "open"}}


def _incremental_runs(config: dict, incremental: dict, dataset: str) -> list[Run]:
    n_classes = len(datasets.get_spec(dataset, config).classes)
    try:
        tasks = check_tasks(incremental["tasks"], n_classes)
    except ValueError as exc:
        raise ValueError(f"config key 'experiments.incremental.tasks' ({dataset}): {exc}") from None
    runs = []
    for model, variant, params in _model_variants(
        config, incremental["models"], dataset, "experiments.incremental.models"
    ):
        if model != MEMNET:
            runs.append(Run(dataset, "incremental", model, variant, variant, params, tasks=tasks))
            continue
        for horizon in incremental["horizons"]:
            name = f"{variant}-{horizon}"
            params = {**params, **HORIZONS[horizon]}
            runs.append(Run(dataset, "incremental", model, name, name, params, tasks=tasks))
    return runs


# ---------------------------------------------------------------------------------------------
# Executing one run


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


def make_model(model: str, params: dict, seed: int, threads: int):
    """An unfitted, checked estimator ``model`` with ``params`` (a dict, as the config and the
    command line give it), seeded with ``seed``. An unknown model, an unknown parameter or a bad
    value: one ValueError that names it, before any training."""
    if model == MEMNET:
        from memnet.model import MemoryNetwork

        return MemoryNetwork.from_params(params, random_state=seed)
    if model == LOCAL:
        from memnet.local import LocalMemoryNetwork

        return LocalMemoryNetwork.from_params(params, random_state=seed)
    if model in BASELINES:
        from memnet.baselines import make_baseline

        return make_baseline(model, random_state=seed, n_threads=threads, **params)
    raise ValueError(f"unknown model '{model}'; expected one of {(MEMNET, LOCAL, *BASELINES)}")


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
) -> dict:
    """Train ``model`` once on ``data`` (or a seeded stratified subset of ``n_train``) and test it."""
    limit_threads(threads)
    X, y = data.X_train, data.y_train
    if n_train is not None and n_train < len(y):
        idx = datasets.stratified_indices(y, n_train, seed)
        X, y = X[idx], y[idx]

    estimator = make_model(model, params, seed, threads)
    if model_out is not None and not estimator.can_save:
        raise ValueError(
            f"a {model} model cannot be saved (only the memory models can); run it without a "
            "model file (--model-out)"
        )
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
        seconds=(train_seconds, infer_seconds),
        threads=threads,
        run=dict(
            dataset=dataset,
            experiment=experiment,
            model=model,
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
) -> dict:
    """Learn ``data`` as a class-incremental stream of ``tasks`` (memnet.incremental), testing after
    each task; the metrics of ``execute`` (accuracy: on every class after the last task) plus the
    stream's measures. A model whose parameters include ``expected_samples`` and leave it unset is
    told the stream's length (the horizon "known"); a birth schedule that needs none ignores it."""
    from memnet.incremental import make_stream, run_stream

    limit_threads(threads)
    stream = make_stream(data.y_train, tasks, seed, len(data.classes))
    estimator = make_model(model, params, seed, threads)
    if estimator.get_params().get("expected_samples", 0) is None:
        estimator.set_params(expected_samples=stream.n_samples)
    out = run_stream(estimator, data, stream)
    metrics = _metrics(
        estimator,
        out["y_true"],
        out["y_pred"],
        classes=data.classes,
        n_train=stream.n_samples,
        seconds=(out["train_seconds"], out["infer_seconds"]),
        threads=threads,
        run=dict(
            dataset=dataset,
            experiment=experiment,
            model=model,
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
        "n_train": n_train,
        "n_test": int(len(y_true)),
        "train_seconds": seconds[0],
        "infer_seconds": seconds[1],
        "peak_memory_bytes": peak_rss_bytes(),
        "threads": threads,
        "versions": versions(),
        "git_revision": git_revision(),
        "forgetting": None,  # class-incremental runs only (execute_stream)
        "seen_accuracy": None,
        **facts,
    }


def tune(
    data: datasets.Dataset,
    params: dict,
    *,
    tau_scale: list[float],
    validation_fraction: float,
    seed: int,
    threads: int = 1,
) -> dict:
    """Choose the initial tau on a seeded, stratified validation split of the training set."""
    from memnet.model import MemoryNetwork, default_tau

    limit_threads(threads)
    n_val = max(1, round(validation_fraction * len(data.y_train)))
    val = datasets.stratified_indices(data.y_train, n_val, seed)
    fit = np.setdiff1d(np.arange(len(data.y_train)), val)
    X_fit, y_fit = data.X_train[fit], data.y_train[fit]
    X_val, y_val = data.X_train[val], data.y_train[val]

    checked = MemoryNetwork.from_params(params, random_state=seed)  # one clear error if bad
    base = default_tau(X_fit, checked.distance)
    scores = {}
    for scale in tau_scale:
        model = MemoryNetwork(**{**params, "tau": scale * base}, random_state=seed)
        scores[scale] = float(model.fit(X_fit, y_fit).score(X_val, y_val))
    best = max(tau_scale, key=lambda s: (scores[s], -abs(np.log(s))))  # ties: closest to default
    return {
        "tau": best * base,
        "tau_scale": best,
        "default_tau": base,
        # the same multiple of each distance's own default suits a run with another distance
        "default_tau_by_distance": {d: default_tau(X_fit, d) for d in DISTANCE_NAMES},
        "validation_accuracy": {str(s): a for s, a in scores.items()},
        "n_fit": int(len(fit)),
        "n_validation": int(n_val),
        "seed": seed,
        "params": params,
    }


DISTANCE_NAMES = ("l2", "l1", "cosine")


def tuned_tau(tuning: dict, distance: str) -> float:
    """The initial tau a run with ``distance`` takes from a `tune` result: the tuned tau for the
    tuned distance, else the tuned multiple (tau_scale) of ``distance``'s own default tau."""
    if distance == tuning.get("params", {}).get("distance", "l2"):
        return float(tuning["tau"])
    return float(tuning["tau_scale"]) * float(tuning["default_tau_by_distance"][distance])


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


def git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def params_json(params: dict) -> str:
    return json.dumps(params, sort_keys=True)
