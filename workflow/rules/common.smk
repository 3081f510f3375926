import shlex

from memnet.datasets import REGISTRY
from memnet.experiments import params_json, plan

ENV = str(REPO / "environment.yml")  # documents the software; .venv has all of it
RUNS = plan(config)
RUN_BY_WILDCARDS = {(r.dataset, r.experiment, r.model, r.name): r for r in RUNS}
METRICS = [r.metrics_path(seed) for r in RUNS for seed in config["seeds"]]


def resources_of(rule_name):
    """The config's `resources` entry for a rule (a cluster profile can override it)."""
    return config["resources"][rule_name]


def subset_arg(dataset):
    subset = config["data"].get("subset", {}).get(dataset)
    return f"--subset {shlex.quote(params_json(subset))}" if subset else ""


def run_of(w):
    return RUN_BY_WILDCARDS[(w.dataset, w.experiment, w.model, w.name)]


def run_args(w):
    run = run_of(w)
    args = [
        f"--dataset {run.dataset} --experiment {run.experiment} --model {run.model}",
        f"--variant {shlex.quote(run.variant)} --params {shlex.quote(params_json(run.params))}",
        subset_arg(run.dataset),
    ]
    if run.x is not None:
        args.append(f"--x {run.x}")
    if run.n_train is not None:
        args.append(f"--n-train {run.n_train}")
    if run.needs_tuning:
        args.append(f"--tuning results/tuning/{run.dataset}.json")
    return " ".join(args)


# The backprop nets train on one torch thread (bitwise the same on any machine's core count),
# and nearest class mean is plain numpy: two of them can share a 2-core machine.
SINGLE_THREADED = ("mlp", "cnn", "ncm")


def run_threads(w):
    return 1 if w.model in SINGLE_THREADED else config["threads"]["run"]
