# Raw files are fetched once (mirror first, then the canonical hosts), verified by size and sha256,
# and converted into one .npz per dataset. Both run on the submit host under a cluster executor.


localrules:
    download,
    prepare,


wildcard_constraints:
    dataset="|".join(REGISTRY),


rule download:
    output:
        ensure(
            "results/data/raw/{dataset}/{file}",
            sha256=lambda w: REGISTRY[w.dataset].files[w.file].sha256,
        ),
    log:
        "results/logs/download/{dataset}/{file}.log",
    cache: "omit-software"
    conda:
        ENV
    resources:
        **resources_of("download"),
    params:
        mirror=(
            f"--mirror {shlex.quote(config['data']['mirror'])}"
            if config["data"].get("mirror")
            else ""
        ),
    shell:
        "memnet fetch --dataset {wildcards.dataset} --file {wildcards.file} "
        "--out {output} {params.mirror} 2> {log}"


rule prepare:
    input:
        lambda w: expand(
            "results/data/raw/{{dataset}}/{file}", file=REGISTRY[w.dataset].files
        ),
    output:
        "results/data/{dataset}.npz",
    log:
        "results/logs/prepare/{dataset}.log",
    conda:
        ENV
    resources:
        **resources_of("prepare"),
    shell:
        "memnet prepare --dataset {wildcards.dataset} "
        "--raw-dir results/data/raw/{wildcards.dataset} --out {output} 2> {log}"
