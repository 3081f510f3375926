"""Benchmark of the peers (memnet.models.peers) on full MNIST, at the paper config's settings:
``python -m memnet.bench_peers --out results/bench``.

For each peer: train on the 60,000 training images, test on the 10,000 test images, and measure
train and inference seconds, the test accuracy, the peak memory of the process, and the work the
model did, set against the same work at the rates this machine reaches in the same run: float32
matrix products (memnet.bench.matmul_rate, with the model's inner dimension) for the products, and
LAPACK's float64 Cholesky factorisation (timed here on a smaller matrix) for the solve.
Target (docs/model.md, section 5): (train + infer) <= 2 x that time for the RF-ELM and for Krotov
& Hopfield's competing hidden units (whose fit and test must also take at most 10 minutes); for IDM
nearest neighbours, whose re-ranking is no matrix product, the reference is its Euclidean
pre-selection's product alone and the target is the whole test set in under 10 minutes.
``--seeds`` instead gives the test accuracy of each seed of the RF-ELM (its fields and weights) or,
with ``--models krotov_hopfield``, of the competing hidden units (initial weights and sample
orders); streaming LDA and IDM nearest neighbours have no randomness. ``--idm-candidates`` instead gives IDM nearest
neighbours' accuracy and seconds for each number of pre-selected candidates. ``--models`` picks
the peers to run. Writes peers.json and peers.md (or peers_seeds.json, peers_idm_candidates.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from memnet.bench import load_mnist, machine, matmul_rate, mnist_args, timed
from memnet.cli import _positive_int, _seed
from memnet.io import output_dir, write_json, write_text
from memnet.pipeline.execute import peak_rss_bytes

# The paper config's settings (config/config.yaml, baselines.rf_elm.h14000 and slda.default)
RF_ELM = {"n_hidden": 14000, "border": 3, "preprocess": "deskew"}
SLDA = {"shrinkage": 1e-4}
# baselines.idm_knn.w2-c3 (the class's defaults: deskewed, k 4, 200 candidates)
IDM_KNN = {"k": 4, "warp": 2, "context": 3, "n_candidates": 200, "preprocess": "deskew"}
# baselines.krotov_hopfield.h2000
KROTOV_HOPFIELD = {"n_hidden": 2000, "p": 3.0, "k": 7, "delta": 0.4, "hidden_epochs": 50,
                   "lr": 0.1, "activation_power": 4.5, "top_epochs": 30, "loss": "power"}  # fmt: skip
PEERS = ("slda", "rf_elm", "idm_knn", "krotov_hopfield")
K = 10  # classes


def cholesky_rate(n: int = 3000) -> float:
    """Flops per second of LAPACK's float64 Cholesky (n^3 / 3 flops) on one thread, as the
    models' solves run."""
    from scipy.linalg import cho_factor
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n))
    spd = a @ a.T + n * np.eye(n)
    with threadpool_limits(1):
        wall, _, _ = timed(lambda: cho_factor(spd.copy(), check_finite=False), 2)
    return n**3 / 3 / wall


def rf_elm_work(n_train: int, n_test: int, d: int, m: int) -> dict:
    """Multiply-adds of the products (hidden layer, the upper triangle of H'H, H'T, the test's
    hidden layer and readout) and flops of the Cholesky solve (m + 1 unknowns)."""
    m1 = m + 1
    return {
        "train_multiply_adds": n_train * d * m + n_train * m1 * (m1 + 1) // 2 + n_train * m1 * K,
        "infer_multiply_adds": n_test * d * m + n_test * m1 * K,
        "solve_flops": m1**3 / 3 + 2 * m1**2 * K,
    }


def slda_work(n_train: int, n_test: int, d: int) -> dict:
    """Multiply-adds of the within-class scatter (d x d per sample, as the products compute it)
    and of the test's discriminants; flops of the solve (an LU of d x d, 2 d^3 / 3)."""
    return {
        "train_multiply_adds": n_train * d * d,
        "infer_multiply_adds": n_test * d * K,
        "solve_flops": 2 * d**3 / 3,
    }


