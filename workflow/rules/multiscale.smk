# Multi-scale WILDCAT (paper Section 4.1): one `wildcat train` run per scale (the members
# `<method>_s<px>`, made by the train rule), then the Object Bank combination of their scores,
# learned on the training split (wildcat.eval.combine). Its metrics.json is read like any other run's.


rule combine:
    input:
        member_models,
    output:
        f"{RESULTS}/{{dataset}}/{{method,{COMBINED_METHOD}}}/seed{{seed}}/metrics.json",
    log:
        f"{LOGS}/combine/{{dataset}}/{{method}}/seed{{seed}}.log",
    conda:
        "../envs/wildcat.yaml"
    threads: lambda wildcards: config["datasets"][wildcards.dataset].get("threads", 1)
    resources:
        runtime=lambda wildcards: run_resources(wildcards).get("runtime", 30),
        mem_mb=lambda wildcards: run_resources(wildcards).get("mem_mb", 4000),
        gpu=lambda wildcards: run_resources(wildcards).get("gpu", 0),
    params:
        wildcat=WILDCAT,
        runs=lambda wildcards, input: " ".join(
            shlex.quote(str(Path(path).parent)) for path in input
        ),
        config_name=NAME,
    shell:
        "OMP_NUM_THREADS={threads} {params.wildcat} combine --quiet --runs {params.runs} --out {output:q} --crf-workers {threads} "
        "--config-name {params.config_name} --dataset-id {wildcards.dataset} --method {wildcards.method} "
        "--seed {wildcards.seed} > {log:q} 2>&1"
