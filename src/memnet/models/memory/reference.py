"""A plain numpy Memory Network, one sample at a time: the yardstick for the fast kernels in tests.

It follows the algorithm described in docs/model.md literally and shares no code with
memnet.model. Distances are float64 sums of float64 differences of the float32 inputs (the
kernels take every decision on the same quantity); memory updates are float32, as in the model.
The two agree up to float64 rounding (about 1e-16 relative), so any test data without exact
near-ties at that level must give identical births, winners and predictions.

That algorithm is a reconstruction built from the paper's abstract and published summaries
only, not from its full text (which is public on arXiv, as PDF and HTML). If you compare it with
the full text and find a difference, please report it.
"""

from __future__ import annotations

import math

import numpy as np


def distance(x: np.ndarray, m: np.ndarray, kind: str) -> float:
    """Distance between x and m, each (C, P) float32, summed over channels."""
    x = x.astype(np.float64)
    m = m.astype(np.float64)
    if kind == "l2":
        return float(((x - m) ** 2).sum())
    if kind == "l1":
        return float(np.abs(x - m).sum())
    total = 0.0
    for xc, mc in zip(x, m, strict=True):
        nx, nm = np.sqrt((xc * xc).sum()), np.sqrt((mc * mc).sum())
        total += 1.0 if nx == 0 or nm == 0 else 1.0 - float(xc @ mc) / (nx * nm)
    return total


def fit(
    X,
    y,
    *,
    n_classes,
    n_neurons,
    distance_kind="l2",
    threshold="adaptive",
    plasticity="mean",
    competition="label",
    tau=1.0,
    beta=0.01,
    eta=0.1,
    expected_samples=None,
    birth_schedule="uniform",
):
    """One pass over X (n, C, P) float32 in the order given; returns the learnt state as a dict."""
    T = expected_samples or len(X)
    memories, birth_labels, hits, assoc = [], [], [], []
    for seen, (x, label) in enumerate(zip(X, y, strict=True), start=1):
        label = int(label)
        candidates = [
            i for i in range(len(memories)) if competition == "all" or birth_labels[i] == label
        ]
        winner, d_win = None, None
        for i in candidates:  # in birth order: a tie keeps the earlier neuron
            d = distance(x, memories[i], distance_kind)
            if winner is None or d < d_win:
                winner, d_win = i, d
        novel = winner is None or threshold == "none" or d_win > tau
        if novel and len(memories) < n_neurons:
            memories.append(x.copy())
            birth_labels.append(label)
            hits.append(1)
            counts = np.zeros(n_classes, np.int64)
            counts[label] = 1
            assoc.append(counts)
        elif winner is not None:
            hits[winner] += 1
            assoc[winner][label] += 1
            if plasticity != "none":
                if plasticity == "mean":
                    rate = np.float32(1) / np.float32(hits[winner])
                else:
                    rate = np.float32(eta)
                m = memories[winner]
                memories[winner] = m + rate * (x - m)
        if threshold == "adaptive":
            if birth_schedule == "open":
                target = n_neurons * (1.0 - math.exp(-seen / n_neurons))
                over = len(memories) > target
            else:
                over = len(memories) / seen > n_neurons / T
            if over:
                tau = tau * (1.0 + beta)
            else:
                tau = tau * (1.0 - beta)
    shape = (0, *X.shape[1:])
    return {
        "memories": np.array(memories, np.float32) if memories else np.zeros(shape, np.float32),
        "birth_labels": np.array(birth_labels, np.int64),
        "hits": np.array(hits, np.int64),
        "assoc": np.array(assoc, np.int64).reshape(len(memories), n_classes),
        "tau": tau,
    }


def neuron_labels(state: dict, competition: str) -> np.ndarray:
    if competition == "all":
        return np.argmax(state["assoc"], axis=1)
    return state["birth_labels"]


def predict(
    state: dict, X, *, n_classes, k=1, voting="channel", distance_kind="l2", competition="label"
) -> np.ndarray:
    """Vote of the k nearest neurons (by channel or jointly) for each x in X (n, C, P) float32."""
    memories = state["memories"]
    labels = neuron_labels(state, competition)
    n_channels = X.shape[1]
    k = min(k, len(memories))
    groups = [[c] for c in range(n_channels)] if voting == "channel" else [list(range(n_channels))]
    out = []
    for x in X:
        votes = np.zeros(n_classes, np.int64)
        dsum = np.zeros(n_classes, np.float64)
        for channels in groups:
            d = [distance(x[channels], m[channels], distance_kind) for m in memories]
            nearest = sorted(range(len(memories)), key=lambda i: (d[i], i))[:k]
            for i in nearest:
                votes[labels[i]] += 1
                dsum[labels[i]] += d[i]
        best = [c for c in range(n_classes) if votes[c] == votes.max()]
        out.append(min(best, key=lambda c: (dsum[c], c)))
    return np.array(out, np.int64)