def idm_knn_work(
    n_train: int, n_test: int, d: int, *, n_candidates: int, warp: int, context: int, features: int
) -> dict:
    """Multiply-adds of the products: the stored images' squared norms and the Euclidean
    pre-selection (each test image against each stored one, ``d`` pixels of one channel); and,
    apart, the IDM's pairs and the squared differences one pair would take from the definition
    (each pixel, each shift of the window, each context value of each of ``features`` images;
    the kernel shares them between shifts with box sums, about a third as many operations)."""
    return {
        "train_multiply_adds": n_train * d,
        "infer_multiply_adds": n_test * n_train * d,
        "solve_flops": 0,
        "idm_pairs": n_test * min(n_candidates, n_train),
        "idm_terms_per_pair": (2 * warp + 1) ** 2 * d * context**2 * features,
    }


def krotov_hopfield_work(
    n_train: int,
    n_test: int,
    d: int,
    m: int,
    *,
    hidden_epochs: int,
    top_epochs: int,
    update_multiply_adds: int,
) -> dict:
    """Multiply-adds of the products: the hidden rule's currents (each sample, each unit, each
    epoch) and its updates (``update_multiply_adds``, as the fitted model counted them: the rows of
    the units ranked first or k-th only), the top layer's features (once) and, each top epoch, its
    scores and gradient; the test's features and scores. No solve."""
    return {
        "train_multiply_adds": hidden_epochs * n_train * m * d + update_multiply_adds
        + n_train * m * d + top_epochs * n_train * m * K * 2,
        "infer_multiply_adds": n_test * m * d + n_test * m * K,
        "solve_flops": 0,
    }  # fmt: skip


