"""Benchmark of the Memory Network on full MNIST: ``python -m memnet.bench --out results/bench``.

Measures, for the ``paper`` configuration with 20000 and 60000 neurons: train and inference
seconds (best of --repeats, CPU seconds too), test accuracy, the distance multiply-adds the
model actually took, the time of one float32 matrix product with as many multiply-adds, and
inference against faiss IndexFlatL2 and scikit-learn brute-force 1-NN over the same memories.
Then the numba compile cost (a fresh process with an empty cache, then one with it filled) and
the peak memory of a fresh process that trains and tests. Writes model.json and model.md.

The machine may be shared: wall times are noisy, and the load average is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from memnet.cli import _positive_int
from memnet.io import output_dir, write_json, write_text
from memnet.pipeline.execute import peak_rss_bytes

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")  # fmt: skip


def find_mnist(mirror: str | None) -> Path:
    """The directory with the four MNIST .gz files: DIR/mnist for DIR from --mirror, else from
    $MEMNET_DATA_MIRROR; there is no other place it looks."""
    sources = [("--mirror", mirror), ("MEMNET_DATA_MIRROR", os.environ.get("MEMNET_DATA_MIRROR"))]
    tried = []
    for where, root in sources:
        if not root:
            continue
        missing = [
            f"{f}.gz" for f in MNIST_FILES if not (Path(root) / "mnist" / f"{f}.gz").exists()
        ]
        if not missing:
            return Path(root) / "mnist"
        tried.append(f"{where}={root} lacks mnist/{', mnist/'.join(missing)}")
    found = "; ".join(tried) if tried else "no mirror is set"
    raise FileNotFoundError(
        f"MNIST not found ({found}): set MEMNET_DATA_MIRROR to a directory holding "
        f"mnist/{'.gz, mnist/'.join(MNIST_FILES)}.gz (or pass --mirror DIR)"
    )


# ---------------------------------------------------------------------------------------------
# Arguments, shared by the benchmark tools (memnet.bench_local, memnet.bench_pipeline) and
# memnet.datasets.synthetic; numbers use the argparse types of the `memnet` command (memnet.cli).


def mnist_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """``parser``'s arguments, with ``mnist``: the MNIST directory --mirror or
    $MEMNET_DATA_MIRROR leads to (a usage error, exit status 2, when there is none)."""
    args = parser.parse_args(argv)
    try:
        args.mnist = find_mnist(args.mirror)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    return args


def load_mnist(directory: Path, test_as_float: bool = True):
    """MNIST as (n, 1, 28, 28) images: the training set float32 in [0, 1], the test set too or,
    with ``test_as_float=False``, uint8 (the model scales it chunk by chunk)."""
    from memnet.datasets import read_idx, to_unit_float

    X_train, y_train, X_test, y_test = (read_idx(directory / f"{f}.gz") for f in MNIST_FILES)
    return (
        to_unit_float(X_train[:, None]),
        y_train.astype(np.int64),
        to_unit_float(X_test[:, None]) if test_as_float else X_test[:, None],
        y_test.astype(np.int64),
    )


def machine(load_before: list[float]) -> dict:
    """The machine a benchmark ran on, with its load before and after (the runs are shared)."""
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn, repeats):
    """(best wall seconds, CPU seconds of that run, result of the last call)."""
    best = (np.inf, np.inf)
    result = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best[0], best[1], result


def matmul_rate(n_features: int, repeats: int) -> float:
    """Multiply-adds per second of float32 products (numpy, default BLAS threads) with inner
    dimension ``n_features``: the best rate of a few shapes (so a ratio to it is conservative)."""
    rng = np.random.default_rng(0)
    best_rate = 0.0
    for rows, cols in [(4096, 4096), (4096, 1024), (2048, 20000)]:
        a = rng.random((rows, n_features), dtype=np.float32)
        b = rng.random((cols, n_features), dtype=np.float32)
        out = np.empty((rows, cols), np.float32)
        np.matmul(a, b.T, out=out)  # warm up
        wall, _, _ = timed(lambda a=a, b=b, out=out: np.matmul(a, b.T, out=out), repeats + 1)
        best_rate = max(best_rate, rows * cols * n_features / wall)
    return best_rate


def matmul_seconds(macs: int, n_features: int, repeats: int) -> float:
    """Seconds of float32 products totalling ``macs`` multiply-adds at matmul_rate."""
    return macs / matmul_rate(n_features, repeats)


def multiply_adds(model, work) -> dict:
    """The distance multiply-adds of a fitted model's training and inference. Training compares
    whole images; channel voting compares each channel on its own (1/C of the features a pair)."""
    c, p = model.memories_.shape[1], int(np.prod(model.memories_.shape[2:]))
    infer_features = p if model.voting == "channel" and c > 1 else c * p
    macs = {
        "train_filter": work["train_approx_pairs"] * c * p,
        "train_exact": work["train_exact_pairs"] * c * p,
        "infer_filter": work["predict_approx_pairs"] * infer_features,
        "infer_exact": work["predict_exact_pairs"] * infer_features,
    }
    macs["total"] = sum(macs.values())
    return macs


def speed_record(model, train, infer, pred, y_test, repeats) -> dict:
    """A fitted model's accuracy, (wall, CPU) seconds of training and inference, its distance
    multiply-adds, and the float32 matrix product with as many (its seconds and the ratio)."""
    macs = multiply_adds(model, model.work_)
    matmul_s = matmul_seconds(macs["total"], int(np.prod(model.memories_.shape[1:])), repeats)
    return {
        "n_neurons": model.n_neurons,
        "accuracy": float(np.mean(pred == y_test)),
        "n_born": model.n_born_,
        "train_seconds": train[0],
        "train_cpu_seconds": train[1],
        "infer_seconds": infer[0],
        "infer_cpu_seconds": infer[1],
        "multiply_adds": macs,
        "matmul_seconds_same_multiply_adds": matmul_s,
        "ratio_to_matmul": (train[0] + infer[0]) / matmul_s,
    }


def bench_model(n_neurons, data, threads, repeats):
    """Train and test the paper configuration; compare inference with faiss and sklearn."""
    import faiss
    from sklearn.neighbors import KNeighborsClassifier
    from threadpoolctl import threadpool_limits

    from memnet.models.memory.network import MemoryNetwork

    X_train, y_train, X_test, y_test = data
    model = MemoryNetwork(n_neurons=n_neurons, random_state=0, n_threads=threads)
    train_s, train_cpu, _ = timed(lambda: model.fit(X_train, y_train), repeats)
    memories = np.ascontiguousarray(model.memories_.reshape(model.n_born_, -1))
    labels = model.labels_
    queries = np.ascontiguousarray(X_test.reshape(len(X_test), -1))
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatL2(memories.shape[1])
    index.add(memories)
    infer, faiss_runs = [], []
    for _ in range(repeats):  # interleaved, so that both see the same load
        infer.append(timed(lambda: model.predict(X_test), 1))
        faiss_runs.append(timed(lambda: index.search(queries, 1), 1))
    infer_s, infer_cpu, pred = min(infer, key=lambda t: t[0])
    faiss_s, faiss_cpu, (_, nearest) = min(faiss_runs, key=lambda t: t[0])
    knn = KNeighborsClassifier(n_neighbors=1, algorithm="brute").fit(memories, labels)
    with threadpool_limits(threads):
        sk_s, sk_cpu, sk_pred = timed(lambda: knn.predict(queries), 1)
    return {
        **speed_record(model, (train_s, train_cpu), (infer_s, infer_cpu), pred, y_test, repeats),
        "faiss_IndexFlatL2_search_seconds": faiss_s,
        "faiss_cpu_seconds": faiss_cpu,
        "faiss_agreement": float(np.mean(labels[nearest[:, 0]] == pred)),
        "sklearn_brute_predict_seconds": sk_s,
        "sklearn_cpu_seconds": sk_cpu,
        "sklearn_agreement": float(np.mean(sk_pred == pred)),
    }


def load_cifar_sized(seed: int = 0):
    """The synthetic CIFAR-10 at full size (memnet.synthetic, the archive's images without the
    archive): the training set float32 in [0, 1], the test set uint8."""
    from memnet.datasets import synthetic, to_unit_float

    x_train, y_train, x_test, y_test = synthetic.arrays(seed)
    return to_unit_float(x_train), y_train, x_test, y_test


def bench_cifar_sized(data, threads, repeats, n_neurons=20000):
    """The paper configuration (channel voting) on CIFAR-sized inputs: train, infer, and the
    float32 matrix product with the same multiply-adds."""
    from memnet.models.memory.network import MemoryNetwork

    X_train, y_train, X_test, y_test = data
    model = MemoryNetwork(n_neurons=n_neurons, random_state=0, n_threads=threads)
    train_s, train_cpu, _ = timed(lambda: model.fit(X_train, y_train), repeats)
    infer_s, infer_cpu, pred = timed(lambda: model.predict(X_test), repeats)
    return {
        **speed_record(model, (train_s, train_cpu), (infer_s, infer_cpu), pred, y_test, repeats),
        "input_shape": list(X_train.shape[1:]),
        "voting": model.voting,
    }


COMPILE_SCRIPT = """
import time
start = time.perf_counter()
import numpy as np
from memnet.models.memory.network import MemoryNetwork
imported = time.perf_counter()
rng = np.random.default_rng(0)
X = rng.random((300, 1, 8, 8), dtype=np.float32)
y = rng.integers(0, 3, 300)
MemoryNetwork(n_neurons=100, random_state=0).fit(X, y).predict(X)
print(imported - start, time.perf_counter() - imported)
"""


def bench_compile():
    """Seconds of a fresh process that trains and predicts once, with an empty then a filled
    numba cache (NUMBA_CACHE_DIR in a temporary directory)."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for name in ("first_process", "second_process"):
            start = time.perf_counter()
            run = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], env=env, check=True,
                                 capture_output=True, text=True)  # fmt: skip
            total = time.perf_counter() - start
            imports, first_use = (float(v) for v in run.stdout.split())
            out[name] = {"total_seconds": total, "import_seconds": imports,
                         "first_fit_predict_seconds": first_use}  # fmt: skip
    return out


