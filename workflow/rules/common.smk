# Shared helpers: the run grid of the config and the settings of each run.
import shlex
from pathlib import Path

import yaml

NAME = config["name"]
DATA_ROOT = config["data_root"]
RUNS = f"{config['runs_dir']}/{NAME}"
RESULTS = f"{config['results_dir']}/{NAME}"
REPORTS = f"{config['reports_dir']}/{NAME}"
LOGS = f"logs/{NAME}"
PAPER = config["paper_dir"]

# Rules call the wildcat CLI from this checkout, so that it runs the same in the README's venv
# and in the per-rule conda environments (which hold the dependencies, not the package).
WILDCAT = f"PYTHONPATH={shlex.quote(workflow.basedir)}${{PYTHONPATH:+:$PYTHONPATH}} python -m wildcat"

# The marker each dataset leaves once it is complete on disk (see wildcat.data.download).
SYNTHETIC_MARKER = f"{DATA_ROOT}/VOCdevkit/VOCsynthetic/synthetic.json"


wildcard_constraints:
    dataset="[a-z0-9_]+",
    method="[A-Za-z0-9_.]+",
    seed="[0-9]+",


def methods_of(dataset):
    """The method ids of a dataset (a YAML alias inside the list stands for a nested list)."""
    listed = config["datasets"][dataset]["methods"]
    return [m for item in listed for m in (item if isinstance(item, list) else [item])]


def grid():
    """Every (dataset, method, seed) of the config: the paper's experiment list."""
    return [
        (dataset, method, seed)
        for dataset, spec in config["datasets"].items()
        for method in methods_of(dataset)
        for seed in spec.get("method_seeds", {}).get(method, spec.get("seeds", config["seeds"]))
    ]


def run_settings(dataset, method, seed):
    """The ExperimentConfig keys of one run: dataset settings <- method settings <- seed.
    A split name may hold ``{seed}`` (15 Scene: one random train/test split per seed)."""
    spec = config["datasets"][dataset]
    settings = {
        "data_root": DATA_ROOT,
        **spec["experiment"],
        **config["methods"][method],
        **spec.get("method_overrides", {}).get(method, {}),
        "seed": int(seed),
    }
    for key in ("train_split", "test_split"):
        if key in settings:
            settings[key] = str(settings[key]).format(seed=seed)
    return settings


def train_options(wildcards):
    """`wildcat train` options for a run (values in YAML syntax)."""
    settings = run_settings(wildcards.dataset, wildcards.method, wildcards.seed)
    options = []
    for key, value in settings.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()
        options.append(f"--{key.replace('_', '-')}={shlex.quote(text)}")
    return " ".join(options)


def run_resources(wildcards):
    return config["datasets"][wildcards.dataset].get("resources", {})


def all_metrics():
    return [f"{RESULTS}/{d}/{m}/seed{s}/metrics.json" for d, m, s in grid()]


def data_marker(dataset):
    if dataset == "synthetic":
        return SYNTHETIC_MARKER
    return f"{DATA_ROOT}/.wildcat/{dataset}.complete"
