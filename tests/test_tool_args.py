"""The benchmark and synthetic-data tools check their arguments as the `memnet` command does:
one message naming the argument, exit status 2 (argparse's usage error), no traceback, and
nothing started. Only the parsers run here: no benchmark, no Snakemake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memnet import bench, bench_local, bench_pipeline
from memnet.bench import MNIST_FILES
from memnet.datasets import synthetic

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A mirror holding the four MNIST files (empty: only the parsers look at them)."""
    monkeypatch.delenv("MEMNET_DATA_MIRROR", raising=False)
    root = tmp_path / "mirror"
    (root / "mnist").mkdir(parents=True)
    for name in MNIST_FILES:
        (root / "mnist" / f"{name}.gz").write_bytes(b"")
    return root


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    return path


def refused(main, argv, option, capsys) -> str:
    """Run ``main(argv)``: it must exit with status 2 and a message naming ``option``."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "Traceback" not in err
    assert option in err.splitlines()[-1], err
    return err


NUMBERS = {
    "--threads": ["0", "-1", "two", "1.5"],
    "--repeats": ["0", "-3"],
}
BAD_BENCH = [
    *[(option, [option, value]) for option, values in NUMBERS.items() for value in values],
    ("--neurons", ["--neurons", "0"]),
    ("--neurons", ["--neurons", "100", "-5"]),
    ("--neurons", ["--neurons"]),
    ("--cifar-neurons", ["--cifar-neurons", "0"]),
    ("--cifar-neurons", ["--cifar-neurons"]),
]
BAD_BENCH_LOCAL = [
    *[(option, [option, value]) for option, values in NUMBERS.items() for value in values],
    ("--seeds", ["--seeds"]),  # no value: not the full benchmark
    ("--seeds", ["--seeds", "-1"]),
    ("--seeds", ["--seeds", "0", "one"]),
]


@pytest.mark.parametrize(("option", "argv"), BAD_BENCH, ids=str)
def test_bench_refuses_bad_numbers(mirror, capsys, option, argv):
    refused(bench.main, ["--mirror", mirror, *argv], option, capsys)


@pytest.mark.parametrize(("option", "argv"), BAD_BENCH_LOCAL, ids=str)
def test_bench_local_refuses_bad_numbers_and_a_bare_seeds(mirror, capsys, option, argv):
    refused(bench_local.main, ["--mirror", mirror, *argv], option, capsys)


@pytest.mark.parametrize("main", [bench.main, bench_local.main], ids=["bench", "bench_local"])
def test_mnist_benchmarks_refuse_a_bad_out_or_mirror(mirror, a_file, tmp_path, capsys, main):
    refused(main, ["--mirror", mirror, "--out", a_file], "--out", capsys)
    refused(main, ["--mirror", mirror, "--out", a_file / "below"], "--out", capsys)
    refused(main, ["--mirror", mirror, "--out", ""], "--out", capsys)
    err = refused(main, ["--mirror", tmp_path / "nothing"], "--mirror", capsys)
    assert "MNIST not found" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_out_is_refused(mirror, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        refused(bench.main, ["--mirror", mirror, "--out", locked / "bench"], "--out", capsys)
    finally:
        locked.chmod(0o700)


def test_mnist_benchmarks_parse_good_arguments(mirror, tmp_path):
    args = bench.parse_args(
        ["--mirror", str(mirror), "--out", str(tmp_path / "new" / "bench"), "--threads", "2",
         "--repeats", "1", "--neurons", "100", "200", "--no-cifar"]
    )  # fmt: skip
    assert (args.threads, args.repeats, args.neurons, args.no_cifar) == (2, 1, [100, 200], True)
    assert args.mnist == mirror / "mnist"
    assert args.out == tmp_path / "new" / "bench"
    args = bench_local.parse_args(["--mirror", str(mirror), "--seeds", "0", "4", "--out", "."])
    assert args.seeds == [0, 4] and args.repeats == 1
    assert bench_local.parse_args(["--mirror", str(mirror)]).seeds is None  # the benchmark


def pipeline(*argv) -> list[str]:
    """bench_pipeline's arguments, in this checkout."""
    return [str(a) for a in ("--repo", REPO, *argv)]


BAD_PIPELINE = [
    ("--name", ["--name", "../x"]),
    ("--name", ["--name", "a/b"]),
    ("--name", ["--name", ".hidden"]),
    ("--name", ["--name", ""]),
    ("--name", ["--name", "x" * 201]),
    ("--cores", ["--name", "x", "--cores", "0"]),
    ("--cores", ["--name", "x", "--cores", "-2"]),
    ("--cores", ["--name", "x", "--cores", "many"]),
    ("--predict-seeds", ["--name", "x", "--predict-seeds", "0"]),
    ("--wall", ["--name", "x", "--wall", "-1", "--workdir", "."]),
    ("--wall", ["--name", "x", "--wall", "nan", "--workdir", "."]),
    ("--wall", ["--name", "x", "--wall", "3"]),  # without --workdir
    ("--config", ["--name", "x", "--config"]),
    ("--config", ["--name", "x", "--config", "datasets"]),
    ("--config", ["--name", "x", "--config", "=1"]),
    ("--config", ["--name", "x", "--config", "datasets=[mnist"]),
    ("--config", ["--name", "x", "--config", "seeds=[]"]),
    ("--config", ["--name", "x", "--config", "results="]),
    ("--configfile", ["--name", "x", "--configfile", "no/such/config.yaml"]),
]


