"""Bad command-line input gets one message naming the option or file, and writes nothing."""

import json

import pytest
import yaml
from fixtures_data import tiny_prepared_npz

from memnet import cli
from memnet.io import read_json, write_text
from memnet.pipeline.plan import clipped_sweep_points, plan


@pytest.fixture
def data_npz(tmp_path):
    return tiny_prepared_npz(tmp_path / "tiny.npz", n_train=200, n_test=60)


RUN = ["run", "--model", "ncm", "--seed", "0"]
TUNE = ["tune", "--params", '{"n_neurons": 20}']


@pytest.mark.parametrize(
    ("args", "option", "why"),
    [
        ([*RUN, "--threads", "0"], "--threads", "expected an integer >= 1, got '0'"),
        ([*RUN, "--threads", "two"], "--threads", "expected an integer >= 1, got 'two'"),
        (["run", "--model", "ncm", "--seed", "-1"], "--seed", "expected an integer >= 0"),
        ([*RUN, "--n-train", "0"], "--n-train", "expected an integer >= 1"),
        ([*RUN, "--subset", '{"ntrain": 10}'], "--subset", "unknown key(s) ['ntrain']"),
        ([*RUN, "--subset", '{"n_train": "10"}'], "--subset", "n_train must be an integer >= 1"),
        ([*RUN, "--subset", '{"n_test": 0}'], "--subset", "n_test must be an integer >= 1"),
        ([*RUN, "--subset", "[1]"], "--subset", "expected a JSON object"),
        ([*TUNE, "--validation-fraction", "0"], "--validation-fraction", "strictly between 0"),
        ([*TUNE, "--validation-fraction", "1"], "--validation-fraction", "strictly between 0"),
        ([*TUNE, "--tau-scale", "1", "-1"], "--tau-scale", "expected a finite number > 0"),
        ([*TUNE, "--tau-scale", "nan"], "--tau-scale", "expected a finite number > 0"),
    ],
)
def test_bad_option_is_named(data_npz, tmp_path, capsys, args, option, why):
    out = tmp_path / "out.json"
    with pytest.raises(SystemExit) as exit_:
        cli.main([*args, "--data", str(data_npz), "--out", str(out)])
    assert exit_.value.code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert f"argument {option}" in err and why in err


@pytest.mark.parametrize("content", ["{}", '{"tau": "high"}', '{"tau": -1}', '{"tau": 1', "[]"])
def test_bad_tuning_file_is_named(data_npz, tmp_path, capsys, content):
    tuning, out = tmp_path / "tuning.json", tmp_path / "out.json"
    tuning.write_text(content)
    args = ["run", "--model", "memnet", "--params", '{"n_neurons": 20}', "--seed", "0"]
    code = cli.main([*args, "--data", str(data_npz), "--tuning", str(tuning), "--out", str(out)])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert str(tuning) in err and err.count("\n") == 1


def test_truncated_json_names_its_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"accuracy": 0.5})[:-3])
    with pytest.raises(ValueError, match="metrics.json: not valid JSON.*delete it"):
        read_json(path)


def test_write_error_names_the_file_not_its_temporary(tmp_path):
    target = tmp_path / "table.md"
    target.mkdir()  # a directory in the way: the final rename fails
    (target / "x").write_text("")
    with pytest.raises(OSError) as err:
        write_text(target, "hello")
    assert str(target) in str(err.value) and ".part" not in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]  # no temporary left behind


def test_sweep_points_above_the_training_set_are_clipped_with_a_warning(repo):
    config = yaml.safe_load((repo / "config/quick.yaml").read_text())
    config["experiments"]["samples"]["n_train"] = [30, 5000, 9000]
    runs = [r for r in plan(config) if r.experiment == "samples" and r.model == "ncm"]
    assert sorted(r.n_train for r in runs) == [30, 2000]  # 5000 and 9000 both mean all 2,000
    warnings = clipped_sweep_points(config)
    assert (
        len(warnings) == 2 and "5000 is more than the 2000 training images of mnist" in warnings[0]
    )
    config["experiments"]["samples"]["n_train"] = [30, 300]
    assert clipped_sweep_points(config) == []


@pytest.mark.parametrize(
    ("params", "why"),
    [('{"gamma": 1}', "unknown parameter 'gamma'"), ('{"distance": "l9"}', "distance")],
)
def test_tune_with_bad_parameters_names_them(data_npz, tmp_path, capsys, params, why):
    out = tmp_path / "tuning.json"
    code = cli.main(["tune", "--data", str(data_npz), "--params", params, "--out", str(out)])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1


def test_tune_without_parameters_uses_the_defaults(data_npz, tmp_path):
    out = tmp_path / "tuning.json"
    assert cli.main(["tune", "--data", str(data_npz), "--params", "{}", "--out", str(out)]) == 0
    assert read_json(out)["tau"] > 0


def test_a_swept_value_must_be_finite(data_npz, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main([*RUN, "--data", str(data_npz), "--x", "inf", "--out", str(tmp_path / "r.json")])
    assert "argument --x: expected a finite number" in capsys.readouterr().err


def test_a_broken_claims_file_is_named(tmp_path):
    from memnet.report.claims import load_anchors, load_claims

    bad = tmp_path / "claims.yaml"
    bad.write_text("claims: [1\n")
    for load in (load_claims, load_anchors):  # a ValueError: the CLI prints it as one line
        with pytest.raises(ValueError, match="claims.yaml: not valid YAML"):
            load(bad)


def test_a_missing_raw_file_says_how_to_fetch_it(tmp_path, capsys):
    code = cli.main(["prepare", "--dataset", "mnist", "--raw-dir", str(tmp_path / "raw"),
                     "--out", str(tmp_path / "m.npz")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Run snakemake, which fetches it" in err and "Delete it" not in err


@pytest.mark.parametrize("command", ["aggregate", "run"])
def test_a_full_disk_names_the_output(data_npz, tmp_path, command):
    """A write past the file size limit (as a full disk: the error names no file) names the real
    output, and leaves no temporary file behind."""
    import resource
    import signal
    import subprocess
    import sys

    metrics = tmp_path / "metrics.json"
    cli.main([*RUN, "--data", str(data_npz), "--out", str(metrics)])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if command == "aggregate":
        out = out_dir / "runs.csv"
        args = ["aggregate", "--runs-csv", str(out), "--summary-csv", str(out_dir / "s.csv"),
                str(metrics)]  # fmt: skip
    else:
        out = out_dir / "seed0.json"
        args = [*RUN, "--data", str(data_npz), "--out", str(out)]

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))

    proc = subprocess.run(
        [sys.executable, "-m", "memnet.cli", *args],
        capture_output=True, text=True, preexec_fn=limit, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"cannot write {out}: File too large" in proc.stderr, proc.stderr
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".part")]
