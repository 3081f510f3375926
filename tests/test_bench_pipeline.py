"""The pipeline benchmark's cost table, on hand-made Snakemake benchmark files."""

import pytest

from memnet.bench_pipeline import declared_memory, job_costs, over_memory, predict, summarize

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_bench(root, rel, seconds, rss):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t1\n")


def test_costs_by_rule_and_model(tmp_path):
    write_bench(tmp_path, "runs/mnist/main/cnn/epochs10/seed0.tsv", 30.0, 400)
    write_bench(tmp_path, "runs/mnist/main/cnn/epochs10/seed1.tsv", 32.0, 410)
    write_bench(tmp_path, "runs/mnist/main/memnet/paper/seed0.tsv", 5.0, 900)
    write_bench(tmp_path, "tuning/mnist.tsv", 7.5, 300)
    costs = job_costs(tmp_path)
    assert len(costs) == 4
    assert set(costs["job"]) >= {"runs/mnist/main/cnn/epochs10/seed0", "tuning/mnist"}
    rules = summarize(costs).set_index("rule")
    assert list(rules.index) == ["run:cnn", "tune", "run:memnet"]  # by total seconds
    assert rules.loc["run:cnn", "jobs"] == 2
    assert rules.loc["run:cnn", "total_seconds"] == pytest.approx(62.0)
    assert rules.loc["run:cnn", "max_seconds"] == pytest.approx(32.0)
    assert rules.loc["run:memnet", "max_rss_mb"] == pytest.approx(900)


def test_every_rule_is_named_and_held_to_its_declared_memory(tmp_path):
    write_bench(tmp_path, "runs/cifar10/main/knn/k1-l1/seed0.tsv", 300.0, 5000)
    write_bench(tmp_path, "model/models/cifar10/main/memnet/paper/seed0.tsv", 20.0, 900)
    write_bench(tmp_path, "prepare/cifar10.tsv", 12.0, 1500)
    write_bench(tmp_path, "notebook/notebooks/results.tsv", 30.0, 700)
    write_bench(tmp_path, "tables.tsv", 3.0, 300)
    write_bench(tmp_path, "replication_report.tsv", 2.0, 960)  # 960 MiB: 1006.6 MB
    config = {
        "resources": {
            "run": {"mem_mb": 4000},
            "prepare": {"mem_mb": 2000},
            "notebook": {"mem_mb": 3000},
            "tables": {"mem_mb": 2000},
            "report": {"mem_mb": 1000},
        }
    }
    declared = declared_memory(config)
    assert declared["model"] == declared["run"] == 4000 and declared["replication_report"] == 1000
    costs = job_costs(tmp_path, declared).set_index("job")
    assert costs.loc["model/models/cifar10/main/memnet/paper/seed0", "rule"] == "model"
    assert costs.loc["notebook/notebooks/results", "rule"] == "notebook"
    assert costs.loc["tables", "rule"] == "tables"
    over = over_memory(costs.reset_index())
    assert sorted(over["job"]) == ["replication_report", "runs/cifar10/main/knn/k1-l1/seed0"]


def test_prediction_scales_the_per_seed_jobs_only(tmp_path):
    write_bench(tmp_path, "prepare/cifar10.tsv", 10.0, 100)
    write_bench(tmp_path, "tuning/cifar10.tsv", 20.0, 100)
    write_bench(tmp_path, "model/models/cifar10/main/memnet/paper/seed0.tsv", 10.0, 100)
    write_bench(tmp_path, "runs/cifar10/main/cnn/epochs10/seed0.tsv", 300.0, 100)
    write_bench(tmp_path, "runs/cifar10/main/memnet/paper/seed0.tsv", 100.0, 100)
    write_bench(tmp_path, "figures.tsv", 30.0, 100)
    costs = job_costs(tmp_path)
    # job-seconds: 400 per seed (the runs), 70 seed-free (prepare, tune, the one saved model,
    # figures); the run took 300 s of wall time on its cores
    f = predict(costs, wall_seconds=300.0, seeds_run=1, seeds=5)
    assert f["same_cores_seconds"] == pytest.approx(300 * (400 * 5 + 70) / (400 + 70))
    assert f["cluster_seconds"] == pytest.approx(70 + 300)
    # cpu_time is 1 s in every fixture file: 2 per-seed jobs x 5 seeds + 4 seed-free jobs
    assert f["cluster_core_seconds"] == pytest.approx(2 * 5 + 4)
