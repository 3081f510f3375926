# Raw files are fetched once (mirror first, then the declared URLs), verified by size and sha256,
# and converted into one .npz per dataset, in the data directory that every config shares.
# Datasets are declared in config/datasets.yaml or the config's dataset_declarations (DATASETS);
# a new one needs no change here. Both rules run on the submit host under a cluster executor.


localrules:
    download,
    prepare,


wildcard_constraints:
    dataset="|".join(re.escape(name) for name in DATASETS),


rule download:
    output:
        ensure(
            data(paths.RAW),
            sha256=lambda w: DATASETS[w.dataset].files[w.file].sha256,
        ),
    log:
        logged(paths.RAW),
    cache: "omit-software"
    conda:
        ENV
    resources:
        **resources_of("download"),
    params:
        code=code_of("memnet.datasets"),
        mirror=(
            f"--mirror {shlex.quote(config['data']['mirror'])}"
            if config["data"].get("mirror")
            else ""
        ),
        declaration=declaration_arg,
    shell:
        "memnet fetch --dataset {wildcards.dataset:q} --file {wildcards.file:q} "
        "--out {output:q} {params.mirror} {params.declaration} 2> {log:q}"


rule prepare:
    input:
        lambda w: [
            data(paths.RAW, dataset=w.dataset, file=f)
            for f in DATASETS[w.dataset].files
        ],
    output:
        data(paths.PREPARED),
    log:
        logged(paths.PREPARED),
    benchmark:
        benchmarked(f"prepare/{paths.PREPARED}")
    conda:
        ENV
    resources:
        **resources_of("prepare"),
    params:
        code=code_of("memnet.datasets"),
        raw_dir=lambda w: data(paths.RAW_DIR, dataset=w.dataset),
        declaration=declaration_arg,
    shell:
        "memnet prepare --dataset {wildcards.dataset:q} --raw-dir {params.raw_dir:q} "
        "--out {output:q} {params.declaration} 2> {log:q}"
