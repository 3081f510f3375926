# The tables and figures of the outputs catalogue (memnet.report.outputs), the replication report and
# the review notebooks, from the aggregated results. Repository files (paper/, notebooks/, workflow/report/) are found relative to the Snakefile's
# directory (workflow.basedir), so that the workflow also runs with --directory elsewhere.
# Captions are relative to this file; each output marked with report() appears in `snakemake --report`.
import os
from pathlib import Path

from memnet.report.outputs import FIGURES, TABLES, figure_names


report: "../report/workflow.rst"


REPORT_REPO = Path(workflow.basedir)
REPORT_DATASETS = list(config["datasets"])
REPORT_TABLE_STEMS = list(TABLES)
REPORT_FIGURE_STEMS = figure_names(REPORT_DATASETS)
REPORT_NOTEBOOKS = ["results", "memories"]
# The config file(s) of this run, as the report names them (relative to the repository if inside it)
REPORT_CONFIG_FILES = ", ".join(
    (
        os.path.relpath(f, REPORT_REPO)
        if Path(f).resolve().is_relative_to(REPORT_REPO.resolve())
        else str(f)
    )
    for f in CONFIG_FILES
)


# The saved `paper` model of each dataset (first seed) and the metrics of the run that trained it
REPORT_MODELS = [
    path
    for dataset in REPORT_DATASETS
    for path in (
        saved_run(dataset)
        .metrics_path(REPORT_MODEL_SEED, RESULTS)
        .removesuffix(".json")
        + ".npz",
        saved_run(dataset).metrics_path(REPORT_MODEL_SEED, RESULTS),
    )
]
# F5 reads the confusion matrices of the main memnet runs (only if the config runs them)
REPORT_MAIN_MEMNET = "paper" in config.get("experiments", {}).get("main", {}).get(
    "models", {}
).get("memnet", [])
REPORT_CONFUSIONS = [
    saved_run(dataset).metrics_path(seed, RESULTS)
    for dataset in (REPORT_DATASETS if REPORT_MAIN_MEMNET else [])
    for seed in config["seeds"]
]
# The main experiment's runs of the first seed: the review notebook shows each model's mistakes
REPORT_REVIEW_METRICS = [
    r.metrics_path(REPORT_MODEL_SEED, RESULTS) for r in RUNS if r.experiment == "main"
]
# The run whose metrics give the report's software versions and git revision (the first by path)
REPORT_METRICS = min(METRICS, key=lambda path: Path(path).parts)
REPORT_TABLE_FILES = expand(
    results(paths.TABLE), table=REPORT_TABLE_STEMS, ext=["csv", "md", "tex"]
)
REPORT_PNGS = expand(results(paths.FIGURE), figure=REPORT_FIGURE_STEMS, ext="png")
REPORT_PDFS = expand(results(paths.FIGURE), figure=REPORT_FIGURE_STEMS, ext="pdf")
REPORT_CAPTION_FILES = [
    REPORT_REPO / o.caption_file for o in [*TABLES.values(), *FIGURES.values()]
]
REPORT_TABLE_CAPTIONS = [REPORT_REPO / o.caption_file for o in TABLES.values()]


# Everything this file produces: the Snakefile's `rule all` asks for it.
REPORT_OUTPUTS = [
    *REPORT_TABLE_FILES,
    *REPORT_PNGS,
    *REPORT_PDFS,
    results(paths.REPLICATION, ext="md"),
    results(paths.REPLICATION, ext="html"),
    *expand(results(paths.NOTEBOOK), name=REPORT_NOTEBOOKS, ext=["ipynb", "html"]),
]


