"""Names and paths reach the shell safely: a checkout and a working directory whose names hold
spaces run the whole DAG, and a config whose names try injection stops before any job."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import REPO, snakemake
from test_experiments import expected_runs

pytestmark = pytest.mark.slow


def tiny_config(repo) -> dict:
    config = yaml.safe_load((repo / "config/quick.yaml").read_text())
    config["seeds"] = [0]
    config["data"]["subset"]["mnist"] = {"n_train": 300, "n_test": 100}
    config["experiments"] = {
        "main": {"models": {"memnet": ["paper"], "knn": ["k1-l2"], "ncm": ["default"]}},
        "ablations": {"paper": {}, "k-3": {"k": 3}},
    }
    return config


@pytest.mark.e2e
def test_whole_dag_runs_from_directories_with_spaces(quick_pipeline):
    """The session's quick run (conftest.quick_pipeline) ran the whole DAG from a copy of the
    checkout under "my checkout", in the working directory "work dir", with "quick config.yaml"."""
    quick = quick_pipeline
    for path in (quick.snakefile.parent.parent, quick.workdir, quick.configfile):
        assert " " in path.name, path
    assert quick.snakefile.parent != REPO and (quick.snakefile.parent / "workflow/rules").is_dir()
    config = yaml.safe_load(quick.configfile.read_text())

    results = quick.workdir / "results/quick"
    runs = pd.read_csv(results / "tables/runs.csv")
    models = {m for exp in config["experiments"].values() for m in exp.get("models", {})}
    assert set(runs["model"]) == models
    assert len(runs) == expected_runs(config) * len(config["seeds"])
    assert (results / "replication.html").stat().st_size > 0
    record = json.loads((results / "config.json").read_text())  # the config that wrote results/
    assert record == {"config_files": [str(quick.configfile.resolve())]}
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
