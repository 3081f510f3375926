"""A hand-made synthetic results tree for the report's tests: run JSONs, runs.csv, summary.csv, a model.

Every accuracy is a known formula (``BASE`` plus ``SEED_STEP`` per seed), so a test can state what a table
cell or a verdict must be without running any model. The summary is computed here, independently of
memnet.aggregate, with the same 95% Student-t interval the interface specifies. The steps are run through
the `memnet` command with explicit file lists, as the workflow's rules run them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from memnet import cli
from memnet.report.results import JSON_COLUMNS, KEYS, OPTIONAL_COLUMNS, RUN_COLUMNS

REPO = Path(__file__).resolve().parents[1]

# The column names are the interface; the values below are computed independently of memnet.aggregate.

SEED_STEP = 0.002  # accuracy rises by this much per seed
N_TRAIN, N_TEST, N_CLASSES = 200, 100, 10

# (model, variant) -> accuracy of seed 0 per dataset, training seconds, passes, backprop, sharing
MAIN = {
    ("memnet", "paper"): ({"mnist": 0.970, "cifar10": 0.400}, 2.0, 1, False, False),
    ("mlp", "epochs1"): ({"mnist": 0.950, "cifar10": 0.350}, 5.0, 1, True, False),
    ("mlp", "epochs10"): ({"mnist": 0.980, "cifar10": 0.500}, 50.0, 10, True, False),
    ("cnn", "epochs1"): ({"mnist": 0.975, "cifar10": 0.450}, 20.0, 1, True, True),
    ("cnn", "epochs10"): ({"mnist": 0.990, "cifar10": 0.650}, 200.0, 10, True, True),
    ("knn", "k1-l2"): ({"mnist": 0.9691, "cifar10": 0.354}, 0.1, 1, False, False),
    ("knn", "k3-l2"): ({"mnist": 0.9705, "cifar10": 0.330}, 0.1, 1, False, False),
    ("knn", "k1-l1"): ({"cifar10": 0.386}, 0.1, 1, False, False),
    ("ncm", "default"): ({"mnist": 0.820, "cifar10": 0.280}, 0.05, 1, False, False),
    ("local", "default"): ({"mnist": 0.990, "cifar10": 0.420}, 8.0, 1, False, False),
}
NEURONS = {100: -0.20, 1000: -0.05, 10000: -0.01}  # accuracy offset from memnet/paper
SAMPLES = {10: 0.40, 100: 0.70, 1000: 0.90}  # fraction of the main accuracy
SAMPLE_MODELS = [
    ("memnet", "paper"), ("mlp", "epochs1"), ("cnn", "epochs1"), ("knn", "k1-l2"), ("local", "default"),
]  # fmt: skip
ABLATIONS = {
    "paper": 0.0,
    "distance-l1": -0.010,
    "distance-cosine": 0.004,
    "threshold-none": -0.002,
    "k-3": 0.001,
}
# The locally connected model (ours): its n_per_bank sweep (accuracy offset from local/default) and
# ablations; its learnt state has 64 locations x 10 class banks of n_per_bank memories of 49 floats
# (plus an int64 hit count each): LOCAL_BYTES per memory.
LOCAL_DEFAULT = {"patch": 7, "stride": 3, "n_per_bank": 1600, "preprocess": "deskew"}
LOCAL_BANKS = {50: -0.030, 200: -0.010, 1600: 0.0}
LOCAL_ABLATIONS = {"default": 0.0, "scoring-vote": -0.003, "preprocess-none": -0.004}
LOCAL_LOCATIONS, LOCAL_BYTES = 64, 4 * 49 + 8
MEMNET_BYTES = 4 * 784  # per neuron


def model_bytes(model: str, experiment: str, x, params: dict) -> int:
    """The fixture's learnt-state bytes: memnet, 4 x 784 per neuron (150 born, or the sweep's x);
    local, LOCAL_BYTES per memory of every full bank; a baseline, 50,000."""
    if model == "memnet":
        return MEMNET_BYTES * (int(x) if experiment == "neurons" else 150)
    if model == "local":
        return LOCAL_LOCATIONS * N_CLASSES * int(params["n_per_bank"]) * LOCAL_BYTES
    return 50_000


# class-incremental (MNIST only): accuracy on the classes seen after each task, and forgetting
INCREMENTAL = {
    ("memnet", "paper-known"): ([1.0, 0.99, 0.985, 0.98, 0.965], 0.012, 1, False, False),
    ("memnet", "paper-open"): ([1.0, 0.985, 0.975, 0.965, 0.950], 0.020, 1, False, False),
    ("mlp", "epochs1"): ([0.999, 0.49, 0.33, 0.25, 0.198], 0.985, 1, True, False),
    ("knn", "k1-l2"): ([1.0, 0.99, 0.985, 0.975, 0.969], 0.010, 1, False, False),
}
PAPER_PARAMS = {
    "n_neurons": 500,
    "distance": "l2",
    "threshold": "adaptive",
    "plasticity": "mean",
    "competition": "label",
    "voting": "channel",
    "k": 1,
}
IMAGE_SHAPE = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def accuracy(base: float, seed: int) -> float:
    return round(base + SEED_STEP * seed, 6)


def _run(
    dataset,
    experiment,
    model,
    variant,
    x,
    seed,
    acc,
    seconds,
    passes,
    backprop,
    sharing,
    params,
    n_train=N_TRAIN,
) -> dict:
    correct = round(acc * N_TEST)
    confusion = np.zeros((N_CLASSES, N_CLASSES), dtype=int)
    per_class = N_TEST // N_CLASSES
    for k in range(N_CLASSES):  # spread the errors over the classes, each error to the next class
        right = min(per_class, max(0, correct - k * per_class))
        confusion[k, k] = right
        confusion[k, (k + 1) % N_CLASSES] = per_class - right
    return {
        "dataset": dataset,
        "experiment": experiment,
        "model": model,
        "variant": variant,
        "x": x,
        "seed": seed,
        "params": params,
        "accuracy": acc,
        "confusion": confusion.tolist(),
        "n_train": n_train,
        "n_test": N_TEST,
        "n_born": 150 if model == "memnet" else None,
        "births_per_class": [15] * N_CLASSES if model == "memnet" else None,
        "train_seconds": seconds * (1 + 0.01 * seed),
        "infer_seconds": seconds / 10,
        "peak_memory_bytes": 100_000_000 + 1_000_000 * seed,
        "model_bytes": model_bytes(model, experiment, x, params),
        "uses_backprop": backprop,
        "uses_weight_sharing": sharing,
        "n_passes": passes,
        "versions": {"memnet": "0.1.0"},
        "git_revision": "0123456789abcdef",
        "threads": 1,
        "forgetting": None,
        "seen_accuracy": None,
    }


def make_runs(datasets=("mnist",), seeds=(0, 1, 2), experiments=None) -> list[dict]:
    """Every synthetic run, as the metrics dicts the interface specifies."""
    experiments = experiments or (
        "main", "neurons", "samples", "ablations", "incremental", "local_banks", "local_ablations",
    )  # fmt: skip
    runs = []
    for d in datasets:
        for seed in seeds:
            for (model, variant), (bases, seconds, passes, bp, ws) in MAIN.items():
                if d not in bases:
                    continue
                params = {"memnet": PAPER_PARAMS, "local": LOCAL_DEFAULT}.get(
                    model, {"variant": variant}
                )
                acc = accuracy(bases[d], seed)
                args = (seconds, passes, bp, ws, params)
                if "main" in experiments:
                    runs.append(_run(d, "main", model, variant, None, seed, acc, *args))
                if "samples" in experiments and (model, variant) in SAMPLE_MODELS:
                    for n, frac in SAMPLES.items():
                        # backprop learns slowest from few samples, as the paper claims
                        share = frac * (0.8 if bp else 1.0)
                        runs.append(
                            _run(
                                d,
                                "samples",
                                model,
                                variant,
                                float(n),
                                seed,
                                round(acc * share, 6),
                                *args,
                                n_train=n,
                            )
                        )
            if "incremental" in experiments and d == "mnist":
                for (model, variant), (curve, forgets, passes, bp, ws) in INCREMENTAL.items():
                    seen = [round(a - SEED_STEP * seed, 6) for a in curve]
                    params = PAPER_PARAMS if model == "memnet" else {"variant": variant}
                    run = _run(d, "incremental", model, variant, None, seed, seen[-1], 1.0,
                               passes, bp, ws, params)  # fmt: skip
                    run.update(seen_accuracy=seen, forgetting=round(forgets + 0.001 * seed, 6))
                    runs.append(run)
            local = accuracy(MAIN[("local", "default")][0][d], seed)
            for experiment, variants in (
                ("local_banks", {f"b{n}": (float(n), off) for n, off in LOCAL_BANKS.items()}),
                ("local_ablations", {v: (None, off) for v, off in LOCAL_ABLATIONS.items()}),
            ):
                if experiment not in experiments:
                    continue
                for variant, (x, offset) in variants.items():
                    params = dict(LOCAL_DEFAULT)
                    if x is not None:
                        params["n_per_bank"] = int(x)
                    elif variant != "default":
                        param, value = variant.split("-", 1)
                        params[param] = None if value == "none" else value
                    acc = round(local + offset, 6)
                    runs.append(
                        _run(d, experiment, "local", variant, x, seed, acc, 8.0, 1, False, False,
                             params)
                    )  # fmt: skip
            paper = accuracy(MAIN[("memnet", "paper")][0][d], seed)
            for experiment, variants in (
                ("neurons", {f"n{n}": (float(n), offset) for n, offset in NEURONS.items()}),
                ("ablations", {v: (None, offset) for v, offset in ABLATIONS.items()}),
            ):
                if experiment not in experiments:
                    continue
                for variant, (x, offset) in variants.items():
                    params = dict(PAPER_PARAMS)
                    if x is not None:
                        params["n_neurons"] = int(x)
                    elif variant != "paper":
                        param, value = variant.split("-", 1)
                        params[param] = int(value) if value.isdigit() else value
                    acc = round(paper + offset, 6)
                    runs.append(
                        _run(d, experiment, "memnet", variant, x, seed, acc, 2.0, 1, False, False,
                             params)
                    )  # fmt: skip
    return runs


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    rows = [
        {
            c: (json.dumps(r[c]) if c in JSON_COLUMNS else r.get(c, OPTIONAL_COLUMNS.get(c)))
            for c in RUN_COLUMNS
        }
        for r in runs
    ]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def summary_frame(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for key, g in runs.groupby(KEYS, dropna=False, sort=True):
        acc = g["accuracy"].to_numpy(float)
        n = len(acc)
        half = stats.t.ppf(0.975, n - 1) * acc.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        row = dict(zip(KEYS, key, strict=True))
        row.update(
            n_seeds=n,
            accuracy_mean=acc.mean(),
            accuracy_std=acc.std(ddof=1) if n > 1 else np.nan,
            accuracy_ci_low=acc.mean() - half,
            accuracy_ci_high=acc.mean() + half,
            train_seconds_mean=g["train_seconds"].mean(),
            infer_seconds_mean=g["infer_seconds"].mean(),
            peak_memory_bytes_mean=g["peak_memory_bytes"].mean(),
            model_bytes_mean=g["model_bytes"].mean(),
            forgetting_mean=pd.to_numeric(g["forgetting"]).mean(),
            n_passes=g["n_passes"].iloc[0],
            uses_backprop=g["uses_backprop"].iloc[0],
            uses_weight_sharing=g["uses_weight_sharing"].iloc[0],
            label=g["label"].iloc[0],
        )
        rows.append(row)
    return pd.DataFrame(rows)


def save_model(path: Path, dataset: str, seed: int) -> Path | None:
    """Train a tiny MemoryNetwork on random images and save it; None while the model is missing."""
    try:
        from memnet.models.memory.network import MemoryNetwork
    except ImportError:
        return None
    rng = np.random.default_rng(seed)
    X = rng.random((N_TRAIN, *IMAGE_SHAPE[dataset]), dtype=np.float32)
    y = np.arange(N_TRAIN) % N_CLASSES
    model = MemoryNetwork(n_neurons=150, random_state=seed).fit(X, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def build_results(
    root: Path, datasets=("mnist",), seeds=(0, 1, 2), experiments=None, with_model=True
) -> Path:
    """Write results/{runs,tables,models} under ``root``; returns root/"results"."""
    results = Path(root) / "results"
    runs = make_runs(datasets, seeds, experiments)
    for r in runs:
        name = r["variant"] if r["x"] is None else f"{r['variant']}-x{int(r['x'])}"
        path = results / "runs" / r["dataset"] / r["experiment"] / r["model"] / name
        path.mkdir(parents=True, exist_ok=True)
        (path / f"seed{r['seed']}.json").write_text(json.dumps(r))
    table = runs_frame(runs)
    (results / "tables").mkdir(parents=True, exist_ok=True)
    table.to_csv(results / "tables" / "runs.csv", index=False)
    summary_frame(table).to_csv(results / "tables" / "summary.csv", index=False)
    if with_model:
        for d in datasets:
            base = results / "models" / d / "main" / "memnet" / "paper" / f"seed{seeds[0]}"
            if save_model(base.with_suffix(".npz"), d, seeds[0]) is not None:
                metrics = next(
                    r
                    for r in runs
                    if (r["dataset"], r["experiment"], r["model"], r["seed"])
                    == (d, "main", "memnet", seeds[0])
                )
                base.with_suffix(".json").write_text(json.dumps(metrics))
    return results


# ---------------------------------------------------------------------------------------------
# Trees shared by the test modules: each is built once per session, whichever module asks first.
# A module wraps them in its own fixture: `full = pytest.fixture(lambda tmp_path_factory: ...)`.

_BUILT: dict[str, Path] = {}


def _cached(key: str, factory, **kwargs) -> Path:
    if key not in _BUILT:
        _BUILT[key] = build_results(factory.mktemp(key), **kwargs)
    return _BUILT[key]


def full_tree(tmp_path_factory) -> Path:
    """Both datasets, three seeds, every experiment, saved models."""
    return _cached("full", tmp_path_factory, datasets=("mnist", "cifar10"), seeds=(0, 1, 2))


def quick_tree(tmp_path_factory) -> Path:
    """Like config/quick.yaml's outputs, but thinner: MNIST only, two seeds, no neurons sweep."""
    return _cached(
        "quick", tmp_path_factory, datasets=("mnist",), seeds=(0, 1),
        experiments=("main", "samples", "ablations"),
    )  # fmt: skip


