# Evaluation: one pass over the test split writes every metric the dataset supports
# (classification, pointwise localization, segmentation with argmax and dense CRF), and beside
# them maps.npz: the gallery's maps and each object's modality-map peaks, for the report's figures.


rule evaluate:
    input:
        f"{RUNS}/{{dataset}}/{{method}}/seed{{seed}}/model.pt",
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{method}}/seed{{seed}}/metrics.json",
        maps=f"{RESULTS}/{{dataset}}/{{method}}/seed{{seed}}/maps.npz",
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmark/evaluate/{{dataset}}/{{method}}/seed{{seed}}.tsv"
    conda:
        "../envs/wildcat.yaml"
    threads: lambda wildcards: config["datasets"][wildcards.dataset].get("threads", 1)
    resources:
        runtime=lambda wildcards: run_resources(wildcards).get("runtime", 30),
        mem_mb=lambda wildcards: run_resources(wildcards).get("mem_mb", 4000),
        gpu=lambda wildcards: run_resources(wildcards).get("gpu", 0),
    params:
        wildcat=WILDCAT,
        run=lambda wildcards, input: Path(input[0]).parent,
        config_name=NAME,
    shell:
        "OMP_NUM_THREADS={threads} {params.wildcat} evaluate --quiet --run {params.run:q} --out {output.metrics:q} "
        "--crf-workers {threads} --config-name {params.config_name} --dataset-id {wildcards.dataset} "
        "--method {wildcards.method} --seed {wildcards.seed} > {log:q} 2>&1"
