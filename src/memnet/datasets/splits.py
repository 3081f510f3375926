"""Stratified subsets: the same class proportions, in a seeded order."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from memnet.datasets.prepared import Dataset

log = logging.getLogger(__name__)


def stratified_indices(y: np.ndarray, n: int, seed: int | Sequence[int]) -> np.ndarray:
    """``n`` indices into ``y``, class proportions kept, in a seeded random order.

    Every item gets a random rank; within its class it is taken in rank order, and the classes
    are interleaved by Sainte-Lague priority (r + 1/2) / n_class. The first ``n`` of that order
    keep the proportions within about one item per class, and a smaller subset is always
    contained in a larger one with the same seed.
    """
    y = np.asarray(y)
    if not 0 <= n <= len(y):
        raise ValueError(f"cannot draw {n} items from {len(y)}")
    rank = np.random.default_rng(seed).permutation(len(y))
    by_rank = np.argsort(rank, kind="stable")  # items in random order
    priority = np.empty(len(y), dtype=np.float64)
    for label in np.unique(y):
        members = by_rank[y[by_rank] == label]
        priority[members] = (np.arange(len(members)) + 0.5) / len(members)
    chosen = np.lexsort((rank, priority))[:n]
    return chosen[np.argsort(rank[chosen], kind="stable")]


def subset(
    ds: Dataset, n_train: int | None = None, n_test: int | None = None, seed: int = 0
) -> Dataset:
    """A stratified, seeded subset of ``ds``; None keeps a split whole and in its order."""
    x_train, y_train, x_test, y_test = ds.X_train, ds.y_train, ds.X_test, ds.y_test
    if n_train is not None:
        idx = stratified_indices(ds.y_train, n_train, seed=[seed, 0])
        x_train, y_train = x_train[idx], y_train[idx]
    if n_test is not None:
        idx = stratified_indices(ds.y_test, n_test, seed=[seed, 1])
        x_test, y_test = x_test[idx], y_test[idx]
    return dataclasses.replace(ds, X_train=x_train, y_train=y_train, X_test=x_test, y_test=y_test)
