"""A plain numpy hierarchical Memory Network: the yardstick for memnet.models.memory.hierarchy in
tests (ours, beyond the paper).

Layer 1 is the plain locally connected reference (reference_local), refitted from the stream's
start at each block boundary (its state after the samples so far). The evidence is every distance
sorted by brute force; layer 2 is batch linear discriminant analysis on all the evidence at once
(what streaming LDA equals after the stream) or class means. Layer 1's weight in the answer is
chosen by refitting layer 2 on the evidence before each scored block. It shares no code with
hierarchy.py or the kernels. Inputs are images already preprocessed, float32 (n, C, H, W).
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


def winners(state, X, n_per_bank):
    """(n, L * K * n_per_bank) one-hot per location: the slot of the nearest memory of any class
    there (exact distances; the first in class then slot order on a tie), at
    (location x K + class) x n_per_bank + slot."""
    n_classes = len(state["banks"][0])
    n_loc = len(state["locations"])
    out = np.zeros((len(X), n_loc * n_classes * n_per_bank))
    for i, image in enumerate(X):
        for loc, (r, c) in enumerate(state["locations"]):
            x = R.cut(image, r, c, state["patch"])
            best = None
            for k, bank in enumerate(state["banks"][loc]):
                for slot, m in enumerate(bank):
                    d = R.distance(x, m, "l2")
                    if best is None or d < best[0]:
                        best = (d, (loc * n_classes + k) * n_per_bank + slot)
            out[i, best[1] if best else loc * n_classes * n_per_bank] = 1.0
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


# layer 1's weight: 0, the powers of 2 from 1/4 to 4096, and inf (layer 1 alone)
CANDIDATES = [0.0] + [2.0**e for e in range(-2, 13)] + [math.inf]


def layer1_scores(D, n_features):
    """z1 (n, K): the sum over locations of each class's nearest squared distance (inf: n_features),
    less the sample's smallest, over the sample's mean less its smallest (+ 1e-12); smallest and
    mean over the classes whose banks are not empty."""
    first = np.where(np.isinf(D[..., 0]), float(n_features), D[..., 0])
    total = first.sum(axis=1)
    z1 = np.empty_like(total)
    for i, row in enumerate(total):
        filled = [c for c in range(len(row)) if not np.isinf(D[i, :, c, 0]).any()]
        low, mean = min(row[filled]), sum(row[filled]) / len(filled)
        z1[i] = (row - low) / (mean - low + 1e-12)
    return z1


def answer(g2, z1, w):
    """The class of the largest g2 - w z1 (inf: of the smallest z1)."""
    if w == math.inf:
        return np.argmin(z1, axis=1)
    return np.argmax(g2 - w * z1, axis=1)


def layer2_scores(F, y, n_classes, readout, shrinkage, test):
    """Layer 2 fitted on (F, y): its class scores for ``test`` (LDA's discriminant, or minus the
    squared distances to the class means, -inf for a class without samples)."""
    if readout == "slda":
        present = np.isin(np.arange(n_classes), y)
        W, b = lda(F, y, n_classes, shrinkage)
        return np.where(present, test @ W + b, -np.inf)  # lda: an absent class's W, b are 0
    scores = np.full((len(test), n_classes), -np.inf)
    for k in range(n_classes):
        if np.any(y == k):
            scores[:, k] = -((test - F[y == k].mean(axis=0)) ** 2).sum(axis=1)
    return scores


def lda(F, y, n_classes, shrinkage):
    """Batch LDA: (W, b) of g(x) = x W + b with the pooled biased covariance, shrunk."""
    means = np.array([F[y == k].mean(axis=0) if np.any(y == k) else np.zeros(F.shape[1])
                      for k in range(n_classes)])  # fmt: skip
    centred = F - means[y]
    S = centred.T @ centred / len(F)
    L = np.linalg.inv((1 - shrinkage) * S + shrinkage * np.eye(F.shape[1]))
    W = L @ means.T
    return W, -0.5 * np.einsum("kd,dk->k", means, W)


def random_features(F, h, seed):
    """The map f -> max(0, ((f - m) / s) R + b) fixed by the evidence rows F (see fit_predict)."""
    m, sd = F.mean(axis=0), F.std(axis=0) + 1e-9
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((F.shape[1], h)) / math.sqrt(F.shape[1])
    b = 0.5 * rng.standard_normal(h)
    return lambda G: np.maximum(((G - m) / sd) @ R + b, 0)


def fit_predict(X, y, X_test, *, n_classes, patch, stride, n_per_bank, tau, block, expected,
                j, evidence="nearest", normalise="none", readout="slda", shrinkage=1e-4,
                beta=0.01, layer2_from=0.0, layer1_weight="auto", layer2_hidden=0,
                features_seed=None):  # fmt: skip
    """The prequential hierarchy on the stream (X, y) in the order given: layer 2 learns each
    block's evidence from layer 1 as the earlier blocks left it (the first block: none; nor the
    blocks that start before ``layer2_from`` x the expected samples). With layer1_weight "auto",
    the blocks that start half-way or later from layer 2's start to the expected end, once layer
    2 has learnt a block, are answered by each candidate weight before layer 2 learns them; the
    first candidate with the most right answers is kept (none scored: 0). Returns the final
    layer 1's reference state, layer 2's training evidence, the test predictions and layer 1's
    weight. With ``layer2_hidden`` h > 0, layer 2 reads max(0, ((f - m) / s) R + b) of each
    evidence row f: m, s the mean and standard deviation (+ 1e-9) of the first block layer 2
    learns, R (d, h) ~ N(0, 1/d) and b (h,) ~ N(0, 1/4) drawn in that order from
    default_rng(features_seed); its "training evidence" is then those features."""
    n_features = X.shape[1] * patch * patch
    total = sum(expected)
    layer2_start = min(math.ceil(layer2_from * total), total - 1)
    scoring_start = math.ceil((layer2_start + total) / 2)
    right = np.zeros(len(CANDIDATES), np.int64)
    evidence_rows, labels, state = [], [], None
    expand = None
    for a, b in blocks(len(X), block, total, layer2_from):
        if a > 0 and a >= layer2_start:
            D = nearest(state, X[a:b], j)
            if evidence == "winner":
                F = winners(state, X[a:b], n_per_bank)
            else:
                F = code(D, n_features, evidence, normalise, state["tau"])
            if layer2_hidden and expand is None:
                expand = random_features(F, layer2_hidden, features_seed)
            if expand is not None:
                F = expand(F)
            if layer1_weight == "auto" and evidence_rows and a >= scoring_start:
                g2 = layer2_scores(np.concatenate(evidence_rows), np.concatenate(labels),
                                   n_classes, readout, shrinkage, F)  # fmt: skip
                z1 = layer1_scores(D, n_features)
                for i, w in enumerate(CANDIDATES):
                    right[i] += np.sum(answer(g2, z1, w) == y[a:b])
            evidence_rows.append(F)
            labels.append(y[a:b])
        state = R.fit(X[:b], y[:b], n_classes=n_classes, scales=[(patch, stride, n_per_bank)],
                      tau=[tau], beta=beta, expected=expected)[0]  # fmt: skip
    F, labels = np.concatenate(evidence_rows), np.concatenate(labels)
    D_test = nearest(state, X_test, j)
    if evidence == "winner":
        test = winners(state, X_test, n_per_bank)
    else:
        test = code(D_test, n_features, evidence, normalise, state["tau"])
    if expand is not None:
        test = expand(test)
    if layer1_weight == "auto":
        weight = CANDIDATES[int(np.argmax(right))] if right.any() else 0.0
    else:
        weight = layer1_weight
    g2 = layer2_scores(F, labels, n_classes, readout, shrinkage, test)
    predicted = answer(g2, layer1_scores(D_test, n_features), weight)
    return state, F, predicted, weight
