"""Tuning the Memory Network's initial threshold tau on a validation split of the training set."""

from __future__ import annotations

import numpy as np

from memnet import datasets
from memnet.pipeline.execute import limit_threads


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
    from memnet.models.memory.network import MemoryNetwork, default_tau

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
