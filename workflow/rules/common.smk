import json
import shlex
import sys

from memnet import datasets
from memnet.models.registry import families
from memnet.pipeline import owner, paths
from memnet.provenance import step_hash
from memnet.report.outputs import EXTRA, output_of
from memnet.pipeline.plan import (
    MEMNET,
    Run,
    clipped_sweep_points,
    paper_params,
    params_json,
    plan,
)

REPORT_MODEL_SEED = config["seeds"][0]  # the saved model is that of the first seed
ENV = str(REPO / "environment.yml")  # documents the software; .venv has all of it
RESULTS = paths.results_dir(config)
DATA = paths.data_dir(config)
# The config file(s) of this run; a results directory holds one config's outputs (memnet.pipeline.owner)
CONFIG_FILES = workflow.overwrite_configfiles or [REPO / "config/config.yaml"]
owner.check(RESULTS, CONFIG_FILES)


onstart:
    owner.record(RESULTS, CONFIG_FILES)


DATASETS = datasets.declarations(config)  # config/datasets.yaml and the config's own
RUNS = plan(config)
for warning in clipped_sweep_points(config):
    print(f"memnet: warning: {warning}", file=sys.stderr)
RUN_BY_WILDCARDS = {(r.dataset, r.experiment, r.model, r.name): r for r in RUNS}
METRICS = [r.metrics_path(seed, RESULTS) for r in RUNS for seed in config["seeds"]]


def results(template, **fields):
    """A path of memnet.paths under this config's results directory."""
    return paths.under(RESULTS, template, **fields)


def data(template, **fields):
    """A path of memnet.paths under the data directory that every config shares."""
    return paths.under(DATA, template, **fields)


def logged(template):
    """The log of the job writing `template`, under this config's results directory."""
    return results(paths.log(template))


def benchmarked(template):
    return results(paths.benchmark(template))


def resources_of(rule_name):
    """The config's `resources` entry for a rule (a cluster profile can override it)."""
    return config["resources"][rule_name]


def subset_arg(dataset):
    subset = config["data"].get("subset", {}).get(dataset)
    return f"--subset {shlex.quote(params_json(subset))}" if subset else ""


def run_of(w):
    return RUN_BY_WILDCARDS[(w.dataset, w.experiment, w.model, w.name)]


def saved_run(dataset):
    """The run whose trained model the memories figure and notebook show: `paper` in `main`."""
    return Run(dataset, "main", MEMNET, "paper", "paper", paper_params(config))


def command_args(run):
    """The `memnet run` options (data and output aside) of one run, each quoted for the shell:
    the run itself as one JSON object, and the tuning file it reads."""
    args = [f"--run {shlex.quote(run.to_json())}", subset_arg(run.dataset)]
    if run.needs_tuning:
        args.append(
            f"--tuning {shlex.quote(results(paths.TUNING, dataset=run.dataset))}"
        )
    return " ".join(args)


def run_args(w):
    return command_args(run_of(w))


def model_args(w):
    return command_args(saved_run(w.dataset))


# A single-threaded family (memnet.models.registry) takes one thread whatever the budget
# (bitwise the same on any machine's core count), so that two of its jobs share a 2-core machine.
FAMILIES = families(config)


# Each rule carries the hash of the memnet code its step runs (memnet.provenance.step_hash) as a
# `params:` entry: editing that code reruns the step (Snakemake's params trigger). Opt out with
# `--rerun-triggers mtime input` (README, "Rerunning after a code change").
code_of = step_hash


# The code of a run: executing it, and its model family's module (hashed once per family)
RUN_CODE = {m: step_hash("memnet.pipeline.execute", f.cls) for m, f in FAMILIES.items()}


def run_code(w):
    return RUN_CODE[w.model]


def run_threads(w):
    return 1 if FAMILIES[w.model].single_threaded else config["threads"]["run"]


def declaration_arg(w):
    """`--declaration JSON` for a dataset the config declares; none for a shipped one."""
    spec = DATASETS[w.dataset]
    if spec == datasets.REGISTRY.get(w.dataset):
        return ""
    return (
        f"--declaration {shlex.quote(json.dumps(spec.declaration(), sort_keys=True))}"
    )


# Each notebook's papermill parameters: the files it reads, all of them declared inputs of its job.
def notebook_params(wildcards, input):
    review = {
        "config_files": ", ".join(str(f) for f in CONFIG_FILES),
        "data_files": json.dumps(
            {
                d: {"path": path, "subset": config["data"].get("subset", {}).get(d)}
                for d, path in zip(config["datasets"], input.review_data)
            }
        ),
        "metrics_files": json.dumps(list(input.review_metrics)),
    }
    params = {
        "results": {"results_dir": RESULTS, **review},
        "memories": {"model_path": input.model, "data_path": input.data},
    }[wildcards.name]
    return " ".join(f"-p {shlex.quote(f'{k}={v}')}" for k, v in params.items())


def caption_of(stem):
    """The caption file of an output's file stem (one caption for every dataset), relative to this
    file, as report() wants it."""
    return f"../../{output_of(stem).caption_file}"


# Outputs of users' own rules (workflow/rules/extra/*.smk, included after this file) join the report
# through memnet.report.outputs.register: input functions, so that they are read once every rule
# file is included.
def extra_files(wildcards):
    return [o.file for o in EXTRA.values()]


def extra_captions(wildcards):
    return [o.caption_file for o in EXTRA.values()]


def extras_arg(wildcards):
    fields = ["stem", "title", "ours", "builder", "file", "caption"]
    entries = [{f: getattr(o, f) for f in fields} for o in EXTRA.values()]
    return f"--extras {shlex.quote(json.dumps(entries))}" if entries else ""
