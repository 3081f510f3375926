"""Benchmark the whole pipeline: wall time of one config, and which rules cost the most.

    python -m memnet.bench_pipeline --configfile config/quick.yaml --name quick --out results/bench
    python -m memnet.bench_pipeline --name paper-mnist --config 'datasets=[mnist]' --out results/bench

Runs Snakemake in a fresh working directory (so nothing is reused), then reads the per-job
`benchmark:` files the rules write to name the slowest rules and jobs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from memnet import paths
from memnet.io import write_json, write_text

REPO = Path(__file__).resolve().parents[2]


# The rule that writes each kind of benchmarked output.
RULE_OF_OUTPUT = {"runs": "run", "tuning": "tune"}


def results_dir_of(configfile: str | None, overrides: list[str]) -> str:
    """The results directory the run writes to: its config's `results` key, or a --config override."""
    for item in overrides:
        if item.startswith("results="):
            return item.split("=", 1)[1]
    config = yaml.safe_load(Path(configfile or REPO / "config/config.yaml").read_text())
    return paths.results_dir(config)


def job_costs(benchmarks: Path) -> pd.DataFrame:
    """One row per benchmarked job under ``benchmarks``: its rule, its name, seconds and peak RSS (MB).

    A job's benchmark file mirrors its output's path (memnet.paths.benchmark), so the first part of
    the path names the kind of output: runs, tuning.
    """
    rows = []
    for tsv in sorted(benchmarks.rglob("*.tsv")):
        stats = pd.read_csv(tsv, sep="\t").iloc[0]
        rel = tsv.relative_to(benchmarks)
        rows.append(
            {
                "rule": RULE_OF_OUTPUT.get(rel.parts[0], rel.parts[0]),
                "job": str(rel.with_suffix("")),
                "seconds": float(stats["s"]),
                "max_rss_mb": float(stats["max_rss"]) if stats["max_rss"] != "-" else None,
            }
        )
    return pd.DataFrame(rows, columns=["rule", "job", "seconds", "max_rss_mb"])


def summarize(costs: pd.DataFrame) -> pd.DataFrame:
    """Per rule (and, for `run`, per model): jobs, total and largest seconds, largest RSS."""
    costs = costs.copy()
    is_run = costs["rule"] == "run"
    model = costs.loc[is_run, "job"].str.split("/").str[3]
    costs.loc[is_run, "rule"] = "run:" + model
    by = costs.groupby("rule")
    out = by.agg(
        jobs=("job", "size"),
        total_seconds=("seconds", "sum"),
        max_seconds=("seconds", "max"),
        max_rss_mb=("max_rss_mb", "max"),
    )
    return out.sort_values("total_seconds", ascending=False).reset_index()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True, help="names the output files")
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--config", nargs="*", default=[], help="passed to snakemake --config")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--workdir", default=None, help="default: a fresh temporary directory")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix=f"memnet-bench-{args.name}-"))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), "--cores", args.cores]  # the default target: everything
    if args.configfile:
        cmd += ["--configfile", str(Path(args.configfile).resolve())]
    if args.config:
        cmd += ["--config", *args.config]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stderr[-4000:]}")

    benchmarks = workdir / paths.under(results_dir_of(args.configfile, args.config), "benchmarks")
    costs = job_costs(benchmarks)
    rules = summarize(costs)
    slowest = costs.sort_values("seconds", ascending=False).head(10)
    result = {
        "name": args.name,
        "command": " ".join(cmd[1:]),
        "wall_seconds": wall,
        "jobs_benchmarked": len(costs),
        "job_seconds_total": float(costs["seconds"].sum()),
        "cores": args.cores,
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "rules": rules.to_dict(orient="records"),
        "slowest_jobs": slowest.to_dict(orient="records"),
    }
    out = Path(args.out)
    write_json(out / f"pipeline-{args.name}.json", result)
    write_text(
        out / f"pipeline-{args.name}.md",
        f"# Pipeline benchmark: {args.name}\n\n"
        f"`{result['command']}`\n\n"
        f"Wall time: **{wall:.0f} s** on {args.cores} cores ({os.cpu_count()} CPUs seen); "
        f"{len(costs)} benchmarked jobs, {result['job_seconds_total']:.0f} job-seconds.\n\n"
        f"## Cost by rule\n\n{rules.to_markdown(index=False, floatfmt='.1f')}\n\n"
        f"## Slowest jobs\n\n{slowest.to_markdown(index=False, floatfmt='.1f')}\n",
    )
    print(f"{args.name}: {wall:.0f} s wall; written to {out}/pipeline-{args.name}.md")


if __name__ == "__main__":
    main()
