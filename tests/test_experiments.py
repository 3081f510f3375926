"""Planning: the config expands into exactly the runs it declares."""

import copy
import re

import numpy as np
import pytest
import yaml

from memnet.pipeline import execute, tune
from memnet.pipeline.plan import plan


@pytest.fixture
def config(repo):
    return yaml.safe_load((repo / "config/config.yaml").read_text())


def expected_runs(config: dict) -> int:
    """Count the runs of a config straight from its lists (independently of plan())."""
    sizes = {"mnist": 60000, "fashion-mnist": 60000, "cifar10": 50000}
    total = 0
    for ds in config["datasets"]:

        def applies(entry, ds=ds):
            return ds in entry.get("only_datasets", [ds])

        def variants(models, ds=ds, applies=applies):
            entries = {**config["baselines"], "local": config.get("local", {}),
                       "hierarchy": config.get("hierarchy", {})}  # fmt: skip
            return sum(
                len(vs) if m == "memnet" else sum(applies(entries[m][v]) for v in vs)
                for m, vs in models.items()
            )

        exp = config["experiments"]
        total += variants(exp["main"]["models"])
        total += len(exp["neurons"]["n_neurons"])
        cap = config["data"].get("subset", {}).get(ds, {}).get("n_train", sizes[ds])
        n_sizes = len({min(n, cap, sizes[ds]) for n in exp["samples"]["n_train"]})
        total += n_sizes * variants(exp["samples"]["models"])
        total += sum(applies(o) for o in exp["ablations"].values())
        local = config.get("local", {}).get("default", {})
        if applies(local):
            total += len(exp.get("local_banks", {}).get("n_per_bank", []))
            total += sum(applies(o) for o in exp.get("local_ablations", {}).values())
        if applies(config.get("hierarchy", {}).get("default", {})):
            total += sum(applies(o) for o in exp.get("hierarchy_ablations", {}).values())
        inc = exp.get("incremental")
        if inc and applies(inc):
            models = inc["models"]
            memnet = len(models.get("memnet", [])) * len(inc["horizons"])
            total += memnet + variants({m: v for m, v in models.items() if m != "memnet"})
    return total


def test_plan_counts_match_the_config(config):
    assert len(plan(config)) == expected_runs(config)


def test_run_paths_are_unique(config):
    paths = [r.metrics_path(0, "results/x") for r in plan(config)]
    assert len(paths) == len(set(paths))
    assert all(p.startswith("results/x/runs/") for p in paths)


def test_incremental_runs_carry_their_tasks_and_horizons(config):
    runs = [r for r in plan(config) if r.experiment == "incremental"]
    tasks = tuple(tuple(t) for t in config["experiments"]["incremental"]["tasks"])
    assert runs and all(r.tasks == tasks for r in runs)
    assert {r.dataset for r in runs} == {"mnist", "fashion-mnist"}  # only_datasets
    memnet = {r.name: r.params for r in runs if r.model == "memnet"}
    assert memnet["paper-open"]["birth_schedule"] == "open"
    assert "birth_schedule" not in memnet["paper-known"]
    assert all(r.tasks is None for r in plan(config) if r.experiment != "incremental")


@pytest.mark.parametrize(
    ("tasks", "why"), [([[0, 1], [1, 2]], "two tasks"), ([[0, 10]], "lacks"), ([[]], "non-empty")]
)
def test_bad_incremental_tasks_name_the_key(config, tasks, why):
    config["experiments"]["incremental"]["tasks"] = tasks
    with pytest.raises(ValueError, match=f"experiments.incremental.tasks.*{why}"):
        plan(config)


def test_adding_an_ablation_adds_exactly_its_runs(config):
    before = plan(config)
    config["experiments"]["ablations"]["eta-half"] = {"plasticity": "constant", "eta": 0.5}
    after = plan(config)
    added = [r for r in after if r not in before]
    assert len(after) == len(before) + len(config["datasets"])
    assert {(r.experiment, r.variant) for r in added} == {("ablations", "eta-half")}
    assert all(r.params["eta"] == 0.5 and r.params["plasticity"] == "constant" for r in added)
    assert all(r.params["distance"] == config["memnet"]["distance"] for r in added)


def test_only_datasets_restricts_an_entry(config):
    runs = plan(config)
    l1 = [r.dataset for r in runs if r.model == "knn" and r.variant == "k1-l1"]
    assert l1 == ["cifar10"]
    joint = [r.dataset for r in runs if r.variant == "voting-joint"]
    assert joint == ["cifar10"]


def test_sample_sizes_are_capped_at_the_training_set(config):
    config["datasets"] = ["cifar10"]
    config["experiments"]["samples"]["n_train"] = [10, 50000, 60000]
    sizes = {r.n_train for r in plan(config) if r.experiment == "samples"}
    assert sizes == {10, 50000}


def test_neurons_sweep_changes_only_n_neurons(config):
    runs = [r for r in plan(config) if r.experiment == "neurons"]
    paper = {k: v for k, v in config["memnet"].items()}
    for r in runs:
        assert r.x == r.params["n_neurons"]
        assert {**r.params, "n_neurons": paper["n_neurons"]} == paper


