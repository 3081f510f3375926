"""Every file the pipeline writes, named once (cheap to import: the Snakefile reads it).

A config writes under its own results directory (config key `results`: `results/paper` for the paper's
config, `results/quick` for the quick one), so that running one config never touches another's outputs.
Downloaded and prepared datasets depend on no config, so all configs share one data directory
(config key `data.dir`, `results/data` by default).

The templates below are relative to those directories; their `{fields}` are Snakemake wildcards
and `str.format` fields alike.
"""

from __future__ import annotations

# Under the data directory.
RAW_DIR = "raw/{dataset}"
RAW = f"{RAW_DIR}/{{file}}"
PREPARED = "{dataset}.npz"

# Under a config's results directory.
TUNING = "tuning/{dataset}.json"
RUN = "runs/{dataset}/{experiment}/{model}/{name}/seed{seed}.json"
# the trained model a run saves, beside its metrics (the memories figure and notebook read `paper`'s)
MODEL = "runs/{dataset}/{experiment}/{model}/{name}/seed{seed}.npz"
RUNS_CSV = "tables/runs.csv"
SUMMARY_CSV = "tables/summary.csv"
TABLE = "tables/{table}.{ext}"
FIGURE = "figures/{figure}.{ext}"
REPLICATION = "replication.{ext}"
NOTEBOOK = "notebooks/{name}.{ext}"
SNAKEMAKE_REPORT = "report.zip"
# which config file(s) write this results directory (memnet.pipeline.owner)
CONFIG_RECORD = "config.json"

DEFAULT_DATA_DIR = "results/data"


def under(root: str, template: str, **fields) -> str:
    """``template`` below the directory ``root``, with the given ``fields`` filled in.

    The fields not given stay wildcards, for Snakemake: ``under("results/paper", TUNING)`` is
    ``"results/paper/tuning/{dataset}.json"``.
    """
    path = f"{str(root).rstrip('/')}/{template}"
    for name, value in fields.items():
        path = path.replace(f"{{{name}}}", str(value))
    return path


def log(template: str) -> str:
    """The log of the job that writes ``template``: the same path under logs/, ending in .log."""
    return f"logs/{template.rsplit('.', 1)[0]}.log"


def benchmark(template: str) -> str:
    """The time and memory Snakemake measured for the job that writes ``template``."""
    return f"benchmarks/{template.rsplit('.', 1)[0]}.tsv"


def results_dir(config: dict) -> str:
    return str(config["results"])


def data_dir(config: dict) -> str:
    return str(config.get("data", {}).get("dir") or DEFAULT_DATA_DIR)
