# wildcat-bench: download -> train -> evaluate -> tables and figures (README "Workflow").
#   snakemake --cores 2                                 the embedded default (config/config.yaml)
#   snakemake --configfile config/paper.yaml -n         the paper's full grid (dry run)
#   snakemake --cores 1 tables                          regenerate reports from results/ only
from snakemake.utils import min_version, validate

min_version("9.0")


# The embedded default, unless another config was given (--configfile config/paper.yaml):
# Snakemake would otherwise merge the two grids.
if "datasets" not in config:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/multiscale.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        REPORT_TABLES,