@pytest.mark.parametrize(("option", "argv"), BAD_PIPELINE, ids=str)
def test_bench_pipeline_refuses_bad_arguments(tmp_path, capsys, option, argv):
    refused(bench_pipeline.main, pipeline(*argv, "--out", tmp_path / "out"), option, capsys)
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists()


def test_bench_pipeline_refuses_bad_paths(tmp_path, a_file, capsys):
    main = bench_pipeline.main
    refused(main, ["--name", "x", "--repo", tmp_path], "--repo", capsys)
    refused(main, pipeline("--name", "x", "--configfile", a_file), "--configfile", capsys)
    refused(main, pipeline("--name", "x", "--configfile", tmp_path), "--configfile", capsys)
    refused(main, pipeline("--name", "x", "--out", a_file), "--out", capsys)
    refused(main, pipeline("--name", "x", "--workdir", a_file / "run"), "--workdir", capsys)
    err = refused(main, pipeline("--name", "x", "--wall", "5", "--workdir", tmp_path), "--workdir",
                  capsys)  # fmt: skip
    assert "no benchmark files" in err


def test_bench_pipeline_parses_good_arguments(tmp_path):
    quick = REPO / "config/quick.yaml"
    args = bench_pipeline.parse_args(
        pipeline("--name", "quick-2.run_1", "--configfile", quick, "--config", "seeds=[0]",
                 "datasets=[mnist]", "--cores", "3", "--out", tmp_path / "out")
    )  # fmt: skip
    assert (args.name, args.cores, args.predict_seeds) == ("quick-2.run_1", "3", 5)
    assert args.run_config["seeds"] == [0] and args.repo_root == REPO
    assert not (tmp_path / "out").exists()  # made when written, after the run
    args = bench_pipeline.parse_args(pipeline("--name", "p", "--cores", "all", "--out", tmp_path))
    assert args.cores == "all" and args.run_config["seeds"]  # the default config
    # --wall reads an earlier run's benchmark files in --workdir
    bench_dir = tmp_path / "run" / "results" / "quick" / "benchmarks" / "prepare"
    bench_dir.mkdir(parents=True)
    (bench_dir / "mnist.tsv").write_text("s\tmax_rss\n1.0\t10\n")
    args = bench_pipeline.parse_args(
        pipeline("--name", "q", "--configfile", quick, "--workdir", tmp_path / "run",
                 "--wall", "12.5", "--predict-seeds", "3", "--out", tmp_path)
    )  # fmt: skip
    assert (args.wall, args.workdir, args.predict_seeds) == (12.5, tmp_path / "run", 3)


BAD_SYNTHETIC = [
    ("--seed", ["--seed", "-1"]),
    ("--seed", ["--seed", "zero"]),
    ("--rows", ["--rows", "0"]),
    ("--rows", ["--rows", "-10"]),
    ("--rows", ["--rows", "10001"]),
    ("--out", ["--out", ""]),
]


@pytest.mark.parametrize(("option", "argv"), BAD_SYNTHETIC, ids=str)
def test_synthetic_refuses_bad_arguments(tmp_path, capsys, option, argv):
    refused(synthetic.main, ["cifar10", "--out", tmp_path, *argv], option, capsys)
    assert not list(tmp_path.iterdir())


def test_synthetic_refuses_a_file_as_out_and_parses_good_arguments(a_file, tmp_path, capsys):
    refused(synthetic.main, ["cifar10", "--out", a_file], "--out", capsys)
    args = synthetic.build_parser().parse_args(
        ["cifar10", "--out", str(tmp_path / "new"), "--seed", "7", "--rows", "100"]
    )
    assert (args.seed, args.rows, args.out) == (7, 100, tmp_path / "new")


@pytest.mark.parametrize(
    "option, argv",
    [("--threads", ["--threads", "0"]), ("--seeds", ["--seeds", "-1"]),
     ("--dataset", ["--dataset", "cifar10"]), ("--param", ["--param", "readout=mlp"]),
     ("--param", ["--param", "=3"]), ("fashion-mnist", ["--dataset", "fashion-mnist"])],
)  # fmt: skip
def test_bench_hierarchy_refuses_bad_arguments(mirror, capsys, option, argv):
    from memnet import bench_hierarchy

    refused(bench_hierarchy.main, ["--mirror", mirror, *argv], option, capsys)
