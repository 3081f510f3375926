# Raw files are fetched once (mirror first, then the canonical hosts), verified by size and sha256,
# and converted into one .npz per dataset, in the data directory that every config shares.
# Both run on the submit host under a cluster executor.


localrules:
    download,
    prepare,


wildcard_constraints:
    dataset="|".join(REGISTRY),


rule download:
    output:
        ensure(
            data(paths.RAW),
            sha256=lambda w: REGISTRY[w.dataset].files[w.file].sha256,
        ),
    log:
        logged(paths.RAW),
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
        "memnet fetch --dataset {wildcards.dataset:q} --file {wildcards.file:q} "
        "--out {output:q} {params.mirror} 2> {log:q}"


rule prepare:
    input:
        lambda w: [
            data(paths.RAW, dataset=w.dataset, file=f)
            for f in REGISTRY[w.dataset].files
        ],
    output:
        data(paths.PREPARED),
    log:
        logged(paths.PREPARED),
    conda:
        ENV
    resources:
        **resources_of("prepare"),
    params:
        raw_dir=lambda w: data(paths.RAW_DIR, dataset=w.dataset),
    shell:
        "memnet prepare --dataset {wildcards.dataset:q} --raw-dir {params.raw_dir:q} "
        "--out {output:q} 2> {log:q}"
