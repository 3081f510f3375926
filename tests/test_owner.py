"""One config per results directory (memnet.pipeline.owner): a second config that would write into
another's results directory is refused before any job, naming both and what to do."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, snakemake

from memnet.pipeline import owner
from memnet.schema import ConfigError


def test_a_directory_is_owned_by_the_config_that_wrote_it(tmp_path):
    results = tmp_path / "results" / "quick"
    quick, copy, extra = tmp_path / "quick.yaml", tmp_path / "copy.yaml", tmp_path / "extra.yaml"
    owner.check(results, [quick])  # nobody's yet
    owner.record(results, [quick])
    assert json.loads((results / "config.json").read_text()) == {"config_files": [str(quick)]}
    owner.check(results, [quick])
    owner.check(results, [quick, extra])  # a config file added after it: the same config
    with pytest.raises(ConfigError) as err:
        owner.check(results, [copy])
    message = str(err.value)
    assert "config key 'results'" in message and str(quick) in message and str(copy) in message
    assert "results/copy" in message and str(results / "config.json") in message


def test_snakemake_refuses_a_second_config_in_the_same_results_directory(tmp_path):
    quick = REPO / "config" / "quick.yaml"
    copy = tmp_path / "my.yaml"
    copy.write_text(quick.read_text())  # keeps `results: results/quick`
    work = tmp_path / "work"
    owner.record(work / "results" / "quick", [quick])  # as a run of quick.yaml leaves it
    assert snakemake("-n", "--configfile", str(quick), cwd=work).returncode == 0
    proc = snakemake("-n", "--configfile", str(copy), cwd=work, check=False)
    assert proc.returncode != 0
    assert f"holds the outputs of the config {quick}" in proc.stdout + proc.stderr
    assert not (work / "results" / "quick" / "tables").exists()


def test_a_dry_run_records_nothing(tmp_path):
    snakemake("-n", "--configfile", str(REPO / "config" / "quick.yaml"), cwd=tmp_path)
    assert not (tmp_path / "results" / "quick" / "config.json").exists()
