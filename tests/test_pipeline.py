"""The DAG: what `snakemake -n` plans, and an end-to-end run of config/quick.yaml on real MNIST."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
import yaml
from conftest import snakemake
from test_experiments import expected_runs

from memnet.datasets import REGISTRY
from memnet.report.aggregate import TIMING_COLUMNS
from memnet.report.results import JSON_COLUMNS

# The one dry run that picks datasets (and seeds) on the command line, shared with test_config.
COMMAND_LINE = ("--config", "seeds=[0,1]", "datasets=[mnist]")


def job_counts(proc) -> dict[str, int]:
    """Job counts per rule from a dry run's "Job stats" table."""
    stats = proc.stdout[proc.stdout.index("Job stats") :]
    stats = stats[: stats.index("total")]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def runs_planned(jobs: dict[str, int]) -> int:
    """Runs among a dry run's jobs: those of `run`, and those that also save their model (one
    per dataset: the main `paper` run of the first seed, trained once)."""
    return jobs.get("run", 0) + jobs.get("run_saving_model", 0)


@pytest.mark.parametrize("name", ["config.yaml", "quick.yaml"])
def test_dry_run_plans_every_run(repo, dry_run_of, name):
    config = yaml.safe_load((repo / "config" / name).read_text())
    jobs = job_counts(dry_run_of(name))
    assert runs_planned(jobs) == expected_runs(config) * len(config["seeds"])
    assert jobs["run_saving_model"] == len(config["datasets"])
    assert jobs["download"] == sum(len(REGISTRY[d].files) for d in config["datasets"])
    assert jobs["prepare"] == jobs["tune"] == len(config["datasets"])
    assert jobs["aggregate"] == 1


def planned_files(proc) -> set[str]:
    """Every output, log and benchmark file that a dry run plans to write."""
    lines = re.findall(r"^\s+(?:output|log|benchmark): (.+)$", proc.stdout, re.M)
    return {path for line in lines for path in line.split(", ")}


def test_each_config_writes_only_under_its_results_directory(repo, dry_run_of):
    """Running quick.yaml after the paper's config can't touch the paper's outputs."""
    written = {}
    for name in ["config.yaml", "quick.yaml"]:
        config = yaml.safe_load((repo / "config" / name).read_text())
        files = planned_files(dry_run_of(name))
        shared = {f for f in files if f.startswith(f"{config['data']['dir']}/")}
        assert shared, "the datasets are downloaded into the shared data directory"
        assert all(f.startswith(f"{config['results']}/") for f in files - shared), name
        written[name] = files - shared
    assert written["config.yaml"] and written["quick.yaml"]
    assert not written["config.yaml"] & written["quick.yaml"]


def test_dry_run_picks_datasets_from_the_command_line(repo, dry_run):
    jobs = job_counts(dry_run(*COMMAND_LINE))
    config = yaml.safe_load((repo / "config/config.yaml").read_text())
    config["datasets"] = ["mnist"]
    config["seeds"] = [0, 1]
    assert len(yaml.safe_load((repo / "config/config.yaml").read_text())["seeds"]) != 2
    assert runs_planned(jobs) == expected_runs(config) * len(config["seeds"])
    assert jobs["download"] == len(REGISTRY["mnist"].files)


def test_bad_config_stops_before_any_job(repo, tmp_path):
    bad = tmp_path / "bad.yaml"
    config = yaml.safe_load((repo / "config/quick.yaml").read_text())
    config["memnet"]["voting"] = "loud"
    bad.write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", str(bad), cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "config key 'memnet.voting'" in proc.stdout + proc.stderr


@pytest.mark.e2e
def test_data_rules_give_real_mnist(quick_run):
    from memnet.datasets import load

    data = load(quick_run / "results/data/mnist.npz")
    assert data.X_train.shape == (60000, 1, 28, 28) and data.X_test.shape == (10000, 1, 28, 28)
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data.y_train.tolist().count(1) == train_counts[1]
    assert pd.Series(data.y_train).value_counts().sort_index().tolist() == train_counts
    assert pd.Series(data.y_test).value_counts().sort_index().tolist() == test_counts


