# Training: one `wildcat train` run per (dataset, method, seed). The run folder keeps a
# checkpoint after every epoch; model.pt is written last, so a killed job leaves no output
# that Snakemake takes as done, and its rerun resumes from the checkpoint. A rerun because the
# run's settings changed (Snakemake's params trigger) starts afresh instead of resuming the old
# experiment, and says so in its log (--restart-if-changed).


rule train:
    input:
        training_data,
    output:
        model=f"{RUNS}/{{dataset}}/{{method}}/seed{{seed}}/model.pt",
        config=f"{RUNS}/{{dataset}}/{{method}}/seed{{seed}}/config.yaml",
        train_log=f"{RUNS}/{{dataset}}/{{method}}/seed{{seed}}/train_log.csv",
        provenance=f"{RUNS}/{{dataset}}/{{method}}/seed{{seed}}/provenance.json",
    log:
        f"{LOGS}/train/{{dataset}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmark/train/{{dataset}}/{{method}}/seed{{seed}}.tsv"
    conda:
        "../envs/wildcat.yaml"
    threads: lambda wildcards: config["datasets"][wildcards.dataset].get("threads", 1)
    resources:
        runtime=lambda wildcards: run_resources(wildcards).get("runtime", 30),
        mem_mb=lambda wildcards: run_resources(wildcards).get("mem_mb", 4000),
        # The layout (docs/distributed.md): `gpu` on one node; several nodes are an MPI job of
        # one task per node for the SLURM plugin (nodes, tasks, mpi, gres, tasks_per_gpu).
        gpu=lambda wildcards: train_resources(wildcards)["gpu"],
        nodes=lambda wildcards: train_resources(wildcards)["nodes"],
        tasks=lambda wildcards: train_resources(wildcards)["tasks"],
        mpi=lambda wildcards: train_resources(wildcards)["mpi"],
        gres=lambda wildcards: train_resources(wildcards)["gres"],
        tasks_per_gpu=lambda wildcards: train_resources(wildcards)["tasks_per_gpu"],
        cpus_per_task=lambda wildcards: train_resources(wildcards)["cpus_per_task"],
    params:
        env=WILDCAT_ENV,
        launcher=train_launcher,
        options=train_options,
        out=lambda wildcards, output: Path(output.model).parent,
    shell:
        "OMP_NUM_THREADS={threads} {params.env} {params.launcher} -m wildcat train --quiet --restart-if-changed --out {params.out:q} "
        "{params.options} > {log:q} 2>&1"


# The report draws each run's training curves (training_<dataset>.png) from results/ alone, where
# `snakemake tables` finds them in a fresh clone without runs/: a plain copy of the run's log
# beside its metrics.json.
localrules:
    keep_train_log,


rule keep_train_log:
    input:
        f"{RUNS}/{{dataset}}/{{method}}/seed{{seed}}/train_log.csv",
    output:
        f"{RESULTS}/{{dataset}}/{{method}}/seed{{seed}}/train_log.csv",
    log:
        f"{LOGS}/keep_train_log/{{dataset}}/{{method}}/seed{{seed}}.log",
    conda:
        "../envs/report.yaml"
    shell:
        "cp {input:q} {output:q} > {log:q} 2>&1"