MEMORY_SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np
from memnet.bench import AnonymousPeak, load_mnist
from memnet.pipeline.execute import peak_rss_bytes
from memnet.models.memory.network import MemoryNetwork
mnist, n_neurons, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
anonymous = AnonymousPeak()
imported = peak_rss_bytes()
tiny = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
MemoryNetwork(n_neurons=16, random_state=0, n_threads=threads).fit(tiny, np.arange(64) % 10).predict(tiny)
runtime = peak_rss_bytes()
X, y, Xt, yt = load_mnist(mnist, test_as_float=False)
loaded = peak_rss_bytes()
model = MemoryNetwork(n_neurons=n_neurons, random_state=0, n_threads=threads)
model.fit(X, y)
trained = peak_rss_bytes()
accuracy = model.score(Xt, yt)
print(json.dumps({"after_imports_bytes": imported, "runtime_bytes": runtime,
                  "after_loading_bytes": loaded, "after_fit_bytes": trained,
                  "peak_rss_bytes": peak_rss_bytes(), "peak_anonymous_bytes": anonymous.stop(),
                  "train_set_float32_bytes": X.nbytes,
                  "memories_bytes": model.memories_.nbytes, "accuracy": accuracy}))
"""


class AnonymousPeak:
    """The peak of this process's anonymous memory (RssAnon: its own data, not the pages of the
    shared libraries it maps), sampled every millisecond by a thread until stop().

    VmHWM counts mapped library pages too, and how many of those are resident depends on the
    OS page cache: the same run peaks 40-60 MiB higher in a freshly installed environment.
    """

    def __init__(self, every=0.001):
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(every,), daemon=True)
        self._thread.start()

    def _watch(self, every):
        status = Path("/proc/self/status")
        while True:
            for line in status.read_text().splitlines():
                if line.startswith("RssAnon:"):
                    self.peak = max(self.peak, int(line.split()[1]) * 1024)
            if self._done.wait(every):
                return

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def bench_memory(mnist_dir, n_neurons, threads):
    """Peak RSS of a fresh process that loads MNIST as float32, trains and tests."""
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(mnist_dir), str(n_neurons),
                          str(threads)], check=True, capture_output=True, text=True)  # fmt: skip
    out = json.loads(run.stdout)
    out["n_neurons"] = n_neurons
    out["budget_bytes"] = 2 * (out["train_set_float32_bytes"] + out["memories_bytes"])
    out["within_budget"] = out["peak_rss_bytes"] <= out["budget_bytes"]
    out["anonymous_within_budget"] = out["peak_anonymous_bytes"] <= out["budget_bytes"]
    return out


def markdown(report) -> str:
    m = report["machine"]
    lines = [
        "# Memory Network benchmark (full MNIST, `paper` configuration, seed 0)",
        "",
        f"{m['cpu']}, {m['cores']} cores, {report['threads']} threads; load average "
        f"{m['load_before']} before and {m['load_after']} after. The machine is shared with "
        f"other jobs, so wall times are noisy: each is the best of {report['repeats']}, and "
        "inference alternates with faiss so that both see the same load.",
        "",
        "| neurons | accuracy | born | train s | infer s (CPU s) | faiss s (CPU s) | sklearn s "
        "| multiply-adds | matmul s | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['n_neurons']} | {r['accuracy']:.4f} | {r['n_born']} | {r['train_seconds']:.2f} "
            f"| {r['infer_seconds']:.2f} ({r['infer_cpu_seconds']:.2f}) "
            f"| {r['faiss_IndexFlatL2_search_seconds']:.2f} ({r['faiss_cpu_seconds']:.2f}) "
            f"| {r['sklearn_brute_predict_seconds']:.2f} | {r['multiply_adds']['total']:.3g} "
            f"| {r['matmul_seconds_same_multiply_adds']:.2f} | {r['ratio_to_matmul']:.2f} |"
        )
    if report.get("cifar_sized"):
        lines += [
            "",
            "CIFAR-sized inputs: the full-size synthetic CIFAR-10 (`memnet.synthetic`, 50,000 + "
            "10,000 RGB images of 32 x 32; its accuracy says nothing of real CIFAR-10), `paper` "
            "configuration (each of the 3 channels votes: a pair costs 1,024 multiply-adds at "
            "inference, 3,072 in training).",
            "",
            "| neurons | accuracy | born | train s (CPU s) | infer s (CPU s) | multiply-adds "
            "| matmul s | ratio |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in report["cifar_sized"]:
            lines.append(
                f"| {r['n_neurons']} | {r['accuracy']:.4f} | {r['n_born']} "
                f"| {r['train_seconds']:.2f} ({r['train_cpu_seconds']:.2f}) "
                f"| {r['infer_seconds']:.2f} ({r['infer_cpu_seconds']:.2f}) "
                f"| {r['multiply_adds']['total']:.3g} "
                f"| {r['matmul_seconds_same_multiply_adds']:.2f} | {r['ratio_to_matmul']:.2f} |"
            )
    c = report["compile"]
    lines += [
        "",
        "- multiply-adds: the distance work the model took (BLAS filter and exact float64 "
        "distances, training and inference); matmul s: float32 matrix products with as many "
        "multiply-adds at numpy's best rate here; ratio: (train + infer) / matmul (target <= 2).",
        "- faiss: IndexFlatL2 search (k=1) over the same memories (target: inference no slower); "
        "sklearn: KNeighborsClassifier(algorithm='brute') predict (target: slower than ours). "
        "Both agree with the model's predictions on "
        + ", ".join(
            f"{r['faiss_agreement']:.2%}/{r['sklearn_agreement']:.2%}" for r in report["runs"]
        )
        + " of the test images.",
        f"- numba compile: a fresh process trains and predicts once in "
        f"{c['first_process']['total_seconds']:.1f} s with an empty cache and "
        f"{c['second_process']['total_seconds']:.1f} s with it filled (its first fit + predict: "
        f"{c['first_process']['first_fit_predict_seconds']:.1f} s against "
        f"{c['second_process']['first_fit_predict_seconds']:.2f} s).",
        "",
        "Peak memory (MiB) of a fresh process that loads the MNIST training set as float32 (the "
        "test set stays uint8: the model scales each chunk of queries as it goes), trains and "
        "tests. Budget: 2 x (float32 training set + memories). Peak: VmHWM, all resident pages, "
        "the mapped pages of shared libraries included (how many depends on the OS page cache: "
        "40-60 MiB more in a freshly installed environment). Anonymous peak: the process's own "
        "data (RssAnon sampled every millisecond). Runtime: the interpreter, the libraries and "
        "numba's loaded kernels (VmHWM after imports and one tiny fit; after imports alone in "
        "brackets); 'model + data' is the peak less the runtime.",
        "",
        "| neurons | peak | anonymous peak | budget | model + data | runtime (imports) "
        "| after loading | after fit | accuracy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["memory"]:
        mb = {k: v / 2**20 for k, v in r.items() if k.endswith("bytes")}
        lines.append(
            f"| {r['n_neurons']} | {mb['peak_rss_bytes']:.0f} | {mb['peak_anonymous_bytes']:.0f} "
            f"| {mb['budget_bytes']:.0f} | {mb['peak_rss_bytes'] - mb['runtime_bytes']:.0f} "
            f"| {mb['runtime_bytes']:.0f} ({mb['after_imports_bytes']:.0f}) "
            f"| {mb['after_loading_bytes']:.0f} | {mb['after_fit_bytes']:.0f} "
            f"| {r['accuracy']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m memnet.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=output_dir, default="results/bench", help="output directory")
    parser.add_argument("--mirror", default=None, help="a directory holding mnist/*-ubyte.gz")
    parser.add_argument("--threads", type=_positive_int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=_positive_int, default=3)
    parser.add_argument("--neurons", type=_positive_int, nargs="+", default=[20000, 60000])
    parser.add_argument("--cifar-neurons", type=_positive_int, nargs="+", default=[20000, 60000],
                        help="neurons of the runs on the full-size synthetic CIFAR-10")  # fmt: skip
    parser.add_argument("--no-cifar", action="store_true", help="skip the CIFAR-sized runs")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """The checked arguments (a usage error, exit status 2, names a bad one); starts nothing."""
    return mnist_args(build_parser(), argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    mnist_dir = args.mnist
    data = load_mnist(mnist_dir)
    load_before = [round(v, 2) for v in os.getloadavg()]
    runs = []
    for n_neurons in args.neurons:
        run = bench_model(n_neurons, data, args.threads, args.repeats)
        runs.append(run)
        print(json.dumps(run), flush=True)
    del data
    cifar = []
    if not args.no_cifar:
        cifar_data = load_cifar_sized()
        for n_neurons in args.cifar_neurons:
            cifar.append(bench_cifar_sized(cifar_data, args.threads, args.repeats, n_neurons))
            print(json.dumps(cifar[-1]), flush=True)
        del cifar_data
    report = {
        "machine": machine(load_before),
        "threads": args.threads,
        "repeats": args.repeats,
        "runs": runs,
        "cifar_sized": cifar,
        "compile": bench_compile(),
        "memory": [bench_memory(mnist_dir, n, args.threads) for n in args.neurons],
        "peak_rss_this_process_bytes": peak_rss_bytes(),
    }
    write_json(Path(args.out) / "model.json", report)
    write_text(Path(args.out) / "model.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
