# Training: one `wildcat train` run per (dataset, method, seed). The run folder keeps a
# checkpoint after every epoch; model.pt is written last, so a killed job leaves no output
# that Snakemake takes as done, and its rerun resumes from the checkpoint.


rule train:
    input:
        training_data,
    output:
        f"{RUNS}/{{dataset}}/{{method}}/seed{{seed}}/model.pt",
    log:
        f"{LOGS}/train/{{dataset}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmark/train/{{dataset}}/{{method}}/seed{{seed}}.tsv"
    params:
        env=WILDCAT_ENV,
        launcher=train_launcher,
        options=train_options,
        out=lambda wildcards, output: Path(output[0]).parent,
    threads: lambda wildcards: config["datasets"][wildcards.dataset].get("threads", 1)
    resources:
        runtime=lambda wildcards: run_resources(wildcards).get("runtime", 30),
        mem_mb=lambda wildcards: run_resources(wildcards).get("mem_mb", 4000),
        gpu=lambda wildcards: run_resources(wildcards).get("gpu", 0),
    conda:
        "../envs/wildcat.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.env} {params.launcher} -m wildcat train --quiet --out {params.out} {params.options} > {log} 2>&1"
