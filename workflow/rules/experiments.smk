# Every run of the config (see memnet.experiments.plan) is one job of the single rule `run`.


wildcard_constraints:
    seed=r"\d+",
    experiment=r"[^/]+",
    model=r"[^/]+",
    name=r"[^/]+",


rule tune:
    input:
        data(paths.PREPARED),
    output:
        results(paths.TUNING),
    log:
        logged(paths.TUNING),
    benchmark:
        benchmarked(paths.TUNING)
    conda:
        ENV
    threads: config["threads"]["tune"]
    resources:
        **resources_of("tune"),
    params:
        code=code_of("memnet.pipeline.tune", FAMILIES[MEMNET].cls),
        memnet=shlex.quote(params_json(config["memnet"])),
        subset=lambda w: subset_arg(w.dataset),
        scales=" ".join(str(s) for s in config["tuning"]["tau_scale"]),
        fraction=config["tuning"]["validation_fraction"],
        seed=config["tuning"]["seed"],
    shell:
        "memnet tune --data {input:q} {params.subset} --params {params.memnet} "
        "--tau-scale {params.scales} --validation-fraction {params.fraction} "
        "--seed {params.seed} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule run:
    input:
        data=data(paths.PREPARED),
        tuning=lambda w: (
            results(paths.TUNING, dataset=w.dataset) if run_of(w).needs_tuning else []
        ),
    output:
        results(paths.RUN),
    log:
        logged(paths.RUN),
    benchmark:
        benchmarked(paths.RUN)
    conda:
        ENV
    threads: run_threads
    resources:
        **resources_of("run"),
    params:
        code=run_code,
        args=run_args,
    shell:
        "memnet run --data {input.data:q} --seed {wildcards.seed} --threads {threads} "
        "{params.args} --out {output:q} > {log:q} 2>&1"


# The run of `paper` in `main` for the first seed also saves its trained model, for the memories
# figure and notebook: the run that measures the model is the one that keeps it (when the config
# does not run it in `main`, this rule still makes it for the report, and it is left out of runs.csv).
ruleorder: run_saving_model > run


rule run_saving_model:
    input:
        data=data(paths.PREPARED),
        tuning=results(paths.TUNING),
    output:
        metrics=results(paths.RUN),
        model=results(paths.MODEL),
    log:
        logged(paths.RUN),
    benchmark:
        benchmarked(paths.RUN)
    wildcard_constraints:
        experiment="main",
        model=MEMNET,
        name="paper",
        seed=str(REPORT_MODEL_SEED),
    conda:
        ENV
    threads: config["threads"]["run"]
    resources:
        **resources_of("run"),
    params:
        code=run_code,
        args=model_args,
    shell:
        "memnet run --data {input.data:q} --seed {wildcards.seed} --threads {threads} "
        "{params.args} --model-out {output.model:q} --out {output.metrics:q} > {log:q} 2>&1"


rule aggregate:
    input:
        METRICS,
    output:
        runs=results(paths.RUNS_CSV),
        summary=results(paths.SUMMARY_CSV),
    log:
        logged(paths.RUNS_CSV),
    benchmark:
        benchmarked("aggregate")
    conda:
        ENV
    resources:
        **resources_of("aggregate"),
    params:
        code=code_of("memnet.report.aggregate"),
    shell:
        "memnet aggregate --runs-csv {output.runs:q} --summary-csv {output.summary:q} "
        "{input:q} > {log:q} 2>&1"
