"""Benchmark the whole pipeline: wall time of one config, and which rules cost the most.

    python -m memnet.bench_pipeline --configfile config/quick.yaml --name quick --out results/bench
    python -m memnet.bench_pipeline --name paper-mnist --config 'datasets=[mnist]' --out results/bench

Runs Snakemake in a fresh working directory (so nothing is reused), then reads the per-job
`benchmark:` files the rules write to name the slowest rules and jobs.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from memnet.cli import _positive_int, _positive_real
from memnet.io import output_dir, write_json, write_text
from memnet.pipeline import paths


def find_workflow(repo: str | None) -> Path:
    """The memnet checkout to benchmark: --repo, else the current directory; it must hold the
    Snakefile (the installed package carries no workflow of its own)."""
    root = Path(repo or ".").resolve()
    if not (root / "Snakefile").is_file() or not (root / "config" / "config.yaml").is_file():
        raise FileNotFoundError(
            f"{root}: not a memnet checkout (no Snakefile and config/config.yaml); run from the "
            "repository's root or give --repo"
        )
    return root


# The rule of a job's benchmark file: its first directory (memnet.paths.benchmark mirrors the output's
# path; rules with no per-dataset output are named by their own directory or file).
RULE_OF_OUTPUT = {"runs": "run", "tuning": "tune"}
# The config's `resources` entry that sizes each rule's jobs.
RESOURCES_OF_RULE = {"model": "run", "run_saving_model": "run", "replication_report": "report"}
# Jobs that run once whatever the number of seeds (everything else runs once per seed).
SEED_FREE_RULES = {
    "download",
    "prepare",
    "tune",
    "model",
    "aggregate",
    "tables",
    "figures",
    "replication_report",
    "notebook",
}  # fmt: skip  (model: the first seed's only, in benchmarks of memnet before the saved run replaced it)


def config_of(configfile: str | None, overrides: list[str], repo: Path | None = None) -> dict:
    """The config Snakemake runs: the config file (the default one if none), then each
    `--config key=value` override (a YAML value, replacing the key)."""
    path = Path(configfile or find_workflow(repo) / "config/config.yaml")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a config (a YAML mapping of keys), but {config!r:.60}")
    for item in overrides:
        key, value = item.split("=", 1)
        config[key] = yaml.safe_load(value)
    return config


def declared_memory(config: dict) -> dict[str, float]:
    """The mem_mb the config declares for each rule's jobs."""
    resources = config.get("resources", {})
    rules = {*RESOURCES_OF_RULE, *SEED_FREE_RULES, "run"}
    return {
        rule: float(resources[key]["mem_mb"])
        for rule in rules
        if "mem_mb" in resources.get(key := RESOURCES_OF_RULE.get(rule, rule), {})
    }


