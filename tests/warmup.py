"""Warm numba's on-disk cache before the pipeline's jobs need it.

Every numba kernel of memnet is compiled with ``cache=True``: the first process to call a kernel
with a signature writes the machine code next to the source (``__pycache__``), and later processes
load it. Without a warm cache, the pipeline's first jobs (two at a time on 2 cores) each compile
the same kernels. :func:`warm_numba` runs, in this process and on a tiny dataset, every model
setting of the configs given that may call a kernel, with the pipeline's own entry points
(``tune``, ``execute``, ``execute_stream``), so that each snakemake job afterwards only loads.
"""

from __future__ import annotations

import json

import numpy as np

from memnet import datasets

# Families that call no numba kernel (torch, or numpy only): skipped, they would only cost time.
NO_KERNELS = {"mlp", "cnn", "ncm"}


def tiny_dataset(
    image_shape=(1, 28, 28), n_classes: int = 10, n_train: int = 100, n_test: int = 30
):
    """A small learnable float32 dataset in [0, 1] (the dtype and layout `datasets.load` gives)."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((n_classes, *image_shape), dtype=np.float32)

    def draw(n):
        y = np.arange(n, dtype=np.int64) % n_classes
        noise = 0.2 * rng.standard_normal((n, *image_shape)).astype(np.float32)
        return np.clip(prototypes[y] + noise, 0, 1).astype(np.float32), y

    X_train, y_train = draw(n_train)
    X_test, y_test = draw(n_test)
    classes = [str(k) for k in range(n_classes)]
    return datasets.Dataset("warmup", X_train, y_train, X_test, y_test, classes)


def warm_numba(configs: list[dict], threads: int = 2) -> int:
    """Run every distinct kernel-using model setting of ``configs`` once on tiny data; returns
    how many were run. The process's thread settings (numba's, BLAS's) are restored afterwards."""
    import numba
    from threadpoolctl import threadpool_limits

    from memnet.pipeline.config import validate
    from memnet.pipeline.execute import execute, execute_stream
    from memnet.pipeline.plan import paper_params, plan
    from memnet.pipeline.tune import tune, tuned_tau

    data = tiny_dataset()
    seen: set[tuple] = set()
    numba_threads = numba.get_num_threads()
    with threadpool_limits(limits=None):  # restores BLAS's limits on exit
        try:
            for config in configs:
                config = validate(json.loads(json.dumps(config)))
                tuning = tune(
                    data, paper_params(config), tau_scale=[1.0], validation_fraction=0.2,
                    seed=0, threads=threads,
                )  # fmt: skip
                for run in plan(config):
                    key = (run.model, json.dumps(run.params, sort_keys=True), run.tasks is None)
                    if run.model in NO_KERNELS or key in seen:
                        continue
                    seen.add(key)
                    params = dict(run.params)
                    if run.needs_tuning:
                        params["tau"] = tuned_tau(tuning, params.get("distance", "l2"))
                    common = dict(
                        data=data, dataset=data.name, experiment=run.experiment, model=run.model,
                        variant=run.variant, params=params, seed=0, threads=threads,
                    )  # fmt: skip
                    if run.tasks is not None:
                        execute_stream(**common, tasks=run.tasks)
                    else:
                        execute(**common)
        finally:
            numba.set_num_threads(numba_threads)
    return len(seen)
