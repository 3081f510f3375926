"""docs/extending.md's worked examples, run as written: a model family of one's own by config
alone, and a rule of one's own whose figure joins the replication report. Each starts from a copy
of the shared quick run, so that only the jobs the example adds run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "extending.md"
pytestmark = pytest.mark.e2e


def doc_files() -> dict[str, str]:
    """Each block of docs/extending.md marked `<!-- file: PATH -->`: PATH -> its text."""
    pattern = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)```", re.S)
    return {m["path"]: m["body"] for m in pattern.finditer(DOC.read_text())}


def test_the_doc_has_the_examples_the_tests_run():
    assert {"my-family.yaml", "workflow/rules/extra/seeds.smk"} <= set(doc_files())


def run_snakemake(snakefile: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir)]
    proc = subprocess.run(
        [*cmd, "--cores", "2", *args], capture_output=True, text=True, timeout=1200, env=env
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def copy_of(quick_run: Path, tmp_path: Path) -> Path:
    """A copy of the quick run's working directory, which the test's own config takes over: its
    record of the config that wrote results/quick is deleted (memnet.pipeline.owner)."""
    work = tmp_path / "work"
    shutil.copytree(quick_run, work, symlinks=True)
    (work / "results/quick/config.json").unlink()
    return work


def test_a_model_family_from_the_config_runs_main_and_shows_in_runs_and_t1(quick_run, tmp_path):
    work = copy_of(quick_run, tmp_path)
    family = work / "my-family.yaml"
    family.write_text(doc_files()["my-family.yaml"])
    quick = str(REPO / "config" / "quick.yaml")
    targets = ["results/quick/tables/T1_main.md", "results/quick/figures/F6_pareto.png"]
    run_snakemake(REPO / "Snakefile", work, *targets, "--configfile", quick, str(family))

    runs = pd.read_csv(work / "results/quick/tables/runs.csv")
    mine = runs[runs["model"] == "logreg"]
    assert sorted(mine["seed"]) == [0, 1] and set(mine["experiment"]) == {"main"}
    assert set(mine["label"]) == {"Logistic regression"}
    assert (mine["accuracy"] > 0.8).all()  # a linear model on 2,000 MNIST images
    assert mine["uses_backprop"].isna().all()  # a fact the class does not declare: unknown
    t1 = (work / "results/quick/tables/T1_main.md").read_text()
    row = next(line for line in t1.splitlines() if "Logistic regression (default)" in line)
    assert "unknown" in row


def test_a_rule_of_ones_own_draws_its_figure_and_the_report_shows_it(quick_run, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for part in ("Snakefile", "environment.yml", "workflow", "config", "paper", "notebooks"):
        src = REPO / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, repo / part)
    for path, text in doc_files().items():
        if path.startswith("workflow/"):
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(text)
    work = copy_of(quick_run, tmp_path)
    report = "results/quick/replication.md"
    run_snakemake(repo / "Snakefile", work, report, "--configfile", str(repo / "config/quick.yaml"))

    png = work / "results/quick/figures/X1_seeds.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (work / report).read_text()
    beyond = md[md.index("Beyond the paper") :]
    assert "Accuracy of each seed (an example rule)" in beyond
    assert "figures/X1_seeds.png" in beyond
    assert "one marker per model" in beyond  # its caption