def job_costs(benchmarks: Path, declared: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per benchmarked job under ``benchmarks``: its rule, its name, seconds, CPU seconds,
    peak RSS (MB) and the memory its rule declares (MB; NaN when unknown)."""
    rows = []
    for tsv in sorted(benchmarks.rglob("*.tsv")):
        stats = pd.read_csv(tsv, sep="\t").iloc[0]
        rel = tsv.relative_to(benchmarks)
        rule = RULE_OF_OUTPUT.get(rel.parts[0], rel.parts[0]) if len(rel.parts) > 1 else rel.stem
        rows.append(
            {
                "rule": rule,
                "job": str(rel.with_suffix("")),
                "seconds": float(stats["s"]),
                "cpu_seconds": _number(stats.get("cpu_time", "-")),
                "max_rss_mb": _number(stats["max_rss"]),
                "declared_mem_mb": (declared or {}).get(rule, math.nan),
            }
        )
    columns = ["rule", "job", "seconds", "cpu_seconds", "max_rss_mb", "declared_mem_mb"]
    return pd.DataFrame(rows, columns=columns)


def _number(value) -> float:
    return math.nan if value == "-" or pd.isna(value) else float(value)


def over_memory(costs: pd.DataFrame) -> pd.DataFrame:
    """The jobs whose peak RSS exceeded the memory their rule declares (Snakemake's max_rss is in
    MiB, mem_mb in MB)."""
    return costs[costs["max_rss_mb"] * 2**20 > costs["declared_mem_mb"] * 1e6]


def summarize(costs: pd.DataFrame) -> pd.DataFrame:
    """Per rule (and, for `run`, per model): jobs, total and largest seconds, largest RSS, and
    the memory the rule declares."""
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
        declared_mem_mb=("declared_mem_mb", "max"),
    )
    return out.sort_values("total_seconds", ascending=False).reset_index()


def predict(costs: pd.DataFrame, wall_seconds: float, seeds_run: int, seeds: int) -> dict:
    """The wall time of ``seeds`` seeds, extrapolated from a run of ``seeds_run`` seeds.

    Per-seed jobs (`run`) scale with the seeds; the others (download, prepare, tune, the saved
    model, the report stage) do not. On the same cores, the measured wall time is shared out in
    proportion to job-seconds, and the per-seed share scales: W (P r + S) / (P + S), with P and S
    the per-seed and seed-free job-seconds and r = seeds / seeds_run. On a cluster with a node
    free for every job: the seed-free jobs in turn, then the slowest per-seed job.
    """
    seed_free = costs["rule"].isin(SEED_FREE_RULES)
    per_seed_s = float(costs.loc[~seed_free, "seconds"].sum())
    seed_free_s = float(costs.loc[seed_free, "seconds"].sum())
    r = seeds / seeds_run
    total = per_seed_s + seed_free_s
    slowest = float(costs.loc[~seed_free, "seconds"].max()) if (~seed_free).any() else 0.0
    return {
        "seeds_run": seeds_run,
        "seeds": seeds,
        "same_cores_seconds": wall_seconds * (per_seed_s * r + seed_free_s) / total
        if total
        else 0.0,
        "cluster_seconds": seed_free_s + slowest,
        "cluster_core_seconds": float(costs.loc[~seed_free, "cpu_seconds"].sum()) * r
        + float(costs.loc[seed_free, "cpu_seconds"].sum()),
    }


# --name: a plain file-name component (it names the files written in --out)
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def _name(text: str) -> str:
    if not NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            "expected a plain file name of at most 200 letters, digits, '-', '_' and '.', not "
            f"starting with '.' (it names the files written in --out), got {text!r}"
        )
    return text


def _cores(text: str) -> str:
    """Snakemake's --cores: a number >= 1 or 'all' (0 would never run a job)."""
    if text == "all":
        return text
    try:
        return str(_positive_int(text))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 1 or 'all', got {text!r}"
        ) from None


