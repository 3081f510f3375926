# Every run of the config (see memnet.experiments.plan) is one job of the single rule `run`.


wildcard_constraints:
    seed=r"\d+",
    experiment=r"[^/]+",
    model=r"[^/]+",
    name=r"[^/]+",


rule tune:
    input:
        "results/data/{dataset}.npz",
    output:
        "results/tuning/{dataset}.json",
    log:
        "results/logs/tune/{dataset}.log",
    benchmark:
        "results/benchmarks/tune/{dataset}.tsv"
    conda:
        ENV
    threads: config["threads"]["tune"]
    resources:
        **resources_of("tune"),
    params:
        memnet=shlex.quote(params_json(config["memnet"])),
        subset=lambda w: subset_arg(w.dataset),
        scales=" ".join(str(s) for s in config["tuning"]["tau_scale"]),
        fraction=config["tuning"]["validation_fraction"],
        seed=config["tuning"]["seed"],
    shell:
        "memnet tune --data {input} {params.subset} --params {params.memnet} "
        "--tau-scale {params.scales} --validation-fraction {params.fraction} "
        "--seed {params.seed} --threads {threads} --out {output} > {log} 2>&1"


rule run:
    input:
        data="results/data/{dataset}.npz",
        tuning=lambda w: (
            f"results/tuning/{w.dataset}.json" if run_of(w).needs_tuning else []
        ),
    output:
        "results/runs/{dataset}/{experiment}/{model}/{name}/seed{seed}.json",
    log:
        "results/logs/run/{dataset}/{experiment}/{model}/{name}/seed{seed}.log",
    benchmark:
        "results/benchmarks/run/{dataset}/{experiment}/{model}/{name}/seed{seed}.tsv"
    conda:
        ENV
    threads: run_threads
    resources:
        **resources_of("run"),
    params:
        args=run_args,
    shell:
        "memnet run --data {input.data} --seed {wildcards.seed} --threads {threads} "
        "{params.args} --out {output} > {log} 2>&1"


# The trained `paper` model of the first seed, kept for the memories figure and notebook.
rule model:
    input:
        data="results/data/{dataset}.npz",
        tuning="results/tuning/{dataset}.json",
    output:
        model="results/models/{dataset}/main/memnet/paper/seed{seed}.npz",
        metrics="results/models/{dataset}/main/memnet/paper/seed{seed}.json",
    log:
        "results/logs/model/{dataset}/seed{seed}.log",
    conda:
        ENV
    threads: config["threads"]["run"]
    resources:
        **resources_of("run"),
    params:
        memnet=lambda w: shlex.quote(params_json(config["memnet"])),
        subset=lambda w: subset_arg(w.dataset),
    shell:
        "memnet run --data {input.data} {params.subset} --dataset {wildcards.dataset} "
        "--experiment main --model memnet --variant paper --params {params.memnet} "
        "--tuning {input.tuning} --seed {wildcards.seed} --threads {threads} "
        "--model-out {output.model} --out {output.metrics} > {log} 2>&1"


rule aggregate:
    input:
        METRICS,
    output:
        runs="results/tables/runs.csv",
        summary="results/tables/summary.csv",
    log:
        "results/logs/aggregate.log",
    conda:
        ENV
    resources:
        **resources_of("aggregate"),
    shell:
        "memnet aggregate --runs-csv {output.runs} --summary-csv {output.summary} "
        "{input} > {log} 2>&1"
