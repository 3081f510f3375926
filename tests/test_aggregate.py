"""Aggregation: runs.csv holds every run; the summary's mean and t-interval match a hand computation."""

import json
import math

import fixtures_runs
import pandas as pd
import pytest

from memnet import cli
from memnet.io import write_json
from memnet.report import aggregate, results


def fake_run(tmp_path, seed, accuracy, variant="paper", x=None):
    metrics = {c: 0 for c in results.RUN_COLUMNS}
    metrics.update(
        dataset="mnist",
        experiment="main",
        model="memnet",
        variant=variant,
        x=x,
        seed=seed,
        accuracy=accuracy,
        train_seconds=seed + 1.0,
        uses_backprop=False,
        uses_weight_sharing=False,
        n_passes=1,
        params={"k": 1, "distance": "l2"},
    )
    path = tmp_path / f"{variant}-{seed}.json"
    write_json(path, metrics)
    return path


def test_t_interval_by_hand():
    # mean 0.9, sample sd 0.01 with n=3: t(0.975, 2) = 4.302652729911275
    low, high = results.t_interval([0.89, 0.90, 0.91])
    half = 4.302652729911275 * 0.01 / math.sqrt(3)
    assert low == pytest.approx(0.9 - half) and high == pytest.approx(0.9 + half)
    assert all(math.isnan(v) for v in results.t_interval([0.5]))


def test_aggregate_cli(tmp_path):
    paths = [fake_run(tmp_path, s, a) for s, a in enumerate([0.89, 0.90, 0.91])]
    paths.append(fake_run(tmp_path, 0, 0.5, variant="other"))
    runs_csv, summary_csv = tmp_path / "runs.csv", tmp_path / "summary.csv"
    args = ["--runs-csv", str(runs_csv), "--summary-csv", str(summary_csv), *map(str, paths)]
    assert cli.main(["aggregate", *args]) == 0

    runs = pd.read_csv(runs_csv)
    assert list(runs.columns) == results.RUN_COLUMNS
    assert len(runs) == 4
    assert json.loads(runs["params"][0]) == {"distance": "l2", "k": 1}

    summary = pd.read_csv(summary_csv)
    assert list(summary.columns) == results.SUMMARY_COLUMNS
    summary = summary.set_index("variant")
    assert summary.loc["paper", "n_seeds"] == 3
    assert summary.loc["paper", "accuracy_mean"] == pytest.approx(0.9)
    assert summary.loc["paper", "accuracy_std"] == pytest.approx(0.01)
    assert summary.loc["paper", "train_seconds_mean"] == pytest.approx(2.0)
    assert summary.loc["other", "n_seeds"] == 1


def test_incomplete_metrics_file_is_named(tmp_path):
    path = tmp_path / "bad.json"
    write_json(path, {"dataset": "mnist"})
    with pytest.raises(ValueError, match="bad.json: metrics file lacks"):
        aggregate.runs_table([path])


def test_summary_matches_an_independent_computation():
    """aggregate.summary_table against the fixture's own groupby, mean, std and t-interval."""
    runs = fixtures_runs.runs_frame(fixtures_runs.make_runs(seeds=(0, 1, 2)))
    real = aggregate.summary_table(runs)
    mine = fixtures_runs.summary_frame(runs)
    assert len(real) == len(mine) > 0
    pd.testing.assert_frame_equal(
        mine[results.SUMMARY_COLUMNS].reset_index(drop=True),
        real.reset_index(drop=True),
        check_dtype=False,
    )


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ({"accuracy": "high"}, "'accuracy' should be a number, got 'high'"),
        ({"accuracy": 1.5}, "'accuracy' 1.5 is not in [0, 1]"),
        ({"n_train": True}, "'n_train' should be a number"),
        ({"seed": "0"}, "'seed' should be an integer"),
    ],
)
def test_a_metrics_file_with_a_wrong_value_is_named(tmp_path, capsys, edit, why):
    good = [fake_run(tmp_path, s, 0.9) for s in range(3)]
    bad = fake_run(tmp_path, 7, 0.9, variant="bad")
    write_json(bad, {**json.loads(bad.read_text()), **edit})
    out = tmp_path / "runs.csv"
    args = ["aggregate", "--runs-csv", str(out), "--summary-csv", str(tmp_path / "s.csv")]
    assert cli.main([*args, *map(str, [*good, bad])]) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert str(bad) in err and why in err


def test_a_truncated_metrics_file_is_named(tmp_path, capsys):
    paths = [fake_run(tmp_path, s, 0.9) for s in range(3)]
    paths[1].write_text(paths[1].read_text()[:40])
    out = tmp_path / "runs.csv"
    args = ["aggregate", "--runs-csv", str(out), "--summary-csv", str(tmp_path / "s.csv")]
    assert cli.main([*args, *map(str, paths)]) == 2 and not out.exists()
    assert f"{paths[1]}: not valid JSON" in capsys.readouterr().err