def bench_one(name, model, work, data, repeats, threads) -> dict:
    X_train, y_train, X_test, y_test = data
    d = X_train[0].size
    rate_before = matmul_rate(d, 1)
    train_s, train_cpu, _ = timed(lambda: model.fit(X_train, y_train), repeats)
    infer_s, infer_cpu, pred = timed(lambda: model.predict(X_test), repeats)
    rate = max(rate_before, matmul_rate(d, 1))
    if callable(work):  # work the fitted model counted
        work = work(model)
    lapack = cholesky_rate() if work["solve_flops"] else None
    macs = work["train_multiply_adds"] + work["infer_multiply_adds"]
    reference_s = macs / rate + (work["solve_flops"] / lapack if work["solve_flops"] else 0.0)
    return {
        "model": name,
        "params": {k: v for k, v in model.get_params().items() if k != "n_threads"},
        "threads": threads,
        "accuracy": float(np.mean(pred == y_test)),
        "train_seconds": train_s,
        "train_cpu_seconds": train_cpu,
        "infer_seconds": infer_s,
        "infer_cpu_seconds": infer_cpu,
        "model_bytes": model.model_bytes,
        **work,
        "matmul_rate": rate,
        "cholesky_rate": lapack,
        "reference_seconds": reference_s,
        "ratio": (train_s + infer_s) / reference_s,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def accuracy_over_seeds(data, seeds, threads, name="rf_elm") -> dict:
    """The test accuracy and seconds (fit and predict) of the peer ``name`` for each seed."""
    from memnet.models.peers.krotov_hopfield import KrotovHopfield
    from memnet.models.peers.rf_elm import RandomFieldELM

    cls, params = {"rf_elm": (RandomFieldELM, RF_ELM),
                   "krotov_hopfield": (KrotovHopfield, KROTOV_HOPFIELD)}[name]  # fmt: skip
    X_train, y_train, X_test, y_test = data
    runs = []
    for seed in seeds:
        model = cls(**params, random_state=seed, n_threads=threads)
        start = time.perf_counter()
        accuracy = float(model.fit(X_train, y_train).score(X_test, y_test))
        runs.append({"seed": seed, "accuracy": accuracy, "seconds": time.perf_counter() - start})
        print(json.dumps(runs[-1]), flush=True)
    acc = np.array([r["accuracy"] for r in runs])
    return {
        "model": name,
        "params": params,
        "runs": runs,
        "mean_accuracy": float(acc.mean()),
        "std_accuracy": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
    }


def idm_candidates(data, counts, threads) -> dict:
    """IDM nearest neighbours' test accuracy and seconds (fit, predict) for each number of
    pre-selected candidates, the other parameters at the paper config's."""
    from memnet.models.peers.idm_knn import IDMNearestNeighbours

    X_train, y_train, X_test, y_test = data
    runs = []
    for n in counts:
        model = IDMNearestNeighbours(**{**IDM_KNN, "n_candidates": n}, n_threads=threads)
        train_s, _, _ = timed(lambda m=model: m.fit(X_train, y_train), 1)
        infer_s, _, pred = timed(lambda m=model: m.predict(X_test), 1)
        runs.append({"n_candidates": n, "accuracy": float(np.mean(pred == y_test)),
                     "errors": int(np.sum(pred != y_test)), "train_seconds": train_s,
                     "infer_seconds": infer_s})  # fmt: skip
        print(json.dumps(runs[-1]), flush=True)
    return {"model": "idm_knn", "params": IDM_KNN, "threads": threads, "runs": runs}


def markdown(report) -> str:
    m = report["machine"]
    lines = [
        "# Peers benchmark (ours; full MNIST, seed 0, the paper config's settings)",
        "",
        f"{m['cpu']}, {m['cores']} cores, {report['threads']} threads; load average "
        f"{m['load_before']} before and {m['load_after']} after (a shared machine: wall times "
        f"are noisy; best of {report['repeats']}).",
        "",
        "| model | accuracy | train s (CPU) | infer s (CPU) | multiply-adds | solve flops "
        "| reference s | ratio | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        macs = r["train_multiply_adds"] + r["infer_multiply_adds"]
        lines.append(
            f"| {r['model']} | {r['accuracy']:.4f} | {r['train_seconds']:.2f} "
            f"({r['train_cpu_seconds']:.2f}) | {r['infer_seconds']:.2f} "
            f"({r['infer_cpu_seconds']:.2f}) | {macs:.3g} | {r['solve_flops']:.3g} "
            f"| {r['reference_seconds']:.2f} | {r['ratio']:.2f} "
            f"| {r['peak_rss_bytes'] / 2**20:.0f} |"
        )
    lines += [
        "",
        "- reference s: the model's products at numpy's best float32 matmul rate here (inner "
        "dimension 784, the best of the rates taken before and after the model), plus its solve "
        "at LAPACK's one-thread float64 Cholesky rate (timed on a 3,000 x 3,000 matrix in the "
        "same run). ratio: (train + infer) / reference s; target <= 2 for the RF-ELM and "
        "Krotov-Hopfield (streaming LDA works in float64 on one thread, seconds in all, and has "
        "no speed target). Krotov-Hopfield's products are counted as the model did them: each "
        "epoch's currents, the updated units' rows, the top layer's features once and its "
        "epochs. IDM "
        "nearest neighbours: the reference is its Euclidean pre-selection's product alone (its "
        "IDM re-ranking is no product); its target is train + infer under 600 s.",
        "- peak MiB: the process's peak so far (VmHWM), so each row includes the rows before it.",
        "",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m memnet.bench_peers", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=output_dir, default="results/bench", help="output directory")
    parser.add_argument("--mirror", default=None, help="a directory holding mnist/*-ubyte.gz")
    parser.add_argument("--threads", type=_positive_int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=_positive_int, default=1)
    parser.add_argument(
        "--seeds",
        type=_seed,
        nargs="+",
        default=None,
        metavar="SEED",
        help="instead: the test accuracy for each seed of the RF-ELM, or of the first of --models "
        "that has randomness (rf_elm, krotov_hopfield; writes peers_seeds.json, or "
        "peers_seeds_<model>.json for krotov_hopfield)",
    )
    parser.add_argument(
        "--idm-candidates",
        type=_positive_int,
        nargs="+",
        default=None,
        metavar="N",
        help="instead: IDM nearest neighbours' accuracy and seconds for each number of "
        "candidates (writes peers_idm_candidates.json)",
    )
    parser.add_argument(
        "--models", nargs="+", choices=PEERS, default=list(PEERS), metavar="MODEL",
        help=f"the peers to benchmark (of {', '.join(PEERS)}; default all)",
    )  # fmt: skip
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """The checked arguments (a usage error, exit status 2, names a bad one); starts nothing."""
    return mnist_args(build_parser(), argv)


def main(argv=None) -> int:
    from threadpoolctl import threadpool_limits

    from memnet.models.peers.idm_knn import IDMNearestNeighbours
    from memnet.models.peers.krotov_hopfield import KrotovHopfield
    from memnet.models.peers.rf_elm import RandomFieldELM
    from memnet.models.peers.slda import StreamingLDA

    args = parse_args(argv)
    data = load_mnist(args.mnist)
    threadpool_limits(args.threads)
    if args.seeds:
        seeded = [m for m in args.models if m in ("rf_elm", "krotov_hopfield")] or ["rf_elm"]
        result = accuracy_over_seeds(data, args.seeds, args.threads, seeded[0])
        suffix = "" if seeded[0] == "rf_elm" else f"_{seeded[0]}"
        write_json(Path(args.out) / f"peers_seeds{suffix}.json", result)
        print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
        return 0
    if args.idm_candidates:
        result = idm_candidates(data, args.idm_candidates, args.threads)
        write_json(Path(args.out) / "peers_idm_candidates.json", result)
        return 0
    load_before = [round(v, 2) for v in os.getloadavg()]
    n_train, n_test, d = len(data[0]), len(data[2]), data[0][0].size
    benches = {
        "slda": lambda: bench_one("slda", StreamingLDA(**SLDA), slda_work(n_train, n_test, d),
                                  data, args.repeats, args.threads),
        "rf_elm": lambda: bench_one(
            "rf_elm", RandomFieldELM(**RF_ELM, random_state=0, n_threads=args.threads),
            rf_elm_work(n_train, n_test, d, RF_ELM["n_hidden"]), data, args.repeats,
            args.threads),
        "idm_knn": lambda: bench_one(
            "idm_knn", IDMNearestNeighbours(**IDM_KNN, n_threads=args.threads),
            idm_knn_work(n_train, n_test, d, n_candidates=IDM_KNN["n_candidates"],
                         warp=IDM_KNN["warp"], context=IDM_KNN["context"], features=2),
            data, args.repeats, args.threads),
        "krotov_hopfield": lambda: bench_one(
            "krotov_hopfield", KrotovHopfield(**KROTOV_HOPFIELD, random_state=0,
                                              n_threads=args.threads),
            lambda model: krotov_hopfield_work(
                n_train, n_test, d, KROTOV_HOPFIELD["n_hidden"],
                hidden_epochs=KROTOV_HOPFIELD["hidden_epochs"],
                top_epochs=KROTOV_HOPFIELD["top_epochs"],
                update_multiply_adds=model.update_multiply_adds_),
            data, args.repeats, args.threads),
    }  # fmt: skip
    runs = [benches[name]() for name in PEERS if name in args.models]
    report = {
        "machine": machine(load_before),
        "threads": args.threads,
        "repeats": args.repeats,
        "runs": runs,
    }
    write_json(Path(args.out) / "peers.json", report)
    write_text(Path(args.out) / "peers.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
