# Reports: the paper's tables with our numbers beside the published ones, and figures.
# `report` follows the DAG (it needs every metrics.json of the grid); `tables` reads whatever
# cached results are in results/ and schedules nothing else, for a fresh clone without data.

REPORT_COMMAND = (
    "{params.wildcat} report --runs {params.runs:q} --paper {params.paper:q} --config-name {params.config_name:q} "
    "--paper-recipe {params.recipe:q} --tolerance {params.tolerance} --out {params.out:q} > {log:q} 2>&1"
)


localrules:
    report,
    tables,


# The table names of wildcat.report.TABLE_NAMES (tests/test_workflow.py checks they agree; the
# Snakefile does not import the library, so that snakemake itself needs none of its dependencies).
REPORT_TABLES = [
    f"{REPORTS}/{table}.md"
    for table in (
        "classification",
        "localization",
        "segmentation",
        "order_ablation",
        "m_ablation",
        "alpha_m_ablation",
        "alpha_ablation",
        "methods",
    )
]


rule report:
    input:
        all_metrics(),
    output:
        tables=[report(table, caption="../report/tables.rst", category="Tables") for table in REPORT_TABLES],
        figures=report(
            directory(f"{REPORTS}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/report.log",
    params:
        wildcat=WILDCAT,
        runs=lambda wildcards, input: config["results_dir"],
        paper=PAPER,
        out=lambda wildcards, output: Path(output.figures).parent,
        config_name=NAME,
        recipe=config["paper_recipe"],
        tolerance=config["paper_tolerance"],
    threads: 1
    resources:
        runtime=5,
        mem_mb=2000,
    conda:
        "../envs/report.yaml"
    shell:
        REPORT_COMMAND


rule tables:
    log:
        f"{LOGS}/tables.log",
    params:
        wildcat=WILDCAT,
        runs=config["results_dir"],
        paper=PAPER,
        out=REPORTS,
        config_name=NAME,
        recipe=config["paper_recipe"],
        tolerance=config["paper_tolerance"],
    threads: 1
    resources:
        runtime=5,
        mem_mb=2000,
    conda:
        "../envs/report.yaml"
    shell:
        REPORT_COMMAND