def _config_item(text: str) -> str:
    """One `--config` override: KEY=VALUE, the value in YAML (checked here, read after the run)."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (the value in YAML), got {text!r}")
    try:
        yaml.safe_load(value)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise argparse.ArgumentTypeError(
            f"the value of {key} is not valid YAML ({problem}): {text!r}"
        ) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m memnet.bench_pipeline", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--name", type=_name, required=True, help="names the output files")
    parser.add_argument("--repo", default=None, help="the memnet checkout (default: .)")
    parser.add_argument("--configfile", default=None)
    parser.add_argument("--config", type=_config_item, nargs="+", default=[], metavar="KEY=VALUE",
                        help="passed to snakemake --config")  # fmt: skip
    parser.add_argument("--cores", type=_cores, default="2", help="an integer >= 1, or 'all'")
    parser.add_argument("--out", type=output_dir, default="results/bench")
    parser.add_argument("--workdir", type=output_dir, default=None,
                        help="default: a fresh temporary directory")  # fmt: skip
    parser.add_argument("--predict-seeds", type=_positive_int, default=5,
                        help="extrapolate the wall time to this many seeds")  # fmt: skip
    parser.add_argument("--wall", type=_positive_real, default=None,
                        help="do not run: read the benchmarks of the earlier run in --workdir, "
                        "which took this many seconds")  # fmt: skip
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The checked arguments, with ``repo_root`` (the checkout) and ``run_config`` (the config
    Snakemake runs): everything read after the run is checked before it. A usage error (exit
    status 2) names a bad argument; nothing runs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.wall is not None and not args.workdir:
        parser.error("--wall reads an earlier run: give its --workdir")
    try:
        args.repo_root = find_workflow(args.repo)
    except FileNotFoundError as exc:
        parser.error(f"argument --repo: {exc}" if args.repo else str(exc))
    source = "--configfile" if args.configfile else "--repo (its config/config.yaml)"
    try:
        config = config_of(args.configfile, args.config, args.repo_root)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        parser.error(f"argument {source}: cannot read the config: {exc}")
    for key in ("results", "seeds"):
        overridden = any(item.partition("=")[0] == key for item in args.config)
        value = config.get(key)
        if not value or (key == "seeds" and not isinstance(value, list)):
            what = "a non-empty list" if key == "seeds" else "a directory"
            parser.error(
                f"argument {'--config' if overridden else source}: the config's {key} must be "
                f"{what}, got {value!r}"
            )
    args.run_config = config
    if args.wall is not None:
        benchmarks = args.workdir / paths.under(paths.results_dir(config), "benchmarks")
        if not any(benchmarks.rglob("*.tsv")):
            parser.error(f"argument --workdir: no benchmark files (*.tsv) under {benchmarks}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    repo = args.repo_root
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix=f"memnet-bench-{args.name}-"))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile")]
    cmd += ["--directory", str(workdir), "--cores", args.cores, "--keep-going"]  # every target
    if args.configfile:
        cmd += ["--configfile", str(Path(args.configfile).resolve())]
    if args.config:
        cmd += ["--config", *args.config]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    load_before = [round(v, 2) for v in os.getloadavg()]
    if args.wall is None:
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"snakemake failed:\n{proc.stderr[-4000:]}")
    else:
        wall = args.wall

    config = args.run_config
    benchmarks = workdir / paths.under(paths.results_dir(config), "benchmarks")
    costs = job_costs(benchmarks, declared_memory(config))
    rules = summarize(costs)
    over = over_memory(costs)
    forecast = predict(costs, wall, len(config["seeds"]), args.predict_seeds)
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
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "rules": rules.to_dict(orient="records"),
        "slowest_jobs": slowest.to_dict(orient="records"),
        "over_declared_memory": over.to_dict(orient="records"),
        "prediction": forecast,
    }
    out = Path(args.out)
    write_json(out / f"pipeline-{args.name}.json", result)
    write_text(
        out / f"pipeline-{args.name}.md",
        f"# Pipeline benchmark: {args.name}\n\n"
        f"`{result['command']}`\n\n"
        f"Wall time: **{wall:.0f} s** on {args.cores} cores ({os.cpu_count()} CPUs seen); "
        f"{len(costs)} benchmarked jobs, {result['job_seconds_total']:.0f} job-seconds.\n\n"
        f"Load average {load_before} before, {result['load_after']} after.\n\n"
        f"## Cost by rule\n\n{rules.to_markdown(index=False, floatfmt='.1f')}\n\n"
        f"## Slowest jobs\n\n{slowest.to_markdown(index=False, floatfmt='.1f')}\n\n"
        f"## Memory\n\n{_memory_lines(over)}\n\n"
        f"## Predicted cost of {args.predict_seeds} seeds (extrapolated, not measured)\n\n"
        f"{_prediction_lines(forecast, args.cores)}\n",
    )
    if len(over):
        sys.exit(f"{len(over)} jobs exceeded the memory their rule declares: see {out}")
    print(f"{args.name}: {wall:.0f} s wall; written to {out}/pipeline-{args.name}.md")


def _memory_lines(over: pd.DataFrame) -> str:
    if over.empty:
        return "No job's peak RSS exceeded the memory (`mem_mb`) its rule declares."
    table = over[["job", "max_rss_mb", "declared_mem_mb"]].to_markdown(index=False, floatfmt=".0f")
    return f"Jobs whose peak RSS exceeded the memory their rule declares:\n\n{table}"


def _prediction_lines(f: dict, cores) -> str:
    return (
        f"- on the same {cores} cores: {f['same_cores_seconds'] / 3600:.1f} h "
        f"(this run's wall time shared out by job-seconds, the per-seed jobs' share times "
        f"{f['seeds']}/{f['seeds_run']});\n"
        f"- on a cluster with a node for every job: {f['cluster_seconds'] / 60:.0f} min (the "
        "seed-free jobs in turn, then the slowest per-seed job), "
        f"{f['cluster_core_seconds'] / 3600:.1f} CPU hours in all."
    )


if __name__ == "__main__":
    main()
