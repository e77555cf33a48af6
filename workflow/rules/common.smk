# Look-ups of the run grid for the rules. What the grid means (runs, merged settings, checks,
# launchers) lives in wildcat.grid, which the budget and the tests read too.
import os
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(
    0, workflow.basedir
)  # wildcat.grid needs only the standard library and PyYAML
from snakemake.exceptions import WorkflowError
from wildcat.engine.config import ConfigError
from wildcat.grid import (
    Grid,
    check_config_files,
    cli_options,
    train_launcher as grid_train_launcher,
)

NAME = config["name"]
DATA_ROOT = config["data_root"]
RUNS = f"{config['runs_dir']}/{NAME}"
RESULTS = f"{config['results_dir']}/{NAME}"
REPORTS = f"{config['reports_dir']}/{NAME}"
LOGS = f"logs/{NAME}"
PAPER = config["paper_dir"]

try:
    check_config_files(workflow.configfiles)
    GRID = Grid(config)
except ConfigError as error:
    raise WorkflowError(f"bad workflow config: {error}") from None

# Rules call the wildcat CLI of this checkout, so that it runs the same in the README's venv and
# in the per-rule conda environments (which hold the dependencies, not the package). The path is
# relative to the working directory: a moved or copied checkout gives the same shell commands, so
# Snakemake plans no job again.
WILDCAT_ENV = f"PYTHONPATH={shlex.quote(os.path.relpath(workflow.basedir))}${{PYTHONPATH:+:$PYTHONPATH}}"
WILDCAT = f"{WILDCAT_ENV} python -m wildcat"

# The marker each dataset leaves once it is complete on disk (see wildcat.data.download), outside
# the dataset's tree: Snakemake deletes a rule's output before rerunning it (--forceall), and the
# generator refuses to write over a tree that has lost its own synthetic.json.
SYNTHETIC_MARKER = f"{DATA_ROOT}/.wildcat/synthetic.complete"

# The `method` wildcard of single-model rules and of the combine rule: disjoint, so that no
# metrics.json can be made by both (evaluate and combine). A wildcard's regex is embedded in the
# path's regex, so the lookahead ends at the next "/".
SINGLE_MODEL_METHOD = (
    f"(?!(?:{'|'.join(map(re.escape, GRID.combined))})(?:/|$))" if GRID.combined else ""
) + "[A-Za-z0-9_.]+"
COMBINED_METHOD = "|".join(map(re.escape, GRID.combined)) or "(?!)"


wildcard_constraints:
    dataset="[a-z0-9_]+",
    method=SINGLE_MODEL_METHOD,  # the combine rule widens it to COMBINED_METHOD in its output
    seed="[0-9]+",


def train_options(wildcards):
    """`wildcat train` options for a run (values in YAML syntax)."""
    return cli_options(
        GRID.settings(wildcards.dataset, wildcards.method, wildcards.seed)
    )


def run_resources(wildcards):
    """The dataset's `resources`, shared by the train, evaluate and combine rules."""
    return GRID.resources(wildcards.dataset)


def train_resources(wildcards):
    """The resources of a training job that choose its layout (wildcat.grid.Grid.train_resources)."""
    return GRID.train_resources(wildcards.dataset)


def train_launcher(wildcards, resources, threads):
    """The command that starts `wildcat train` (wildcat.grid.train_launcher)."""
    return grid_train_launcher(resources, threads, wildcards.dataset)


def run_files(name, trained_only=False):
    """The file `name` in the results folder of every run of the grid; `trained_only`: of the
    runs trained and evaluated themselves (not the multi-scale combinations, whose folder holds
    metrics.json only)."""
    return [
        f"{RESULTS}/{run.dataset}/{run.method}/seed{run.seed}/{name}"
        for run in GRID.runs
        if not (trained_only and run.members)
    ]


def all_metrics():
    return run_files("metrics.json")


def data_marker(dataset):
    if dataset == "synthetic":
        return SYNTHETIC_MARKER
    return f"{DATA_ROOT}/.wildcat/{dataset}.complete"


def training_data(wildcards):
    """The datasets a run reads: its own, and SBD for VOC 2012's train_aug split (Table 9)."""
    settings = GRID.settings(wildcards.dataset, wildcards.method, wildcards.seed)
    markers = [data_marker(wildcards.dataset)]
    if settings.get("train_split") == "train_aug":
        markers.append(data_marker("sbd"))
    return markers


def member_models(wildcards):
    """The per-scale model.pt files of a multi-scale model, in scale order."""
    members = GRID.multiscale_members(wildcards.dataset, wildcards.method)
    if not members:
        raise ValueError(
            f"{wildcards.method} of {wildcards.dataset}: the dataset has no `multiscale` entry of that method"
        )
    return [
        f"{RUNS}/{wildcards.dataset}/{member}/seed{wildcards.seed}/model.pt"
        for member in members
    ]
