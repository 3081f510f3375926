"""profiles/slurm on a real single-node SLURM cluster (tests/slurm/setup_cluster.sh).

The cluster tests need root on Debian (they install slurm-wlm and start its daemons) and skip
elsewhere; the dry runs of the profiles need only the plugin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, snakemake

from memnet.report.aggregate import TIMING_COLUMNS
from memnet.report.results import JSON_COLUMNS

SCRIPTS = REPO / "tests" / "slurm"
STATE = Path(os.environ.get("MEMNET_SLURM_STATE", "/var/lib/memnet-slurm"))
PROFILE = str(REPO / "profiles" / "slurm")
# Rules that may stay on the submit host (localrules): fetching data needs the network, and the
# rules after training are light. Training and tuning must run on the cluster.
LOCAL_RULES = {"all", "download", "prepare", "aggregate"}

# The test node has no accounting database: poll squeue instead of sacct, and soon.
FAST_STATUS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "5",
]  # fmt: skip
# The profile sizes jobs for a real cluster; the test node has 2 CPUs. The local run's threads
# (config/quick.yaml) are kept, so that both runs compute the same results.
SMALL_NODE = [
    "--set-threads", "run_saving_model=2", "tune=2",
    "--set-resources", "run:mem_mb=2000", "run_saving_model:mem_mb=2000", "tune:mem_mb=2000",
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Path:
    """A running single-node cluster; the daemons this fixture started are stopped afterwards."""
    setup = subprocess.run(
        [SCRIPTS / "setup_cluster.sh"], capture_output=True, text=True, timeout=600
    )
    if setup.returncode == 2:
        pytest.skip(f"no SLURM test cluster here: {setup.stderr.strip()}")
    assert setup.returncode == 0, f"setup_cluster.sh failed:\n{setup.stdout}\n{setup.stderr}"
    try:
        yield STATE
    finally:
        subprocess.run([SCRIPTS / "stop_cluster.sh"], check=True, timeout=120)


def slurm_records(state: Path, run_id: str) -> dict[str, dict[str, str]]:
    """SLURM's own record (jobcomp/filetxt) of the finished jobs named after a Snakemake run."""
    records = {}
    for line in (state / "jobcomp.txt").read_text().splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("Name") == run_id:
            records[fields["JobId"]] = fields
    return records


def planned_jobs(dry_run_output: str) -> Counter[str]:
    """Jobs per rule from the "Job stats" table of a dry run."""
    table = dry_run_output.split("Job stats:")[1].split("total")[0]
    return Counter({rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)})


def jobs_run(output: str) -> tuple[Counter[str], Counter[str]]:
    """Jobs per rule that a run submitted to the cluster, and those it ran on the submit host."""
    remote = re.findall(r"^rule (\w+):$", output, flags=re.MULTILINE)
    local = re.findall(r"^localrule (\w+):$", output, flags=re.MULTILINE)
    return Counter(remote), Counter(local)


def submitted_jobs(output: str) -> tuple[str, list[str]]:
    """The SLURM run id and the SLURM job ids that Snakemake reports for a run."""
    (run_id,) = re.findall(r"SLURM run ID: (\S+)", output)
    return run_id, re.findall(r"has been submitted with SLURM jobid (\d+)", output)


