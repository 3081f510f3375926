"""A plain numpy hierarchical Memory Network: the yardstick for memnet.models.memory.hierarchy in
tests (ours, beyond the paper).

Layer 1 is the plain locally connected reference (reference_local), refitted from the stream's
start at each block boundary (its state after the samples so far). The evidence is every distance
sorted by brute force; layer 2 is batch linear discriminant analysis on all the evidence at once
(what streaming LDA equals after the stream) or class means. It shares no code with hierarchy.py
or the kernels. Inputs are images already preprocessed, float32 (n, C, H, W).
"""

from __future__ import annotations

import math

import numpy as np

from memnet.models.memory import reference_local as R


def blocks(n, block, expected, layer2_from=0.0):
    """The (start, stop) of each block of a stream of n samples (hierarchy's rule: the first
    block holds max(1, min(block, expected // 10, n)) samples, the others ``block``, and a new
    block starts where layer 2 starts learning, at ceil(layer2_from x expected))."""
    first = max(1, min(block, expected // 10, n))
    layer2 = min(math.ceil(layer2_from * expected), max(expected - 1, 0))
    start = min(max(layer2, first), n)
    edges = [0, first, *range(first, start, block), *range(start, n, block), n]
    edges = sorted(set(edges))
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a]


def nearest(state, X, j):
    """(n, L, K, j): the j smallest exact distances of each query's patch to each bank (inf
    past the bank's size), from one reference_local state (one scale)."""
    n_classes = len(state["banks"][0])
    out = np.full((len(X), len(state["locations"]), n_classes, j), np.inf)
    for i, image in enumerate(X):
        for loc, (r, c) in enumerate(state["locations"]):
            x = R.cut(image, r, c, state["patch"])
            for k, bank in enumerate(state["banks"][loc]):
                d = sorted(R.distance(x, m, "l2") for m in bank)[:j]
                out[i, loc, k, : len(d)] = d
    return out


def code(D, n_features, evidence="nearest", normalise="none", tau=None):
    """hierarchy's evidence of the squared distances D (n, L, K, j), written out plainly
    (``tau``: the state's tau[loc][c], for normalise="threshold")."""
    n, L, K, j = D.shape
    if evidence in ("rank", "vote"):
        out = np.zeros((n, L, K, 1))
        for i in range(n):
            for loc in range(L):
                first = list(D[i, loc, :, 0])
                if evidence == "rank":
                    for rank, k in enumerate(sorted(range(K), key=lambda k: (first[k], k))):
                        out[i, loc, k, 0] = rank
                elif first.count(min(first)) == 1:
                    out[i, loc, first.index(min(first)), 0] = 1.0
        return out.reshape(n, -1)
    E = D.copy()
    E[np.isinf(E)] = n_features
    if normalise == "threshold":
        for loc in range(L):
            for k in range(K):
                E[:, loc, k] = E[:, loc, k] / tau[loc][k]
    E = np.sqrt(E)
    if normalise == "location":
        for i in range(n):
            for loc in range(L):
                low = E[i, loc, :, 0].min()
                E[i, loc] -= low
                E[i, loc] /= E[i, loc, :, 0].mean() + 1e-12
    return E.reshape(n, -1)


def lda(F, y, n_classes, shrinkage):
    """Batch LDA: (W, b) of g(x) = x W + b with the pooled biased covariance, shrunk."""
    means = np.array([F[y == k].mean(axis=0) for k in range(n_classes)])
    centred = F - means[y]
    S = centred.T @ centred / len(F)
    L = np.linalg.inv((1 - shrinkage) * S + shrinkage * np.eye(F.shape[1]))
    W = L @ means.T
    return W, -0.5 * np.einsum("kd,dk->k", means, W)


def fit_predict(X, y, X_test, *, n_classes, patch, stride, n_per_bank, tau, block, expected,
                j, evidence="nearest", normalise="none", readout="slda", shrinkage=1e-4,
                beta=0.01, layer2_from=0.0):  # fmt: skip
    """The prequential hierarchy on the stream (X, y) in the order given: layer 2 learns each
    block's evidence from layer 1 as the earlier blocks left it (the first block: none; nor the
    blocks that start before ``layer2_from`` x the expected samples). Returns
    the final layer 1's reference state, layer 2's training evidence and the test predictions."""
    n_features = X.shape[1] * patch * patch
    evidence_rows, labels, state = [], [], None
    for a, b in blocks(len(X), block, sum(expected), layer2_from):
        if a > 0 and a >= min(math.ceil(layer2_from * sum(expected)), sum(expected) - 1):
            D = nearest(state, X[a:b], j)
            evidence_rows.append(code(D, n_features, evidence, normalise, state["tau"]))
            labels.append(y[a:b])
        state = R.fit(X[:b], y[:b], n_classes=n_classes, scales=[(patch, stride, n_per_bank)],
                      tau=[tau], beta=beta, expected=expected)[0]  # fmt: skip
    F, labels = np.concatenate(evidence_rows), np.concatenate(labels)
    test = code(nearest(state, X_test, j), n_features, evidence, normalise, state["tau"])
    if readout == "slda":
        W, b = lda(F, labels, n_classes, shrinkage)
        predicted = np.argmax(test @ W + b, axis=1)
    else:
        means = np.array([F[labels == k].mean(axis=0) for k in range(n_classes)])
        predicted = np.argmin(((test[:, None] - means[None]) ** 2).sum(axis=2), axis=1)
    return state, F, predicted
