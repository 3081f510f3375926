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
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m memnet.tables --summary {input.summary} --runs {input.runs} "
        "--claims {input.claims} --models-dir results/models --out results/tables > {log} 2>&1"


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
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        datasets=" ".join(REPORT_DATASETS),
        seed=REPORT_MODEL_SEED,
    shell:
        "python -m memnet.figures --summary {input.summary} --runs {input.runs} "
        "--claims {input.claims} --runs-dir results/runs --models-dir results/models "
        "--model-seed {params.seed} --datasets {params.datasets} --out results/figures "
        "> {log} 2>&1"


rule replication_report:
    input:
        template=REPORT_REPO / "paper/replication.md.j2",
        captions=REPORT_CAPTION_FILES,
        runs="results/tables/runs.csv",
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
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        captions=lambda wildcards, input: os.path.dirname(input.captions[0]),
        datasets=" ".join(REPORT_DATASETS),
    shell:
        "python -m memnet.report render --template {input.template} --tables results/tables "
        "--figures results/figures --captions {params.captions} --runs-dir results/runs "
        "--datasets {params.datasets} --out {output.md} > {log} 2>&1"


rule notebook:
    input:
        notebook=f"{workflow.basedir}/notebooks/{{name}}.ipynb",
        tables=REPORT_TABLE_FILES,
        figures=REPORT_PNGS,
        model=REPORT_MODELS[0],
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
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    shell:
        "python -m memnet.report notebook --notebook {input.notebook} --out {output.ipynb} "
        "-p results_dir=results -p model_path={input.model} > {log} 2>&1"
