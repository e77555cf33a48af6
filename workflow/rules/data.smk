# Data: the synthetic default is generated; real datasets are downloaded and verified.


rule make_synthetic:
    output:
        SYNTHETIC_MARKER,
    log:
        f"{LOGS}/data/synthetic.log",
    params:
        root=DATA_ROOT,
        seed=config["synthetic"]["seed"],
    threads: 1
    resources:
        runtime=5,
        mem_mb=1000,
    conda:
        "../envs/wildcat.yaml"
    shell:
        "{WILDCAT} make-synthetic --root {params.root} --seed {params.seed} > {log} 2>&1"


rule download:
    output:
        f"{DATA_ROOT}/.wildcat/{{dataset}}.complete",
    log:
        f"{LOGS}/data/{{dataset}}.log",
    params:
        root=DATA_ROOT,
    threads: 1
    resources:
        runtime=600,
        mem_mb=2000,
    conda:
        "../envs/wildcat.yaml"
    shell:
        "{WILDCAT} download {wildcards.dataset} --root {params.root} > {log} 2>&1"