# Left out of the SLURM run: the slowest models (the CNN and the local and hierarchical models) and the peers;
# each SLURM job costs seconds of scheduling, and what is tested here is the executor, not a model
LEFT_OUT = ("cnn", "local", "hierarchy", "slda", "rf_elm", "idm_knn", "krotov_hopfield")


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.e2e
def test_quick_main_experiment_runs_as_slurm_jobs_with_local_results(cluster, quick_run, tmp_path):
    # The main experiment of config/quick.yaml (every model) for its first seed: under SLURM each
    # job costs a few seconds more than locally; the whole quick DAG took 7 min on the test node.
    config = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    models = {m: v for m, v in config["experiments"]["main"]["models"].items() if m not in LEFT_OUT}
    config["experiments"] = {"main": {"models": models}}
    config["seeds"] = config["seeds"][:1]
    config_file = tmp_path / "quick-main.yaml"
    config_file.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    workdir.mkdir()
    args = [
        "results/quick/tables/runs.csv", "--configfile", str(config_file),
        "--profile", PROFILE, *FAST_STATUS, *SMALL_NODE,
    ]  # fmt: skip

    planned = planned_jobs(snakemake(*args, "--dry-run", cwd=workdir).stdout)
    proc = snakemake(*args, cwd=workdir, timeout=1200)
    output = proc.stdout + proc.stderr
    remote, local = jobs_run(output)
    run_id, job_ids = submitted_jobs(output)

    assert remote + local == planned, output[-4000:]
    for heavy in ("run", "tune"):
        assert remote[heavy] == planned[heavy] > 0, f"not every {heavy} job ran on SLURM"
    assert set(local) <= LOCAL_RULES
    assert len(job_ids) == remote.total()
    records = slurm_records(cluster, run_id)
    assert sorted(records) == sorted(job_ids), "SLURM ran other jobs than Snakemake submitted"
    assert {r["JobState"] for r in records.values()} == {"COMPLETED"}
    assert {r["WorkDir"] for r in records.values()} == {str(workdir)}

    text = {c: "string" for c in JSON_COLUMNS}  # empty here; the quick run has incremental rows
    on_slurm = pd.read_csv(workdir / "results/quick/tables/runs.csv", dtype=text)
    local_runs = pd.read_csv(quick_run / "results/quick/tables/runs.csv", dtype=text)
    keys = ["dataset", "experiment", "model", "variant", "seed"]
    assert len(on_slurm) == planned["run"] + planned.get("run_saving_model", 0)
    pd.testing.assert_frame_equal(
        on_slurm.drop(columns=TIMING_COLUMNS).sort_values(keys).reset_index(drop=True),
        local_runs.merge(on_slurm[keys], on=keys)
        .drop(columns=TIMING_COLUMNS)
        .sort_values(keys)
        .reset_index(drop=True),
    )


@pytest.mark.slurm
@pytest.mark.slow
def test_failed_slurm_job_fails_the_run_and_shows_its_log(cluster, tmp_path):
    # The job writes "computed-42" to its log; the command as printed says "computed-$((6 * 7))".
    (tmp_path / "Snakefile").write_text(
        'rule fail:\n    output: "never.txt"\n    shell: "echo computed-$((6 * 7)) >&2; exit 1"\n'
    )
    cmd = [
        sys.executable, "-m", "snakemake", "--profile", PROFILE, *FAST_STATUS, "--retries", "0",
        "--workflow-profile", str(REPO / "profiles" / "default"),  # as beside the repo's Snakefile
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr

    assert proc.returncode != 0
    run_id, job_ids = submitted_jobs(output)
    assert len(job_ids) == 1
    assert slurm_records(cluster, run_id)[job_ids[0]]["JobState"] == "FAILED"
    assert f"SLURM-job '{job_ids[0]}' failed" in output
    assert "computed-42" in output, "the failed job's log is not shown"


def test_slurm_profile_plans_the_paper_config(tmp_path):
    # --cores caps a job's threads even on a cluster; profiles/default sets it to this host's.
    proc = snakemake("--profile", PROFILE, "--cores", "8", "--dry-run", cwd=tmp_path, timeout=300)
    planned = planned_jobs(proc.stdout)

    assert "workflow specific profile" in proc.stdout + proc.stderr  # profiles/default is used
    assert planned["run"] > 100 and planned["tune"] == 3  # on mnist, fashion-mnist and cifar10
    run_threads = re.findall(r"^rule run:\n(?:    .*\n)*?    threads: (\d+)$", proc.stdout, re.M)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    # memnet and kNN take the config's threads; one-thread jobs (the torch nets) print no threads line
    assert set(run_threads) == {str(config["threads"]["run"])}
