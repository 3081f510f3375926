"""Benchmark of the hierarchical Memory Network (ours) on a full 28 x 28 dataset:
``python -m memnet.bench_hierarchy --out results/bench [--dataset fashion-mnist] [--seeds 0 1 2 3 4]``.

For each seed, in the same process: the locally connected model (its layer 1 alone, the same
parameters) and the hierarchical model, each trained on the 60,000 training images and tested on
the 10,000 test images. Reports their accuracies, train and infer seconds, the hierarchical
model's time over the local model's (target: at most 1.5) and over float32 matrix products with
the multiply-adds it took (target: at most 2; memnet.bench.matmul_rate, taken before and after).
Its multiply-adds: layer 1's distance work (training, and the evidence of every training and test
image) plus layer 2's (streaming LDA: d^2 per training sample for its scatter, d x K per test one).
Numba's compilation happens in a warm-up fit on 500 images, outside the clock. Writes
hierarchy-<dataset>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from memnet.bench import load_mnist, machine, matmul_rate, timed
from memnet.cli import _positive_int, _seed
from memnet.io import output_dir, write_json, write_text
from memnet.pipeline.execute import confusion_matrix, peak_rss_bytes

DATASETS = ("mnist", "fashion-mnist")  # same files, same shapes


def layer2_macs(model, n_test: int) -> int:
    if model.readout != "slda":
        return 0
    j = model.n_nearest if model.evidence == "nearest" else 1
    K = len(model.classes_)
    d = len(model.layer1_.positions_()) * K * j  # the evidence's features
    h = model.layer2_hidden or d  # what layer 2 reads: the evidence, or its random features
    projection = (model.n_layer2_samples_ + n_test) * d * h if model.layer2_hidden else 0
    return model.n_layer2_samples_ * h * h + n_test * h * K + projection


def error_table(runs, dataset) -> list[str]:
    """Markdown: per true class, over every seed, the share each model got right and the
    hierarchy's most frequent wrong answer."""
    from memnet.datasets import REGISTRY

    sums = {m: np.sum([r[m]["confusion"] for r in runs], axis=0) for m in ("local", "hierarchy")}
    names = list(REGISTRY[dataset].classes) if dataset in REGISTRY else []
    names = (
        names if len(names) == len(sums["local"]) else [str(k) for k in range(len(sums["local"]))]
    )
    lines = ["| true class | local right | hierarchy right | hierarchy's most frequent wrong answer |",
             "|---|---|---|---|"]  # fmt: skip
    for k, name in enumerate(names):
        row = {m: c[k] / max(c[k].sum(), 1) for m, c in sums.items()}
        wrong = sums["hierarchy"][k].astype(float)
        wrong[k] = -1
        j = int(np.argmax(wrong))
        lines.append(f"| {name} | {100 * row['local'][k]:.1f}% | {100 * row['hierarchy'][k]:.1f}% "
                     f"| {names[j]} ({100 * row['hierarchy'][j]:.1f}%) |")  # fmt: skip
    return lines


def run_seed(data, seed, threads, params):
    from memnet.models.memory.hierarchy import HierarchicalMemoryNetwork
    from memnet.models.memory.local import LocalMemoryNetwork

    X_train, y_train, X_test, y_test = data
    hier = HierarchicalMemoryNetwork(random_state=seed, n_threads=threads, **params)
    local = LocalMemoryNetwork(random_state=seed, n_threads=threads, **hier._layer1_params())
    out = {"seed": seed}
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    for name, model in (("local", local), ("hierarchy", hier)):
        train_s, _, _ = timed(lambda m=model: m.fit(X_train, y_train), 1)
        infer_s, _, pred = timed(lambda m=model: m.predict(X_test), 1)
        out[name] = {"accuracy": float(np.mean(pred == y_test)), "train_seconds": train_s,
                     "infer_seconds": infer_s, "confusion": confusion_matrix(y_test, pred, n_classes).tolist()}  # fmt: skip
    out["hierarchy"]["layer1_weight"] = str(float(hier.layer1_weight_))  # the pass's (inf: text)
    work = hier.layer1_.work_()
    out["hierarchy"]["multiply_adds"] = (
        work["train_multiply_adds"] + work["predict_multiply_adds"] + layer2_macs(hier, len(X_test))
    )
    h, lo = out["hierarchy"], out["local"]
    out["time_ratio_to_local"] = (h["train_seconds"] + h["infer_seconds"]) / (
        lo["train_seconds"] + lo["infer_seconds"]
    )
    return out