@pytest.mark.e2e
def test_quick_run_gives_one_sane_row_per_run(repo, quick_run):
    config = yaml.safe_load((repo / "config/quick.yaml").read_text())
    runs = pd.read_csv(quick_run / "results/quick/tables/runs.csv")
    assert len(runs) == expected_runs(config) * len(config["seeds"])
    assert not runs.duplicated(["dataset", "experiment", "model", "variant", "x", "seed"]).any()
    assert set(runs["seed"]) == set(config["seeds"])
    main = runs[runs.experiment == "main"].groupby("model")["accuracy"].min()
    assert main["memnet"] > 0.75 and main["knn"] > 0.75  # 2,000 images: chance is 0.10
    assert main["mlp"] > 0.5 and main["ncm"] > 0.5
    assert (runs["n_test"] == config["data"]["subset"]["mnist"]["n_test"]).all()
    samples = runs[runs.experiment == "samples"]
    assert (samples["n_train"] == samples["x"]).all()
    memnet = runs[runs.model == "memnet"]
    assert not memnet["uses_backprop"].any() and (memnet["n_passes"] == 1).all()
    tuning = yaml.safe_load((quick_run / "results/quick/tuning/mnist.json").read_text())
    assert tuning["tau_scale"] in config["tuning"]["tau_scale"]


@pytest.mark.e2e
def test_adding_an_ablation_runs_exactly_its_jobs(repo, quick_pipeline, tmp_path):
    workdir = tmp_path / "work"
    shutil.copytree(quick_pipeline.workdir, workdir, symlinks=True)  # the shared run stays as it is
    config = yaml.safe_load((repo / "config/quick.yaml").read_text())
    config["experiments"]["ablations"]["eta-half"] = {"plasticity": "constant", "eta": 0.5}
    path = tmp_path / "quick-plus.yaml"
    path.write_text(yaml.safe_dump(config))

    # results/quick holds the outputs of another config file: refused, until its record is deleted
    refused = quick_pipeline.snakemake("-n", "--configfile", str(path), cwd=workdir, check=False)
    assert refused.returncode != 0
    assert "holds the outputs of the config" in refused.stdout + refused.stderr
    (workdir / "results/quick/config.json").unlink()
    dry = quick_pipeline.snakemake("-n", "--quiet", "rules", "--configfile", str(path), cwd=workdir)
    jobs = job_counts(dry)
    assert jobs["run"] == len(config["seeds"])
    # the runs and their table (the report stage after it is the quick run's own)
    target = "results/quick/tables/runs.csv"
    quick_pipeline.snakemake(target, "--cores", "2", "--configfile", str(path), cwd=workdir)
    runs = pd.read_csv(workdir / target)
    added = runs[runs.variant == "eta-half"]
    assert sorted(added["seed"]) == sorted(config["seeds"])


@pytest.mark.e2e
def test_same_results_on_one_core_and_two(repo, quick_run, tmp_path):
    """A second run, on one core, of part of the quick config gives identical rows (timings aside);
    the two-core side is the session's quick run."""
    config = yaml.safe_load((repo / "config/quick.yaml").read_text())
    # the models whose work is spread over threads (the torch nets and NCM always take one)
    threaded = ("memnet", "knn", "local")
    models = {m: v for m, v in config["experiments"]["main"]["models"].items() if m in threaded}
    config["experiments"] = {
        "main": {"models": models},
        "ablations": {"threshold-none": {"threshold": "none"}},
    }
    path = tmp_path / "quick-main.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    workdir.mkdir()
    snakemake(
        "results/quick/tables/runs.csv", "--cores", "1", "--configfile", str(path), cwd=workdir
    )

    # the JSON columns as text (empty for these runs; the quick run also has incremental rows)
    text = {c: "string" for c in JSON_COLUMNS}
    one = pd.read_csv(workdir / "results/quick/tables/runs.csv", dtype=text)
    two = pd.read_csv(quick_run / "results/quick/tables/runs.csv", dtype=text)
    keys = ["dataset", "experiment", "model", "variant", "seed"]
    two = two.merge(one[keys], on=keys)
    assert len(two) == len(one) > 0
    assert (one["threads"] == 1).all() and (two[two.model == "memnet"]["threads"] == 2).all()
    drop = [*TIMING_COLUMNS, "threads"]
    pd.testing.assert_frame_equal(
        one.drop(columns=drop).sort_values(keys).reset_index(drop=True),
        two.drop(columns=drop).sort_values(keys).reset_index(drop=True),
    )
