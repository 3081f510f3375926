"""memnet: a reproducible replication of Memory Networks (Ruiz & Gupta, 2024, arXiv:2409.17282).

The model here is a reconstruction built from the paper's abstract and published summaries of it,
not from its full text (which arXiv publishes as PDF and HTML); docs/model.md describes what is
known of the paper and what was built. Where the two differ, please open an issue.

The public API is importable from the package itself::

    from memnet import MemoryNetwork, datasets

    data = datasets.load("results/data/mnist.npz")
    model = MemoryNetwork(random_state=0).fit(data.X_train, data.y_train)

Names are imported on first use (PEP 562), so ``import memnet`` loads neither numba nor torch:
the pipeline imports ``memnet.pipeline.config`` in every job, and only the jobs that train pay for them.

The package is grouped by job: ``memnet.datasets`` (declarations, fetching, the prepared .npz),
``memnet.models`` (the registry of model families, the estimator interface, the baselines,
``memory/`` for the memory models and ``peers/`` for the learners beside them), ``memnet.pipeline`` (config, plan, execute) and
``memnet.report`` (the outputs catalogue, tables, figures and the replication report).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> (module, attribute in it; None: the module itself). Every shipped model family's
# class (memnet.models.registry) is here; test_repository imports each name.
_LAZY = {
    "MemoryNetwork": ("memnet.models.memory.network", "MemoryNetwork"),
    "LocalMemoryNetwork": ("memnet.models.memory.local", "LocalMemoryNetwork"),
    "HierarchicalMemoryNetwork": ("memnet.models.memory.hierarchy", "HierarchicalMemoryNetwork"),
    "default_tau": ("memnet.models.memory.network", "default_tau"),
    "Estimator": ("memnet.models.estimator", "Estimator"),
    "Baseline": ("memnet.models.baselines", "Baseline"),
    "MLP": ("memnet.models.baselines", "MLP"),
    "CNN": ("memnet.models.baselines", "CNN"),
    "KNearestNeighbours": ("memnet.models.baselines", "KNearestNeighbours"),
    "NearestClassMean": ("memnet.models.baselines", "NearestClassMean"),
    "StreamingLDA": ("memnet.models.peers.slda", "StreamingLDA"),
    "RandomFieldELM": ("memnet.models.peers.rf_elm", "RandomFieldELM"),
    "IDMNearestNeighbours": ("memnet.models.peers.idm_knn", "IDMNearestNeighbours"),
    "KrotovHopfield": ("memnet.models.peers.krotov_hopfield", "KrotovHopfield"),
    "make_baseline": ("memnet.models.baselines", "make_baseline"),
    "make_model": ("memnet.models.registry", "make_model"),
    "FAMILIES": ("memnet.models.registry", "FAMILIES"),
    "datasets": ("memnet.datasets", None),
    "Dataset": ("memnet.datasets", "Dataset"),
    "DatasetUnavailable": ("memnet.datasets", "DatasetUnavailable"),
    "fetch_dataset": ("memnet.datasets", "fetch_dataset"),
    "prepare_dataset": ("memnet.datasets", "prepare"),
    "load_dataset": ("memnet.datasets", "load"),
}

__all__ = [
    "__version__",
    "MemoryNetwork",
    "LocalMemoryNetwork",
    "HierarchicalMemoryNetwork",
    "default_tau",
    "Estimator",
    "Baseline",
    "MLP",
    "CNN",
    "KNearestNeighbours",
    "NearestClassMean",
    "StreamingLDA",
    "RandomFieldELM",
    "IDMNearestNeighbours",
    "KrotovHopfield",
    "make_baseline",
    "make_model",
    "FAMILIES",
    "datasets",
    "Dataset",
    "DatasetUnavailable",
    "fetch_dataset",
    "prepare_dataset",
    "load_dataset",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on first use
    from memnet import datasets
    from memnet.datasets import Dataset, DatasetUnavailable, fetch_dataset
    from memnet.datasets import load as load_dataset
    from memnet.datasets import prepare as prepare_dataset
    from memnet.models.baselines import (
        CNN,
        MLP,
        Baseline,
        KNearestNeighbours,
        NearestClassMean,
        make_baseline,
    )
    from memnet.models.estimator import Estimator
    from memnet.models.memory.hierarchy import HierarchicalMemoryNetwork
    from memnet.models.memory.local import LocalMemoryNetwork
    from memnet.models.memory.network import MemoryNetwork, default_tau
    from memnet.models.peers.idm_knn import IDMNearestNeighbours
    from memnet.models.peers.krotov_hopfield import KrotovHopfield
    from memnet.models.peers.rf_elm import RandomFieldELM
    from memnet.models.peers.slda import StreamingLDA
    from memnet.models.registry import FAMILIES, make_model


def __getattr__(name: str):
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'memnet' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