def model_files(results: Path, seeds=None) -> list[Path]:
    """The saved models (.npz) and their metrics (.json) under ``results``, of ``seeds`` (all if None)."""
    found = sorted((results / "models").glob("*/main/memnet/paper/seed*.*"))
    return [p for p in found if seeds is None or int(p.stem.removeprefix("seed")) in seeds]


def confusion_files(results: Path, seeds=None) -> list[Path]:
    """The main/memnet/paper run files under ``results``, of ``seeds`` (all if None)."""
    found = sorted((results / "runs").glob("*/main/memnet/paper/seed*.json"))
    return [p for p in found if seeds is None or int(p.stem.removeprefix("seed")) in seeds]


def memnet(*args) -> None:
    """``memnet ARGS...``, in process; a failure is the test's failure."""
    code = cli.main([str(a) for a in args])
    assert code == 0, f"memnet {args[0]} failed with exit code {code}"


def run_tables(results: Path, models=None, out: Path | None = None) -> Path:
    """`memnet tables` on ``results`` with ``models`` (default: every saved model file there)."""
    out = out or results / "tables"
    models = model_files(results) if models is None else models
    memnet(
        "tables", "--summary", results / "tables" / "summary.csv",
        "--runs", results / "tables" / "runs.csv", "--claims", REPO / "paper" / "claims.yaml",
        "--models", *models, "--out", out,
    )  # fmt: skip
    return out


