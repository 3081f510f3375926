# Tables T1-T4, figures F1-F6, the replication report and the review notebooks, from the aggregated
# results. Repository files (paper/, notebooks/, workflow/report/) are found relative to the Snakefile's
# directory (workflow.basedir), so that the workflow also runs with --directory elsewhere.
# Captions are relative to this file; each output marked with report() appears in `snakemake --report`.
import os
from pathlib import Path

from memnet.outputs import TABLES, figure_names


report: "../report/workflow.rst"


REPORT_REPO = Path(workflow.basedir)
REPORT_DATASETS = list(config["datasets"])
REPORT_MODEL_SEED = config["seeds"][0]  # the saved model is that of the first seed
REPORT_TABLE_STEMS = list(TABLES)
REPORT_FIGURE_STEMS = figure_names(REPORT_DATASETS)
REPORT_NOTEBOOKS = ["results", "memories"]
# F3_ablations_mnist -> workflow/report/F3_ablations.rst: one caption per figure, whatever the dataset
REPORT_FIGURE_CAPTIONS = {s: "_".join(s.split("_")[:2]) for s in REPORT_FIGURE_STEMS}

REPORT_MODELS = expand(
    "results/models/{dataset}/main/memnet/paper/seed{seed}.{ext}",
    dataset=REPORT_DATASETS,
    seed=REPORT_MODEL_SEED,
    ext=["npz", "json"],
)
# F5 reads the confusion matrices of the main memnet runs (only if the config runs them)
REPORT_MAIN_MEMNET = "paper" in config.get("experiments", {}).get("main", {}).get(
    "models", {}
).get("memnet", [])
REPORT_CONFUSIONS = expand(
    "results/runs/{dataset}/main/memnet/paper/seed{seed}.json",
    dataset=REPORT_DATASETS if REPORT_MAIN_MEMNET else [],
    seed=config["seeds"],
)
# The run whose metrics give the report's software versions and git revision (the first by path)
REPORT_METRICS = min(METRICS, key=lambda path: Path(path).parts)
REPORT_TABLE_FILES = expand(
    "results/tables/{table}.{ext}", table=REPORT_TABLE_STEMS, ext=["csv", "md", "tex"]
)
REPORT_PNGS = expand("results/figures/{figure}.png", figure=REPORT_FIGURE_STEMS)
REPORT_PDFS = expand("results/figures/{figure}.pdf", figure=REPORT_FIGURE_STEMS)
REPORT_CAPTION_FILES = [
    REPORT_REPO / f"workflow/report/{stem}.rst"
    for stem in [*REPORT_TABLE_STEMS, *sorted(set(REPORT_FIGURE_CAPTIONS.values()))]
]

# Everything this file produces: the Snakefile's `rule all` asks for it.
REPORT_OUTPUTS = [
    *REPORT_TABLE_FILES,
    *REPORT_PNGS,
    *REPORT_PDFS,
    "results/paper/replication.md",
    "results/paper/replication.html",
    *expand(
        "results/notebooks/{name}.{ext}", name=REPORT_NOTEBOOKS, ext=["ipynb", "html"]
    ),
]


rule tables:
    input:
        summary="results/tables/summary.csv",
        runs="results/tables/runs.csv",
        claims=REPORT_REPO / "paper/claims.yaml",
        models=REPORT_MODELS,
    output:
        csv=[
            report(
                f"results/tables/{stem}.csv",
                caption=f"../report/{stem}.rst",
                category="Tables",
            )
            for stem in REPORT_TABLE_STEMS
        ],
        md=expand("results/tables/{table}.md", table=REPORT_TABLE_STEMS),
        tex=expand("results/tables/{table}.tex", table=REPORT_TABLE_STEMS),
    log:
        "results/logs/report/tables.log",
    conda:
        ENV
    resources:
        **resources_of("tables"),
    params:
        out=lambda wildcards, output: os.path.dirname(output.csv[0]),
    shell:
        "memnet tables --summary {input.summary:q} --runs {input.runs:q} "
        "--claims {input.claims:q} --models {input.models:q} --out {params.out:q} "
        "> {log:q} 2>&1"


rule figures:
    input:
        summary="results/tables/summary.csv",
        runs="results/tables/runs.csv",
        claims=REPORT_REPO / "paper/claims.yaml",
        models=REPORT_MODELS,
        confusions=REPORT_CONFUSIONS,
    output:
        png=[
            report(
                f"results/figures/{stem}.png",
                caption=f"../report/{REPORT_FIGURE_CAPTIONS[stem]}.rst",
                category="Figures",
            )
            for stem in REPORT_FIGURE_STEMS
        ],
        pdf=REPORT_PDFS,
    log:
        "results/logs/report/figures.log",
    conda:
        ENV
    resources:
        **resources_of("figures"),
    params:
        datasets=" ".join(REPORT_DATASETS),
        seed=REPORT_MODEL_SEED,
        out=lambda wildcards, output: os.path.dirname(output.png[0]),
    shell:
        "memnet figures --summary {input.summary:q} --runs {input.runs:q} "
        "--claims {input.claims:q} --models {input.models:q} "
        "--confusions {input.confusions:q} --model-seed {params.seed} "
        "--datasets {params.datasets} --out {params.out:q} > {log:q} 2>&1"


rule replication_report:
    input:
        template=REPORT_REPO / "paper/replication.md.j2",
        captions=REPORT_CAPTION_FILES,
        runs="results/tables/runs.csv",
        metrics=REPORT_METRICS,
        tables=REPORT_TABLE_FILES,
        figures=REPORT_PNGS,
    output:
        md="results/paper/replication.md",
        html=report(
            "results/paper/replication.html",
            caption="../report/replication.rst",
            category="Replication report",
        ),
    log:
        "results/logs/report/replication_report.log",
    conda:
        ENV
    resources:
        **resources_of("report"),
    params:
        datasets=" ".join(REPORT_DATASETS),
    shell:
        "memnet report --template {input.template:q} --runs {input.runs:q} "
        "--metrics {input.metrics:q} --tables {input.tables:q} --figures {input.figures:q} "
        "--captions {input.captions:q} --datasets {params.datasets} --out {output.md:q} "
        "> {log:q} 2>&1"


rule notebook:
    input:
        notebook=f"{workflow.basedir}/notebooks/{{name}}.ipynb",
        runs="results/tables/runs.csv",
        summary="results/tables/summary.csv",
        tables=REPORT_TABLE_FILES,
        figures=REPORT_PNGS,
        model=REPORT_MODELS[0],
        # memories.ipynb shows test images of the model's dataset beside their nearest memories
        data=f"results/data/{REPORT_DATASETS[0]}.npz",
    output:
        ipynb="results/notebooks/{name}.ipynb",
        html=report(
            "results/notebooks/{name}.html",
            caption="../report/notebooks.rst",
            category="Notebooks",
            subcategory="{name}",
        ),
    log:
        "results/logs/report/notebook_{name}.log",
    wildcard_constraints:
        name="|".join(REPORT_NOTEBOOKS),
    conda:
        ENV
    resources:
        **resources_of("notebook"),
    shell:
        "memnet notebook --notebook {input.notebook:q} --out {output.ipynb:q} "
        "-p results_dir=results -p model_path={input.model:q} > {log:q} 2>&1"