rule tables:
    input:
        summary=results(paths.SUMMARY_CSV),
        runs=results(paths.RUNS_CSV),
        claims=REPORT_REPO / "paper/claims.yaml",
        models=REPORT_MODELS,
        data=[data(paths.PREPARED, dataset=d) for d in config["datasets"]],
        captions=REPORT_TABLE_CAPTIONS,
    output:
        csv=[
            report(
                results(paths.TABLE, table=stem, ext="csv"),
                caption=caption_of(stem),
                category="Tables",
            )
            for stem in REPORT_TABLE_STEMS
        ],
        md=expand(results(paths.TABLE), table=REPORT_TABLE_STEMS, ext="md"),
        tex=expand(results(paths.TABLE), table=REPORT_TABLE_STEMS, ext="tex"),
    log:
        results(paths.log("tables")),
    benchmark:
        benchmarked("tables")
    conda:
        ENV
    resources:
        **resources_of("tables"),
    params:
        code=code_of("memnet.report.tables", *(o.builder for o in TABLES.values())),
        out=lambda wildcards, output: os.path.dirname(output.csv[0]),
    shell:
        "memnet tables --summary {input.summary:q} --runs {input.runs:q} "
        "--claims {input.claims:q} --models {input.models:q} --data {input.data:q} "
        "--captions {input.captions:q} --out {params.out:q} > {log:q} 2>&1"


rule figures:
    input:
        summary=results(paths.SUMMARY_CSV),
        runs=results(paths.RUNS_CSV),
        claims=REPORT_REPO / "paper/claims.yaml",
        models=REPORT_MODELS,
        confusions=REPORT_CONFUSIONS,
    output:
        png=[
            report(
                results(paths.FIGURE, figure=stem, ext="png"),
                caption=caption_of(stem),
                category="Figures",
            )
            for stem in REPORT_FIGURE_STEMS
        ],
        pdf=REPORT_PDFS,
    log:
        results(paths.log("figures")),
    benchmark:
        benchmarked("figures")
    conda:
        ENV
    resources:
        **resources_of("figures"),
    params:
        code=code_of("memnet.report.figures", *(o.builder for o in FIGURES.values())),
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
        runs=results(paths.RUNS_CSV),
        metrics=REPORT_METRICS,
        tables=REPORT_TABLE_FILES,
        figures=REPORT_PNGS,
        extras=extra_files,
        extra_captions=extra_captions,
    output:
        md=results(paths.REPLICATION, ext="md"),
        html=report(
            results(paths.REPLICATION, ext="html"),
            caption="../report/replication.rst",
            category="Replication report",
        ),
    log:
        results(paths.log(paths.REPLICATION)),
    benchmark:
        benchmarked("replication_report")
    conda:
        ENV
    resources:
        **resources_of("report"),
    params:
        code=code_of("memnet.report.replication"),
        datasets=" ".join(REPORT_DATASETS),
        extras=extras_arg,
        config=shlex.quote(REPORT_CONFIG_FILES),
    shell:
        "memnet report --template {input.template:q} --runs {input.runs:q} "
        "--metrics {input.metrics:q} --tables {input.tables:q} "
        "--figures {input.figures:q} {input.extras:q} "
        "--captions {input.captions:q} {input.extra_captions:q} --datasets {params.datasets} "
        "{params.extras} --config-file {params.config} --out {output.md:q} > {log:q} 2>&1"


rule notebook:
    input:
        notebook=f"{workflow.basedir}/notebooks/{{name}}.ipynb",
        runs=results(paths.RUNS_CSV),
        summary=results(paths.SUMMARY_CSV),
        tables=REPORT_TABLE_FILES,
        figures=REPORT_PNGS,
        model=REPORT_MODELS[0],
        # memories.ipynb shows test images of the model's dataset beside their nearest memories
        data=data(paths.PREPARED, dataset=REPORT_DATASETS[0]),
        # results.ipynb: each main model's confusion matrix and misclassified test images
        review_data=[data(paths.PREPARED, dataset=d) for d in REPORT_DATASETS],
        review_metrics=REPORT_REVIEW_METRICS,
    output:
        ipynb=results(paths.NOTEBOOK, ext="ipynb"),
        html=report(
            results(paths.NOTEBOOK, ext="html"),
            caption="../report/notebooks.rst",
            category="Notebooks",
            subcategory="{name}",
        ),
    log:
        logged(paths.NOTEBOOK),
    benchmark:
        benchmarked(f"notebook/{paths.NOTEBOOK}")
    wildcard_constraints:
        name="|".join(REPORT_NOTEBOOKS),
    conda:
        ENV
    resources:
        **resources_of("notebook"),
    params:
        code=code_of("memnet.report.figures", "memnet.report.tables"),
        papermill=notebook_params,
    shell:
        "memnet notebook --notebook {input.notebook:q} --out {output.ipynb:q} "
        "{params.papermill} > {log:q} 2>&1"