def run_figures(
    results: Path, datasets: list[str], models=None, confusions=None, out: Path | None = None
) -> Path:
    """`memnet figures` on ``results``; models and run files default to every one there."""
    out = out or results / "figures"
    models = model_files(results) if models is None else models
    confusions = confusion_files(results) if confusions is None else confusions
    memnet(
        "figures", "--summary", results / "tables" / "summary.csv",
        "--runs", results / "tables" / "runs.csv", "--claims", REPO / "paper" / "claims.yaml",
        "--models", *models, "--confusions", *confusions, "--model-seed", 0,
        "--datasets", *datasets, "--out", out,
    )  # fmt: skip
    return out


def table_files(results: Path) -> list[Path]:
    return sorted((results / "tables").glob("T*_*.*"))


def figure_files(results: Path) -> list[Path]:
    return sorted((results / "figures").glob("F*.png"))


def caption_files() -> list[Path]:
    return sorted((REPO / "workflow" / "report").glob("*.rst"))


def run_report(
    results: Path, datasets: list[str], metrics: Path | None = None, config_file: str | None = None
) -> Path:
    """`memnet report` on ``results`` (tables and figures drawn already); returns the Markdown."""
    out = results / "paper" / "replication.md"
    metrics = metrics or confusion_files(results)[0]
    config = ["--config-file", config_file] if config_file else []
    memnet(
        "report", "--template", REPO / "paper" / "replication.md.j2",
        "--runs", results / "tables" / "runs.csv", "--metrics", metrics,
        "--tables", *table_files(results), "--figures", *figure_files(results),
        "--captions", *caption_files(), "--datasets", *datasets, *config, "--out", out,
    )  # fmt: skip
    return out


_RENDERED: dict[Path, Path] = {}


def rendered(results: Path, datasets: list[str]) -> Path:
    """Tables, figures and the replication report for ``results`` (once per tree)."""
    if results not in _RENDERED:
        run_tables(results)
        run_figures(results, datasets)
        _RENDERED[results] = run_report(results, datasets)
    return _RENDERED[results]


def at_paper_scale(results: Path, n_train: int = 60000, n_neurons: int = 20000) -> Path:
    """Rewrite ``results``' runs.csv so that the main Memory Network runs are at the scale the
    paper's claims are about (training images, neurons): their verdicts are then decided by the
    numbers, not "not measurable at this scale"."""
    path = results / "tables" / "runs.csv"
    runs = pd.read_csv(path)
    main = (runs.experiment == "main") & (runs.model == "memnet")
    runs.loc[main, "n_train"] = n_train
    runs.loc[main, "params"] = [
        json.dumps({**json.loads(p), "n_neurons": n_neurons}, sort_keys=True)
        for p in runs.loc[main, "params"]
    ]
    runs.to_csv(path, index=False)
    return results
