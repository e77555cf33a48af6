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
    params:
        wildcat=WILDCAT,
        root=lambda wildcards, output: Path(output[0]).parents[1],
        options=" ".join(f"--{key.replace('_', '-')} {value}" for key, value in config["synthetic"].items()),
    threads: 1
    resources:
        runtime=5,
        mem_mb=1000,
    conda:
        "../envs/wildcat.yaml"
    shell:
        "{params.wildcat} make-synthetic --quiet --root {params.root:q} {params.options} > {log:q} 2>&1 && touch {output:q}"


# `wildcat download` keeps its own per-file markers (wildcat/data/download.py); the rule's output
# marks the whole dataset as complete for Snakemake.
rule download:
    output:
        f"{DATA_ROOT}/.wildcat/{{dataset}}.complete",
    log:
        f"{LOGS}/data/{{dataset}}.log",
    params:
        wildcat=WILDCAT,
        root=lambda wildcards, output: Path(output[0]).parents[1],
    threads: 1
    resources:
        runtime=600,
        mem_mb=2000,
    conda:
        "../envs/wildcat.yaml"
    shell:
        "{params.wildcat} download {wildcards.dataset} --root {params.root:q} > {log:q} 2>&1 && touch {output:q}"
