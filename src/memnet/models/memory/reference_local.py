"""A plain numpy locally connected Memory Network, one sample at a time: the yardstick for
memnet.local and its kernels in tests (our extension beyond the paper).

It follows the rules in memnet.local's docstrings literally and shares no code with memnet.local
or memnet._local_kernels. Distances are float64 sums of float64 differences of the float32
values (the kernels take every decision on the same quantity, summed in another order: the two
agree up to float64 rounding, so test data without exact near-ties at that level must give
identical births, winners and predictions); memory updates are float32 numpy arithmetic.
Inputs are images already preprocessed, float32 (n, C, H, W).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def grid(height, width, patch, stride):
    """The (row, column) of each location, row by row."""
    return [(r, c) for r in range(0, height - patch + 1, stride)
            for c in range(0, width - patch + 1, stride)]  # fmt: skip


def cut(image, r, c, patch):
    """The patch of one image (C, H, W) at (r, c), channel-major, float32."""
    return image[:, r : r + patch, c : c + patch].reshape(-1).astype(np.float32)


def distance(x, m, kind):
    x = x.astype(np.float64)
    m = m.astype(np.float64)
    if kind == "l1":
        return float(np.abs(x - m).sum())
    return float(((x - m) ** 2).sum())


def fit(
    X,
    y,
    *,
    n_classes,
    scales,
    distance_kind="l2",
    threshold="adaptive",
    plasticity="mean",
    tau,
    beta=0.01,
    eta=0.1,
    expected,
):
    """One pass over X in the order given. ``scales``: list of (patch, stride, n_per_bank);
    ``tau``: per scale, the initial tau of each location (a sequence); ``expected``: per class,
    T_c as a Fraction (or int). Returns per scale a dict with banks[loc][c] = list of float32
    memories (in birth order), hits[loc][c], tau[loc][c]."""
    _, _, height, width = X.shape
    states = []
    for (patch, stride, budget), tau0 in zip(scales, tau, strict=True):
        locations = grid(height, width, patch, stride)
        states.append({
            "locations": locations,
            "budget": budget,
            "patch": patch,
            "banks": [[[] for _ in range(n_classes)] for _ in locations],
            "hits": [[[] for _ in range(n_classes)] for _ in locations],
            "tau": [[float(tau0[i])] * n_classes for i in range(len(locations))],
        })  # fmt: skip
    seen = [0] * n_classes
    for image, label in zip(X, y, strict=True):
        label = int(label)
        seen[label] += 1
        for st in states:
            for i, (r, c) in enumerate(st["locations"]):
                x = cut(image, r, c, st["patch"])
                bank = st["banks"][i][label]
                hits = st["hits"][i][label]
                winner, d_win = None, None
                for j, m in enumerate(bank):  # ties keep the earliest
                    d = distance(x, m, distance_kind)
                    if winner is None or d < d_win:
                        winner, d_win = j, d
                novel = winner is None or threshold == "none" or d_win > st["tau"][i][label]
                if novel and len(bank) < st["budget"]:
                    bank.append(x.copy())
                    hits.append(1)
                elif winner is not None:
                    hits[winner] += 1
                    if plasticity != "none":
                        if plasticity == "mean":
                            rate = np.float32(1) / np.float32(hits[winner])
                        else:
                            rate = np.float32(eta)
                        m = bank[winner]
                        bank[winner] = (m + rate * (x - m)).astype(np.float32)
                if threshold == "adaptive":
                    rate_now = Fraction(len(bank), seen[label])
                    target = Fraction(st["budget"]) / Fraction(expected[label])
                    t = st["tau"][i][label]
                    st["tau"][i][label] = (
                        t * (1.0 + beta) if rate_now > target else t * (1.0 - beta)
                    )
    return states


def location_distances(states, X, *, k=1, shifts=None, distance_kind="l2"):
    """Per scale, D[loc][i][c]: the mean of the k smallest exact distances of query i's patch
    to bank c of the location (min over the shifts that keep it inside the image); inf for an
    empty bank. ``shifts``: per scale, the shift tolerance (default 0)."""
    _, _, height, width = X.shape
    out = []
    for s, st in enumerate(states):
        tol = 0 if shifts is None else shifts[s]
        p = st["patch"]
        per_loc = []
        for i, (r, c) in enumerate(st["locations"]):
            rows = []
            for image in X:
                scores = []
                for bank in st["banks"][i]:
                    best = np.inf
                    for dr in range(-tol, tol + 1):
                        for dc in range(-tol, tol + 1):
                            rr, cc = r + dr, c + dc
                            if rr < 0 or cc < 0 or rr + p > height or cc + p > width:
                                continue
                            x = cut(image, rr, cc, p)
                            d = sorted((distance(x, m, distance_kind), j)
                                       for j, m in enumerate(bank))  # fmt: skip
                            if d:
                                near = [v for v, _ in d[:k]]
                                total = 0.0
                                for v in near:
                                    total += v
                                best = min(best, total / len(near))
                    scores.append(best)
                rows.append(scores)
            per_loc.append(rows)
        out.append(np.array(per_loc, np.float64))
    return out


def predict(states, X, *, n_classes, scoring="sum", k=1, shifts=None, distance_kind="l2"):
    """Class of each query: smallest summed D ("sum"), summed sqrt(D) ("sqrt"), or most
    location votes ("vote": a location with a unique smallest D votes for it; ties: smallest
    summed D, then the lowest class). Several scales: each scale's score over (locations x
    features) (sqrt: x sqrt(features); votes: over locations)."""
    D = location_distances(states, X, k=k, shifts=shifts, distance_kind=distance_kind)
    n_channels = X.shape[1]
    preds = []
    for q in range(len(X)):
        total = [0.0] * n_classes
        votes = [0.0] * n_classes
        for st, d in zip(states, D, strict=True):
            L = len(st["locations"])
            feats = n_channels * st["patch"] ** 2
            part = [0.0] * n_classes
            part_votes = [0.0] * n_classes
            for loc in range(L):
                row = d[loc, q]
                for c in range(n_classes):
                    part[c] += float(np.sqrt(row[c])) if scoring == "sqrt" else float(row[c])
                low = min(row)
                winners = [c for c in range(n_classes) if row[c] == low]
                if len(winners) == 1:
                    part_votes[winners[0]] += 1.0
            if len(states) > 1:
                norm = L * (np.sqrt(feats) if scoring == "sqrt" else feats)
                part = [v / norm for v in part]
                part_votes = [v / L for v in part_votes]
            total = [a + b for a, b in zip(total, part, strict=True)]
            votes = [a + b for a, b in zip(votes, part_votes, strict=True)]
        if scoring == "vote":
            top = max(votes)
            cands = [c for c in range(n_classes) if votes[c] == top]
        else:
            cands = list(range(n_classes))
        preds.append(min(cands, key=lambda c: (total[c], c)))
    return np.array(preds, np.int64)
