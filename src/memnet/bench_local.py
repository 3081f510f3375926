"""Benchmark of the locally connected Memory Network (our extension) on full MNIST:
``python -m memnet.bench_local --out results/bench``.

Trains LocalMemoryNetwork at its default configuration (seed 0) on the 60,000 training images
and tests it on the 10,000 test images. Measures train and inference seconds (wall and CPU, best
of --repeats), the test accuracy, the distance multiply-adds the model took (every (sample,
memory) pair it compared, times the patch features) and, in the same run, the time of float32
matrix products with as many multiply-adds (memnet.bench.matmul_rate: numpy at its best rate
over a few shapes, taken before and after the model, with the patch features as inner
dimension, and with 784 for comparison).
Targets: (train + infer) / matmul <= 2, and train + infer under the throwaway prototype's
14 s + 15 s. Also the process's peak memory and the learnt state's bytes. Writes local.json and
local.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from memnet.bench import load_mnist, machine, matmul_rate, mnist_args, timed
from memnet.cli import _positive_int, _seed
from memnet.io import output_dir, write_json, write_text
from memnet.pipeline.execute import peak_rss_bytes

PROTOTYPE_SECONDS = 14.0 + 15.0  # the throwaway prototype: train + infer, same machine


def bench_local(data, threads, repeats, params=None):
    from memnet.models.memory.local import LocalMemoryNetwork

    X_train, y_train, X_test, y_test = data
    model = LocalMemoryNetwork(random_state=0, n_threads=threads, **(params or {}))
    features = X_train.shape[1] * model._check_params()[0][0] ** 2
    # The product's rate is taken before and after the model and the best one kept: the
    # machine is shared, and a rate caught in a slow moment would flatter the ratio.
    rates = [matmul_rate(features, repeats), matmul_rate(X_train[0].size, repeats)]
    train_s, train_cpu, _ = timed(lambda: model.fit(X_train, y_train), repeats)
    infer_s, infer_cpu, pred = timed(lambda: model.predict(X_test), repeats)
    rates_after = [matmul_rate(features, repeats), matmul_rate(X_train[0].size, repeats)]
    work = model.work_()
    macs = work["train_multiply_adds"] + work["predict_multiply_adds"]
    matmul_s = macs / max(rates[0], rates_after[0])
    matmul_784_s = macs / max(rates[1], rates_after[1])
    return {
        "params": {k: v for k, v in model.get_params().items() if k != "n_threads"},
        "accuracy": float(np.mean(pred == y_test)),
        "n_born": model.n_born_,
        "model_bytes": model.model_bytes,
        "train_seconds": train_s,
        "train_cpu_seconds": train_cpu,
        "infer_seconds": infer_s,
        "infer_cpu_seconds": infer_cpu,
        "work": work,
        "multiply_adds": macs,
        "matmul_inner_dimension": features,
        "matmul_rates_before_after": [rates[0], rates_after[0]],
        "matmul_seconds_same_multiply_adds": matmul_s,
        "matmul_784_seconds_same_multiply_adds": matmul_784_s,
        "ratio_to_matmul": (train_s + infer_s) / matmul_s,
        "ratio_to_matmul_784": (train_s + infer_s) / matmul_784_s,
        "prototype_seconds": PROTOTYPE_SECONDS,
        "beats_prototype": train_s + infer_s < PROTOTYPE_SECONDS,
    }


def accuracy_over_seeds(data, seeds, threads, params=None):
    """Test accuracy of the default configuration trained with each seed (the presentation
    order) on the whole training set."""
    from memnet.models.memory.local import LocalMemoryNetwork

    X_train, y_train, X_test, y_test = data
    runs = []
    for seed in seeds:
        model = LocalMemoryNetwork(random_state=seed, n_threads=threads, **(params or {}))
        train_s, _, _ = timed(lambda m=model: m.fit(X_train, y_train), 1)
        infer_s, _, pred = timed(lambda m=model: m.predict(X_test), 1)
        runs.append({"seed": seed, "accuracy": float(np.mean(pred == y_test)),
                     "n_born": model.n_born_, "train_seconds": train_s,
                     "infer_seconds": infer_s})  # fmt: skip
        print(json.dumps(runs[-1]), flush=True)
    acc = np.array([r["accuracy"] for r in runs])
    return {
        "runs": runs,
        "mean_accuracy": float(acc.mean()),
        "std_accuracy": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
    }


def markdown(report) -> str:
    r, m = report["run"], report["machine"]
    return "\n".join([
        "# Locally connected Memory Network benchmark (our extension; full MNIST, seed 0)",
        "",
        f"{m['cpu']}, {m['cores']} cores, {report['threads']} threads; load average "
        f"{m['load_before']} before and {m['load_after']} after (a shared machine: wall times "
        f"are noisy; best of {report['repeats']}).",
        "",
        f"Default configuration: `{json.dumps(r['params'])}`",
        "",
        "| accuracy | neurons | train s (CPU) | infer s (CPU) | multiply-adds | matmul s "
        "| ratio | matmul s (784) | ratio (784) | prototype s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {r['accuracy']:.4f} | {r['n_born']} | {r['train_seconds']:.2f} "
        f"({r['train_cpu_seconds']:.2f}) | {r['infer_seconds']:.2f} ({r['infer_cpu_seconds']:.2f}) "
        f"| {r['multiply_adds']:.3g} | {r['matmul_seconds_same_multiply_adds']:.2f} "
        f"| {r['ratio_to_matmul']:.2f} | {r['matmul_784_seconds_same_multiply_adds']:.2f} "
        f"| {r['ratio_to_matmul_784']:.2f} | {r['prototype_seconds']:.0f} |",
        "",
        "- multiply-adds: every (sample, memory) pair the model compared (training: each "
        "sample's bank at each location; inference: every bank of every location), times the "
        "patch features. matmul s: float32 products with as many multiply-adds at numpy's best "
        f"rate here, inner dimension {r['matmul_inner_dimension']} (the patch) or 784, the best "
        "of the rates taken before and after the model (patch: "
        + ", ".join(f"{v / 1e9:.1f}" for v in r.get("matmul_rates_before_after", []))
        + " G multiply-adds/s). Targets: ratio <= 2; train + infer under the prototype's "
        "14 s + 15 s.",
        f"- peak memory of this process: {report['peak_rss_bytes'] / 2**20:.0f} MiB; learnt "
        f"state {r['model_bytes'] / 2**20:.0f} MiB.",
        "",
    ])  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m memnet.bench_local", description=__doc__.splitlines()[0]
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
        help="instead: the test accuracy of each seed (writes local_seeds.json)",
    )
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """The checked arguments (a usage error, exit status 2, names a bad one); starts nothing."""
    return mnist_args(build_parser(), argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    data = load_mnist(args.mnist, test_as_float=False)
    if args.seeds:
        result = accuracy_over_seeds(data, args.seeds, args.threads)
        write_json(Path(args.out) / "local_seeds.json", result)
        print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
        return 0
    load_before = [round(v, 2) for v in os.getloadavg()]
    run = bench_local(data, args.threads, args.repeats)
    print(json.dumps(run), flush=True)
    report = {
        "machine": machine(load_before),
        "threads": args.threads,
        "repeats": args.repeats,
        "run": run,
        "peak_rss_bytes": peak_rss_bytes(),
    }
    write_json(Path(args.out) / "local.json", report)
    write_text(Path(args.out) / "local.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