def bench(data, seeds, threads, params):
    from memnet.models.memory.hierarchy import HierarchicalMemoryNetwork

    X_train, y_train = data[0][:500], data[1][:500]
    warm = HierarchicalMemoryNetwork(random_state=0, n_threads=threads, **params)
    warm_s, _, _ = timed(lambda: warm.fit(X_train, y_train).predict(X_train[:50]), 1)
    patch = HierarchicalMemoryNetwork(**params).patch
    rate_before = matmul_rate(data[0].shape[1] * patch * patch, 1)
    runs = []
    for seed in seeds:
        runs.append(run_seed(data, seed, threads, params))
        print(json.dumps(runs[-1]), flush=True)
    rate = max(rate_before, matmul_rate(data[0].shape[1] * patch * patch, 1))
    for r in runs:
        h = r["hierarchy"]
        r["matmul_seconds_same_multiply_adds"] = h["multiply_adds"] / rate
        r["ratio_to_matmul"] = (h["train_seconds"] + h["infer_seconds"]) / (
            h["multiply_adds"] / rate
        )
    accs = {m: np.array([r[m]["accuracy"] for r in runs]) for m in ("local", "hierarchy")}
    return {
        "params": params,
        "warmup_seconds": warm_s,
        "matmul_rate": rate,
        "runs": runs,
        "mean_accuracy": {m: float(a.mean()) for m, a in accs.items()},
        "std_accuracy": {m: float(a.std(ddof=1)) if len(a) > 1 else 0.0 for m, a in accs.items()},
    }


def markdown(report) -> str:
    m, r = report["machine"], report["result"]
    lines = [
        f"# Hierarchical Memory Network benchmark (ours; full {report['dataset']})",
        "",
        f"{m['cpu']}, {m['cores']} cores, {report['threads']} threads; load average "
        f"{m['load_before']} before and {m['load_after']} after (a shared machine: wall times "
        "are noisy). Warm-up (numba's compilation), outside the clock: "
        f"{r['warmup_seconds']:.1f} s. Parameters: `{json.dumps(r['params'])}`",
        "",
        "| seed | local acc | hierarchy acc | local train + infer s | hierarchy train + infer s "
        "| ratio to local | multiply-adds | ratio to matmul |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        lo, h = run["local"], run["hierarchy"]
        lines.append(
            f"| {run['seed']} | {lo['accuracy']:.4f} | {h['accuracy']:.4f} | "
            f"{lo['train_seconds']:.1f} + {lo['infer_seconds']:.1f} | "
            f"{h['train_seconds']:.1f} + {h['infer_seconds']:.1f} | "
            f"{run['time_ratio_to_local']:.2f} | {h['multiply_adds']:.3g} | "
            f"{run['ratio_to_matmul']:.2f} |"
        )
    mean, std = r["mean_accuracy"], r["std_accuracy"]
    lines += [
        "",
        f"Mean accuracy over {len(r['runs'])} seed(s): local {mean['local']:.4f} "
        f"(std {std['local']:.4f}), hierarchy {mean['hierarchy']:.4f} (std {std['hierarchy']:.4f}). "
        f"Targets: ratio to local <= 1.5, to matmul <= 2 (rate {r['matmul_rate'] / 1e9:.1f} G "
        "multiply-adds/s, the best before and after).",
        "Layer 1's weight in the answer, chosen in each seed's pass: "
        + ", ".join(run["hierarchy"].get("layer1_weight", "?") for run in r["runs"])
        + ".",
        f"Peak memory of this process: {report['peak_rss_bytes'] / 2**20:.0f} MiB.",
        "",
        f"Where the errors go (test images of every seed, {len(r['runs'])} in all):",
        "",
        *error_table(r["runs"], report["dataset"]),
        "",
    ]
    return "\n".join(lines)


def _param(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"'{text}': write KEY=VALUE (VALUE as JSON, e.g. null)")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m memnet.bench_hierarchy", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=output_dir, default="results/bench", help="output directory")
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--mirror", default=None, help="a directory holding <dataset>/*-ubyte.gz")
    parser.add_argument("--threads", type=_positive_int, default=os.cpu_count() or 1)
    parser.add_argument("--seeds", type=_seed, nargs="+", default=[0], metavar="SEED")
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="KEY=VALUE",
                        help="a parameter of the hierarchical model (JSON value)")  # fmt: skip
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    root = args.mirror or os.environ.get("MEMNET_DATA_MIRROR")
    if not root or not (Path(root) / args.dataset).is_dir():
        parser.error(
            f"no {args.dataset} directory under --mirror or $MEMNET_DATA_MIRROR ({root}); give "
            f"a directory holding {args.dataset}/train-images-idx3-ubyte.gz and the others"
        )
    args.directory = Path(root) / args.dataset
    try:
        from memnet.models.memory.hierarchy import HierarchicalMemoryNetwork

        HierarchicalMemoryNetwork(**dict(args.param))._check_params()
    except (TypeError, ValueError) as exc:
        parser.error(f"--param: {exc}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    data = load_mnist(args.directory)
    load_before = [round(v, 2) for v in os.getloadavg()]
    result = bench(data, args.seeds, args.threads, dict(args.param))
    report = {
        "dataset": args.dataset,
        "machine": machine(load_before),
        "threads": args.threads,
        "result": result,
        "peak_rss_bytes": peak_rss_bytes(),
    }
    write_json(Path(args.out) / f"hierarchy-{args.dataset}.json", report)
    write_text(Path(args.out) / f"hierarchy-{args.dataset}.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
