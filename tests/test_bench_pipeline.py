"""The pipeline benchmark's cost table, on hand-made Snakemake benchmark files."""

import pytest

from memnet.bench_pipeline import job_costs, summarize

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
