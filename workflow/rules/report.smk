# Reports: the paper's tables with our numbers beside the published ones, and figures.
# `report` follows the DAG and reads exactly the metrics.json files it declares (the config's grid);
# `tables` reads the cached files of the same grid that exist in results/ and schedules nothing
# else, for a fresh clone without data. Neither reads a file left behind by a method removed from
# the config. Which methods go in which table: the config's `report` block, checked here. Both
# modules are torch- and pandas-free: snakemake itself needs neither.
from wildcat.report.layout import ReportLayout
from wildcat.report.names import TABLE_NAMES

try:
    REPORT_LAYOUT = ReportLayout.from_config(config["report"]).to_json()
except ConfigError as error:
    raise WorkflowError(f"bad workflow config: {error}") from None

REPORT_COMMAND = (
    "{params.wildcat} report --runs {params.runs:q} --metrics {params.metrics:q} --layout {params.layout:q} "
    "--paper {params.paper:q} --config-name {params.config_name:q} --paper-recipe {params.recipe:q} "
    "--tolerance {params.tolerance} --out {params.out:q} > {log:q} 2>&1"
)
REPORT_TABLES = [f"{REPORTS}/{table}.md" for table in TABLE_NAMES]
# The tables that are not the paper's, each with its own caption (workflow/report/<table>.rst);
# the paper's tables share tables.rst. The figures' captions: figures.rst, by file name.
OWN_CAPTIONS = ("methods", "claims", "per_class", "modalities")


localrules:
    report,
    tables,


rule report:
    input:
        metrics=all_metrics(),
        # Read beside each metrics.json: the training curves' logs (kept by keep_train_log) and
        # maps.npz (the gallery, the modalities table and figure), of the runs that trained.
        train_logs=run_files("train_log.csv", trained_only=True),
        maps=run_files("maps.npz", trained_only=True),
    output:
        tables=[
            report(
                f"{REPORTS}/{table}.md",
                caption=f"../report/{table if table in OWN_CAPTIONS else 'tables'}.rst",
                category="Tables",
            )
            for table in TABLE_NAMES
        ],
        table_files=[
            path.removesuffix(".md") + suffix
            for path in REPORT_TABLES
            for suffix in (".csv", ".tex")
        ],
        figures=report(
            directory(f"{REPORTS}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        runtime=5,
        mem_mb=2000,
    params:
        wildcat=WILDCAT,
        runs=lambda wildcards, input: config["results_dir"],
        metrics=lambda wildcards, input: list(input.metrics),
        layout=REPORT_LAYOUT,
        paper=PAPER,
        out=lambda wildcards, output: Path(output.figures).parent,
        config_name=NAME,
        recipe=config["paper_recipe"],
        tolerance=config["paper_tolerance"],
    shell:
        REPORT_COMMAND


rule tables:
    log:
        f"{LOGS}/tables.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        runtime=5,
        mem_mb=2000,
    params:
        wildcat=WILDCAT,
        runs=config["results_dir"],
        # The report reads each run's maps.npz and train_log.csv beside its metrics.json, if there.
        metrics=lambda wildcards: [
            path for path in all_metrics() if os.path.exists(path)
        ],
        layout=REPORT_LAYOUT,
        paper=PAPER,
        out=REPORTS,
        config_name=NAME,
        recipe=config["paper_recipe"],
        tolerance=config["paper_tolerance"],
    shell:
        REPORT_COMMAND