def test_tuned_runs_are_the_memnet_runs_without_tau(config):
    config = copy.deepcopy(config)
    config["experiments"]["ablations"]["tau-fixed-1"] = {"threshold": "fixed", "tau": 1.0}
    runs = plan(config)
    assert all(r.needs_tuning == (r.model == "memnet" and "tau" not in r.params) for r in runs)


def test_confusion_matrix_against_counting():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    cm = execute.confusion_matrix(y, p, 4)
    for i in range(4):
        for j in range(4):
            assert cm[i, j] == np.sum((y == i) & (p == j))


def test_peak_memory_sees_this_process_allocating():
    """In a fresh process (this one's peak is whatever earlier tests reached)."""
    import subprocess
    import sys

    script = (
        "import numpy as np; from memnet.pipeline.execute import peak_rss_bytes as p; "
        "a = p(); b = np.ones(200 * 2**20 // 8); print(p() - a)"
    )
    grown = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               check=True).stdout)  # fmt: skip
    assert grown > 150 * 2**20


def test_a_run_with_another_distance_takes_the_tuned_multiple_of_its_own_default():
    from memnet.pipeline.tune import tuned_tau

    tuning = {"tau": 13.0, "tau_scale": 0.5, "params": {"distance": "l2"},
              "default_tau_by_distance": {"l2": 26.0, "l1": 40.0, "cosine": 0.2}}  # fmt: skip
    assert tuned_tau(tuning, "l2") == 13.0  # the tuned value itself
    assert tuned_tau(tuning, "l1") == 20.0 and tuned_tau(tuning, "cosine") == 0.1


def test_tune_records_each_distances_default_tau():
    from types import SimpleNamespace

    from memnet.models.memory.network import default_tau

    rng = np.random.default_rng(0)
    X, y = rng.random((120, 1, 4, 4), dtype=np.float32), np.repeat(np.arange(4), 30)
    data = SimpleNamespace(X_train=X, y_train=y)
    out = tune.tune(data, {"n_neurons": 30}, tau_scale=[1.0], validation_fraction=0.2, seed=0)
    fit = np.setdiff1d(np.arange(120), datasets_indices(y, 24))
    for d in ("l2", "l1", "cosine"):
        assert out["default_tau_by_distance"][d] == pytest.approx(default_tau(X[fit], d))
    assert out["tau"] == out["tau_scale"] * out["default_tau_by_distance"]["l2"]


def datasets_indices(y, n):
    from memnet.datasets import stratified_indices

    return stratified_indices(y, n, 0)


def test_local_runs_come_from_the_config_entries(config):
    runs = [r for r in plan(config) if r.model == "local"]
    default = config["local"]["default"]
    by_experiment = {}
    for r in runs:
        by_experiment.setdefault(r.experiment, []).append(r)
    assert {r.dataset for r in by_experiment["main"]} == set(config["datasets"])
    assert all(r.params == default for r in by_experiment["main"] + by_experiment["samples"])
    banks = config["experiments"]["local_banks"]["n_per_bank"]
    for r in by_experiment["local_banks"]:
        assert r.x == r.params["n_per_bank"] and r.name == f"b{int(r.x)}"
        assert {**r.params, "n_per_bank": default["n_per_bank"]} == default
    assert sorted({int(r.x) for r in by_experiment["local_banks"]}) == sorted(banks)
    ablations = config["experiments"]["local_ablations"]
    for r in by_experiment["local_ablations"]:
        overrides = {k: v for k, v in ablations[r.name].items() if k != "only_datasets"}
        assert r.params == {**default, **overrides}
        assert not r.needs_tuning
        assert r.dataset in ablations[r.name].get("only_datasets", [r.dataset])
    assert {r.name for r in by_experiment["local_ablations"]} == set(ablations)
    colour = {r.dataset for r in by_experiment["local_ablations"] if r.name == "preprocess-zca"}
    assert colour == {"cifar10"} & set(config["datasets"])


def test_a_local_entry_limited_to_one_dataset_runs_only_there(config):
    config["local"]["default"]["only_datasets"] = ["cifar10"]
    runs = [r for r in plan(config) if r.model == "local"]
    assert runs and {r.dataset for r in runs} == {"cifar10"}
    assert all("only_datasets" not in r.params for r in runs)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["experiments"]["main"]["models"]["local"].append("big"),
         "experiments.main.models.local"),
        (lambda c: c["experiments"]["samples"]["models"].update(local=["big"]),
         "experiments.samples.models.local"),
        (lambda c: c["local"].pop("default"), "experiments.main.models.local"),
        (lambda c: (c["local"].pop("default"), c["experiments"].pop("main"),
                    c["experiments"].pop("samples")), "experiments.local_banks"),
    ],
)  # fmt: skip
def test_an_undefined_local_variant_names_the_key(config, edit, key):
    edit(config)
    with pytest.raises(ValueError, match=f"config key '{re.escape(key)}'.*add it under local"):
        plan(config)
