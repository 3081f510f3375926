"""profiles/slurm on a real single-node SLURM cluster (tests/slurm/setup_cluster.sh).

The cluster tests need root on Debian (they install slurm-wlm and start its daemons) and skip
elsewhere; the dry runs of the profiles need only the plugin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, snakemake

SCRIPTS = REPO / "tests" / "slurm"
STATE = Path(os.environ.get("MEMNET_SLURM_STATE", "/var/lib/memnet-slurm"))
PROFILE = str(REPO / "profiles" / "slurm")
TIMING_COLUMNS = ["train_seconds", "infer_seconds", "peak_memory_bytes"]

# The test node has no accounting database: poll squeue instead of sacct, and soon.
FAST_STATUS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "5",
]  # fmt: skip
# The profile sizes jobs for a real cluster; the test node has 2 CPUs. The local run's threads
# (config/quick.yaml) are kept, so that both runs compute the same results.
SMALL_NODE = [
    "--set-threads", "run=2", "model=2", "tune=2",
    "--set-resources", "run:mem_mb=2000", "model:mem_mb=2000", "tune:mem_mb=2000",
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


def planned_jobs(dry_run_output: str) -> tuple[list[str], list[str]]:
    """Rules of the jobs a dry run plans, split into cluster jobs and local (submit host) jobs."""
    remote = re.findall(r"^rule (\w+):$", dry_run_output, flags=re.MULTILINE)
    local = re.findall(r"^localrule (\w+):$", dry_run_output, flags=re.MULTILINE)
    return remote, local


def submitted_jobs(output: str) -> tuple[str, list[str]]:
    """The SLURM run id and the SLURM job ids that Snakemake reports for a run."""
    (run_id,) = re.findall(r"SLURM run ID: (\S+)", output)
    return run_id, re.findall(r"has been submitted with SLURM jobid (\d+)", output)


@pytest.mark.slurm
@pytest.mark.slow
def test_quick_dag_runs_as_slurm_jobs_with_local_results(cluster, quick_run, mirror, tmp_path):
    workdir = tmp_path / "slurm"
    workdir.mkdir()
    args = [
        "--profile", PROFILE, *FAST_STATUS, *SMALL_NODE,
        "--configfile", str(REPO / "config" / "quick.yaml"),
        "--config", f"data={{'mirror': '{mirror}'}}",
    ]  # fmt: skip

    remote, local = planned_jobs(snakemake(*args, "--dry-run", cwd=workdir).stdout)
    assert remote, "the dry run planned no cluster jobs"
    proc = snakemake(*args, cwd=workdir, timeout=1500)
    output = proc.stdout + proc.stderr
    run_id, job_ids = submitted_jobs(output)

    assert len(job_ids) == len(remote), f"planned {len(remote)} cluster jobs:\n{output[-4000:]}"
    records = slurm_records(cluster, run_id)
    assert sorted(records) == sorted(job_ids), "SLURM ran other jobs than Snakemake submitted"
    assert {r["JobState"] for r in records.values()} == {"COMPLETED"}
    assert {r["WorkDir"] for r in records.values()} == {str(workdir)}

    slurm_runs = pd.read_csv(workdir / "results" / "tables" / "runs.csv")
    local_runs = pd.read_csv(quick_run / "results" / "tables" / "runs.csv")
    pd.testing.assert_frame_equal(
        slurm_runs.drop(columns=TIMING_COLUMNS, errors="ignore"),
        local_runs.drop(columns=TIMING_COLUMNS, errors="ignore"),
    )


@pytest.mark.slurm
def test_failed_slurm_job_fails_the_run_and_shows_its_log(cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(
        'rule fail:\n    output: "never.txt"\n    shell: "echo marker-7f3a of the job >&2; exit 1"\n'
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
    assert "marker-7f3a of the job" in output, "the failed job's log is not shown"


def test_slurm_profile_plans_the_paper_config(tmp_path):
    proc = snakemake("--profile", PROFILE, "--dry-run", cwd=tmp_path, timeout=300)
    remote, local = planned_jobs(proc.stdout)

    assert "workflow specific profile" in proc.stdout + proc.stderr  # profiles/default is used
    assert remote.count("run") > 100
    assert set(local) >= {"download", "prepare"}, (
        "datasets must be fetched once, on the submit host"
    )
    assert "tune" in remote
    run_threads = set(
        re.findall(r"^rule run:\n(?:    .*\n)*?    threads: (\d+)$", proc.stdout, re.M)
    )
    assert run_threads == {"4"}
