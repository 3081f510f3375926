"""memnet.provenance: which code made a result, and the code hash that reruns a step when its code
changes (on a copy of the package, edited by hand)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_checkout

from memnet import provenance

SRC = Path(provenance.__file__).resolve().parent


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    copy = tmp_path / "memnet"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "PACKAGE", copy)
    provenance.source_hash.cache_clear()
    provenance._imports.cache_clear()
    yield copy
    provenance.source_hash.cache_clear()
    provenance._imports.cache_clear()


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")
    provenance.source_hash.cache_clear()


def test_a_step_hash_follows_the_code_its_step_imports(package_copy):
    figures = provenance.step_hash("memnet.report.figures")
    aggregate = provenance.step_hash("memnet.report.aggregate")
    edit(package_copy / "report" / "figures.py")
    assert provenance.step_hash("memnet.report.figures") != figures
    assert provenance.step_hash("memnet.report.aggregate") == aggregate  # not in its closure
    edit(package_copy / "report" / "results.py")  # imported by both
    assert provenance.step_hash("memnet.report.aggregate") != aggregate


def test_the_closure_follows_lazy_imports_but_not_type_checking_ones():
    files = {p.relative_to(SRC).as_posix() for p in provenance.closure("memnet.report.figures")}
    assert "models/memory/network.py" in files  # imported inside a function (F4)
    assert "cli.py" not in files and "bench.py" not in files
    shipped = {p.relative_to(SRC).as_posix() for p in provenance.closure("memnet.pipeline.execute")}
    assert "report/tables.py" not in shipped


def test_git_state_says_when_the_tree_has_uncommitted_changes(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "f.py").write_text("x = 1\n")

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q")
    git("add", "f.py")
    git("-c", "user.email=a@b", "-c", "user.name=t", "commit", "-qm", "one")
    monkeypatch.setattr(provenance, "PACKAGE", repo)
    clean = provenance.git_state()
    assert clean["dirty"] is False and len(clean["commit"]) == 40
    (repo / "f.py").write_text("x = 2\n")
    assert provenance.git_state() == {"commit": clean["commit"], "dirty": True}
    monkeypatch.setattr(provenance, "PACKAGE", tmp_path)  # no checkout at all
    assert provenance.git_state() == {"commit": "unknown", "dirty": None}


@pytest.mark.e2e
def test_editing_figures_py_makes_snakemake_plan_the_figure_jobs(quick_pipeline, tmp_path):
    """On the session's quick run, nothing is planned; after an edit of figures.py (in a copy of
    the package, laid out as in the checkout: src/memnet beside config/), the figure jobs and
    those that read figures are, and no other."""
    checkout = copy_checkout(SRC.parents[1], tmp_path / "checkout")  # the package reads config/
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = str(checkout / "src")  # its memnet, not the installed one
    quick = quick_pipeline
    cmd = [sys.executable, "-m", "snakemake", "-s", str(quick.snakefile), "-n", "--quiet", "rules"]
    cmd += ["--directory", str(quick.workdir), "--configfile", str(quick.configfile)]

    def planned() -> str:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    before = planned()
    edit(checkout / "src" / "memnet" / "report" / "figures.py")
    after = planned()
    assert "figures" not in before and "tables" not in before
    assert "figures" in after and "replication_report" in after
    assert "\nrun " not in after and "tables" not in after  # their code did not change
