"""Names and paths reach the shell safely: a checkout and a working directory whose names hold
spaces run the whole DAG, and a config whose names try injection stops before any job."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import snakemake

pytestmark = pytest.mark.slow


def copy_checkout(repo, dst):
    """The tracked files of the repository (as they are now, committed or not) under ``dst``."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        if (repo / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, dst / name)
    return dst


def tiny_config(repo) -> dict:
    config = yaml.safe_load((repo / "config/quick.yaml").read_text())
    config["seeds"] = [0]
    config["data"]["subset"]["mnist"] = {"n_train": 300, "n_test": 100}
    config["experiments"] = {
        "main": {"models": {"memnet": ["paper"], "knn": ["k1-l2"], "ncm": ["default"]}},
        "ablations": {"paper": {}, "k-3": {"k": 3}},
    }
    return config


def test_whole_dag_runs_from_directories_with_spaces(repo, mirror, tmp_path):
    checkout = copy_checkout(repo, tmp_path / "my checkout" / "memnet")
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    config_file = tmp_path / "tiny config.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config(repo)))
    cmd = ["-s", str(checkout / "Snakefile"), "--cores", "2", "--configfile", str(config_file)]
    snakemake(*cmd, cwd=workdir)

    results = workdir / "results/quick"
    runs = pd.read_csv(results / "tables/runs.csv")
    assert set(runs["model"]) == {"memnet", "knn", "ncm"} and len(runs) == 5
    assert (results / "replication.html").stat().st_size > 0
    assert (results / "notebooks/results.html").stat().st_size > 0


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["experiments"]["ablations"].update({"k-2 $(touch PWNED)": {"k": 2}}),
        lambda c: c["baselines"]["knn"].update({"x;touch PWNED": {"k": 1, "metric": "l2"}}),
        lambda c: c.update(results="results/`touch PWNED`"),
    ],
)
def test_injection_through_config_names_runs_nothing(repo, tmp_path, edit):
    config = tiny_config(repo)
    edit(config)
    config_file = tmp_path / "bad.yaml"
    config_file.write_text(yaml.safe_dump(config))
    proc = snakemake("--cores", "1", "--configfile", str(config_file), cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "is not allowed here" in proc.stdout + proc.stderr
    assert not list(tmp_path.rglob("PWNED")) and not (tmp_path / "results").exists()
