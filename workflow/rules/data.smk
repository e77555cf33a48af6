# Data: the synthetic default is generated; real datasets are downloaded and verified.
# Both run on the submitting host (on a cluster: the login node, which has internet).


localrules:
    make_synthetic,
    download,


rule make_synthetic:
    output:
        SYNTHETIC_MARKER,
    log:
        f"{LOGS}/data/synthetic.log",
    benchmark:
        f"{LOGS}/benchmark/make_synthetic.tsv"
    conda:
        "../envs/wildcat.yaml"
    threads: 1
    resources:
        runtime=5,
        mem_mb=1000,
    params:
        wildcat=WILDCAT,
        root=lambda wildcards, output: Path(output[0]).parents[1],
        options=cli_options(config["synthetic"]),
    shell:
        "{params.wildcat} make-synthetic --quiet --root {params.root:q} {params.options} > {log:q} 2>&1 && touch {output:q}"


# `wildcat download` keeps its own per-file markers (wildcat/data/download.py); the rule's output
# marks the whole dataset as complete for Snakemake. The config's `checksums` file of the dataset,
# if any, is an input (a changed file downloads again: wildcat verifies the files anew when their
# markers record other digests) and is passed as --checksums.
rule download:
    input:
        checksums=lambda wildcards: config.get("checksums", {}).get(
            wildcards.dataset, []
        ),
    output:
        f"{DATA_ROOT}/.wildcat/{{dataset}}.complete",
    log:
        f"{LOGS}/data/{{dataset}}.log",
    conda:
        "../envs/wildcat.yaml"
    threads: 1
    resources:
        runtime=600,
        mem_mb=2000,
    params:
        wildcat=WILDCAT,
        root=lambda wildcards, output: Path(output[0]).parents[1],
        checksums=lambda wildcards, input: (
            f"--checksums {shlex.quote(input.checksums)}" if input.checksums else ""
        ),
    shell:
        "{params.wildcat} download {wildcards.dataset} --quiet --root {params.root:q} {params.checksums} > {log:q} 2>&1 && touch {output:q}"
